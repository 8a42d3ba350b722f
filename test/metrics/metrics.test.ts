/** Metrics against scikit-image (fixtures made by scripts/fixtures/make_reference_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  nmse,
  perSliceMetrics,
  psnr,
  ssimVolume,
  summarize,
  volumeMetrics,
} from '../../src-main/metrics/index.js';
import type { Volume } from '../../src-main/contract/domain.js';

interface Case {
  name: string;
  shape: [number, number, number];
  gt: number[];
  pred: number[];
  psnr: number;
  ssim: number;
  ssim_per_slice: number[];
  nmse: number;
}
const ref = JSON.parse(
  readFileSync(new URL('../fixtures/metrics/reference.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

const vol = (data: number[], [s, h, w]: number[]): Volume => ({
  data: Float32Array.from(data),
  slices: s,
  h,
  w,
});

for (const c of ref.cases) {
  test(`PSNR, SSIM and NMSE match scikit-image on real brain slices: ${c.name} ${c.shape.join('×')}`, () => {
    const gt = vol(c.gt, c.shape);
    const pred = vol(c.pred, c.shape);
    const m = volumeMetrics(gt, pred);
    assert.ok(Math.abs(m.psnr - c.psnr) / c.psnr < 1e-4, `psnr ${m.psnr} vs ${c.psnr}`);
    assert.ok(Math.abs(m.ssim - c.ssim) < 1e-4, `ssim ${m.ssim} vs ${c.ssim}`);
    assert.ok(Math.abs(m.nmse - c.nmse) < 1e-4, `nmse ${m.nmse} vs ${c.nmse}`);
    perSliceMetrics(gt, pred).forEach((s, i) => assert.ok(Math.abs(s.ssim - c.ssim_per_slice[i]) < 1e-4));
  });
}

test('identical volumes: SSIM 1, NMSE 0, PSNR infinite', () => {
  const v = vol(
    [...Array(2 * 9 * 9)].map((_, i) => (i * 37) % 11),
    [2, 9, 9],
  );
  assert.equal(nmse(v.data, v.data), 0);
  assert.ok(Math.abs(ssimVolume(v, v) - 1) < 1e-12);
  assert.equal(psnr(v.data, v.data), Infinity);
});

test('mismatched shapes and too-small images are refused with the shapes named', () => {
  assert.throws(
    () => volumeMetrics(vol([1, 2, 3, 4], [1, 2, 2]), vol([1, 2, 3, 4], [1, 4, 1])),
    /1×2×2 but prediction is 1×4×1/,
  );
  assert.throws(() => ssimVolume(vol([1, 2, 3, 4], [1, 2, 2]), vol([1, 2, 3, 4], [1, 2, 2])), /at least 7×7/);
});

test('summary is mean ± 2·sample std', () => {
  const s = summarize([1, 2, 3, 4]);
  assert.equal(s.mean, 2.5);
  assert.ok(Math.abs(s.twoStd - 2 * Math.sqrt(5 / 3)) < 1e-12);
  assert.deepEqual(summarize([7]), { mean: 7, twoStd: NaN, n: 1 });
});
