/**
 * Convolution gradients for the wasm backend, composed from the backend's own fast forward Conv2D
 * (XNNPACK) and Transpose kernels.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel (tf.grad through a conv fails) and a naive
 * Conv2DBackpropInput (≈ 160× slower than the forward conv here). Both gradients of a stride-1 conv are
 * themselves convolutions:
 *
 *  - filter gradient dW[a,b,c,o] = Σ_{n,i,j} xpad[n, i+a, j+b, c] · dy[n, i, j, o]. Read x transposed to
 *    [C, H, W, B] as a batch of C one-"pixel-row" images with B channels, and dy transposed to
 *    [oH, oW, B, O] as an oH×oW filter: a 'valid' conv (with x's zero padding given as explicit padding)
 *    yields [C, kh, kw, O], transposed to HWIO [kh, kw, C, O]. When O < C (the 32→1 output conv) the roles
 *    are swapped (dy is the image, x the filter) so that the GEMM's N dimension is C, not 1; that form
 *    yields dW flipped in space, which is undone while transposing.
 *  - input gradient dx = conv(dy, W flipped in space with in/out swapped), padded by k−1−pad.
 *
 *    On wasm, when both C and O are ≥ 8, dW is instead computed as kh·kw GEMMs over the flattened padded
 *    grid (filterGradByTapMatMuls), which avoids the conv with only B channels per kernel tap.
 *
 * Conventions: NHWC activations, HWIO filters, float32. Only stride 1 and dilation 1 are accelerated;
 * Conv2DBackpropInput falls back to the original wasm kernel otherwise, Conv2DBackpropFilter throws.
 */
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  Sum,
  Transpose,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { makeF32, readF32, release } from './backend-io.js';

type Shape4 = [number, number, number, number];
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

function kernelOf(name: string, backendName: string): KernelFunc {
  const k = getKernel(name, backendName);
  if (!k) throw new Error(`kdmri kernels: the '${backendName}' backend has no ${name} kernel to build on`);
  return k.kernelFunc;
}

