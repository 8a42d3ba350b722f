/** FFT, undersampling and low-resolution degradation against numpy and analytic cases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fft1, fft2Real, halfWidth, ifft2, irfft2Half, rfft2Half } from '../../src-main/kspace/fft.js';
import { undersampleSlice, undersampleVolume } from '../../src-main/kspace/undersample.js';
import { lowResSlice } from '../../src-main/kspace/lowres.js';

const ref = JSON.parse(readFileSync(new URL('../fixtures/metrics/reference.json', import.meta.url), 'utf8'))
  .fft as {
  x: number[];
  h: number;
  w: number;
  re: number[];
  im: number[];
  x150: number[];
  re150: number[];
  im150: number[];
  zf: { gt: number[]; mask_rows: number[]; h: number; w: number; zf: number[] };
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('2-D orthonormal FFT equals numpy.fft.fft2(norm="ortho") on 10×12', () => {
  const k = fft2Real(ref.x, ref.h, ref.w);
  assert.ok(maxDiff(k.re, ref.re) < 1e-12 && maxDiff(k.im, ref.im) < 1e-12);
});

test('1-D FFT of a non-power-of-two length (150, Bluestein) equals numpy', () => {
  const re = Float64Array.from(ref.x150);
  const im = new Float64Array(150);
  fft1(re, im);
  assert.ok(maxDiff(re, ref.re150) < 1e-11 && maxDiff(im, ref.im150) < 1e-11);
});

test('Parseval holds and the inverse restores the image (640×368, the knee size)', () => {
  const x = Float64Array.from({ length: 640 * 368 }, (_, i) => Math.sin(i * 0.013) + ((i * 7) % 5));
  const k = fft2Real(x, 640, 368);
  let ex = 0;
  let ek = 0;
  for (let i = 0; i < x.length; i++) {
    ex += x[i] * x[i];
    ek += k.re[i] ** 2 + k.im[i] ** 2;
  }
  assert.ok(Math.abs(ex - ek) / ex < 1e-12);
  assert.ok(maxDiff(ifft2(k).re, x) < 1e-11);
});

test('zero-filled image equals numpy |ifft2(fft2(x)·M)| on a real brain slice', () => {
  const { gt, h, w, mask_rows, zf } = ref.zf;
  const plane = new Float32Array(h * w);
  for (const r of mask_rows) plane.fill(1, r * w, (r + 1) * w);
  const u = undersampleSlice(Float32Array.from(gt), h, w, plane);
  assert.ok(maxDiff(u.zf, zf) < 1e-5);
});

test('a fully sampled mask gives back the target', () => {
  const h = 24;
  const w = 20;
  const x = Float32Array.from({ length: h * w }, (_, i) => (i % 13) / 13);
  const u = undersampleSlice(x, h, w, new Float32Array(h * w).fill(1));
  assert.ok(maxDiff(u.zf, x) < 1e-6);
  const v = undersampleVolume({ data: x, slices: 1, h, w }, new Float32Array(h * w).fill(1));
  assert.ok(maxDiff(v.zf.data, x) < 1e-6);
});

test('masked k-space has +0, never −0, where lines are dropped', () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => -i);
  const u = undersampleSlice(x, 8, 8, new Float32Array(64));
  assert.ok([...u.kre, ...u.kim].every((v) => Object.is(v, 0)));
});

test('low-resolution degradation keeps the centred 64×64 of 256×256 k-space: a low-frequency image passes, a high one vanishes', () => {
  const n = 256;
  const lo = Float32Array.from({ length: n * n }, (_, i) => 1 + Math.cos((2 * Math.PI * 3 * (i % n)) / n));
  const hi = Float32Array.from({ length: n * n }, (_, i) => Math.cos((2 * Math.PI * 40 * (i % n)) / n));
  assert.ok(maxDiff(lowResSlice(lo, n, n, 0.25), lo) < 1e-5);
  assert.ok(maxDiff(lowResSlice(hi, n, n, 0.25), new Float32Array(n * n)) < 1e-5);
  // frequency 31 is inside rows/cols 96..159 of the shifted spectrum (centre 128 ± 32 − 1), 33 is not
  const f31 = Float32Array.from({ length: n * n }, (_, i) => Math.cos((2 * Math.PI * 31 * (i % n)) / n) + 2);
  const f33 = Float32Array.from({ length: n * n }, (_, i) => Math.cos((2 * Math.PI * 33 * (i % n)) / n) + 2);
  assert.ok(maxDiff(lowResSlice(f31, n, n, 0.25), f31) < 1e-5);
  assert.ok(maxDiff(lowResSlice(f33, n, n, 0.25), new Float32Array(n * n).fill(2)) < 1e-5);
});

test('half spectrum of a real image equals the complex 2-D FFT on c ≤ W/2, and its inverse is the image', () => {
  for (const [h, w] of [
    [8, 8],
    [6, 10],
    [5, 7],
    [12, 9],
  ]) {
    let seed = h * 31 + w;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
    const x = Float64Array.from({ length: h * w }, rnd);
    const k = fft2Real(x, h, w);
    const w2 = halfWidth(w);
    const re = new Float64Array(h * w2);
    const im = new Float64Array(h * w2);
    const row = new Float64Array(2 * w);
    rfft2Half(x, 0, h, w, re, im, row);
    for (let r = 0; r < h; r++)
      for (let c = 0; c < w2; c++) {
        assert.ok(Math.abs(re[r * w2 + c] - k.re[r * w + c]) < 1e-12, `re ${h}×${w} (${r},${c})`);
        assert.ok(Math.abs(im[r * w2 + c] - k.im[r * w + c]) < 1e-12, `im ${h}×${w} (${r},${c})`);
      }
    const out = new Float64Array(h * w);
    irfft2Half(re, im, h, w, out, 0, row);
    for (let i = 0; i < h * w; i++) assert.ok(Math.abs(out[i] - x[i]) < 1e-12, `inverse ${h}×${w} at ${i}`);
  }
});
