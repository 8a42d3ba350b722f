/**
 * A no-copy Identity kernel for the wasm backend.
 *
 * tfjs-core clones (Identity) every tensor a kernel or customGrad saves for its gradient, and the wasm
 * backend's Identity copies the data, so training kept two extra activation-sized copies per conv layer
 * (≈ 67 MB per layer at 4×256×256×32). tfjs tensors are immutable and the wasm backend is
 * reference-counted (its Reshape already shares data the same way), so, like the cpu backend's Identity,
 * this one shares the buffer and increments its reference count.
 */
import {
  getKernel,
  Identity,
  type KernelBackend,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

const MARK = Symbol.for('kdmri.identity');

export function registerSharedIdentity(
  backendName: string,
  registerKernel: (c: KernelConfig) => void,
  unregisterKernel: (name: string, backend: string) => void,
): void {
  const current = getKernel(Identity, backendName) as (KernelConfig & { [MARK]?: true }) | undefined;
  if (current?.[MARK]) return;
  if (current) unregisterKernel(Identity, backendName);
  const cfg: KernelConfig & { [MARK]: true } = {
    kernelName: Identity,
    backendName,
    setupFunc: current?.setupFunc,
    kernelFunc: (args) => {
      const x = args.inputs.x as TensorInfo;
      // strings are stored outside the heap: keep the original behaviour
      if (x.dtype === 'string' && current) return current.kernelFunc(args);
      (args.backend as KernelBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
    [MARK]: true,
  };
  registerKernel(cfg);
}
