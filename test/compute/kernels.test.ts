/**
 * The KD-MRI kernels against independent references:
 *  - wasm Conv2DBackpropFilter / Conv2DBackpropInput (and tf.grad through tf.conv2d, tf.fused.conv2d and
 *    the networks' conv stacks on wasm, by our WebAssembly filter-gradient kernel and by the forward-conv
 *    form it replaces) against the tfjs cpu backend's own gradients;
 *  - KdmriDataConsistency forward against a float64 reference built directly on fft.ts, its gradient
 *    against central finite differences and against the same op written with explicit DFT matrices in
 *    tfjs (autodiff through matMul) on cpu; a fully sampled mask returns the target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { matrixDcKernels, registerKdmriKernels } from '../../src-main/compute/kernels/index.js';
import {
  KDMRI_FILTER_BIAS_GRAD,
  KDMRI_RELU_CONV_GRADS,
  useFilterGradKernel,
  useThinGradKernels,
  useThinReluOnePass,
} from '../../src-main/compute/kernels/conv-backprop.js';
import { dataConsistency } from '../../src-main/networks/data-consistency.js';
import { conv3x3 } from '../../src-main/networks/conv.js';
import { fft2, fft2Real, ifft2 } from '../../src-main/kspace/fft.js';
import { Rng } from '../../src-main/util/random.js';

registerKdmriKernels();

function randArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.uniform(lo, hi);
  return a;
}

/** ‖a − b‖ / ‖b‖ */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function onBackend<T>(name: string, f: () => T): Promise<T> {
  await tf.setBackend(name);
  await tf.ready();
  return f();
}

type ConvCase = [b: number, h: number, w: number, cin: number, cout: number];
const CASES: ConvCase[] = [
  [4, 16, 24, 1, 32],
  [4, 12, 16, 32, 32],
  // Winograd with partial edge tiles (13 = 3·4 + 1, 10 = 2·4 + 2)
  [2, 13, 10, 32, 32],
  [4, 24, 16, 32, 1],
  [1, 12, 10, 3, 5],
  [3, 9, 11, 8, 16],
  // (2+1)·66·98 = 19404 padded grid points: the filter gradient's GEMM runs in two chunks, the last partial
  [2, 64, 96, 8, 12],
];

/** x, W, b and the output gradient g of a case, the same values (fixed seeds) on every backend. */
function convInputs(c: ConvCase, pad: 'same' | 'valid') {
  const [b, h, w, cin, cout] = c;
  const x = tf.tensor4d(randArray(b * h * w * cin, 1), [b, h, w, cin]);
  const f = tf.tensor4d(randArray(9 * cin * cout, 2, -0.3, 0.3), [3, 3, cin, cout]);
  const bias = tf.tensor1d(randArray(cout, 3, -0.1, 0.1));
  const oh = pad === 'same' ? h : h - 2;
  const ow = pad === 'same' ? w : w - 2;
  const g = tf.tensor4d(randArray(b * oh * ow * cout, 4), [b, oh, ow, cout]);
  return { x, f, bias, g };
}

/** dx, dW (and db when fused) of sum(conv(x, W) ⊙ g) on the current backend, as plain arrays. */
function convGrads(c: ConvCase, fused: boolean | 'kdmri', pad: 'same' | 'valid'): Float32Array[] {
  const { x, f, bias, g } = convInputs(c, pad);
  const grads = tf.grads((xx: tf.Tensor, ff: tf.Tensor, bb: tf.Tensor) => {
    const y =
      fused === 'kdmri'
        ? conv3x3(xx as tf.Tensor4D, ff as tf.Tensor4D, bb as tf.Tensor1D, true)
        : fused
          ? tf.fused.conv2d({
              x: xx as tf.Tensor4D,
              filter: ff as tf.Tensor4D,
              bias: bb,
              strides: 1,
              pad,
              activation: 'relu',
            })
          : tf.add(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 1, pad), bb);
    return tf.sum(tf.mul(y, g));
  })([x, f, bias]);
  const out = grads.map((t) => t.dataSync() as Float32Array);
  tf.dispose([x, f, bias, g, ...grads]);
  return out;
}

