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
 *
 * One op with its own closed-form gradient, computed in float64 over the maps' values (the maps are
 * [B,H,W], a 32nd of an activation): as a chain of tfjs ops (normaliseAttention, then l1 or mse,
 * per layer) it was ~15 single-threaded kernels per layer, forward and backward, 50 ms per step at
 * 4×256×256 × 5 layers on wasm. The chain remains the reference in the tests. With q = E / max(‖E‖, ε)
 * and g = ∂L/∂q: ∂L/∂E = g / ‖E‖ − E·⟨g, E⟩ / ‖E‖³ where ‖E‖ ≥ ε, and g / ε below it (ε constant),
 * as PyTorch's F.normalize; the op chain gave NaN there when ‖E‖ = 0 (sqrt's gradient at 0).
 * ∂|d|/∂d at d = 0 is taken as tfjs' abs gradient takes it (−1).
 */
export function attentionLoss(
  teacherEnergy: tf.Tensor3D[],
  studentEnergy: tf.Tensor3D[],
  norm: DistillConfig['atNorm'],
  metric: 'l1' | 'mse' = 'l1',
): tf.Scalar {
  const K = teacherEnergy.length;
  if (K !== studentEnergy.length || K === 0) {
    throw new Error(
      `attention transfer needs the same number of paired layers: teacher ${K}, student ${studentEnergy.length}`,
    );
  }
  teacherEnergy.forEach((t, k) => {
    const s = studentEnergy[k];
    if (t.rank !== 3 || !t.shape.every((v, i) => v === s.shape[i])) {
      throw new Error(
        `attention transfer: layer ${k + 1} maps differ in shape, teacher [${t.shape}], student [${s.shape}]`,
      );
    }
  });
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const students = args.slice(0, K) as tf.Tensor3D[];
    let loss = 0;
    const grads = students.map((s, k) => {
      const [B, H, W] = s.shape;
      const layer = layerLoss(
        teacherEnergy[k].dataSync() as Float32Array,
        s.dataSync() as Float32Array,
        B,
        H * W,
        norm,
        metric,
        1 / K,
      );
      loss += layer.loss;
      return layer.grad;
    });
    return {
      value: tf.scalar(loss / K),
      gradFunc: (dy: tf.Tensor) => {
        const scale = dy.dataSync()[0];
        return grads.map((g, k) => {
          if (scale !== 1) for (let i = 0; i < g.length; i++) g[i] *= scale;
          return tf.tensor3d(g, students[k].shape);
        });
      },
    };
  });
  return op(...studentEnergy) as tf.Scalar;
}

/**
 * One layer's distance between normalised maps t, s [B][HW] (float64 sums), and its gradient with
 * respect to s's un-normalised values. Vectors are the B values at each pixel ('batch') or each map
 * ('spatial'); the gradient is of gradScale × the distance. With q = s / max(‖s‖, ε) and g = ∂L/∂q: ∂L/∂s = g/‖s‖ − s·⟨g, s⟩/‖s‖³ where ‖s‖ ≥ ε,
 * g/ε below it.
 */
function layerLoss(
  t: Float32Array,
  s: Float32Array,
  B: number,
  HW: number,
  norm: DistillConfig['atNorm'],
  metric: 'l1' | 'mse',
  gradScale: number,
): { loss: number; grad: Float32Array } {
  const N = s.length;
  const grad = new Float32Array(N);
  const l1Metric = metric === 'l1';
  let sum = 0;
  // g = ∂(gradScale · distance)/∂q_s of one element, d = q_t − q_s; mean over N elements
  const gUnit = gradScale / N;
  const gOf = (d: number) => (l1Metric ? (d > 0 ? -gUnit : gUnit) : -2 * d * gUnit);
  if (norm === 'batch') {
    const qs = new Float64Array(B);
    const gs = new Float64Array(B);
    for (let p = 0; p < HW; p++) {
      let ns = 0;
      let nt = 0;
      for (let b = 0, i = p; b < B; b++, i += HW) {
        ns += s[i] * s[i];
        nt += t[i] * t[i];
      }
      ns = Math.sqrt(ns);
      const is = 1 / Math.max(ns, NORM_EPS);
      const it = 1 / Math.max(Math.sqrt(nt), NORM_EPS);
      let dot = 0;
      for (let b = 0, i = p; b < B; b++, i += HW) {
        qs[b] = s[i] * is;
        const d = t[i] * it - qs[b];
        sum += l1Metric ? Math.abs(d) : d * d;
        gs[b] = gOf(d);
        dot += gs[b] * s[i];
      }
      const c = ns >= NORM_EPS ? dot * is * is * is : 0;
      for (let b = 0, i = p; b < B; b++, i += HW) grad[i] = gs[b] * is - c * s[i];
    }
  } else {
    const gs = new Float64Array(HW);
    for (let b = 0; b < B; b++) {
      const o = b * HW;
      let ns = 0;
      let nt = 0;
      for (let p = o; p < o + HW; p++) {
        ns += s[p] * s[p];
        nt += t[p] * t[p];
      }
      ns = Math.sqrt(ns);
      const is = 1 / Math.max(ns, NORM_EPS);
      const it = 1 / Math.max(Math.sqrt(nt), NORM_EPS);
      let dot = 0;
      for (let p = o; p < o + HW; p++) {
        const d = t[p] * it - s[p] * is;
        sum += l1Metric ? Math.abs(d) : d * d;
        gs[p - o] = gOf(d);
        dot += gs[p - o] * s[p];
      }
      const c = ns >= NORM_EPS ? dot * is * is * is : 0;
      for (let p = o; p < o + HW; p++) grad[p] = gs[p - o] * is - c * s[p];
    }
  }
  return { loss: sum / N, grad };
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
