import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// the union package's gradient functions, as the app registers them (compute/kernels/index.ts)
import '../../src-main/compute/kernels/index.js';
import {
  attentionEnergy,
  attentionLoss,
  attentionMap,
  kdLoss,
  l1,
  mse,
  normaliseAttention,
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

/** The loss as the chain of tfjs ops it replaced: normalise each side, then L1 or MSE, averaged over layers. */
function chainLoss(t: tf.Tensor3D[], s: tf.Tensor3D[], norm: 'batch' | 'spatial', metric: 'l1' | 'mse') {
  const dist = metric === 'l1' ? l1 : mse;
  return tf.div(
    tf.addN(t.map((x, i) => dist(normaliseAttention(x, norm), normaliseAttention(s[i], norm)))),
    t.length,
  ) as tf.Scalar;
}

test('attention loss and its gradient equal the tfjs op chain (autodiff), every normalisation and metric', () => {
  const maps = (seed: number) =>
    [0, 1, 2].map((i) => tf.randomUniform([4, 6, 5], 0, 3, 'float32', seed + i) as tf.Tensor3D);
  const t = maps(1);
  const s = maps(20);
  for (const norm of ['batch', 'spatial'] as const) {
    for (const metric of ['l1', 'mse'] as const) {
      const fused = tf.grads((...xs: tf.Tensor[]) => attentionLoss(t, xs as tf.Tensor3D[], norm, metric));
      const chain = tf.grads((...xs: tf.Tensor[]) => chainLoss(t, xs as tf.Tensor3D[], norm, metric));
      close(
        attentionLoss(t, s, norm, metric).dataSync()[0],
        chainLoss(t, s, norm, metric).dataSync()[0],
        1e-6,
      );
      const a = fused(s).map((g) => g.dataSync());
      const b = chain(s).map((g) => g.dataSync());
      const scale = Math.max(...b.flatMap((g) => [...g].map(Math.abs)));
      a.forEach((g, k) =>
        g.forEach((v, i) =>
          assert.ok(
            Math.abs(v - b[k][i]) <= 1e-5 * scale,
            `${norm}/${metric} layer ${k} element ${i}: ${v} vs ${b[k][i]}`,
          ),
        ),
      );
    }
  }
});

test('attention loss gradient scales with the upstream gradient and stays finite where a map vector is all zero', () => {
  const t = [tf.randomUniform([2, 3, 3], 0, 1, 'float32', 5) as tf.Tensor3D];
  // pixel (0,0) is zero in both samples: its batch vector has norm 0 (the op chain's sqrt gave NaN)
  const sv = tf.randomUniform([2, 3, 3], 0.1, 1, 'float32', 6).bufferSync();
  sv.set(0, 0, 0, 0);
  sv.set(0, 1, 0, 0);
  const s = [sv.toTensor() as tf.Tensor3D];
  const g1 = tf
    .grads((x: tf.Tensor) => attentionLoss(t, [x as tf.Tensor3D], 'batch'))([s[0]])[0]
    .dataSync();
  const g3 = tf
    .grads((x: tf.Tensor) => tf.mul(attentionLoss(t, [x as tf.Tensor3D], 'batch'), 3) as tf.Scalar)([s[0]])[0]
    .dataSync();
  for (let i = 0; i < g1.length; i++) {
    assert.ok(Number.isFinite(g1[i]), `element ${i} is ${g1[i]}`);
    close(g3[i], 3 * g1[i], 1e-6);
  }
  assert.throws(
    () => attentionLoss(t, [tf.zeros([2, 3, 4]) as tf.Tensor3D], 'batch'),
    /layer 1 maps differ in shape/,
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
