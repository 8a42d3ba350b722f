/** Restoration (super-resolution) distillation through the same CLI and job: VDSR teacher → student. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'kdmri-sr-'));
const kdmri = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
    cwd: root,
    env: { ...process.env, KDMRI_HOME: home },
    encoding: 'utf8',
    timeout: 600_000,
  });

test('distill --task sr: rows lr/teacher/student/kd, the teacher beats the low-resolution input, compactness stored', () => {
  const r = kdmri('distill', '--task', 'sr', '--keep', '0.25', '--size', '24', '--epochs', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.params, { teacher: 333569, student: 185857 });
  assert.deepEqual(
    j.rows.map((x: { model: string }) => x.model),
    ['lr', 'teacher', 'student', 'kd'],
  );
  const psnr = Object.fromEntries(j.rows.map((x: { model: string; psnr: number }) => [x.model, x.psnr]));
  assert.ok(psnr.teacher > psnr.lr, `teacher ${psnr.teacher} dB vs low-resolution input ${psnr.lr} dB`);

  const runs = JSON.parse(kdmri('runs', '--json').stdout);
  assert.equal(runs.length, 4);
  for (const run of runs) {
    assert.equal(run.degradation, 'lowres 0.25');
    assert.ok(
      run.compactness.latencyMsWarm > 0 &&
        run.compactness.flopsPerSlice > 0 &&
        run.compactness.bytesOnDisk > 0,
    );
  }
  const teacher = runs.find((x: { kind: string }) => x.kind === 'teacher');
  assert.equal(teacher.compactness.params, 333569);

  const e = kdmri('eval', '--model', j.models.kd.dir, '--keep', '0.5', '--json');
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).rows[0].model, 'lr');
  const wrong = kdmri('eval', '--model', j.models.kd.dir, '--acc', '4');
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /restoration model: use --keep/);
});
