/**
 * fastMRI and KD-MRI HDF5 files (tiny ones written by scripts/fixtures/make_hdf5_fixtures.py with h5py)
 * read as the numpy reference computes them: images, unshifted orthonormal acquired k-space, masks.
 * Also: import into the library keeps the k-space; the engine's data source reads the files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { openDatabase } from '../../src-main/store/db.js';
import {
  importPaths,
  loadSeriesVolume,
  createDatasetFromSeries,
  loadSeriesSource,
} from '../../src-main/studies/index.js';
import { readHdf5 } from '../../src-main/studies/hdf5/index.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { ifft2 } from '../../src-main/kspace/fft.js';

const dir = fileURLToPath(new URL('../fixtures/hdf5/', import.meta.url));
const EXP = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')).files as Record<
  string,
  {
    shape: number[];
    data: number[];
    re?: number[];
    im?: number[];
    mask?: number[];
    zf?: number[];
    esc?: { shape: number[]; data: number[] };
    rss?: { shape: number[]; data: number[] };
    attrs?: Record<string, string>;
  }
>;

function close(a: ArrayLike<number>, b: number[], tol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max difference ${worst} > ${tol}`);
}

test('fastMRI single-coil: |ifft2c| image, unshifted k-space of that image, all-ones mask, cropped target', () => {
  const e = EXP['fastmri_singlecoil.h5'];
  const vols = readHdf5(join(dir, 'fastmri_singlecoil.h5'));
  const v = vols[0].volume;
  assert.ok(vols[0].primary);
  assert.deepEqual([v.slices, v.h, v.w], e.shape);
  close(v.data, e.data, 1e-5, 'image');
  close(v.kspace!.re, e.re!, 1e-5, 'k-space re');
  close(v.kspace!.im, e.im!, 1e-5, 'k-space im');
  close(v.kspace!.mask, e.mask!, 0, 'mask');
  // our own inverse FFT of the stored k-space gives the image back (convention check)
  const n = v.h * v.w;
  const x = ifft2({
    re: Float64Array.from(v.kspace!.re.subarray(0, n)),
    im: Float64Array.from(v.kspace!.im.subarray(0, n)),
    h: v.h,
    w: v.w,
  });
  close(
    Array.from(x.re, (r, i) => Math.hypot(r, x.im[i])),
    e.data.slice(0, n),
    1e-5,
    'ifft2(kspace)',
  );
  assert.equal(vols[0].attributes.acquisition, 'CORPD_FBK');
  assert.equal(vols[0].attributes.patient_id, 'abc123');
  const esc = vols.find((x) => /reconstruction_esc/.test(x.label))!;
  assert.equal(esc.primary, false);
  assert.deepEqual([esc.volume.slices, esc.volume.h, esc.volume.w], e.esc!.shape);
  close(esc.volume.data, e.esc!.data, 0, 'reconstruction_esc');
});

test('fastMRI single-coil test file: 1-D centred mask → unshifted H×W mask, odd width', () => {
  const e = EXP['fastmri_singlecoil_test.h5'];
  const [p] = readHdf5(join(dir, 'fastmri_singlecoil_test.h5'));
  assert.match(p.label, /under-sampled/);
  close(p.volume.data, e.data, 1e-5, 'image');
  close(p.volume.kspace!.mask, e.mask!, 0, 'mask');
  close(p.volume.kspace!.re, e.re!, 1e-5, 'k-space re');
  close(p.volume.kspace!.im, e.im!, 1e-5, 'k-space im');
  for (let i = 0; i < e.mask!.length; i++)
    if (!e.mask![i]) assert.ok(Object.is(p.volume.kspace!.re[i], 0), 'masked entries are +0');
});

test('fastMRI multi-coil: RSS image, no k-space', () => {
  const e = EXP['fastmri_multicoil.h5'];
  const vols = readHdf5(join(dir, 'fastmri_multicoil.h5'));
  assert.deepEqual([vols[0].volume.slices, vols[0].volume.h, vols[0].volume.w], e.shape);
  close(vols[0].volume.data, e.data, 1e-5, 'RSS');
  assert.equal(vols[0].volume.kspace, undefined);
  assert.match(vols[0].label, /3 coils/);
  close(vols.find((v) => /rss/.test(v.label))!.volume.data, e.rss!.data, 0, 'reconstruction_rss');
});

test('KD-MRI layout: volfs H×W×S → S×H×W, kspace_volus_4x unshifted with its acquired mask; knee 2-D slice', () => {
  const e = EXP['kdmri_volume.h5'];
  const [v] = readHdf5(join(dir, 'kdmri_volume.h5'));
  assert.deepEqual([v.volume.slices, v.volume.h, v.volume.w], e.shape);
  close(v.volume.data, e.data, 1e-6, 'volfs');
  close(v.volume.kspace!.re, e.re!, 1e-6, 're');
  close(v.volume.kspace!.im, e.im!, 1e-6, 'im');
  close(v.volume.kspace!.mask, e.mask!, 0, 'mask');
  // the zero-filled image from the file's own k-space equals the file's img_volus_4x (numpy)
  const n = v.volume.h * v.volume.w;
  const zf: number[] = [];
  for (let s = 0; s < v.volume.slices; s++) {
    const x = ifft2({
      re: Float64Array.from(v.volume.kspace!.re.subarray(s * n, (s + 1) * n)),
      im: Float64Array.from(v.volume.kspace!.im.subarray(s * n, (s + 1) * n)),
      h: v.volume.h,
      w: v.volume.w,
    });
    x.re.forEach((r, i) => zf.push(Math.hypot(r, x.im[i])));
  }
  close(zf, e.zf!, 1e-5, 'zero-filled');
  const knee = EXP['kdmri_knee_slice.h5'];
  const [k] = readHdf5(join(dir, 'kdmri_knee_slice.h5'));
  assert.deepEqual([k.volume.slices, k.volume.h, k.volume.w], knee.shape);
  close(k.volume.data, knee.data, 1e-6, 'knee volfs');
});

test('HDF5 import keeps the acquired k-space; datasets from it and the engine data source read it', async () => {
  const db = openDatabase(':memory:');
  const res = await importPaths(db, [join(dir, 'fastmri_singlecoil.h5'), join(dir, 'kdmri_volume.h5')]);
  assert.equal(res.filter((r) => r.status === 'imported').length, 3, JSON.stringify(res)); // k-space + esc target + KD-MRI
  const kd = res.find((r) => /KD-MRI 4x/.test(r.message))!;
  const v = loadSeriesVolume(db, kd.seriesUid!);
  const e = EXP['kdmri_volume.h5'];
  close(v.kspace!.re, e.re!, 1e-6, 'stored k-space');
  close(v.kspace!.mask, e.mask!, 0, 'stored mask');
  const ds = createDatasetFromSeries(db, kd.seriesUid!);
  const vols = loadSeriesSource(db, ds.source)!;
  assert.ok(vols[0].kspace);
  // kdmri distill --data file.h5: the engine's reader (registered by the studies module)
  const split = loadDataSplit(join(dir, 'fastmri_singlecoil.h5'));
  assert.equal(split.train[0].h, 8);
  assert.ok(split.train[0].kspace, 'acquired k-space reaches the engine');
  assert.equal(split.train[0].slices + split.val[0].slices, 2);
  db.close();
});

test('a non-KD-MRI, non-fastMRI or corrupt HDF5 file fails with a reason', async () => {
  const db = openDatabase(':memory:');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const t = mkdtempSync(join(tmpdir(), 'kdmri-h5-'));
  writeFileSync(join(t, 'junk.h5'), 'not hdf5');
  const [r] = await importPaths(db, [join(t, 'junk.h5')]);
  assert.equal(r.status, 'failed');
  // the reader names the file (convert and the engine have no other place for it)
  assert.match(r.message, /^HDF5: junk\.h5: not a readable HDF5 file/);
  db.close();
});
