/**
 * Thin convolutions on the wasm backend (one input or one output channel: a DC-CNN cascade's first
 * and last layers) by our WebAssembly kernel conv_thin_rows (wasm-kernels.ts, wasm/conv-thin.c).
 * XNNPACK runs these at a few GFLOP/s: measured at 4×256×256 on 2 threads, 45 ms for 1→32 and 40 ms
 * for 32→1, where a 32→32 layer, with 32× the FLOPs, takes 116 ms.
 *
 * Used by the FusedConv2D kernel (forward, bias and ReLU fused), registered here over the backend's
 * own, which it calls for every other case, and by Conv2DBackpropInput (conv-backprop.ts), whose
 * input gradient of a thin layer is a thin forward conv. Conventions: NHWC, HWIO, float32, stride 1,
 * dilation 1.
 */
import {
  backend_util,
  FusedConv2D,
  getKernel,
  type FusedConv2DAttrs,
  type KernelBackend,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { winogradConv } from './conv-winograd.js';
import { WasmKernels, addressOf, isWasmBackend, wasmKernelsFor } from './wasm-kernels.js';

type Pad4 = { top: number; left: number; outHeight: number; outWidth: number };

/**
 * y = act(conv(x, w) + bias) by our kernel, or null when the backend, the shapes or the options are
 * not ones it runs (the caller then uses XNNPACK). `pad` gives the top/left zero padding and the
 * output size (bottom/right padding follows from them). With `mask` (x's shape: a 1→O ReLU layer's
 * output y, when x is its dy) x is read as 0 where mask ≤ 0; only one output channel takes a mask (null
 * otherwise).
 */
export function thinConv(
  backend: KernelBackend,
  x: TensorInfo,
  w: TensorInfo,
  bias: TensorInfo | null,
  pad: Pad4,
  relu: boolean,
  mask: TensorInfo | null = null,
): TensorInfo | null {
  if (!isWasmBackend(backend)) return null;
  const [B, H, W, C] = x.shape;
  const [kh, kw, wc, O] = w.shape;
  if (x.shape.length !== 4 || wc !== C || !WasmKernels.thin(C, O)) return null;
  if (
    mask &&
    (O !== 1 ||
      mask.shape.length !== 4 ||
      mask.dtype !== 'float32' ||
      !x.shape.every((d, i) => d === mask.shape[i]))
  )
    return null;
  if (
    x.dtype !== 'float32' ||
    w.dtype !== 'float32' ||
    (bias && (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== O))
  )
    return null;
  const kernels = wasmKernelsFor(backend);
  if (!kernels) return null;
  const y = backend.makeOutput([B, pad.outHeight, pad.outWidth, O], 'float32');
  kernels.convThin({
    x: addressOf(backend, x),
    mask: mask ? addressOf(backend, mask) : 0,
    w: addressOf(backend, w),
    bias: bias ? addressOf(backend, bias) : 0,
    y: addressOf(backend, y),
    batch: B,
    H,
    W,
    oH: pad.outHeight,
    oW: pad.outWidth,
    C,
    O,
    kh,
    kw,
    padTop: pad.top,
    padLeft: pad.left,
    relu,
  });
  return y;
}

const THIN_MARK = Symbol.for('kdmri.conv-thin');

/** Register FusedConv2D for `backendName` with the thin-layer path in front of the backend's own. Idempotent. */
export function registerThinConv(
  backendName: string,
  registerKernel: (c: KernelConfig) => void,
  unregisterKernel: (name: string, backend: string) => void,
): void {
  const original = getKernel(FusedConv2D, backendName) as (KernelConfig & { [THIN_MARK]?: true }) | undefined;
  if (!original || original[THIN_MARK]) return;
  unregisterKernel(FusedConv2D, backendName);
  const cfg: KernelConfig & { [THIN_MARK]: true } = {
    kernelName: FusedConv2D,
    backendName,
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const a = attrs as unknown as FusedConv2DAttrs;
      const strides = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
      const dil =
        a.dilations === undefined
          ? [1, 1]
          : typeof a.dilations === 'number'
            ? [a.dilations, a.dilations]
            : a.dilations;
      const simple =
        (a.dataFormat === undefined || a.dataFormat === 'NHWC') &&
        strides[0] === 1 &&
        strides[1] === 1 &&
        dil[0] === 1 &&
        dil[1] === 1 &&
        (a.activation === 'linear' || a.activation === 'relu') &&
        !inputs.preluActivationWeights;
      if (simple) {
        const x = inputs.x as TensorInfo;
        const filter = inputs.filter as TensorInfo;
        const info = backend_util.computeConv2DInfo(
          x.shape as [number, number, number, number],
          filter.shape as [number, number, number, number],
          [1, 1],
          [1, 1],
          a.pad,
          a.dimRoundingMode,
          false,
          'channelsLast',
        );
        const bias = (inputs.bias as TensorInfo | undefined) ?? null;
        const pad = {
          top: info.padInfo.top,
          left: info.padInfo.left,
          outHeight: info.outHeight,
          outWidth: info.outWidth,
        };
        const relu = a.activation === 'relu';
        const y =
          thinConv(backend as KernelBackend, x, filter, bias, pad, relu) ??
          winogradConv(backend as KernelBackend, x, filter, bias, pad, relu);
        if (y) return y;
      }
      return original.kernelFunc(args);
    },
    [THIN_MARK]: true,
  };
  registerKernel(cfg);
}
