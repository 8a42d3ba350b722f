/**
 * `kdmri table --job ID` shows the job's own validation results, and `kdmri eval` (any split, any
 * acceleration) never changes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'kdmri-table-'));

function kdmri(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
    cwd: root,
    env: { ...process.env, KDMRI_HOME: home },
    encoding: 'utf8',
    timeout: 600_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('kdmri eval --split all (and another acceleration) leaves kdmri table --job unchanged', () => {
  const d = kdmri('distill', '--size', '16', '--epochs', '1', '--json');
  assert.equal(d.code, 0, d.err);
  const job = JSON.parse(d.out) as { jobId: string; models: { kd: { dir: string } } };
  const before = kdmri('table', '--job', job.jobId, '--json');
  assert.equal(before.code, 0, before.err);
  const t = JSON.parse(before.out);
  assert.deepEqual(
    t.rows.map((r: { model: string }) => r.model),
    ['zf', 'cs', 'teacher', 'student', 'kd'],
  );
  assert.equal(t.split, 'validation');
  // the bundled sample validates on one volume: no spread, n = 1
  assert.equal(t.rows[0].cells[0].volumes, 1);
  assert.equal(t.rows[0].cells[0].psnr.spread, null);
  const text = kdmri('table', '--job', job.jobId);
  assert.match(text.out, /\(n = 1\)/);
  assert.doesNotMatch(text.out, /± 0\.00/);

  const all = kdmri('eval', '--model', job.models.kd.dir, '--split', 'all', '--json');
  assert.equal(all.code, 0, all.err);
  const ej = JSON.parse(all.out);
  assert.equal(ej.split, 'all');
  assert.equal(ej.slices, 40, 'all 40 slices of the sample');
  const val = JSON.parse(kdmri('eval', '--model', job.models.kd.dir, '--json').out);
  assert.equal(val.split, 'validation');
  assert.equal(val.slices, 10, "the model's own validation split by default");
  assert.equal(kdmri('eval', '--model', job.models.kd.dir, '--acc', '8').code, 0);

  const after = kdmri('table', '--job', job.jobId, '--json');
  assert.equal(after.out, before.out);
  for (const f of ['--csv', '--markdown', '--latex'])
    assert.equal(kdmri('table', '--job', job.jobId, f).code, 0);
  const bad = kdmri('table', '--job', 'nope');
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /no job nope/);
  assert.match(kdmri('table').err, /give exactly one of --job ID and --study ID/);
});
