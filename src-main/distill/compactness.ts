/**
 * What distillation buys, per model: parameters, weights on disk, convolution FLOPs per slice, and
 * measured latency per 256×256 slice on the current backend (warm median; the first, cold call is
 * reported separately because it includes kernel compilation and allocation).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName, Compactness } from '../contract/domain.js';

export type { Compactness };
import { convFlopsPerSlice, type Network } from '../networks/index.js';

export function measureLatency(net: Network, size: number, runs: number): { warm: number; cold: number } {
  const input = tf.zeros([1, size, size, 1]) as tf.Tensor4D;
  const kspace =
    net.spec.arch === 'dccnn'
      ? {
          re: tf.zeros([1, size, size]) as tf.Tensor3D,
          im: tf.zeros([1, size, size]) as tf.Tensor3D,
          mask: tf.zeros([size, size]) as tf.Tensor2D,
        }
      : undefined;
  const once = () => {
    const t = performance.now();
    const y = tf.tidy(() => net.apply({ input, kspace }).out);
    y.dataSync();
    y.dispose();
    return performance.now() - t;
  };
  const cold = once();
  const warm = Array.from({ length: runs }, once).sort((a, b) => a - b);
  tf.dispose([input, ...(kspace ? [kspace.re, kspace.im, kspace.mask] : [])]);
  return { warm: warm[Math.floor(warm.length / 2)], cold };
}

export function compactness(
  net: Network,
  bytesOnDisk: number,
  backend: BackendName,
  size = 256,
  runs = 3,
): Compactness {
  const { warm, cold } = measureLatency(net, size, runs);
  return {
    params: net.paramCount(),
    bytesOnDisk,
    flopsPerSlice: convFlopsPerSlice(net.spec, size, size),
    size,
    latencyMsWarm: warm,
    latencyMsCold: cold,
    backend,
  };
}
