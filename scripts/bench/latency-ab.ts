/**
 * `node --import tsx scripts/bench/latency-ab.ts [teacher|student] [batch] [rounds]`: batch-1 inference
 * latency (the viewer's case, 256×256) with this code's kernels against the previous ones, alternating
 * in one process round by round (a shared machine's load changes too fast for separate runs): A = wide
 * layers by Winograd F(4×4) and the DC layer's FFTs in JS; B = F(6×6) where it wins and the DC layer by
 * dc_fft. Prints the median wall and CPU time of each (CPU time, all threads of the process, is the
 * steadier figure on a loaded machine) and their ratios, and the per-kernel medians of B (tf.profile).
 * A measurement, not a test. KDMRI_WASM_THREADS=N as for the app.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src-main/compute/backend.js';
import { forceWinogradTile } from '../../src-main/compute/kernels/conv-winograd.js';
import { useWasmDc } from '../../src-main/compute/kernels/data-consistency.js';
import { PRESET_NETWORKS } from '../../src-main/contract/domain.js';
import { createNetwork } from '../../src-main/networks/index.js';

const key = process.argv[2] === 'student' ? 'dccnnStudent' : 'dccnnTeacher';
const B = Number(process.argv[3] ?? 1);
const rounds = Number(process.argv[4] ?? 9);
const n = 256;
const info = await initBackend({ prefer: 'wasm' });
const net = createNetwork(PRESET_NETWORKS[key], 42);
const input = tf.randomUniform([B, n, n, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
const kspace = {
  re: tf.zeros([B, n, n]) as tf.Tensor3D,
  im: tf.zeros([B, n, n]) as tf.Tensor3D,
  mask: tf.zeros([n, n]) as tf.Tensor2D,
};
const forward = () => {
  const y = tf.tidy(() => net.apply({ input, kspace }).out);
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
};
const variants: [string, () => void][] = [
  ['A (F(4×4), DC in JS)', () => (forceWinogradTile(4), useWasmDc(false))],
  ['B (this code)', () => (forceWinogradTile(null), useWasmDc(true))],
];
const ms: number[][] = variants.map(() => []);
const cpu: number[][] = variants.map(() => []);
const outs: Float32Array[] = [];
for (let r = -1; r < rounds; r++)
  variants.forEach(([, set], k) => {
    set();
    const t = performance.now();
    const c = process.cpuUsage();
    const y = forward();
    const u = process.cpuUsage(c);
    if (r >= 0) {
      ms[k].push(performance.now() - t);
      cpu[k].push((u.user + u.system) / 1000);
    } else outs[k] = y; // round −1 warms both up
  });
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
let num = 0;
let den = 0;
for (let i = 0; i < outs[0].length; i++) {
  num = Math.max(num, Math.abs(outs[0][i] - outs[1][i]));
  den = Math.max(den, Math.abs(outs[0][i]));
}
console.log(`${key}, ${B}×${n}×${n}, wasm ${info.threads} thread(s), ${rounds} alternating rounds`);
variants.forEach(([name], k) =>
  console.log(
    `  ${name.padEnd(24)} wall median ${median(ms[k]).toFixed(1)} ms (min ${Math.min(...ms[k]).toFixed(1)}), ` +
      `CPU median ${median(cpu[k]).toFixed(1)} ms`,
  ),
);
console.log(
  `  A/B wall ${(median(ms[0]) / median(ms[1])).toFixed(2)}, CPU ${(median(cpu[0]) / median(cpu[1])).toFixed(2)}; ` +
    `outputs differ by ${(num / den).toExponential(1)} of the largest`,
);
const per = new Map<string, number[]>();
for (let r = 0; r < 3; r++) {
  const p = await tf.profile(() => void forward());
  const by = new Map<string, number>();
  for (const k of p.kernels) {
    if (k.name === 'forward' || k.name === 'unnamed scope') continue;
    const name =
      k.name === 'FusedConv2D' ? `FusedConv2D ${k.inputShapes[0]?.[3]}→${k.outputShapes[0]?.[3]}` : k.name;
    by.set(name, (by.get(name) ?? 0) + (Number(k.kernelTimeMs) || 0));
  }
  for (const [name, v] of by) per.set(name, [...(per.get(name) ?? []), v]);
}
console.log('  B by kernel (median of 3 profiled forwards):');
for (const [name, v] of [...per].sort((a, b) => median(b[1]) - median(a[1])))
  console.log(`    ${name.padEnd(26)} ${median(v).toFixed(1)} ms`);