for (const fused of [false, true, 'kdmri'] as const) {
  const what =
    fused === 'kdmri'
      ? 'the networks’ conv3x3 (bias+relu; dW and db from one kernel on wasm)'
      : fused
        ? 'tf.fused.conv2d (bias+relu)'
        : 'tf.conv2d';
  for (const c of CASES) {
    test(`tf.grad through ${what} on wasm matches cpu: [${c}]`, async () => {
      const ref = await onBackend('cpu', () => convGrads(c, fused, 'same'));
      const got = await onBackend('wasm', () => convGrads(c, fused, 'same'));
      for (const [i, what] of ['dx', 'dW', 'db'].entries()) {
        const e = relErr(got[i], ref[i]);
        assert.ok(e < 1e-4, `${what} relative error ${e}`);
      }
    });
  }
}

for (const c of [
  [2, 12, 14, 4, 6],
  [2, 12, 14, 1, 6],
  [2, 12, 14, 5, 1],
  [2, 10, 12, 8, 9],
  // C % 4 = 0 and O % 8 = 0: our WebAssembly filter-gradient kernel, on a 'valid' grid
  [2, 10, 12, 8, 16],
] as ConvCase[]) {
  test(`wasm conv gradients with valid padding match cpu: [${c}]`, async () => {
    const ref = await onBackend('cpu', () => convGrads(c, false, 'valid'));
    const got = await onBackend('wasm', () => convGrads(c, false, 'valid'));
    for (let i = 0; i < 3; i++)
      assert.ok(relErr(got[i], ref[i]) < 1e-4, `gradient ${i}: ${relErr(got[i], ref[i])}`);
  });
}

for (const c of [
  [4, 12, 16, 32, 32],
  [4, 24, 16, 32, 1],
  [2, 12, 14, 5, 1],
] as ConvCase[]) {
  test(`wasm filter gradient by the forward-conv form (no reachable wasm memory) matches cpu: [${c}]`, async () => {
    const ref = await onBackend('cpu', () => convGrads(c, 'kdmri', 'same'));
    useFilterGradKernel(false);
    try {
      const got = await onBackend('wasm', () => convGrads(c, 'kdmri', 'same'));
      for (const [i, what] of ['dx', 'dW', 'db'].entries()) {
        const e = relErr(got[i], ref[i]);
        assert.ok(e < 1e-4, `${what} relative error ${e}`);
      }
    } finally {
      useFilterGradKernel(true);
    }
  });
}

