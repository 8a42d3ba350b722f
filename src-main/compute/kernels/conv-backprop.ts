/**
 * Convolution gradients for the wasm backend, composed from the backend's own fast forward Conv2D
 * (XNNPACK) and Transpose kernels, and, for the filter gradient, our own WebAssembly kernel.
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
 *    On wasm, dW and db are instead computed by our own WebAssembly SIMD kernels (wasm-kernels.ts,
 *    wasm/filter-grad.c, wasm/winograd.c) on the backend's memory; the conv form remains where that
 *    memory cannot be reached (another tfjs-backend-wasm build).
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
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { kernelOf, makeF32, readF32, release, sameShape } from './backend-io.js';
import { thinConv } from './conv-thin.js';
import { winogradApplies, winogradConv } from './conv-winograd.js';
import {
  WasmKernels,
  addressOf,
  isWasmBackend,
  wasmKernelsFor,
  type WasmBackendInternals,
} from './wasm-kernels.js';

type Shape4 = [number, number, number, number];
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

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
  // measured on wasm at 4×256×256, 32→32, 2 threads: 114 ms by our kernel (about the forward conv's
  // 116 ms), 580 ms by the conv form below (its kernel has 256×256 taps of only B channels each)
  if (useKernel && isWasmBackend(backend) && wasmKernelsFor(backend)) {
    if (useWinogradFilter && WasmKernels.winograd(kh, kw, C, O))
      return filterGradInPlace('winograd', backend, x, dy, kh, kw, C, O, info.padInfo, withBias);
    if (useThinGrad && WasmKernels.thinGrad(C, O))
      return filterGradInPlace('thin', backend, x, dy, kh, kw, C, O, info.padInfo, withBias);
    return filterGradByKernel(backendName, backend, x, dy, kh, kw, C, O, info.padInfo, withBias);
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

let useKernel = true;
let useWinogradFilter = true;

/** Tests and the bench only: the wide layers' filter gradient by the direct kernel instead of Winograd. */
export function useWinogradFilterGrad(on: boolean): void {
  useWinogradFilter = on;
}

/**
 * Run a filter-gradient kernel of wasm-kernels.ts with `floats` float32 of scratch on the backend (its
 * address, and a reader of it as float32, given to `run`), and wrap its [dW, db] as tensors.
 */
function kernelFilterGrad(
  backend: KernelBackend & WasmBackendInternals,
  floats: number,
  dwShape: number[],
  withBias: boolean,
  run: (scratch: number, read: () => Float32Array) => [Float32Array, Float32Array],
): { dw: TensorInfo; db?: TensorInfo } {
  const scratch = backend.makeOutput([floats], 'float32');
  let dw: Float32Array;
  let db: Float32Array;
  try {
    [dw, db] = run(addressOf(backend, scratch), () => readF32(backend, scratch));
  } finally {
    release(backend, scratch);
  }
  const dwT = makeF32(backend, dwShape, dw);
  return withBias ? { dw: dwT, db: makeF32(backend, [db.length], db) } : { dw: dwT };
}

let useThinGrad = true;

/**
 * Tests and the bench only: the thin layers' gradients by the general kernels (x copied padded by
 * PadV2; for a ReLU layer, g = dy ⊙ (y > 0) formed by Step and Multiply) instead of the thin ones.
 */
export function useThinGradKernels(on: boolean): void {
  useThinGrad = on;
}

/**
 * dW (and db) by one of our WebAssembly kernels that read x unpadded and dy in place (with `mask`, dy's
 * shape, a ReLU layer's output: dy read as 0 where mask ≤ 0), so neither a PadV2 copy of x nor g:
 *  - 'winograd': a wide 3×3 layer (WasmKernels.winograd) by Winograd F(3×3, 4×4);
 *  - 'thin': a thin layer (WasmKernels.thinGrad), filterGradByKernel's sums in its order. Measured at
 *    4×256×256 on 2 threads, dW and db of 32→1: 13.9 ms by filterGradByKernel, whose 4×1 tile waits on
 *    one sum at a time (and PadV2 copies x), 4.3 ms by this one.
 */