function transpose(backendName: string, backend: KernelBackend, x: TensorInfo, perm: number[]): TensorInfo {
  return kernelOf(Transpose, backendName)({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
}

/** A stride-1, dilation-1, NHWC forward conv with explicit padding, on the backend's own kernel. */
function conv(
  backendName: string,
  backend: KernelBackend,
  x: TensorInfo,
  filter: TensorInfo,
  pad: ExplicitPad,
): TensorInfo {
  return kernelOf(
    Conv2D,
    backendName,
  )({
    inputs: { x, filter },
    backend,
    attrs: { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] },
  }) as TensorInfo;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** dW for x [B,H,W,C], dy [B,oH,oW,O] → [kh,kw,C,O]. */
export function conv2dBackpropFilterVia(
  backendName: string,
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
): TensorInfo {
  return filterGrad(backendName, backend, x, dy, attrs, false).dw;
}

/**
 * The kernel KDMRI_FILTER_BIAS_GRAD: [dW, db] for a conv with bias, db = Σ_{B,oH,oW} dy → [O]. On the
 * wasm GEMM path db is one more row of the same GEMM (a row of ones in the left operand), which saves
 * tfjs-wasm's Sum over leading axes (it transposes dy first: 124 ms at 4×256×256×32, per layer).
 */
export function conv2dBackpropFilterBiasVia(
  backendName: string,
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
): TensorInfo[] {
  const r = filterGrad(backendName, backend, x, dy, attrs, true);
  const db =
    r.db ??
    (kernelOf(
      Sum,
      backendName,
    )({ inputs: { x: dy }, backend, attrs: { axis: [0, 1, 2], keepDims: false } }) as TensorInfo);
  return [r.dw, db];
}

function filterGrad(
  backendName: string,
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  withBias: boolean,
): { dw: TensorInfo; db?: TensorInfo } {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') {
    throw new Error(
      `kdmri Conv2DBackpropFilter (${backendName}): only NHWC is supported, got ${attrs.dataFormat}`,
    );
  }
  const xShape = x.shape as Shape4;
  const info = backend_util.computeConv2DInfo(
    xShape,
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  if (info.strideHeight !== 1 || info.strideWidth !== 1) {
    throw new Error(
      `kdmri Conv2DBackpropFilter (${backendName}): only stride 1 is supported, got [${info.strideHeight}, ${info.strideWidth}]`,
    );
  }
  const [, , C, O] = attrs.filterShape;
  const kh = info.filterHeight;
  const kw = info.filterWidth;
  const expectDy = [info.batchSize, info.outHeight, info.outWidth, O];
  if (!sameShape(dy.shape, expectDy)) {
    throw new Error(`kdmri Conv2DBackpropFilter: dy has shape [${dy.shape}], expected [${expectDy}]`);
  }
  const { top, bottom, left, right } = info.padInfo;
  // measured on wasm at 4×256×256 (dW and db, 2 threads): 32→32 510 ms vs 580 ms for the conv form;
  // 1→32 210 vs 250 ms; but 32→1 340 vs 100 ms (one-column GEMMs), so O = 1 keeps the conv form
  if (isWasmInternals(backend) && O >= 8) {
    return filterGradByTapMatMuls(backendName, backend, x, dy, kh, kw, C, O, info.padInfo, withBias);
  }
  const swapped = O < C && top <= kh - 1 && bottom <= kh - 1 && left <= kw - 1 && right <= kw - 1;

  if (!swapped) {
    const xt = transpose(backendName, backend, x, [3, 1, 2, 0]); // [C, H, W, B]
    const dyt = transpose(backendName, backend, dy, [1, 2, 0, 3]); // [oH, oW, B, O]
    const z = conv(backendName, backend, xt, dyt, [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ]); // [C, kh, kw, O]
    release(backend, xt);
    release(backend, dyt);
    if (!sameShape(z.shape, [C, kh, kw, O])) {
      release(backend, z);
      throw new Error(
        `kdmri Conv2DBackpropFilter: internal conv gave [${z.shape}], expected [${[C, kh, kw, O]}]`,
      );
    }
    const dw = transpose(backendName, backend, z, [1, 2, 0, 3]);
    release(backend, z);
    return { dw };
  }

  const dyt = transpose(backendName, backend, dy, [3, 1, 2, 0]); // [O, oH, oW, B]
  const xt = transpose(backendName, backend, x, [1, 2, 0, 3]); // [H, W, B, C]
  const pad: ExplicitPad = [
    [0, 0],
    [kh - 1 - top, kh - 1 - bottom],
    [kw - 1 - left, kw - 1 - right],
    [0, 0],
  ];
  const z = conv(backendName, backend, dyt, xt, pad); // [O, kh, kw, C], flipped in space
  release(backend, dyt);
  release(backend, xt);
  if (!sameShape(z.shape, [O, kh, kw, C])) {
    release(backend, z);
    throw new Error(
      `kdmri Conv2DBackpropFilter: internal conv gave [${z.shape}], expected [${[O, kh, kw, C]}]`,
    );
  }
  // dW[a,b,c,o] = z[o, kh−1−a, kw−1−b, c]: tiny (9·C·O values), done in JS.
  const zv = readF32(backend, z);
  const dw = new Float32Array(kh * kw * C * O);
  for (let o = 0; o < O; o++) {
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const src = ((o * kh + (kh - 1 - a)) * kw + (kw - 1 - b)) * C;
        const dst = (a * kw + b) * C * O + o;
        for (let c = 0; c < C; c++) dw[dst + c * O] = zv[src + c];
      }
    }
  }
  release(backend, z);
  return { dw: makeF32(backend, [kh, kw, C, O], dw) };
}

/** The wasm backend internals used to read a tensor's memory under a second id (see below). */
interface WasmInternals {
  dataIdMap: { get(d: object): { id: number; memoryOffset: number } | undefined; delete(d: object): void };
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number): TensorInfo;
  wasm: { tfjs: { disposeData(id: number): void }; HEAPU8: Uint8Array };
}

function isWasmInternals(b: KernelBackend): b is KernelBackend & WasmInternals {
  const r = b as unknown as Partial<WasmInternals>;
  return (
    typeof r.makeOutput === 'function' &&
    r.dataIdMap !== undefined &&
    typeof r.wasm?.tfjs?.disposeData === 'function'
  );
}

/**
 * dW as one GEMM per chunk of the flattened padded grid, with an im2col left operand built per chunk
 * (wasm):
 *
 *   xT  = x zero-padded (conv padding, plus one zero image and one zero channel), transposed to
 *         [C+1, L], L = (B+1)·Hp·Wp: channel-major rows over the flattened padded grid;
 *   dyp = dy placed on the same padded grid (zero outside its oH×oW corner, and a zero image): [L, O];
 *   dW[a,b,c,:] = Σ_l xT[c, off + l] · dyp[l, :]   with off = a·Wp + b,   for each tap (a, b).
 *
 * The sum over l runs in chunks of `GRID_CHUNK` grid points. For chunk [l0, l0+kc) the left operand
 * A = [kh·kw·C, kc] is copied from xT (row (tap, c) = xT[c, off+l0 : off+l0+kc]; a row may run into
 * the next channel row, or the zero channel, only where dyp is zero, so nothing leaks) and the right
 * operand is dyp's rows [l0, l0+kc), read in place. One XNNPACK GEMM per chunk (M = 9C, N = O, K = kc)
 * keeps its operands in the last-level cache. Measured at 4×256×256×32→32 on 2 threads: 580 ms per
 * layer with nine whole-grid GEMMs (one per tap), 490 ms now (chunks of 1024: 640 ms, 4096: 580 ms),
 * of which 300 ms GEMM, 140 ms building A (copyWithin on the threaded build's shared heap runs at
 * ≈ 2 GB/s), 50 ms padding and transposing; the forward conv takes 185 ms. XNNPACK's GEMM does not block
 * K, so with K in the thousands it streams its panels from cache instead of registers, at about half
 * the forward conv's FLOP rate. Partial sums are accumulated in float64.
 */