for (const [b, h, w, cin, cout, pad, act, withBias] of [
  [2, 13, 10, 1, 32, 'same', 'relu', true],
  [2, 13, 10, 1, 16, 'valid', 'linear', false],
  [3, 9, 14, 32, 1, 'same', 'relu', true],
  [1, 7, 11, 8, 1, 'valid', 'linear', true],
  [1, 6, 5, 4, 1, 'same', 'linear', false],
] as const) {
  test(`wasm FusedConv2D of a thin layer (our kernel) matches cpu: [${b},${h},${w},${cin},${cout}] ${pad} ${act}${withBias ? ' +bias' : ''}`, async () => {
    const run = () => {
      const x = tf.tensor4d(randArray(b * h * w * cin, 11), [b, h, w, cin]);
      const f = tf.tensor4d(randArray(9 * cin * cout, 12, -0.3, 0.3), [3, 3, cin, cout]);
      const bias = withBias ? tf.tensor1d(randArray(cout, 13, -0.2, 0.2)) : undefined;
      const y = tf.fused.conv2d({ x, filter: f, bias, strides: 1, pad, activation: act });
      const out = y.dataSync() as Float32Array;
      tf.dispose([x, f, y, ...(bias ? [bias] : [])]);
      return out;
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    assert.ok(relErr(got, ref) < 1e-5, `relative error ${relErr(got, ref)}`);
  });
}

/**
 * The thin layers' gradient kernels on the current backend: [dx, dW, db] of y = relu(conv(x, W) + b)
 * by KDMRI_RELU_CONV_GRADS (relu) or [dW, db] of conv(x, W) + b by KDMRI_FILTER_BIAS_GRAD, for the
 * gradient g at y, with convGrads' inputs (same seeds), so the cpu autodiff of convGrads is the reference.
 */
function thinKernelGrads(c: ConvCase, relu: boolean, pad: 'same' | 'valid'): Float32Array[] {
  const [, , , cin, cout] = c;
  const { x, f, bias, g } = convInputs(c, pad);
  const attrs = {
    strides: [1, 1],
    pad,
    dataFormat: 'NHWC',
    filterShape: [3, 3, cin, cout],
    inputShape: x.shape,
  };
  const y = tf.fused.conv2d({ x, filter: f, bias, strides: 1, pad, activation: 'relu' });
  const out = relu
    ? (tf
        .engine()
        .runKernel(KDMRI_RELU_CONV_GRADS, { x, dy: g, filter: f, y }, attrs as never) as tf.Tensor[])
    : (tf.engine().runKernel(KDMRI_FILTER_BIAS_GRAD, { x, dy: g }, attrs as never) as tf.Tensor[]);
  const vals = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose([x, f, bias, g, y, ...out]);
  return vals;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

for (const [c, pad] of [
  [[3, 13, 10, 1, 32], 'same'],
  [[2, 9, 7, 1, 8], 'same'],
  [[2, 1, 5, 1, 16], 'same'],
  [[2, 11, 9, 1, 16], 'valid'],
  [[1, 6, 5, 1, 12], 'valid'],
] as [ConvCase, 'same' | 'valid'][]) {
  test(`wasm 1→O ReLU layer gradients by the thin kernels (dy masked on the fly) match cpu, the same bits as g formed by Step and Multiply: [${c}] ${pad}`, async () => {
    const ref = await onBackend('cpu', () => convGrads(c, true, pad));
    const got = await onBackend('wasm', () => thinKernelGrads(c, true, pad));
    for (const [i, what] of ['dx', 'dW', 'db'].entries()) {
      const e = relErr(got[i], ref[i]);
      assert.ok(e < 1e-5, `${what} relative error ${e}`);
    }
    try {
      useThinReluOnePass(false);
      const twoPass = await onBackend('wasm', () => thinKernelGrads(c, true, pad));
      useThinGradKernels(false);
      const old = await onBackend('wasm', () => thinKernelGrads(c, true, pad));
      for (let i = 0; i < 3; i++) {
        assert.ok(sameBits(got[i], old[i]), `gradient ${i}: not the same bits as the old path`);
        assert.ok(
          sameBits(twoPass[i], old[i]),
          `gradient ${i} (two passes): not the same bits as the old path`,
        );
      }
    } finally {
      useThinReluOnePass(true);
      useThinGradKernels(true);
    }
  });
}

for (const [c, pad] of [
  [[3, 13, 10, 32, 1], 'same'],
  [[2, 11, 9, 8, 1], 'valid'],
  [[1, 6, 5, 4, 1], 'same'],
  [[2, 12, 14, 1, 8], 'valid'],
  [[2, 7, 9, 1, 32], 'same'],
] as [ConvCase, 'same' | 'valid'][]) {
  test(`wasm thin filter and bias gradient (x read unpadded) matches cpu, the same bits as the padded kernel: [${c}] ${pad}`, async () => {
    const ref = await onBackend('cpu', () => convGrads(c, false, pad));
    const got = await onBackend('wasm', () => thinKernelGrads(c, false, pad));
    for (const [i, what] of ['dW', 'db'].entries()) {
      const e = relErr(got[i], ref[i + 1]);
      assert.ok(e < 1e-5, `${what} relative error ${e}`);
    }
    useThinGradKernels(false);
    try {
      const old = await onBackend('wasm', () => thinKernelGrads(c, false, pad));
      for (let i = 0; i < 2; i++) assert.ok(sameBits(got[i], old[i]), `gradient ${i}: not the same bits`);
    } finally {
      useThinGradKernels(true);
    }
  });
}

test('wasm Winograd FusedConv2D follows a variable filter through assign (transformed-filter cache)', async () => {
  const run = () => {
    const x = tf.tensor4d(randArray(2 * 9 * 10 * 16, 21), [2, 9, 10, 16]);
    const v = tf.variable(tf.tensor4d(randArray(9 * 16 * 8, 22, -0.3, 0.3), [3, 3, 16, 8]));
    const conv = () => tf.fused.conv2d({ x, filter: v as tf.Tensor4D, strides: 1, pad: 'same' });
    const a = conv();
    const a2 = conv();
    v.assign(tf.tensor4d(randArray(9 * 16 * 8, 23, -0.3, 0.3), [3, 3, 16, 8]));
    const b = conv();
    const out = [a, a2, b].map((t) => t.dataSync() as Float32Array);
    tf.dispose([x, v, a, a2, b]);
    return out;
  };
  const ref = await onBackend('cpu', run);
  const got = await onBackend('wasm', run);
  for (let i = 0; i < 3; i++)
    assert.ok(relErr(got[i], ref[i]) < 1e-5, `result ${i}: ${relErr(got[i], ref[i])}`);
});

test('wasm Identity shares data (no copy) and the clone outlives its source', async () => {
  await onBackend('wasm', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    y.dispose();
  });
});

test('wasm Conv2DBackpropInput still handles stride 2 (falls back to the original kernel)', async () => {
  const run = () => {
    const x = tf.tensor4d(randArray(2 * 8 * 8 * 3, 5), [2, 8, 8, 3]);
    const f = tf.tensor4d(randArray(9 * 3 * 4, 6), [3, 3, 3, 4]);
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.conv2d(xx as tf.Tensor4D, f, 2, 'same'))))(x);
    const v = dx.dataSync() as Float32Array;
    tf.dispose([x, f, dx]);
    return v;
  };
  const ref = await onBackend('cpu', run);
  const got = await onBackend('wasm', run);
  assert.ok(relErr(got, ref) < 1e-4);
});

