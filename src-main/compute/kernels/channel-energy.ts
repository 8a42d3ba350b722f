/**
 * The attention energy E = Σ_c a_c² [B,H,W] of an activation a [B,H,W,C] and the step of its gradient
 * that the conv stacks take (networks/conv.ts energyStack), as kernels for the wasm backend run by our
 * WebAssembly kernels (wasm-kernels.ts, wasm/energy.c) on all threads:
 *
 *   KDMRI_CHANNEL_ENERGY       {x: a}           → E = Σ_c a_c²
 *   KDMRI_CHANNEL_ENERGY_GRAD  {a, dE[, g]}     → g + a · (2 dE)  (dE broadcast over channels; a · (2 dE) without g)
 *
 * tfjs-wasm ran these as Square + Sum and Multiply (with broadcast) + Add, single-threaded, five
 * passes over an activation-sized tensor per cascade and step, two of them writing one. The results
 * are bitwise those kernels' (the same float32 operations in the same order; see energy.c). Where
 * the backend's memory cannot be reached the kernels run the backend's own kernels instead; other
 * backends do not get these kernels (conv.ts then uses tf ops). Layout NHWC, float32.
 */
import { getKernel, type KernelBackend, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';
import { kernelOf, makeF32, release, sameShape } from './backend-io.js';
import { addressOf, isWasmBackend, wasmKernelsFor } from './wasm-kernels.js';

export const KDMRI_CHANNEL_ENERGY = 'KdmriChannelEnergy';
export const KDMRI_CHANNEL_ENERGY_GRAD = 'KdmriChannelEnergyGrad';

let useKernels = true;

/**
 * Tests and the bench only: run the backend's own kernels (Square + Sum; Multiply + Add) instead of
 * ours, as where the backend's memory cannot be reached.
 */
export function useChannelEnergyKernels(on: boolean): void {
  useKernels = on;
}

/** Our kernel runner for this backend, or null: the backend's own kernels then. */
function runnerFor(backend: KernelBackend) {
  return useKernels && isWasmBackend(backend) ? wasmKernelsFor(backend) : null;
}

function checkActivation(name: string, a: TensorInfo): [number, number, number, number] {
  if (a.shape.length !== 4 || a.dtype !== 'float32')
    throw new Error(`${name}: expected a float32 [B,H,W,C] activation, got ${a.dtype} [${a.shape}]`);
  return a.shape as [number, number, number, number];
}

function channelEnergy(backendName: string, backend: KernelBackend, a: TensorInfo): TensorInfo {
  const [B, H, W, C] = checkActivation(KDMRI_CHANNEL_ENERGY, a);
  const runner = runnerFor(backend);
  if (runner && isWasmBackend(backend)) {
    const e = backend.makeOutput([B, H, W], 'float32');
    runner.channelEnergy({ a: addressOf(backend, a), e: addressOf(backend, e), rows: B * H, W, C });
    return e;
  }
  const sq = kernelOf('Square', backendName)({ inputs: { x: a }, backend }) as TensorInfo;
  try {
    return kernelOf(
      'Sum',
      backendName,
    )({
      inputs: { x: sq },
      backend,
      attrs: { axis: [3], keepDims: false },
    }) as TensorInfo;
  } finally {
    release(backend, sq);
  }
}

function channelEnergyGrad(
  backendName: string,
  backend: KernelBackend,
  a: TensorInfo,
  dE: TensorInfo,
  g: TensorInfo | undefined,
): TensorInfo {
  const [B, H, W, C] = checkActivation(KDMRI_CHANNEL_ENERGY_GRAD, a);
  if (!sameShape(dE.shape, [B, H, W]) || dE.dtype !== 'float32')
    throw new Error(
      `${KDMRI_CHANNEL_ENERGY_GRAD}: dE is ${dE.dtype} [${dE.shape}], expected float32 [${[B, H, W]}]`,
    );
  if (g && (!sameShape(g.shape, a.shape) || g.dtype !== 'float32'))
    throw new Error(
      `${KDMRI_CHANNEL_ENERGY_GRAD}: g is ${g.dtype} [${g.shape}], expected float32 [${a.shape}]`,
    );
  const runner = runnerFor(backend);
  if (runner && isWasmBackend(backend)) {
    const out = backend.makeOutput([B, H, W, C], 'float32');
    runner.channelEnergyGrad({
      a: addressOf(backend, a),
      de: addressOf(backend, dE),
      g: g ? addressOf(backend, g) : 0,
      out: addressOf(backend, out),
      rows: B * H,
      W,
      C,
    });
    return out;
  }
  // the tf ops conv.ts runs on other backends: a · expandDims(dE · 2, 3) (+ g)
  const two = makeF32(backend, [], Float32Array.of(2));
  const temps: TensorInfo[] = [two];
  try {
    const mul = kernelOf('Multiply', backendName);
    const dE2 = mul({ inputs: { a: dE, b: two }, backend }) as TensorInfo;
    temps.push(dE2);
    const dE4 = kernelOf(
      'Reshape',
      backendName,
    )({
      inputs: { x: dE2 },
      backend,
      attrs: { shape: [B, H, W, 1] },
    }) as TensorInfo;
    temps.push(dE4);
    const fromEnergy = mul({ inputs: { a, b: dE4 }, backend }) as TensorInfo;
    if (!g) return fromEnergy;
    temps.push(fromEnergy);
    return kernelOf('Add', backendName)({ inputs: { a: g, b: fromEnergy }, backend }) as TensorInfo;
  } finally {
    for (const t of temps) release(backend, t);
  }
}

/** Register both kernels for `backendName` (the wasm backend). Idempotent. */
export function registerChannelEnergy(backendName: string, registerKernel: (c: KernelConfig) => void): void {
  if (!getKernel(KDMRI_CHANNEL_ENERGY, backendName)) {
    registerKernel({
      kernelName: KDMRI_CHANNEL_ENERGY,
      backendName,
      kernelFunc: ({ inputs, backend }) =>
        channelEnergy(backendName, backend as KernelBackend, inputs.x as TensorInfo),
    });
  }
  if (!getKernel(KDMRI_CHANNEL_ENERGY_GRAD, backendName)) {
    registerKernel({
      kernelName: KDMRI_CHANNEL_ENERGY_GRAD,
      backendName,
      kernelFunc: ({ inputs, backend }) =>
        channelEnergyGrad(
          backendName,
          backend as KernelBackend,
          inputs.a as TensorInfo,
          inputs.dE as TensorInfo,
          inputs.g as TensorInfo | undefined,
        ),
    });
  }
}