const GRID_CHUNK = 16384;

function filterGradByTapMatMuls(
  backendName: string,
  backend: KernelBackend & WasmInternals,
  x: TensorInfo,
  dy: TensorInfo,
  kh: number,
  kw: number,
  C: number,
  O: number,
  pad: { top: number; bottom: number; left: number; right: number },
  withBias: boolean,
): { dw: TensorInfo; db?: TensorInfo } {
  const [B, H, W] = x.shape;
  const [, oH, oW] = dy.shape;
  const Hp = H + pad.top + pad.bottom;
  const Wp = W + pad.left + pad.right;
  const L = (B + 1) * Hp * Wp;
  const T = kh * kw;
  const M = T * C + (withBias ? 1 : 0);
  const run = (name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>) =>
    kernelOf(name, backendName)({ inputs, backend, attrs: attrs as never }) as TensorInfo;
  const xp = run(
    'PadV2',
    { x },
    {
      paddings: [
        [0, 1],
        [pad.top, pad.bottom],
        [pad.left, pad.right],
        [0, 1],
      ],
      constantValue: 0,
    },
  );
  const xt = transpose(
    backendName,
    backend,
    { dataId: xp.dataId, shape: [L, C + 1], dtype: 'float32' },
    [1, 0],
  );
  release(backend, xp);
  const dyp = run(
    'PadV2',
    { x: dy },
    {
      paddings: [
        [0, 1],
        [0, Hp - oH],
        [0, Wp - oW],
        [0, 0],
      ],
      constantValue: 0,
    },
  );
  const kc0 = Math.min(GRID_CHUNK, L);
  const scratch = backend.makeOutput([M, kc0], 'float32');
  const acc = new Float64Array(M * O);
  const memOf = (t: TensorInfo) => {
    const d = backend.dataIdMap.get(t.dataId as object);
    if (!d) throw new Error('kdmri Conv2DBackpropFilter: tensor data not found on the wasm backend');
    return d.memoryOffset;
  };
  const dropAlias = (t: TensorInfo) => {
    // drop the alias id without freeing the memory (it belongs to another tensor)
    backend.wasm.tfjs.disposeData(backend.dataIdMap.get(t.dataId as object)!.id);
    backend.dataIdMap.delete(t.dataId as object);
  };
  try {
    const xtAt = memOf(xt) / 4;
    const dypAt = memOf(dyp);
    const aAt = memOf(scratch);
    for (let l0 = 0; l0 < L; l0 += kc0) {
      const kc = Math.min(kc0, L - l0);
      const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const t = a * kw + b;
          const src = xtAt + a * Wp + b + l0;
          for (let c = 0; c < C; c++) {
            const from = src + c * L;
            heap.copyWithin(aAt / 4 + (t * C + c) * kc, from, from + kc);
          }
        }
      }
      if (withBias) heap.fill(1, aAt / 4 + T * C * kc, aAt / 4 + M * kc);
      const A = backend.makeOutput([1, M, kc], 'float32', aAt);
      const Bm = backend.makeOutput([1, kc, O], 'float32', dypAt + 4 * l0 * O);
      let out: TensorInfo;
      try {
        out = run('BatchMatMul', { a: A, b: Bm }, { transposeA: false, transposeB: false });
      } finally {
        dropAlias(A);
        dropAlias(Bm);
      }
      const part = readF32(backend, out);
      for (let i = 0; i < acc.length; i++) acc[i] += part[i];
      release(backend, out);
    }
  } finally {
    release(backend, scratch);
    release(backend, xt);
    release(backend, dyp);
  }
  // acc is [kh·kw, C, O] = HWIO already, then the bias row
  const dw = makeF32(backend, [kh, kw, C, O], Float32Array.from(acc.subarray(0, T * C * O)));
  return withBias ? { dw, db: makeF32(backend, [O], Float32Array.from(acc.subarray(T * C * O))) } : { dw };
}

/**
 * dx for dy [B,oH,oW,O], filter [kh,kw,C,O] → inputShape [B,H,W,C], or null when the configuration is
 * not stride-1 with padding ≤ k−1 (the caller then uses another implementation).
 */
