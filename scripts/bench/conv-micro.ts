/**
 * `node --import tsx scripts/bench/conv-micro.ts [batch] [size] [reps]`: one 32→32 3×3 layer on wasm,
 * forward (bias + ReLU) and input gradient, XNNPACK's direct kernel against our Winograd kernel in the
 * same run (median wall time), with the relative difference of the outputs. A measurement, not a test.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../../src-main/compute/backend.js';
import { useWinograd } from '../../src-main/compute/kernels/conv-winograd.js';
const [B, S, reps] = [
  Number(process.argv[2] ?? 4),
  Number(process.argv[3] ?? 256),
  Number(process.argv[4] ?? 5),
];
await initBackend({ prefer: 'wasm' });
const x = tf.randomUniform([B, S, S, 32], -1, 1, 'float32', 1) as tf.Tensor4D;
const w = tf.randomUniform([3, 3, 32, 32], -0.2, 0.2, 'float32', 2) as tf.Tensor4D;
const b = tf.randomUniform([32], -0.1, 0.1, 'float32', 3) as tf.Tensor1D;
const fwd = () => tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' });
const bwd = () => tf.conv2dTranspose(x, w, [B, S, S, 32], 1, 'same');
const time = (f: () => tf.Tensor) => {
  const ts: number[] = [];
  let out: Float32Array | null = null;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const y = f();
    const d = y.dataSync() as Float32Array;
    ts.push(performance.now() - t);
    if (!out) out = d.slice();
    y.dispose();
  }
  ts.sort((a, c) => a - c);
  return { ms: ts[Math.floor(ts.length / 2)], out: out! };
};
const res: Record<string, number> = {};
for (const [name, f] of [
  ['fwd', fwd],
  ['bwdInput', bwd],
] as const) {
  useWinograd(false);
  const d = time(f);
  useWinograd(true);
  const wq = time(f);
  let num = 0,
    den = 0;
  for (let i = 0; i < d.out.length; i++) {
    num += (d.out[i] - wq.out[i]) ** 2;
    den += d.out[i] ** 2;
  }
  console.log(
    `${name} B=${B} S=${S}: direct ${d.ms.toFixed(1)} ms, winograd ${wq.ms.toFixed(1)} ms, ratio ${(d.ms / wq.ms).toFixed(2)}, rel ${Math.sqrt(num / den).toExponential(2)}, GFLOP/s wino-equiv ${((2 * 9 * 32 * 32 * B * S * S) / wq.ms / 1e6).toFixed(1)}`,
  );
}