test('wasm Conv2DBackpropFilter rejects stride 2 with a clear error', async () => {
  await onBackend('wasm', () => {
    const x = tf.ones([1, 8, 8, 1]) as tf.Tensor4D;
    const f = tf.ones([3, 3, 1, 2]) as tf.Tensor4D;
    assert.throws(
      () => tf.grad((ff: tf.Tensor) => tf.sum(tf.conv2d(x, ff as tf.Tensor4D, 2, 'same')))(f),
      /only stride 1/,
    );
    tf.dispose([x, f]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Data consistency.

interface DcCase {
  b: number;
  h: number;
  w: number;
  x: Float32Array;
  target: Float32Array;
  mask: Float32Array;
  k0re: Float32Array;
  k0im: Float32Array;
}

/** A random image x, a random target, a row mask, and k0 = M ⊙ F(target) (float64, then float32). */
function dcCase(b: number, h: number, w: number, seed: number, fullySampled = false): DcCase {
  const n = h * w;
  const x = randArray(b * n, seed);
  const target = randArray(b * n, seed + 1, 0, 1);
  const r = new Rng(seed + 2);
  const mask = new Float32Array(n);
  for (let row = 0; row < h; row++) {
    const on = fullySampled || row < 2 || row >= h - 2 || r.next() < 0.3;
    for (let c = 0; c < w; c++) mask[row * w + c] = on ? 1 : 0;
  }
  const k0re = new Float32Array(b * n);
  const k0im = new Float32Array(b * n);
  for (let i = 0; i < b; i++) {
    const k = fft2Real(target.subarray(i * n, (i + 1) * n), h, w);
    for (let p = 0; p < n; p++) {
      k0re[i * n + p] = mask[p] * k.re[p];
      k0im[i * n + p] = mask[p] * k.im[p];
    }
  }
  return { b, h, w, x, target, mask, k0re, k0im };
}

/** The spec's formula, slice by slice, in float64 with fft.ts. */
function dcReference(c: DcCase, lambda: number | null): Float64Array {
  const n = c.h * c.w;
  const out = new Float64Array(c.b * n);
  for (let i = 0; i < c.b; i++) {
    const k = fft2Real(c.x.subarray(i * n, (i + 1) * n), c.h, c.w);
    for (let p = 0; p < n; p++) {
      const m = c.mask[p];
      const kr = c.k0re[i * n + p];
      const ki = c.k0im[i * n + p];
      if (lambda === null) {
        k.re[p] = m * kr + (1 - m) * k.re[p];
        k.im[p] = m * ki + (1 - m) * k.im[p];
      } else {
        k.re[p] = (1 - m) * k.re[p] + (m * (k.re[p] + lambda * kr)) / (1 + lambda);
        k.im[p] = (1 - m) * k.im[p] + (m * (k.im[p] + lambda * ki)) / (1 + lambda);
      }
    }
    const y = ifft2(k);
    out.set(y.re, i * n);
  }
  return out;
}

function tensors(c: DcCase) {
  return {
    x: tf.tensor4d(c.x, [c.b, c.h, c.w, 1]),
    re: tf.tensor3d(c.k0re, [c.b, c.h, c.w]),
    im: tf.tensor3d(c.k0im, [c.b, c.h, c.w]),
    mask: tf.tensor2d(c.mask, [c.h, c.w]),
  };
}

function dcForward(c: DcCase, lambda: number | null): Float32Array {
  return tf.tidy(() => {
    const t = tensors(c);
    return dataConsistency(t.x, t.re, t.im, t.mask, lambda).dataSync() as Float32Array;
  });
}

for (const backend of ['cpu', 'wasm']) {
  for (const [b, h, w] of [
    [3, 16, 16],
    [2, 12, 20],
    // batch 1 (the viewer's): the half-spectrum path, also with odd sizes
    [1, 12, 10],
    [1, 9, 7],
  ]) {
    for (const lambda of [null, 0.5]) {
      test(`DC forward on ${backend} equals the float64 reference: ${b}×${h}×${w}, lambda ${lambda}`, async () => {
        const c = dcCase(b, h, w, 11 + b + h);
        const got = await onBackend(backend, () => dcForward(c, lambda));
        const ref = dcReference(c, lambda);
        assert.ok(maxAbs(got, ref) < 1e-6, `max abs error ${maxAbs(got, ref)}`);
      });
    }
  }
}

test('DC with a fully sampled mask returns the target exactly', async () => {
  for (const backend of ['cpu', 'wasm']) {
    const c = dcCase(3, 16, 12, 5, true);
    const got = await onBackend(backend, () => dcForward(c, null));
    assert.ok(maxAbs(got, c.target) < 1e-6, `${backend}: ${maxAbs(got, c.target)}`);
  }
});

test('DC checks its input shapes', async () => {
  await onBackend('cpu', () => {
    const t = tensors(dcCase(2, 8, 8, 1));
    assert.throws(
      () => dataConsistency(t.x, t.re, t.im, tf.ones([8, 4]) as tf.Tensor2D, null),
      /mask has shape \[8,4\]/,
    );
    assert.throws(
      () => dataConsistency(t.x, tf.ones([1, 8, 8]) as tf.Tensor3D, t.im, t.mask, null),
      /k0re has shape/,
    );
    assert.throws(() => dataConsistency(t.x, t.re, t.im, t.mask, -2), /lambda/);
    tf.dispose(Object.values(t));
  });
});

/** Gradients of L = Σ g ⊙ DC(x, k0) w.r.t. x, k0re, k0im through the kernel. */
function dcGrads(c: DcCase, g: Float32Array, lambda: number | null): Float32Array[] {
  return tf.tidy(() => {
    const t = tensors(c);
    const gt = tf.tensor4d(g, [c.b, c.h, c.w, 1]);
    const grads = tf.grads((x: tf.Tensor, re: tf.Tensor, im: tf.Tensor) =>
      tf.sum(
        tf.mul(gt, dataConsistency(x as tf.Tensor4D, re as tf.Tensor3D, im as tf.Tensor3D, t.mask, lambda)),
      ),
    )([t.x, t.re, t.im]);
    return grads.map((x) => x.dataSync() as Float32Array);
  });
}

/** Orthonormal DFT matrix of size n as [re, im] n×n (symmetric). */
function dftMatrix(n: number): [tf.Tensor2D, tf.Tensor2D] {
  const re = new Float32Array(n * n);
  const im = new Float32Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) {
      const a = (-2 * Math.PI * ((j * k) % n)) / n;
      re[j * n + k] = Math.cos(a) / Math.sqrt(n);
      im[j * n + k] = Math.sin(a) / Math.sqrt(n);
    }
  }
  return [tf.tensor2d(re, [n, n]), tf.tensor2d(im, [n, n])];
}

/** The same gradients with the DC written as DFT-matrix products in tfjs (autodiff through matMul). */
function dcGradsByMatrices(c: DcCase, g: Float32Array, lambda: number | null): Float32Array[] {
  return tf.tidy(() => {
    const [ar, ai] = dftMatrix(c.h);
    const [br, bi] = dftMatrix(c.w);
    const m = tf.tensor2d(c.mask, [c.h, c.w]);
    const d = lambda === null ? tf.sub(1, m) : tf.add(tf.sub(1, m), tf.div(m, 1 + lambda));
    const e = lambda === null ? m : tf.mul(m, lambda / (1 + lambda));
    const t = tensors(c);
    const gt = tf.tensor3d(g, [c.b, c.h, c.w]);
    const f = (x: tf.Tensor, k0r: tf.Tensor, k0i: tf.Tensor) => {
      const slices: tf.Tensor[] = [];
      for (let i = 0; i < c.b; i++) {
        const xi = tf.reshape(tf.slice(x, [i, 0, 0, 0], [1, c.h, c.w, 1]), [c.h, c.w]);
        // K = A x B (A, B complex symmetric DFT matrices, x real)
        const tr = tf.matMul(xi, br);
        const ti = tf.matMul(xi, bi);
        const kr = tf.sub(tf.matMul(ar, tr), tf.matMul(ai, ti));
        const ki = tf.add(tf.matMul(ar, ti), tf.matMul(ai, tr));
        const k0ri = tf.reshape(tf.slice(k0r, [i, 0, 0], [1, c.h, c.w]), [c.h, c.w]);
        const k0ii = tf.reshape(tf.slice(k0i, [i, 0, 0], [1, c.h, c.w]), [c.h, c.w]);
        const dr = tf.add(tf.mul(d, kr), tf.mul(e, k0ri));
        const di = tf.add(tf.mul(d, ki), tf.mul(e, k0ii));
        // Re(conj(A) K conj(B)) = Ur·Br + Ui·Bi with U = conj(A) K
        const ur = tf.add(tf.matMul(ar, dr), tf.matMul(ai, di));
        const ui = tf.sub(tf.matMul(ar, di), tf.matMul(ai, dr));
        slices.push(tf.add(tf.matMul(ur, br), tf.matMul(ui, bi)));
      }
      return tf.sum(tf.mul(gt, tf.stack(slices)));
    };
    return tf
      .grads(f)([t.x, t.re, t.im])
      .map((x) => x.dataSync() as Float32Array);
  });
}

for (const lambda of [null, 2]) {
  test(`DC gradient equals the DFT-matrix autodiff on cpu (lambda ${lambda}), and wasm agrees`, async () => {
    const c = dcCase(3, 8, 12, 21);
    const g = randArray(c.b * c.h * c.w, 22);
    const ref = await onBackend('cpu', () => dcGradsByMatrices(c, g, lambda));
    const cpu = await onBackend('cpu', () => dcGrads(c, g, lambda));
    const wasm = await onBackend('wasm', () => dcGrads(c, g, lambda));
    for (const [i, what] of ['x', 'k0re', 'k0im'].entries()) {
      assert.ok(maxAbs(cpu[i], ref[i]) < 1e-5, `cpu d${what}: ${maxAbs(cpu[i], ref[i])}`);
      assert.ok(maxAbs(wasm[i], ref[i]) < 1e-5, `wasm d${what}: ${maxAbs(wasm[i], ref[i])}`);
    }
  });
}

test('DC gradient w.r.t. x matches central finite differences of the float64 reference', async () => {
  const c = dcCase(2, 8, 8, 31);
  const g = randArray(c.b * c.h * c.w, 32);
  const [dx] = await onBackend('cpu', () => dcGrads(c, g, null));
  const loss = (x: Float32Array) => {
    const y = dcReference({ ...c, x }, null);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += g[i] * y[i];
    return s;
  };
  const r = new Rng(33);
  for (let t = 0; t < 12; t++) {
    const i = r.int(c.x.length);
    const eps = 1e-2; // the op is linear in x: the central difference is exact up to float32 rounding of x ± eps
    const xp = Float32Array.from(c.x);
    const xm = Float32Array.from(c.x);
    xp[i] += eps;
    xm[i] -= eps;
    const fd = (loss(xp) - loss(xm)) / (xp[i] - xm[i]);
    assert.ok(Math.abs(fd - dx[i]) < 1e-5, `element ${i}: fd ${fd} vs kernel ${dx[i]}`);
  }
});

// The DFT-matrix composition used on webgpu, run here on cpu and wasm kernels under test-only names.
for (const backendName of ['cpu', 'wasm']) {
  const k = matrixDcKernels(backendName);
  tf.registerKernel({ kernelName: 'KdmriDcMatrixTest', backendName, kernelFunc: k.forward });
  tf.registerKernel({ kernelName: 'KdmriDcMatrixTestGrad', backendName, kernelFunc: k.grad });
}

for (const backend of ['cpu', 'wasm']) {
  for (const lambda of [null, 1.5]) {
    test(`DC by DFT matrices (the webgpu path) on ${backend} kernels matches the references, lambda ${lambda}`, async () => {
      const c = dcCase(3, 8, 12, 61);
      const g = randArray(c.b * c.h * c.w, 62);
      const ref = dcReference(c, lambda);
      const refGrads = await onBackend('cpu', () => dcGrads(c, g, lambda));
      await onBackend(backend, () => {
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          const t = tensors(c);
          const attrs = { lambda: lambda ?? -1 };
          const out = tf
            .engine()
            .runKernel(
              'KdmriDcMatrixTest',
              { x: t.x, k0re: t.re, k0im: t.im, mask: t.mask },
              attrs,
            ) as tf.Tensor;
          assert.deepEqual(out.shape, [c.b, c.h, c.w, 1]);
          assert.ok(maxAbs(out.dataSync(), ref) < 1e-5, `forward ${maxAbs(out.dataSync(), ref)}`);
          const dy = tf.tensor4d(g, [c.b, c.h, c.w, 1]);
          for (const [i, part] of (['x', 'k0re', 'k0im'] as const).entries()) {
            const d = tf
              .engine()
              .runKernel('KdmriDcMatrixTestGrad', { dy, mask: t.mask }, { ...attrs, part }) as tf.Tensor;
            assert.ok(
              maxAbs(d.dataSync(), refGrads[i]) < 1e-5,
              `d${part}: ${maxAbs(d.dataSync(), refGrads[i])}`,
            );
          }
        });
        // only the cached DFT matrices (created once per backend and size) may stay
        assert.ok(tf.memory().numTensors - before <= 0, 'no tensors leaked');
      });
    });
  }
}

test('DC forward time at 4×256×256 (reported, loose bound)', async () => {
  const c = dcCase(4, 256, 256, 41);
  await onBackend('wasm', () => {
    dcForward(c, null);
    const t0 = performance.now();
    const runs = 3;
    for (let i = 0; i < runs; i++) dcForward(c, null);
    const ms = (performance.now() - t0) / runs;
    console.log(`# DC forward 4×256×256 on wasm: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 2000);
  });
});

test('fft2 sanity: the reference helpers are orthonormal', () => {
  const re = Float64Array.from(randArray(64, 51));
  const im = new Float64Array(64);
  const e0 = re.reduce((s, v) => s + v * v, 0);
  fft2(re, im, 8, 8);
  const e1 = re.reduce((s, v, i) => s + v * v + im[i] * im[i], 0);
  assert.ok(Math.abs(e0 - e1) < 1e-9);
});
