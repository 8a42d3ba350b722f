/**
 * The `kdmri` command line as a user runs it: JSON shapes, files written, bad input → one line and
 * a non-zero exit, never a stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { writeNifti, readNifti } from '../../src-main/data/nifti.js';
import { buildMask } from '../../src-main/kspace/masks.js';

const root = new URL('../..', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'kdmri-cli-'));

function kdmri(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
    cwd: root,
    env: { ...process.env, KDMRI_HOME: home },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function assertUserError(r: ReturnType<typeof kdmri>, pattern: RegExp) {
  assert.notEqual(r.code, 0);
  assert.match(r.err, pattern);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
}

test('mask: preset brain 4x reports 60 of 240 lines and writes a PNG', () => {
  const out = join(home, 'mask.png');
  const r = kdmri(
    'mask',
    '--shape',
    '240x240',
    '--acc',
    '4',
    '--kind',
    'preset:brain',
    '--out',
    out,
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.sampledLines, 60);
  assert.equal(j.acceleration, 4);
  const png = PNG.sync.read(readFileSync(out));
  assert.deepEqual([png.width, png.height], [240, 240]);
});

test('metrics: agrees with scikit-image through NIfTI files', () => {
  const ref = JSON.parse(readFileSync(join(root, 'test/fixtures/metrics/reference.json'), 'utf8')).cases[0];
  const [s, h, w] = ref.shape;
  writeNifti(join(home, 'gt.nii.gz'), { data: Float32Array.from(ref.gt), slices: s, h, w });
  writeNifti(join(home, 'pred.nii'), { data: Float32Array.from(ref.pred), slices: s, h, w });
  const r = kdmri('metrics', '--target', join(home, 'gt.nii.gz'), '--pred', join(home, 'pred.nii'), '--json');
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(r.out);
  assert.ok(
    Math.abs(m.psnr - ref.psnr) / ref.psnr < 1e-4 &&
      Math.abs(m.ssim - ref.ssim) < 1e-4 &&
      Math.abs(m.nmse - ref.nmse) < 1e-4,
  );
});

test('bad arguments and bad files: one line naming the problem, exit 2', () => {
  assertUserError(kdmri('mask', '--shape', '24'), /--shape must look like 240x240/);
  assertUserError(
    kdmri('mask', '--shape', '64x64', '--kind', 'preset:brain'),
    /240×240 but the images are 64×64/,
  );
  assertUserError(kdmri('distill', '--epochs', '0'), /--epochs must be an integer from 1/);
  assertUserError(
    kdmri('distill', '--mask', 'spiral'),
    /--mask must be cartesian, random, equispaced or preset/,
  );
  assertUserError(
    kdmri('metrics', '--target', join(home, 'nope.nii'), '--pred', join(home, 'pred.nii')),
    /nope\.nii: no such file/,
  );
  writeFileSync(join(home, 'junk.nii.gz'), 'not a volume');
  assertUserError(
    kdmri('distill', '--data', join(home, 'junk.nii.gz'), '--epochs', '1'),
    /junk\.nii\.gz: not a NIfTI file/,
  );
  assertUserError(kdmri('eval', '--model', home), /not a model folder/);
  assert.equal(kdmri('bogus').code, 2);
});

test('distill → runs → eval → reconstruct on the bundled sample (tiny size)', () => {
  const r = kdmri('distill', '--size', '16', '--epochs', '1', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.backend, 'wasm');
  assert.deepEqual(j.params, { teacher: 141765, student: 49285 });
  assert.deepEqual(
    j.rows.map((x: { model: string }) => x.model),
    ['zf', 'cs', 'teacher', 'student', 'kd'],
  );
  for (const row of j.rows) for (const k of ['psnr', 'ssim', 'nmse']) assert.equal(typeof row[k], 'number');

  const runs = JSON.parse(kdmri('runs', '--json').out);
  assert.deepEqual(
    runs.map((x: { kind: string }) => x.kind),
    ['teacher', 'student', 'attention', 'kd'],
  );
  assert.ok(
    runs.every((x: { status: string; compactness: unknown }) => x.status === 'finished' && x.compactness),
  );

  const kd = j.models.kd.dir as string;
  const e = kdmri('eval', '--model', kd, '--acc', '8', '--json');
  assert.equal(e.code, 0, e.err);
  const ej = JSON.parse(e.out);
  assert.equal(ej.degradation, 'cartesian 8x');
  // at 16 rows the reference mask's 10 centre lines dominate: the true acceleration is what buildMask says
  const m = buildMask({ kind: 'cartesian', acc: 8, axis: 'rows', seed: 42 }, 16, 16);
  assert.equal(ej.acceleration, m.acceleration);
  assert.equal(ej.compactness.params, 49285);

  const out = join(home, 'recon.nii.gz');
  const rc = kdmri(
    'reconstruct',
    '--model',
    kd,
    '--input',
    join(root, 'resources/sample/colin27-t1-40slices.nii.gz'),
    '--out',
    out,
    '--json',
  );
  assert.equal(rc.code, 0, rc.err);
  assert.ok(existsSync(out));
  assert.deepEqual([readNifti(out).slices, readNifti(out).h], [40, 160]);
});
