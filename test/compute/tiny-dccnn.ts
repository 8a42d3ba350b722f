/**
 * The set-up shared by the backend tests that train a tiny DC-CNN in a child process (a tfjs backend
 * is process-wide): an ES-module prelude, run from the repository root, that picks the backend and
 * defines `tf`, `l1`, `info` (the backend chosen), `net`, `input`, `target` and `kspace` {re, im, mask}
 * (a mask of every third row, k-space of the target).
 */
export function tinyDcCnnPrelude(o: { backend: 'wasm' | 'webgpu'; nf: number; size: number }): string {
  return `
    import * as tf from '@tensorflow/tfjs-core';
    import { initBackend } from './src-main/compute/backend.ts';
    import { createNetwork } from './src-main/networks/index.ts';
    import { l1 } from './src-main/distill/losses.ts';
    const info = await initBackend({ prefer: '${o.backend}', allowSoftwareGpu: true });
    const net = createNetwork({ arch: 'dccnn', nc: 2, nd: 3, nf: ${o.nf}, residual: false, dcLambda: null, atLayer: 2 }, 42);
    const n = ${o.size}, b = 2;
    const input = tf.tensor4d(Float32Array.from({ length: b * n * n }, (_, i) => (Math.sin(i * 0.37) + 1) / 2), [b, n, n, 1]);
    const target = tf.tensor4d(Float32Array.from({ length: b * n * n }, (_, i) => (Math.cos(i * 0.11) + 1) / 2), [b, n, n, 1]);
    const mask = tf.tensor2d(Float32Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) % 3 === 0 ? 1 : 0)), [n, n]);
    const re = tf.mul(tf.squeeze(target, [3]), mask), im = tf.zerosLike(re);
    const kspace = { re, im, mask };
`;
}