function filterGradInPlace(
  by: 'winograd' | 'thin',
  backend: KernelBackend & WasmBackendInternals,
  x: TensorInfo,
  dy: TensorInfo,
  kh: number,
  kw: number,
  C: number,
  O: number,
  pad: { top: number; left: number },
  withBias: boolean,
  mask: TensorInfo | null = null,
): { dw: TensorInfo; db?: TensorInfo } {
  const runner = wasmKernelsFor(backend)!;
  const [B, H, W] = x.shape;
  const [, oH, oW] = dy.shape;
  const floats =
    by === 'winograd'
      ? WasmKernels.winogradFilterScratchFloats(C, O)
      : WasmKernels.scratchFloats({ C, O, kh, kw });
  return kernelFilterGrad(backend, floats, [kh, kw, C, O], withBias, (scratch, read) => {
    const p = {
      x: addressOf(backend, x),
      dy: addressOf(backend, dy),
      mask: mask ? addressOf(backend, mask) : 0,
      scratch,
      batch: B,
      H,
      W,
      oH,
      oW,
      C,
      O,
      padTop: pad.top,
      padLeft: pad.left,
    };
    return by === 'winograd'
      ? runner.filterBiasGradWinograd(p, read)
      : runner.filterBiasGradThin({ ...p, kh, kw }, read);
  });
}

/**
 * Tests only: compute the filter gradient by the forward-conv form even where our WebAssembly kernel
 * could run (the form used when the backend's memory cannot be reached).
 */
export function useFilterGradKernel(on: boolean): void {
  useKernel = on;
}

/** dW (and db) by our WebAssembly kernel (wasm-kernels.ts), reading x padded and dy in place. */
function filterGradByKernel(
  backendName: string,
  backend: KernelBackend & WasmBackendInternals,
  x: TensorInfo,
  dy: TensorInfo,
  kh: number,
  kw: number,
  C: number,
  O: number,
  pad: { top: number; bottom: number; left: number; right: number },
  withBias: boolean,
): { dw: TensorInfo; db?: TensorInfo } {
  const runner = wasmKernelsFor(backend)!;
  const [B, H, W] = x.shape;
  const [, oH, oW] = dy.shape;
  const xp = kernelOf(
    'PadV2',
    backendName,
  )({
    inputs: { x },
    backend,
    attrs: {
      paddings: [
        [0, 0],
        [pad.top, pad.bottom],
        [pad.left, pad.right],
        [0, 0],
      ],
      constantValue: 0,
    } as never,
  }) as TensorInfo;
  try {
    return kernelFilterGrad(
      backend,
      WasmKernels.scratchFloats({ C, O, kh, kw }),
      [kh, kw, C, O],
      withBias,
      (scratch, read) =>
        runner.filterBiasGrad(
          {
            xp: addressOf(backend, xp),
            dy: addressOf(backend, dy),
            scratch,
            batch: B,
            Hp: H + pad.top + pad.bottom,
            Wp: W + pad.left + pad.right,
            oH,
            oW,
            C,
            O,
            kh,
            kw,
          },
          read,
        ),
    );
  } finally {
    release(backend, xp);
  }
}

/**
 * dx for dy [B,oH,oW,O], filter [kh,kw,C,O] → inputShape [B,H,W,C], or null when the configuration is
 * not stride-1 with padding ≤ k−1 (the caller then uses another implementation). With `mask` (dy's
 * shape: a ReLU layer's output) dy is read as 0 where mask ≤ 0; only the Winograd kernel and the thin
 * kernel with one output channel (dx of a 1→O layer) take a mask (the caller checks winogradApplies or
 * WasmKernels.thin(O, 1); it throws otherwise).
 */
