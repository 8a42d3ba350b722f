/**
 * The attention step's own cost: one warm training step of the attention step (the teacher's maps
 * given, as the cache gives them) against one of the KD step with imitation off, on the student at
 * size×size, batch B, real slices; alternated, median step times, then tf.profile per kernel and the
 * peak tensor memory of each.
 * `node --import tsx scripts/bench/attention-profile.ts [size 256] [batch 4]`
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src-main/compute/backend.js';
import { defaultDistillConfig } from '../../src-main/contract/domain.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { attentionLoss, l1 } from '../../src-main/distill/losses.js';
import { buildSliceBank, makeBatch } from '../../src-main/distill/slice-bank.js';
import { createNetwork } from '../../src-main/networks/index.js';
import { profileStep } from './profile.js';

const size = Number(process.argv[2] ?? 256);
const batch = Number(process.argv[3] ?? 4);
const info = await initBackend({});
const cfg = defaultDistillConfig('recon', {
  kind: 'mask',
  mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
});
const bank = buildSliceBank(loadDataSplit(undefined, size).train, cfg.degradation);
const b = makeBatch(
  bank,
  Array.from({ length: batch }, (_, i) => i),
);
const teacher = createNetwork(cfg.teacher, 7);
const energy = tf.tidy(() => teacher.apply({ input: b.input, kspace: b.kspace }).attention);
const net = createNetwork(cfg.student, 3);
const opt = tf.train.adam(1e-3);
const losses = {
  attention: () => attentionLoss(energy, net.attentionMaps({ input: b.input, kspace: b.kspace }), cfg.atNorm),
  kd: () => l1(net.apply({ input: b.input, kspace: b.kspace, attention: false }).out, b.target),
};
type Step = keyof typeof losses;
const step = (k: Step) => {
  const t = performance.now();
  const loss = opt.minimize(losses[k], true, net.variables)!;
  loss.dataSync();
  loss.dispose();
  return performance.now() - t;
};
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const steps: Step[] = ['attention', 'kd'];
steps.forEach(step);
const times: Record<Step, number[]> = { attention: [], kd: [] };
for (let i = 0; i < 5; i++) for (const k of steps) times[k].push(step(k));
console.log(
  `backend ${info.name}, ${size}×${size}, batch ${batch}; step ms, median of 5 alternated: ` +
    `attention ${median(times.attention).toFixed(0)}, kd (imitation off) ${median(times.kd).toFixed(0)}`,
);
for (const k of steps) {
  const p = await profileStep(() => void step(k));
  const total = p.kernels.reduce((s, r) => s + r.ms, 0);
  console.log(`\n${k}: kernels ${total.toFixed(0)} ms, peak tensors ${p.peak_tensor_mb.toFixed(0)} MB`);
  for (const r of p.kernels)
    console.log(`  ${r.kernel.padEnd(30)} ${String(r.calls).padStart(4)} ${r.ms.toFixed(1).padStart(8)}`);
}
