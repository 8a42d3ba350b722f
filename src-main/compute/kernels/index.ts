/**
 * KD-MRI's own tfjs kernels:
 *  - Conv2DBackpropFilter and Conv2DBackpropInput for the wasm backend, built from its fast forward
 *    conv (see conv-backprop.ts), so training on wasm works and is fast;
 *  - FusedConv2D for wasm's thin layers (one input or output channel) and wide 3×3 layers (Winograd) by
 *    our WebAssembly kernels (see conv-thin.ts, conv-winograd.ts), the backend's own kernel otherwise;
 *  - a no-copy Identity for wasm (tfjs clones every tensor saved for a gradient; see identity.ts);
 *  - KdmriChannelEnergy and KdmriChannelEnergyGrad for wasm: the attention energy Σ_c a_c² and its
 *    gradient step in one threaded pass each (see channel-energy.ts);
 *  - KdmriDataConsistency (+ KdmriDataConsistencyGrad and its registered gradient) for the wasm, cpu and
 *    webgpu backends (see data-consistency.ts: float64 FFT on cpu/wasm, DFT-matrix products on webgpu).
 *
 * Call registerKdmriKernels() once before running networks; it is idempotent. It imports the wasm backend
 * package first so that the package's own kernel registrations cannot later overwrite ours, and
 * @tensorflow/tfjs for tfjs-core's gradient functions.
 */
// The tfjs-core node bundle registers no gradient functions (tf.grad fails with "gradient function not
// found for Sum"); the union package's node bundle registers all of them into the shared registry.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerGradient, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { registerChannelEnergy } from './channel-energy.js';
import { registerConvBackprop } from './conv-backprop.js';
import { registerThinConv } from './conv-thin.js';
import { registerDataConsistency } from './data-consistency.js';
import { registerSharedIdentity } from './identity.js';

export {
  DC_GRAD_KERNEL,
  DC_KERNEL,
  applyDiagonalDc,
  matrixDcKernels,
  type DcGradPart,
} from './data-consistency.js';
export { conv2dBackpropFilterVia, conv2dBackpropInputVia } from './conv-backprop.js';

/** Backends that get the data-consistency kernel ('tensorflow' = tfjs-node, when present: it reads synchronously too). */
export const DC_BACKENDS = ['wasm', 'cpu', 'webgpu', 'tensorflow'] as const;

let done = false;

export function registerKdmriKernels(): void {
  if (done) return;
  registerConvBackprop('wasm', registerKernel, unregisterKernel);
  registerThinConv('wasm', registerKernel, unregisterKernel);
  registerSharedIdentity('wasm', registerKernel, unregisterKernel);
  registerChannelEnergy('wasm', registerKernel);
  registerDataConsistency(DC_BACKENDS, registerKernel, registerGradient);
  done = true;
}
