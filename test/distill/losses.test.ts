import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  attentionEnergy,
  attentionLoss,
  attentionMap,
  kdLoss,
  l1,
  mse,
  stepLr,
} from '../../src-main/distill/losses.js';

await tf.setBackend('cpu');

const close = (a: number, b: number, tol = 1e-6) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('attention map sums squared channels and normalises across the batch (F.normalize dim=0)', () => {
  // B=2, H=1, W=2, C=2
  const a = tf.tensor4d([1, 2, 0, 3, 2, 2, 4, 0], [2, 1, 2, 2]);
  const m = attentionMap(a, 'batch').arraySync() as number[][][];
  // raw maps: sample0 = [1+4, 0+9] = [5, 9]; sample1 = [4+4, 16+0] = [8, 16]
  const n0 = Math.hypot(5, 8);
  const n1 = Math.hypot(9, 16);
  close(m[0][0][0], 5 / n0);
  close(m[1][0][0], 8 / n0);
  close(m[0][0][1], 9 / n1);
  close(m[1][0][1], 16 / n1);
});

test('with batch normalisation a single-sample batch gives maps of ones and a zero loss (the reference quirk)', () => {
  const t = tf.randomUniform([1, 4, 4, 3], 0.1, 1, 'float32', 1) as tf.Tensor4D;
  const s = tf.randomUniform([1, 4, 4, 3], 0.1, 1, 'float32', 2) as tf.Tensor4D;
  const m = attentionMap(t, 'batch').dataSync();
  for (const v of m) close(v, 1);
  close(attentionLoss([attentionEnergy(t)], [attentionEnergy(s)], 'batch').dataSync()[0], 0);
});

test('spatial normalisation gives every sample a unit-norm map', () => {
  const a = tf.randomUniform([3, 5, 4, 2], 0, 1, 'float32', 3) as tf.Tensor4D;
  const m = attentionMap(a, 'spatial');
  const norms = tf.sqrt(tf.sum(tf.square(m), [1, 2])).dataSync();
  for (const n of norms) close(n, 1, 1e-5);
});

test('attention loss averages the per-layer L1 distances, and MSE for validation', () => {
  const mk = (seed: number) => tf.randomUniform([2, 3, 3, 2], 0, 1, 'float32', seed) as tf.Tensor4D;
  const t = [mk(1), mk(2)];
  const s = [mk(3), mk(4)];
  const per = t.map((x, i) => l1(attentionMap(x, 'batch'), attentionMap(s[i], 'batch')).dataSync()[0]);
  close(
    attentionLoss(t.map(attentionEnergy), s.map(attentionEnergy), 'batch').dataSync()[0],
    (per[0] + per[1]) / 2,
  );
  const perMse = t.map((x, i) => mse(attentionMap(x, 'batch'), attentionMap(s[i], 'batch')).dataSync()[0]);
  close(
    attentionLoss(t.map(attentionEnergy), s.map(attentionEnergy), 'batch', 'mse').dataSync()[0],
    (perMse[0] + perMse[1]) / 2,
  );
  assert.throws(
    () => attentionLoss(t.map(attentionEnergy), [attentionEnergy(s[0])], 'batch'),
    /same number of paired layers/,
  );
});

test('kd loss modes: off, numel (reference code), unit (SR code), alpha (paper)', () => {
  const S = tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1]);
  const X = tf.tensor4d([1, 1, 1, 1], [1, 2, 2, 1]);
  const T = tf.tensor4d([0, 0, 0, 0], [1, 2, 2, 1]);
  const rec = (1 + 0 + 1 + 2) / 4; // L1(S, X)
  const imit = (0 + 1 + 2 + 3) / 4; // L1(S, T)
  close(kdLoss(S, X, T, 'off', 0.5).dataSync()[0], rec);
  close(kdLoss(S, X, T, 'numel', 0.5).dataSync()[0], rec + imit / 4);
  close(kdLoss(S, X, T, 'unit', 0.5).dataSync()[0], rec + imit);
  close(kdLoss(S, X, T, 'alpha', 0.3).dataSync()[0], 0.3 * rec + 0.7 * imit);
});

test('StepLR(40, 0.1) from 1e-3 over 150 epochs, as the reference schedule', () => {
  close(stepLr(0, 1e-3, 40, 0.1), 1e-3);
  close(stepLr(39, 1e-3, 40, 0.1), 1e-3);
  close(stepLr(40, 1e-3, 40, 0.1), 1e-4);
  close(stepLr(80, 1e-3, 40, 0.1), 1e-5);
  close(stepLr(149, 1e-3, 40, 0.1), 1e-6);
});
