/** `kdmri import / studies / convert / export` as a user runs them (spawned, KDMRI_HOME in a temp dir). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNifti } from '../../src-main/data/nifti.js';
import { EXPECTED, NO_PYDICOM, PYDICOM_DATA } from './helpers.js';

const root = new URL('../..', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'kdmri-studies-cli-'));
const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const data = (f: string) => join(PYDICOM_DATA as string, f);

function kdmri(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
    cwd: root,
    env: { ...process.env, KDMRI_HOME: home },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('kdmri import --json: per-file results; kdmri studies lists the series', { skip }, () => {
  const dir = mkdtempSync(join(home, 'in-'));
  copyFileSync(data('CT_small.dcm'), join(dir, 'ct.dcm'));
  copyFileSync(data('rtplan.dcm'), join(dir, 'plan.dcm'));
  writeFileSync(join(dir, 'junk.bin'), Buffer.alloc(300, 7));
  const r = kdmri('import', dir, '--json');
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { path: string; status: string; message: string; seriesUid?: string }[];
  const by = (f: string) => res.find((x) => x.path.endsWith(f))!;
  assert.equal(by('ct.dcm').status, 'imported');
  assert.equal(by('plan.dcm').status, 'skipped');
  assert.equal(by('junk.bin').status, 'failed');
  const s = kdmri('studies', '--json');
  assert.equal(s.code, 0, s.err);
  const patients = JSON.parse(s.out);
  const series = patients.flatMap((p: { studies: { series: { uid: string }[] }[] }) => p.studies.flatMap((x) => x.series));
  assert.ok(series.some((x: { uid: string }) => x.uid === by('ct.dcm').seriesUid));
  const text = kdmri('studies');
  assert.equal(text.code, 0);
  assert.match(text.out, /CT/);
});

test('kdmri import: all files failed → exit 1 with one line; missing path reported', () => {
  const bad = join(home, 'bad.dcm');
  writeFileSync(bad, 'hello');
  const r = kdmri('import', bad, join(home, 'nope.dcm'));
  assert.equal(r.code, 1);
  assert.match(r.out, /failed\s+.*bad\.dcm: not a DICOM/);
  assert.match(r.out, /nope\.dcm: no such file or folder/);
  assert.match(r.err, /kdmri: nothing imported: 2 files failed/);
  assert.doesNotMatch(r.err, /\n\s+at /);
});
