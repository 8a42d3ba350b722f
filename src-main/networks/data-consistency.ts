/**
 * The data-consistency op (method spec §1.2): out = Re(F⁻¹(K_dc)) with K = F(x) orthonormal, unshifted,
 * hard  K_dc = M⊙k0 + (1−M)⊙K   (lambda null, the reference code), or
 * soft  K_dc = (1−M)⊙K + M⊙(K + λ·k0)/(1+λ)   (Schlemper's noisy DC).
 *
 * Runs the KdmriDataConsistency kernel (src-main/compute/kernels/data-consistency.ts: float64 FFT maths,
 * exact gradient w.r.t. x and k0), so it works and is differentiable on the wasm, cpu and webgpu backends.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DC_KERNEL, registerKdmriKernels } from '../compute/kernels/index.js';

/**
 * x [B,H,W,1] real image, k0re/k0im [B,H,W] acquired k-space (already masked), mask [H,W] (1 = sampled),
 * lambda: null for hard replacement, a positive number for soft DC. Returns [B,H,W,1] float32.
 */
export function dataConsistency(
  x: tf.Tensor4D,
  k0re: tf.Tensor3D,
  k0im: tf.Tensor3D,
  mask: tf.Tensor2D,
  lambda: number | null,
): tf.Tensor4D {
  registerKdmriKernels();
  const [b, h, w, c] = x.shape;
  const want = `x [B,H,W,1], k0re/k0im [B,H,W], mask [H,W]`;
  if (c !== 1) throw new Error(`dataConsistency: x must have 1 channel, got shape [${x.shape}] (${want})`);
  for (const [name, t] of [
    ['k0re', k0re],
    ['k0im', k0im],
  ] as const) {
    if (t.rank !== 3 || t.shape[0] !== b || t.shape[1] !== h || t.shape[2] !== w) {
      throw new Error(`dataConsistency: ${name} has shape [${t.shape}], expected [${b},${h},${w}] (${want})`);
    }
  }
  if (mask.rank !== 2 || mask.shape[0] !== h || mask.shape[1] !== w) {
    throw new Error(`dataConsistency: mask has shape [${mask.shape}], expected [${h},${w}] (${want})`);
  }
  if (lambda !== null && !(Number.isFinite(lambda) && lambda > 0)) {
    throw new Error(`dataConsistency: lambda must be null (hard DC) or a positive number, got ${lambda}`);
  }
  const f32 = (t: tf.Tensor) => (t.dtype === 'float32' ? t : tf.cast(t, 'float32'));
  return tf
    .engine()
    .runKernel(
      DC_KERNEL,
      { x: f32(x), k0re: f32(k0re), k0im: f32(k0im), mask: f32(mask) },
      { lambda: lambda ?? -1 },
    ) as tf.Tensor4D;
}