export function conv2dBackpropInputVia(
  backendName: string,
  backend: KernelBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): TensorInfo | null {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return null;
  const fShape = filter.shape as Shape4;
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape,
    fShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const [kh, kw, C, O] = fShape;
  const { top, bottom, left, right } = info.padInfo;
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  if (top > kh - 1 || bottom > kh - 1 || left > kw - 1 || right > kw - 1) return null;
  const expectDy = [info.batchSize, info.outHeight, info.outWidth, O];
  if (!sameShape(dy.shape, expectDy)) {
    throw new Error(`kdmri Conv2DBackpropInput: dy has shape [${dy.shape}], expected [${expectDy}]`);
  }
  // W'[a,b,o,c] = W[kh−1−a, kw−1−b, c, o] (flip in space, swap in/out); small, done in JS.
  const w = readF32(backend, filter);
  const wf = new Float32Array(kh * kw * O * C);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const src = ((kh - 1 - a) * kw + (kw - 1 - b)) * C * O;
      const dst = (a * kw + b) * O * C;
      for (let c = 0; c < C; c++) for (let o = 0; o < O; o++) wf[dst + o * C + c] = w[src + c * O + o];
    }
  }
  const wt = makeF32(backend, [kh, kw, O, C], wf);
  const dx = conv(backendName, backend, dy, wt, [
    [0, 0],
    [kh - 1 - top, kh - 1 - bottom],
    [kw - 1 - left, kw - 1 - right],
    [0, 0],
  ]);
  release(backend, wt);
  if (!sameShape(dx.shape, attrs.inputShape)) {
    release(backend, dx);
    throw new Error(
      `kdmri Conv2DBackpropInput: internal conv gave [${dx.shape}], expected [${attrs.inputShape}]`,
    );
  }
  return dx;
}

const FAST_MARK = Symbol.for('kdmri.conv-backprop');

/** Inputs {x, dy}, Conv2DBackpropFilter's attrs; outputs [dW, db]. Registered where it is faster. */
export const KDMRI_FILTER_BIAS_GRAD = 'KdmriConv2DBackpropFilterBias';

/**
 * Register the two gradient kernels for `backendName` (default 'wasm'). Conv2DBackpropInput replaces the
 * backend's own kernel, which is kept as the fallback for strided convs; its setupFunc is carried over so
 * the fallback still initialises when the backend starts after this registration. Idempotent.
 */
export function registerConvBackprop(
  backendName: string,
  registerKernel: (c: KernelConfig) => void,
  unregisterKernel: (name: string, backend: string) => void,
): void {
  const filterCfg = getKernel(Conv2DBackpropFilter, backendName) as
    (KernelConfig & { [FAST_MARK]?: true }) | undefined;
  if (!filterCfg?.[FAST_MARK]) {
    if (filterCfg) unregisterKernel(Conv2DBackpropFilter, backendName);
    const cfg: KernelConfig & { [FAST_MARK]: true } = {
      kernelName: Conv2DBackpropFilter,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        conv2dBackpropFilterVia(
          backendName,
          backend as KernelBackend,
          inputs.x as TensorInfo,
          inputs.dy as TensorInfo,
          attrs as unknown as Conv2DBackpropFilterAttrs,
        ),
      [FAST_MARK]: true,
    };
    registerKernel(cfg);
  }

  if (!getKernel(KDMRI_FILTER_BIAS_GRAD, backendName)) {
    registerKernel({
      kernelName: KDMRI_FILTER_BIAS_GRAD,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        conv2dBackpropFilterBiasVia(
          backendName,
          backend as KernelBackend,
          inputs.x as TensorInfo,
          inputs.dy as TensorInfo,
          attrs as unknown as Conv2DBackpropFilterAttrs,
        ),
    });
  }

  const inputCfg = getKernel(Conv2DBackpropInput, backendName) as
    (KernelConfig & { [FAST_MARK]?: true }) | undefined;
  if (!inputCfg?.[FAST_MARK]) {
    const original = inputCfg;
    if (original) unregisterKernel(Conv2DBackpropInput, backendName);
    const cfg: KernelConfig & { [FAST_MARK]: true } = {
      kernelName: Conv2DBackpropInput,
      backendName,
      setupFunc: original?.setupFunc,
      disposeFunc: original?.disposeFunc,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const fast = conv2dBackpropInputVia(
          backendName,
          backend as KernelBackend,
          inputs.dy as TensorInfo,
          inputs.filter as TensorInfo,
          attrs as unknown as Conv2DBackpropInputAttrs,
        );
        if (fast) return fast;
        if (!original)
          throw new Error(
            `kdmri Conv2DBackpropInput (${backendName}): only stride 1 with padding ≤ k−1 is supported`,
          );
        return original.kernelFunc(args);
      },
      [FAST_MARK]: true,
    };
    registerKernel(cfg);
  }
}
