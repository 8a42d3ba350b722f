/** NIfTI reading against nibabel's decoding of the real ch2 volume; writing round trips; bad files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNifti, writeNifti } from '../../src-main/data/nifti.js';
import { normalizeSlices, resampleSlices, selectSlices } from '../../src-main/data/volume.js';
import { SAMPLE_SPLIT, sampleDataPath } from '../../src-main/data/sample.js';

const CH2 = '/usr/share/mricron/templates/ch2.nii.gz';
const ref = JSON.parse(readFileSync(new URL('../fixtures/metrics/reference.json', import.meta.url), 'utf8'))
  .ch2 as {
  shape: number[];
  voxels: [number, number, number, number][];
  pixdim: number[];
};

test(
  'ch2.nii.gz decodes to the voxels nibabel reads (i, j, k → slice k, row j, column i)',
  { skip: !existsSync(CH2) && 'mricron-data not installed' },
  () => {
    const v = readNifti(CH2);
    assert.deepEqual([v.w, v.h, v.slices], ref.shape);
    for (const [i, j, k, value] of ref.voxels) assert.equal(v.data[k * v.h * v.w + j * v.w + i], value);
    assert.deepEqual(v.spacing, ref.pixdim);
  },
);

test('write → read round trip, .nii and .nii.gz', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nii-'));
  const vol = {
    data: Float32Array.from({ length: 3 * 5 * 4 }, (_, i) => i * 0.5 - 3),
    slices: 3,
    h: 5,
    w: 4,
    spacing: [0.5, 0.7, 2] as [number, number, number],
  };
  for (const name of ['a.nii', 'b.nii.gz']) {
    writeNifti(join(dir, name), vol);
    const back = readNifti(join(dir, name));
    assert.deepEqual([back.slices, back.h, back.w], [3, 5, 4]);
    assert.deepEqual(back.data, vol.data);
    assert.ok(back.spacing!.every((s, i) => Math.abs(s - vol.spacing[i]) < 1e-6));
  }
});

test('bad files get a clear reason naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nii-bad-'));
  assert.throws(() => readNifti(join(dir, 'none.nii')), /none\.nii: no such file/);
  writeFileSync(join(dir, 'junk.nii'), Buffer.alloc(400, 7));
  assert.throws(() => readNifti(join(dir, 'junk.nii')), /junk\.nii: not a NIfTI file/);
  writeFileSync(join(dir, 'gz.nii.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
  assert.throws(() => readNifti(join(dir, 'gz.nii.gz')), /gz\.nii\.gz: corrupt gzip/);
  const good = join(dir, 'good.nii');
  writeNifti(good, { data: new Float32Array(1000), slices: 10, h: 10, w: 10 });
  writeFileSync(join(dir, 'cut.nii'), readFileSync(good).subarray(0, 2000));
  assert.throws(() => readNifti(join(dir, 'cut.nii')), /cut\.nii: truncated/);
});

test('the bundled sample: 40 slices of 160×160, split 30/10', () => {
  const v = readNifti(sampleDataPath());
  assert.deepEqual([v.slices, v.h, v.w], [40, 160, 160]);
  assert.deepEqual(SAMPLE_SPLIT, { trainSlices: [0, 30], valSlices: [30, 40] });
  const val = selectSlices(v, ...SAMPLE_SPLIT.valSlices);
  assert.equal(val.slices, 10);
  const n = normalizeSlices(val);
  for (let s = 0; s < 10; s++) assert.equal(Math.max(...n.data.subarray(s * 25600, (s + 1) * 25600)), 1);
});

test('resampling keeps a constant image constant and preserves the mean of a smooth one', () => {
  const c = resampleSlices({ data: new Float32Array(2 * 30 * 20).fill(3), slices: 2, h: 30, w: 20 }, 16);
  assert.ok(c.data.every((x) => Math.abs(x - 3) < 1e-5));
  const ramp = {
    data: Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 64) / 63),
    slices: 1,
    h: 64,
    w: 64,
  };
  const r = resampleSlices(ramp, 16);
  const mean = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(Math.abs(mean(r.data) - mean(ramp.data)) < 0.01);
});
