/** Per-kernel wall time of one training step (tf.profile), for the benches. */
import * as tf from '@tensorflow/tfjs-core';

export interface KernelTime {
  kernel: string;
  calls: number;
  ms: number;
}

export interface StepProfile {
  step_ms: number;
  peak_tensor_mb: number;
  kernels: KernelTime[];
}

/**
 * Ops with their own gradient (tf.customGrad, networks/conv.ts's multi-output stacks) appear as a
 * wrapper around the kernels they run, named 'forward' or after the enclosing scope (none: ''); their
 * time is their kernels', counted once.
 */
const WRAPPERS = new Set(['forward', '', 'unnamed scope']);

/** Wall time per kernel name over one call of `step` (tf.profile; outermost kernels only). */
export async function profileStep(step: () => void): Promise<StepProfile> {
  const t = performance.now();
  const p = await tf.profile(step);
  const stepMs = performance.now() - t;
  const by = new Map<string, KernelTime>();
  for (const k of p.kernels) {
    if (WRAPPERS.has(k.name)) continue;
    const e = by.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
    e.calls++;
    e.ms += Number(k.kernelTimeMs) || 0;
    by.set(k.name, e);
  }
  return {
    step_ms: stepMs,
    peak_tensor_mb: p.peakBytes / 2 ** 20,
    kernels: [...by.values()].sort((a, b) => b.ms - a.ms),
  };
}
