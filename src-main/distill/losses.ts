/**
 * The KD-MRI losses (method spec §2–§3). Tensors are NHWC: images [B,H,W,1], activations [B,H,W,C].
 *
 * Training losses are all L1 (mean absolute error); validation / model-selection metrics are MSE, as in
 * the reference code.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DistillConfig } from '../contract/domain.js';

/** Mean absolute error over every element. */
export function l1(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))) as tf.Scalar);
}

/** Mean squared error over every element. */
export function mse(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(a, b)) as tf.Scalar);
}

/** F.normalize's eps: the norm is clamped from below so all-zero vectors stay zero. */
const NORM_EPS = 1e-12;

/**
 * Σ_c a_c² (p = 2) of an activation [B,H,W,C]: the un-normalised attention map, [B,H,W]. The networks
 * compute it inside their conv stacks (networks/conv.ts convStackWithEnergy); this is the reference.
 */
export function attentionEnergy(activation: tf.Tensor4D): tf.Tensor3D {
  return tf.tidy(() => tf.sum(tf.square(activation), 3) as tf.Tensor3D);
}

/**
 * Normalise un-normalised attention maps [B,H,W] (attentionEnergy).
 *
 * 'batch' reproduces the reference code's `F.normalize(A, p=2, dim=0)`: at every pixel the vector of B
 * values is divided by its L2 norm, so the loss depends on which samples share a batch and is ≈ 0 for
 * B = 1. 'spatial' is Zagoruyko & Komodakis' per-sample normalisation (each flattened map divided by
 * its L2 norm).
 */
export function normaliseAttention(a: tf.Tensor3D, norm: DistillConfig['atNorm']): tf.Tensor3D {
  return tf.tidy(() => {
    const axis = norm === 'batch' ? 0 : [1, 2];
    const n = tf.maximum(tf.sqrt(tf.sum(tf.square(a), axis, true)), NORM_EPS);
    return tf.div(a, n) as tf.Tensor3D;
  });
}

/** Attention map of one activation: attentionEnergy, then normalised. */
export function attentionMap(activation: tf.Tensor4D, norm: DistillConfig['atNorm']): tf.Tensor3D {
  return tf.tidy(() => normaliseAttention(attentionEnergy(activation), norm));
}

/**
 * Attention-transfer loss: the average over paired layers (one per cascade for the DC-CNN) of the
 * distance between teacher and student attention maps. Training uses L1 (`metric = 'l1'`); step-2
 * validation in the recon code uses MSE, in the SR code L1. Both sides are given as un-normalised
 * maps (attentionEnergy of the activations, as the networks return them in `attention`): the
 * teacher's do not depend on the batch and can therefore be computed once per slice and cached
 * (distill/teacher-cache.ts); the batch-wise normalisation is applied here.
 */
export function attentionLoss(
  teacherEnergy: tf.Tensor3D[],
  studentEnergy: tf.Tensor3D[],
  norm: DistillConfig['atNorm'],
  metric: 'l1' | 'mse' = 'l1',
): tf.Scalar {
  if (teacherEnergy.length !== studentEnergy.length || teacherEnergy.length === 0) {
    throw new Error(
      `attention transfer needs the same number of paired layers: teacher ${teacherEnergy.length}, student ${studentEnergy.length}`,
    );
  }
  return tf.tidy(() => {
    const dist = metric === 'l1' ? l1 : mse;
    const terms = teacherEnergy.map((t, i) =>
      dist(normaliseAttention(t, norm), normaliseAttention(studentEnergy[i], norm)),
    );
    return tf.div(tf.addN(terms), terms.length) as tf.Scalar;
  });
}

/**
 * Step-3 (KD) loss for the student output S, target X and teacher output T (spec §3.2, §9):
 *  - 'off':   L1(S, X)                         (recon shell script: no --imitation_required)
 *  - 'numel': L1(S, X) + L1(S, T) / numel(T)   (recon code with --imitation_required)
 *  - 'unit':  L1(S, X) + L1(S, T)              (SR code)
 *  - 'alpha': α·L1(S, X) + (1 − α)·L1(S, T)    (the paper's Algorithm 1)
 */
export function kdLoss(
  student: tf.Tensor4D,
  target: tf.Tensor4D,
  teacher: tf.Tensor4D,
  mode: DistillConfig['imitation'],
  alpha: number,
): tf.Scalar {
  return tf.tidy(() => {
    const rec = l1(student, target);
    if (mode === 'off') return rec;
    const imit = l1(student, teacher);
    switch (mode) {
      case 'numel':
        return tf.add(rec, tf.div(imit, teacher.size)) as tf.Scalar;
      case 'unit':
        return tf.add(rec, imit) as tf.Scalar;
      case 'alpha':
        return tf.add(tf.mul(rec, alpha), tf.mul(imit, 1 - alpha)) as tf.Scalar;
    }
  });
}

/** StepLR as PyTorch steps it at the start of each epoch: lr0 · γ^⌊epoch / step⌋ (epoch is 0-based). */
export function stepLr(epoch: number, lr0: number, step: number, gamma: number): number {
  return lr0 * Math.pow(gamma, Math.floor(epoch / step));
}
