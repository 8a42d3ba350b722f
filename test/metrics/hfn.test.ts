/** HFN against scikit-image's laplace (fixture made by scripts/fixtures/make_hfn_fixtures.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hfn, hfnSlice } from '../../src-main/metrics/index.js';

const ref = JSON.parse(readFileSync(new URL('../fixtures/metrics/hfn.json', import.meta.url), 'utf8')) as {
  shape: [number, number, number];
  gt: number[];
  pred: number[];
  hfn: number;
  hfn_per_slice: number[];
  hfn_no_border_zero: number;
};
const [s, h, w] = ref.shape;
const gt = { data: Float32Array.from(ref.gt), slices: s, h, w };
const pred = { data: Float32Array.from(ref.pred), slices: s, h, w };

test('HFN matches skimage laplace on real brain slices (0.14 border zeroing, and without)', () => {
  assert.ok(Math.abs(hfn(gt, pred) - ref.hfn) < 1e-4, `${hfn(gt, pred)} vs ${ref.hfn}`);
  assert.ok(Math.abs(hfn(gt, pred, false) - ref.hfn_no_border_zero) < 1e-4);
  ref.hfn_per_slice.forEach((v, z) => {
    const a = gt.data.subarray(z * h * w, (z + 1) * h * w);
    const b = pred.data.subarray(z * h * w, (z + 1) * h * w);
    assert.ok(Math.abs(hfnSlice(a, b, h, w) - v) < 1e-4);
  });
});

test('HFN is 0 for a prediction equal to a [0, 1] target, and shapes must match', () => {
  assert.equal(hfn(gt, gt), 0);
  assert.throws(() => hfn(gt, { ...pred, h: w, w: h }), /30×26 but prediction is 3×26×30/);
});
