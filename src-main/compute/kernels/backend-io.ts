/**
 * Backend-neutral helpers for kernels written in plain JS: read a tensor's values and create an output
 * tensor from values, on the cpu, wasm and webgpu backends (they expose different method names).
 *
 * Only float32 data is handled here (everything in the networks is float32).
 */
import {
  getKernel,
  type DataId,
  type KernelBackend,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/** The parts of the wasm backend (tfjs-backend-wasm's BackendWasm) used here; it has no makeTensorInfo. */
interface WasmOutputBackend {
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number, values?: Float32Array): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/** The cpu and webgpu backends create tensors from values with makeTensorInfo. */
interface TensorInfoBackend {
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

function isWasm(b: KernelBackend): b is KernelBackend & WasmOutputBackend {
  const r = b as unknown as Partial<WasmOutputBackend>;
  return typeof r.makeOutput === 'function' && typeof r.typedArrayFromHeap === 'function';
}

function hasMakeTensorInfo(b: KernelBackend): b is KernelBackend & TensorInfoBackend {
  return typeof (b as unknown as Partial<TensorInfoBackend>).makeTensorInfo === 'function';
}

/**
 * The float32 values of a tensor. On wasm this is a view into the wasm heap (no copy): it is only valid
 * until the next allocation on that backend (heap growth detaches it), so read it before allocating.
 * On cpu it is the backend's own array. Never mutate the result.
 */
export function readF32(backend: KernelBackend, t: TensorInfo): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`kdmri kernels: expected a float32 tensor, got ${t.dtype}`);
  if (isWasm(backend)) return backend.typedArrayFromHeap(t);
  const v = backend.readSync(t.dataId as DataId);
  if (v instanceof Float32Array) return v;
  return Float32Array.from(v as ArrayLike<number>);
}

/**
 * A new float32 tensor on `backend` holding `values`. wasm copies them into its heap; cpu keeps the array
 * itself, so pass a fresh array the caller will not touch again.
 */
export function makeF32(backend: KernelBackend, shape: number[], values: Float32Array): TensorInfo {
  if (isWasm(backend)) return backend.makeOutput(shape, 'float32', undefined, values);
  if (hasMakeTensorInfo(backend)) return backend.makeTensorInfo(shape, 'float32', values);
  throw new Error('kdmri kernels: this backend can create neither outputs nor tensor infos');
}

/** Release an intermediate produced inside a kernel (reference-counted on every backend). */
export function release(backend: KernelBackend, t: TensorInfo): void {
  backend.disposeData(t.dataId as DataId);
}

/** A backend's registered kernel function, for a kernel of ours built on the backend's own kernels. */
export function kernelOf(name: string, backendName: string): KernelFunc {
  const k = getKernel(name, backendName);
  if (!k) throw new Error(`kdmri kernels: the '${backendName}' backend has no ${name} kernel to build on`);
  return k.kernelFunc;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