export function conv2dBackpropInputVia(
  backendName: string,
  backend: KernelBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  mask: TensorInfo | null = null,
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
  const [, H, W] = attrs.inputShape;
  const wpad = { top: kh - 1 - top, left: kw - 1 - left, outHeight: H, outWidth: W };
  // the Winograd kernel transforms the flipped filter from `filter` itself, in wasm (no copy in JS)
  const wide = winogradConv(backend, dy, { flipOf: filter }, null, wpad, false, mask);
  if (wide) return wide;
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
  const thin = thinConv(
    backend,
    dy,
    wt,
    null,
    { top: kh - 1 - top, left: kw - 1 - left, outHeight: H, outWidth: W },
    false,
    mask,
  );
  if (mask && !thin) {
    release(backend, wt);
    throw new Error('kdmri Conv2DBackpropInput: a masked dy needs the Winograd or the thin kernel');
  }
  const dx =
    thin ??
    conv(backendName, backend, dy, wt, [
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

/**
 * The kernel KDMRI_RELU_CONV_GRADS: [dx, dW, db] of a ReLU layer y = relu(conv(x, W) + b) from dy and
 * y, with g = dy ⊙ (y > 0). On wasm, for wide 3×3 layers, both Winograd kernels read dy masked by y on
 * the fly (no Step, no Multiply, no g tensor: two passes over an activation-sized tensor saved per
 * layer); for a 1→O layer (a cascade's first) the thin kernels do the same, in one pass over dy and y
 * for a 3×3 'same' layer (measured at 4×256×256 → 32 on 2 threads: 24.3 ms with g formed, 17.3 by two
 * masked passes, 11.1 by one; the same bits, see wasm-kernels.ts); otherwise g is formed with the
 * backend's kernels and the gradients are the ones above.
 * Inputs {x, dy, filter, y}; attrs: Conv2DBackpropFilter's plus inputShape, and inputGrad: false for
 * [dW, db] alone (the layer's input is data: networks/conv.ts).
 */
export const KDMRI_RELU_CONV_GRADS = 'KdmriReluConv2DGrads';

type ReluConvGradsAttrs = Conv2DBackpropFilterAttrs & Conv2DBackpropInputAttrs & { inputGrad?: boolean };

function reluConvGrads(
  backendName: string,
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  filter: TensorInfo,
  y: TensorInfo,
  attrs: ReluConvGradsAttrs,
): TensorInfo[] {
  const [kh, kw, C, O] = filter.shape;
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filter.shape as Shape4,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const p = info.padInfo;
  const fused =
    useKernel &&
    useWinogradFilter &&
    isWasmBackend(backend) &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    (attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC') &&
    Math.max(p.top, p.bottom, p.left, p.right) <= 2 &&
    sameShape(dy.shape, y.shape) &&
    winogradApplies(backend, C, O, kh, kw) &&
    winogradApplies(backend, O, C, kh, kw);
  const inputGrad = attrs.inputGrad !== false;
  if (fused) {
    const dx = inputGrad ? [conv2dBackpropInputVia(backendName, backend, dy, filter, attrs, y)!] : [];
    const r = filterGradInPlace('winograd', backend, x, dy, kh, kw, C, O, p, true, y);
    return [...dx, r.dw, r.db!];
  }
  // a 1→O layer: its dx is a thin O→1 conv of g and its dW a thin filter gradient, both read dy masked
  const thinFused =
    useKernel &&
    useThinGrad &&
    isWasmBackend(backend) &&
    wasmKernelsFor(backend) !== null &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    (attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC') &&
    Math.max(p.top, p.bottom, p.left, p.right) <= Math.min(kh, kw) - 1 &&
    sameShape(dy.shape, y.shape) &&
    y.dtype === 'float32' &&
    dy.dtype === 'float32' &&
    C === 1 &&
    WasmKernels.thinGrad(C, O) &&
    WasmKernels.thin(O, C);
  if (thinFused && !inputGrad) {
    // the network's first layer: dW and db alone, one masked pass
    const r = filterGradInPlace('thin', backend, x, dy, kh, kw, C, O, p, true, y);
    return [r.dw, r.db!];
  }
  if (
    thinFused &&
    useThinOnePass &&
    kh === 3 &&
    kw === 3 &&
    p.top === 1 &&
    p.left === 1 &&
    sameShape(dy.shape, [...x.shape.slice(0, 3), O])
  )
    return reluThinGrads(backend, x, dy, filter, y);
  if (thinFused) {
    const dx = conv2dBackpropInputVia(backendName, backend, dy, filter, attrs, y)!;
    const r = filterGradInPlace('thin', backend, x, dy, kh, kw, C, O, p, true, y);
    return [dx, r.dw, r.db!];
  }
  const step = kernelOf(
    'Step',
    backendName,
  )({ inputs: { x: y }, backend, attrs: { alpha: 0 } }) as TensorInfo;
  const g = kernelOf('Multiply', backendName)({ inputs: { a: dy, b: step }, backend }) as TensorInfo;
  release(backend, step);
  try {
    const dx = inputGrad
      ? [
          conv2dBackpropInputVia(backendName, backend, g, filter, attrs) ??
            (kernelOf(
              Conv2DBackpropInput,
              backendName,
            )({
              inputs: { dy: g, filter },
              backend,
              attrs: attrs as never,
            }) as TensorInfo),
        ]
      : [];
    const [dw, db] = conv2dBackpropFilterBiasVia(backendName, backend, x, g, attrs);
    return [...dx, dw, db];
  } finally {
    release(backend, g);
  }
}

let useThinOnePass = true;

/** Tests and the bench only: a 1→O ReLU layer's dx and dW by two masked passes instead of one. */
export function useThinReluOnePass(on: boolean): void {
  useThinOnePass = on;
}

/**
 * [dx, dW, db] of a 3×3 'same' 1→O ReLU layer by relu_thin_grads_rows: dy and y read once (dx and dW
 * each reading them masked cost two passes over both).
 */
function reluThinGrads(
  backend: KernelBackend & WasmBackendInternals,
  x: TensorInfo,
  dy: TensorInfo,
  filter: TensorInfo,
  y: TensorInfo,
): TensorInfo[] {
  const runner = wasmKernelsFor(backend)!;
  const [B, H, W] = x.shape;
  const O = filter.shape[3];
  // wf[a][b][o] = W[2−a][2−b][0][o]: the O→1 conv of g that gives dx (9·O values, done in JS)
  const w = readF32(backend, filter);
  const wf = new Float32Array(9 * O);
  for (let t = 0; t < 9; t++) wf.set(w.subarray((8 - t) * O, (9 - t) * O), t * O);
  const wfT = makeF32(backend, [3, 3, O, 1], wf);
  const dx = backend.makeOutput([B, H, W, 1], 'float32');
  try {
    const r = kernelFilterGrad(
      backend,
      WasmKernels.reluThinGradsScratchFloats(W, O),
      [3, 3, 1, O],
      true,
      (scratch, read) =>
        runner.reluThinGrads(
          {
            x: addressOf(backend, x),
            dy: addressOf(backend, dy),
            mask: addressOf(backend, y),
            wf: addressOf(backend, wfT),
            dx: addressOf(backend, dx),
            scratch,
            batch: B,
            H,
            W,
            O,
          },
          read,
        ),
    );
    return [dx, r.dw, r.db!];
  } catch (e) {
    release(backend, dx);
    throw e;
  } finally {
    release(backend, wfT);
  }
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

  if (!getKernel(KDMRI_RELU_CONV_GRADS, backendName)) {
    registerKernel({
      kernelName: KDMRI_RELU_CONV_GRADS,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        reluConvGrads(
          backendName,
          backend as KernelBackend,
          inputs.x as TensorInfo,
          inputs.dy as TensorInfo,
          inputs.filter as TensorInfo,
          inputs.y as TensorInfo,
          attrs as unknown as ReluConvGradsAttrs,
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
