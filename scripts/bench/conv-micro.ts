/**
 * `node --import tsx scripts/bench/conv-micro.ts [batch] [size] [reps]`: one 32→32 3×3 layer on wasm —
 * forward (bias + ReLU), input gradient, filter + bias gradient — the direct kernels (XNNPACK's, our
 * filter_bias_grad_rows) against our Winograd kernels, alternating in the same run (median wall and CPU time, all threads;
 * alternating keeps a shared machine's changing load out of the ratio), with the relative difference
 * of the results. A measurement, not a test.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src-main/compute/backend.js';
import { useWinograd } from '../../src-main/compute/kernels/conv-winograd.js';
import {
  KDMRI_FILTER_BIAS_GRAD,
  useWinogradFilterGrad,
} from '../../src-main/compute/kernels/conv-backprop.js';

const [B, S, reps] = [2, 3, 4].map((i, k) => Number(process.argv[i] ?? [4, 256, 5][k]));
const info = await initBackend({ prefer: 'wasm' });
const x = tf.randomUniform([B, S, S, 32], -1, 1, 'float32', 1) as tf.Tensor4D;
const w = tf.randomUniform([3, 3, 32, 32], -0.2, 0.2, 'float32', 2) as tf.Tensor4D;
const b = tf.randomUniform([32], -0.1, 0.1, 'float32', 3) as tf.Tensor1D;
const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 32, 32] };
const cases: [string, () => tf.Tensor, (on: boolean) => void][] = [
  [
    'forward',
    () => tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' }),
    useWinograd,
  ],
  ['input gradient', () => tf.conv2dTranspose(x, w, [B, S, S, 32], 1, 'same'), useWinograd],
  [
    'filter gradient',
    () => (tf.engine().runKernel(KDMRI_FILTER_BIAS_GRAD, { x, dy: x }, attrs as never) as tf.Tensor[])[0],
    useWinogradFilterGrad,
  ],
];
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
console.log(`${B}×${S}×${S}×32 → 32, ${info.threads} threads`);
for (const [name, f, use] of cases) {
  const ms: [number[], number[]] = [[], []];
  const cpu: [number[], number[]] = [[], []];
  const out: Float32Array[] = [];
  for (let i = 0; i < reps; i++)
    for (const k of [0, 1]) {
      use(k === 1);
      const t = performance.now();
      const c = process.cpuUsage();
      const y = f();
      const d = y.dataSync() as Float32Array;
      ms[k].push(performance.now() - t);
      const cu = process.cpuUsage(c);
      cpu[k].push((cu.user + cu.system) / 1000);
      if (i === 0) out[k] = d.slice();
      y.dispose();
    }
  use(true);
  let num = 0;
  let den = 0;
  for (let i = 0; i < out[0].length; i++) {
    num += (out[0][i] - out[1][i]) ** 2;
    den += out[0][i] ** 2;
  }
  const [d, wq] = ms.map(median);
  const [dc, wc] = cpu.map(median);
  console.log(
    `${name}: direct ${d.toFixed(1)} ms, Winograd ${wq.toFixed(1)} ms, direct/Winograd ${(d / wq).toFixed(2)}; CPU time ${dc.toFixed(0)} / ${wc.toFixed(0)} ms = ${(dc / wc).toFixed(2)}; ` +
      `relative difference ${Math.sqrt(num / den).toExponential(1)}, ${((2 * 9 * 32 * 32 * B * S * S) / wq / 1e6).toFixed(0)} GFLOP/s (direct-form FLOPs)`,
  );
}
