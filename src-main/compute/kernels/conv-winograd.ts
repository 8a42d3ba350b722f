/**
 * The wide 3×3 convolutions on the wasm backend (C % 4 = 0, O % 8 = 0, C ≥ 8: the 32→32 layers that
 * hold almost all of a DC-CNN's work) by our Winograd kernels winograd_rows / winograd6_rows
 * (wasm-kernels.ts, wasm/winograd.c): F(4×4, 3×3) or F(6×6, 3×3) by output size (WasmKernels.winogradTile),
 * a quarter or a fifth of the direct form's multiply-adds, bias and ReLU fused into the output transform. Used by FusedConv2D (forward) and Conv2DBackpropInput (the input
 * gradient is a forward conv with the filter flipped in space and in/out swapped), registered in
 * conv-thin.ts and conv-backprop.ts. Conventions: NHWC, HWIO, float32, stride 1, dilation 1.
 */
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { makeF32, readF32, release } from './backend-io.js';
import { WasmKernels, addressOf, isWasmBackend, wasmKernelsFor, type WinogradTile } from './wasm-kernels.js';

/** Top/left zero padding and the output size (bottom/right padding follows from them). */
export type ConvPad = { top: number; left: number; outHeight: number; outWidth: number };

let enabled = true;

/**
 * Transformed filters by the filter's data (a WeakMap on tfjs' dataId objects: new weights, as after an
 * optimizer step, are new data). Inference runs the same weights slice after slice, and the transform
 * would otherwise be paid per layer per call. A miss transforms in wasm on all threads
 * (winograd_filter_transform_rows: measured at 4×256×256, 32→32, 2 threads, the forward 0.45 ms faster
 * than with the transform in JS, as in every training step, where the weights are new).
 */
const transformed = new WeakMap<object, Map<WinogradTile, Float32Array>>();

/** Tests and the bench only: run the wide layers on XNNPACK's direct kernel instead. */
export function useWinograd(on: boolean): void {
  enabled = on;
}

let tileOverride: WinogradTile | null = null;

/** Tests and the bench only: one tile size for every layer (null: by output size, WasmKernels.winogradTile). */
export function forceWinogradTile(tile: WinogradTile | null): void {
  tileOverride = tile;
}

/** Whether winogradConv runs this layer's shapes on this backend (else it returns null). */
export function winogradApplies(backend: KernelBackend, C: number, O: number, kh = 3, kw = 3): boolean {
  return (
    enabled &&
    isWasmBackend(backend) &&
    WasmKernels.winograd(kh, kw, C, O) &&
    wasmKernelsFor(backend) !== null
  );
}

/**
 * y = act(conv(x, w) + bias) by Winograd, or null when the backend, shapes or dtypes are not ones it
 * runs (the caller then uses another kernel). `w` is the HWIO filter as a tensor or as its values, or
 * `{ flipOf: f }`: f flipped in space with in/out swapped (f [kh][kw][O][C]), the filter of f's conv's
 * input gradient.
 * `mask` (x's shape), when given, zeroes x where mask ≤ 0: a ReLU layer's input gradient from dy and
 * the layer's output, without the masked dy as a tensor.
 */
export function winogradConv(
  backend: KernelBackend,
  x: TensorInfo,
  w: TensorInfo | { shape: number[]; values: Float32Array } | { flipOf: TensorInfo },
  bias: TensorInfo | null,
  pad: ConvPad,
  relu: boolean,
  mask: TensorInfo | null = null,
): TensorInfo | null {
  if (mask && (mask.dtype !== 'float32' || !x.shape.every((v, i) => v === mask.shape[i]))) return null;
  if (!enabled || !isWasmBackend(backend) || x.shape.length !== 4 || x.dtype !== 'float32') return null;
  const [B, H, W, C] = x.shape;
  const wt = 'flipOf' in w ? w.flipOf : w;
  const [kh, kw, wc, O] =
    'flipOf' in w ? [...w.flipOf.shape.slice(0, 2), ...w.flipOf.shape.slice(2).reverse()] : w.shape;
  if (wc !== C || !WasmKernels.winograd(kh, kw, C, O)) return null;
  if ('dtype' in wt && wt.dtype !== 'float32') return null;
  if (bias && (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== O)) return null;
  const kernels = wasmKernelsFor(backend);
  if (!kernels) return null;
  const tile = tileOverride ?? WasmKernels.winogradTile(pad.outHeight, pad.outWidth);
  const uShape = [(tile + 2) ** 2, C, O];
  let u: TensorInfo;
  if ('values' in w) u = makeF32(backend, uShape, WasmKernels.winogradFilter(w.values, C, O, tile));
  else if ('flipOf' in w) {
    // transformed on all threads from the layer's own filter: no flipped copy, no transform in JS
    u = backend.makeOutput(uShape, 'float32');
    kernels.winogradFilterInPlace(addressOf(backend, w.flipOf), addressOf(backend, u), C, O, tile, true);
  } else {
    const key = w.dataId as object;
    const byTile = transformed.get(key) ?? new Map<WinogradTile, Float32Array>();
    const cached = byTile.get(tile);
    if (cached) u = makeF32(backend, uShape, cached);
    else {
      u = backend.makeOutput(uShape, 'float32');
      kernels.winogradFilterInPlace(addressOf(backend, w), addressOf(backend, u), C, O, tile, false);
      byTile.set(tile, readF32(backend, u).slice());
      transformed.set(key, byTile);
    }
  }
  const scratch = backend.makeOutput([WasmKernels.winogradScratchFloats(C, O, tile)], 'float32');
  const y = backend.makeOutput([B, pad.outHeight, pad.outWidth, O], 'float32');
  try {
    kernels.convWinograd({
      x: addressOf(backend, x),
      mask: mask ? addressOf(backend, mask) : 0,
      tile,
      u: addressOf(backend, u),
      bias: bias ? addressOf(backend, bias) : 0,
      y: addressOf(backend, y),
      scratch: addressOf(backend, scratch),
      batch: B,
      H,
      W,
      oH: pad.outHeight,
      oW: pad.outWidth,
      C,
      O,
      padTop: pad.top,
      padLeft: pad.left,
      relu,
    });
  } catch (e) {
    release(backend, y);
    throw e;
  } finally {
    release(backend, u);
    release(backend, scratch);
  }
  return y;
}
