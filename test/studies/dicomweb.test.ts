/**
 * DICOMweb against a real PACS: Debian's Orthanc with the DICOMweb plugin, started on 127.0.0.1 with a
 * temporary configuration and storage, basic authentication on. STOW an exported series, find it
 * with QIDO, WADO it into a fresh library with identical pixels. Orthanc is stopped in `after`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
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
import { orthancSkip, ORTHANC_PASS, ORTHANC_USER, startOrthanc, type RunningOrthanc } from './orthanc.js';

const skip = orthancSkip;
const USER = ORTHANC_USER;
const PASS = ORTHANC_PASS;
let orthanc: RunningOrthanc | null = null;
let dir = '';
let settings: PacsSettings;

before(async () => {
  if (skip) return;
  orthanc = await startOrthanc();
  dir = orthanc.dir;
  settings = orthanc.settings;
});

after(async () => {
  await orthanc?.stop();
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
    assert.deepEqual([...stow.stored].sort(), [...exp.sopUids].sort());

    const studies = await searchStudies(settings, { StudyInstanceUID: exp.studyUid });
    assert.equal(studies.length, 1);
    assert.equal(studies[0].uid, exp.studyUid);
    assert.equal(studies[0].patientId, 'KDMRI');
    // fields asked for with includefield come back (commas unencoded)
    assert.equal(studies[0].description, 'KD-MRI reconstructions');
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

test(
  'kdmri pacs nodes: add/list/remove parse their options; --node queries with the stored secret, which never reaches the database',
  { skip },
  async () => {
    // in-process: the CLI's own parser and commands (a process per call takes seconds each here)
    const { runCli } = await import('../../src-main/cli/main.js');
    const home = mkdtempSync(join(dir, 'nodes-'));
    const run = async (env: Record<string, string>, ...args: string[]) => {
      const saved = { ...process.env };
      Object.assign(process.env, { KDMRI_HOME: home, KDMRI_PACS_PASSWORD: '', KDMRI_PACS_TOKEN: '', ...env });
      let out = '';
      let err = '';
      const ow = process.stdout.write.bind(process.stdout);
      const ew = process.stderr.write.bind(process.stderr);
      process.stdout.write = ((c: string | Uint8Array) => (
        (out += String(c)),
        true
      )) as typeof process.stdout.write;
      process.stderr.write = ((c: string | Uint8Array) => (
        (err += String(c)),
        true
      )) as typeof process.stderr.write;
      try {
        const code = await runCli(args);
        return { code, out, err };
      } finally {
        process.stdout.write = ow;
        process.stderr.write = ew;
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    };
    // options after the subcommand's argument, and --json, reach the leaf command
    const add = await run(
      { KDMRI_PACS_PASSWORD: PASS },
      'pacs',
      'nodes',
      'add',
      'lab pacs',
      '--url',
      settings.url,
      '--auth',
      'basic',
      '--user',
      USER,
      '--json',
    );
    assert.equal(add.code, 0, add.err);
    assert.equal(JSON.parse(add.out).secretIn, 'file');
    assert.doesNotMatch(add.out, new RegExp(PASS));
    // bad choices and missing secrets are one-line errors
    const badAuth = await run({}, 'pacs', 'nodes', 'add', 'x', '--url', settings.url, '--auth', 'kerberos');
    assert.equal(badAuth.code, 2);
    assert.match(badAuth.err, /--auth must be one of none, basic, bearer/);
    const noSecret = await run({}, 'pacs', 'nodes', 'add', 'y', '--url', settings.url, '--auth', 'bearer');
    assert.equal(noSecret.code, 2);
    assert.match(noSecret.err, /a token is needed .*KDMRI_PACS_TOKEN/);
    const list = await run({}, 'pacs', 'nodes', '--json');
    assert.equal(list.code, 0, list.err);
    const nodes = JSON.parse(list.out) as { name: string; user: string; auth: string; hasSecret: boolean }[];
    assert.deepEqual(
      nodes.map((n) => [n.name, n.auth, n.user, n.hasSecret]),
      [['lab pacs', 'basic', USER, true]],
    );
    const listPlain = await run({}, 'pacs', 'nodes', 'list');
    assert.match(listPlain.out, /lab pacs .*basic .*kdmri .*file/);
    // the secret: in an owner-only file, not in the database (nor its WAL)
    const file = join(home, 'pacs-secrets.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(file, 'utf8'))['lab pacs'], PASS);
    for (const f of ['kdmri.db', 'kdmri.db-wal'])
      try {
        assert.ok(!readFileSync(join(home, f)).includes(Buffer.from(PASS)), `${f} holds the password`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    const q = await run({}, 'pacs', 'query', '--node', 'lab pacs', '--json');
    assert.equal(q.code, 0, q.err);
    assert.ok(Array.isArray(JSON.parse(q.out)));
    const both = await run({}, 'pacs', 'query', '--node', 'lab pacs', '--url', settings.url);
    assert.equal(both.code, 2);
    assert.match(both.err, /exactly one of --node NAME or --url URL/);
    // the environment overrides the file (a wrong password there is used, and refused by the PACS)
    const env = await run({ KDMRI_PACS_SECRET_LAB_PACS: 'wrong' }, 'pacs', 'query', '--node', 'lab pacs');
    assert.equal(env.code, 2);
    assert.match(env.err, /401/);
    const rm = await run({}, 'pacs', 'nodes', 'remove', 'lab pacs');
    assert.equal(rm.code, 0, rm.err);
    assert.equal(JSON.parse(readFileSync(file, 'utf8'))['lab pacs'], undefined);
    assert.deepEqual(JSON.parse((await run({}, 'pacs', 'nodes', '--json')).out), []);
  },
);
