/**
 * DICOMweb against a real PACS: Debian's Orthanc with the DICOMweb plugin, started on 127.0.0.1 with a
 * temporary configuration and storage, basic authentication on. STOW an exported series, find it
 * with QIDO, WADO it into a fresh library with identical pixels. Orthanc is stopped in `after`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Volume } from '../../src-main/contract/domain.js';
import { openDatabase } from '../../src-main/store/db.js';
import { loadSeriesVolume, getSeries } from '../../src-main/studies/index.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import {
  PacsError,
  parseMultipart,
  retrieveSeriesInto,
  searchSeries,
  searchStudies,
  storeInstances,
  type PacsSettings,
} from '../../src-main/studies/dicomweb.js';

const ORTHANC = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].find(existsSync) ?? null;
function pluginPath(): string | null {
  const r = spawnSync('dpkg', ['-L', 'orthanc-dicomweb'], { encoding: 'utf8' });
  const listed =
    r.status === 0
      ? r.stdout.split('\n').find((l) => /libOrthancDicomWeb\.so/.test(l) && existsSync(l))
      : undefined;
  return listed ?? ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'].find(existsSync) ?? null;
}
const PLUGIN = pluginPath();
const skip = !ORTHANC
  ? 'Orthanc is not installed (apt-get install orthanc)'
  : !PLUGIN
    ? 'orthanc-dicomweb is not installed'
    : false;

const USER = 'kdmri';
const PASS = 's3cret-pw';
let proc: ChildProcess | null = null;
let dir = '';
let settings: PacsSettings;
let log = '';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => res(port));
    });
  });
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'kdmri-orthanc-'));
  const port = await freePort();
  const cfg = {
    Name: 'KDMRI-TEST',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'index'),
    HttpPort: port,
    DicomServerEnabled: false,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [USER]: PASS },
    Plugins: [PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(cfg));
  proc = spawn(ORTHANC as string, [join(dir, 'orthanc.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const auth = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/system`, { headers: { Authorization: auth } });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || proc.exitCode !== null)
      throw new Error(`Orthanc did not start:\n${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  settings = {
    url: `http://127.0.0.1:${port}/dicom-web`,
    auth: { kind: 'basic', user: USER, password: PASS },
  };
});

after(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => proc!.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function phantom(s: number, h: number, w: number): Volume {
  const data = new Float32Array(s * h * w);
  for (let i = 0; i < data.length; i++) data[i] = Math.abs(Math.sin(i * 0.013)) * 3.5 + (i % 7) * 0.01;
  return { data, slices: s, h, w, spacing: [1, 1.2, 2.5] };
}

test(
  'STOW an exported series, QIDO finds it, WADO retrieves it into a fresh library with identical pixels',
  { skip },
  async () => {
    const vol = phantom(3, 24, 20);
    const exp = writeDicomSeries(vol, join(dir, 'export'), {
      derivation: { model: 'kd-student', mask: 'cartesian 4x', acceleration: 4 },
      seriesDescription: 'KD student',
    });
    const stow = await storeInstances(
      settings,
      exp.paths.map((p) => readFileSync(p)),
    );
    assert.deepEqual(stow.failed, []);
    assert.deepEqual([...stow.stored].sort(), exp.files.map((f) => f.sopUid).sort());

    const studies = await searchStudies(settings, { StudyInstanceUID: exp.studyUid });
    assert.equal(studies.length, 1);
    assert.equal(studies[0].uid, exp.studyUid);
    assert.equal(studies[0].patientId, 'KDMRI');
    const byName = await searchStudies(settings, { PatientID: 'KDMRI*' });
    assert.ok(byName.some((s) => s.uid === exp.studyUid));
    const series = await searchSeries(settings, exp.studyUid);
    assert.equal(series.length, 1);
    assert.equal(series[0].uid, exp.seriesUid);
    assert.equal(series[0].modality, 'MR');
    assert.equal(series[0].description, 'KD student');

    const db = openDatabase(':memory:');
    const res = await retrieveSeriesInto(db, settings, exp.studyUid, exp.seriesUid, join(dir, 'retrieved'));
    assert.equal(res.length, 3);
    assert.ok(
      res.every((r) => r.status === 'imported'),
      JSON.stringify(res),
    );
    // identical to importing the exported files directly: same words, same slope/intercept
    const back = loadSeriesVolume(db, exp.seriesUid);
    let maxErr = 0;
    vol.data.forEach((x, i) => (maxErr = Math.max(maxErr, Math.abs(back.data[i] - x))));
    assert.ok(maxErr <= exp.slope / 2 + 1e-6, `${maxErr}`);
    const local = openDatabase(':memory:');
    const { importPaths } = await import('../../src-main/studies/index.js');
    await importPaths(local, exp.paths);
    assert.deepEqual(Array.from(back.data), Array.from(loadSeriesVolume(local, exp.seriesUid).data));
    assert.equal(getSeries(db, exp.seriesUid)!.attributes.ImageType, 'DERIVED\\SECONDARY');
    db.close();
    local.close();
  },
);

test('wrong password and unreachable PACS give one-line reasons', { skip }, async () => {
  await assert.rejects(
    searchStudies({ ...settings, auth: { kind: 'basic', user: USER, password: 'nope' } }),
    (e: unknown) => {
      assert.ok(e instanceof PacsError);
      assert.equal(e.status, 401);
      assert.match(e.message, /401 .*check the user\/password or token/);
      return true;
    },
  );
  await assert.rejects(
    searchStudies({ url: 'http://127.0.0.1:1/dicom-web' }),
    /cannot reach http:\/\/127\.0\.0\.1:1\/dicom-web\/studies/,
  );
  await assert.rejects(searchStudies({ url: 'ftp://x' }), /must start with http/);
});

test('multipart parser: boundaries, quoted boundary, CRLF handling', () => {
  const body = Buffer.from(
    'preamble\r\n--b1\r\nContent-Type: application/dicom\r\n\r\nAAA\r\n--b1\r\nContent-Type: application/dicom\r\n\r\nB\r\nB\r\n--b1--\r\n',
    'latin1',
  );
  const parts = parseMultipart(body, 'multipart/related; type="application/dicom"; boundary="b1"');
  assert.deepEqual(
    parts.map((p) => p.toString('latin1')),
    ['AAA', 'B\r\nB'],
  );
  assert.throws(() => parseMultipart(body, 'application/json'), /not a multipart answer/);
});

test('kdmri pacs store / query / retrieve against Orthanc', { skip }, async () => {
  const { PYDICOM_DATA } = await import('./helpers.js');
  if (!PYDICOM_DATA) return;
  const root = new URL('../..', import.meta.url).pathname;
  const home = mkdtempSync(join(dir, 'home-'));
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
      cwd: root,
      env: { ...process.env, KDMRI_HOME: home, KDMRI_PACS_PASSWORD: PASS },
      encoding: 'utf8',
      timeout: 300_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const auth = ['--url', settings.url, '--user', USER];
  const imp = run('import', join(PYDICOM_DATA, 'CT_small.dcm'), '--json');
  assert.equal(imp.code, 0, imp.err);
  const uid = JSON.parse(imp.out)[0].seriesUid as string;
  const st = run('pacs', 'store', '--series', uid, ...auth, '--json');
  assert.equal(st.code, 0, st.err);
  assert.equal(JSON.parse(st.out).stored.length, 1);
  const q = run(
    'pacs',
    'query',
    '--patient-name',
    'CompressedSamples*',
    '--date',
    '20040119',
    ...auth,
    '--json',
  );
  assert.equal(q.code, 0, q.err);
  const study = (JSON.parse(q.out) as { uid: string; patientId: string }[]).find(
    (s) => s.patientId === '1CT1',
  )!;
  assert.ok(study);
  const qs = run('pacs', 'query', '--study', study.uid, ...auth, '--json');
  assert.deepEqual(
    JSON.parse(qs.out).map((s: { uid: string }) => s.uid),
    [uid],
  );
  const rdb = join(home, 'other.db');
  const rr = run('pacs', 'retrieve', '--study', study.uid, '--series', uid, '--db', rdb, ...auth, '--json');
  assert.equal(rr.code, 0, rr.err);
  assert.equal(JSON.parse(rr.out)[0].status, 'imported');
  const bad = run('pacs', 'query', '--url', settings.url, '--token', 'wrong');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^kdmri: GET .* 401/);
});
