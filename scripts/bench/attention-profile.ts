/**
 * Per-kernel profile of one warm training step of the attention step (teacher energies cached, as
 * the trainer feeds them) against the KD step with imitation off, on the student at size×size,
 * batch B (the teacher-cache bench's setting). `node --import tsx scripts/bench/attention-profile.ts [size] [batch]`
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src-main/compute/backend.js';
import { defaultDistillConfig } from '../../src-main/contract/domain.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { attentionLoss, l1 } from '../../src-main/distill/losses.js';
import { buildSliceBank, makeBatch } from '../../src-main/distill/slice-bank.js';
import { createNetwork } from '../../src-main/networks/index.js';

const size = Number(process.argv[2] ?? 256);
const batch = Number(process.argv[3] ?? 4);
const info = await initBackend({});
const split = loadDataSplit(undefined, size);
const cfg = defaultDistillConfig('recon', {
  kind: 'mask',
  mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
});
const bank = buildSliceBank(split.train, cfg.degradation);
const idx = Array.from({ length: batch }, (_, i) => i);
const b = makeBatch(bank, idx);
const teacher = createNetwork(cfg.teacher, 7);
const energy = tf.tidy(() => teacher.apply({ input: b.input, kspace: b.kspace }).attention);
const net = createNetwork(cfg.student, 3);
const opt = tf.train.adam(1e-3);
const steps = {
  attention: () => attentionLoss(energy, net.attentionMaps({ input: b.input, kspace: b.kspace }), cfg.atNorm),
  kd: () => l1(net.apply({ input: b.input, kspace: b.kspace, attention: false }).out, b.target),
};
const step = (k: keyof typeof steps) => {
  const t = performance.now();
  const loss = opt.minimize(steps[k], true, net.variables)!;
  loss.dataSync();
  loss.dispose();
  return performance.now() - t;
};
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
step('attention');
step('kd');
const times: Record<string, number[]> = { attention: [], kd: [] };
for (let i = 0; i < 5; i++) for (const k of ['attention', 'kd'] as const) times[k].push(step(k));
console.log(
  `backend ${info.name}; step ms median of 5: attention ${median(times.attention).toFixed(0)}, kd ${median(times.kd).toFixed(0)}`,
);
for (const k of ['attention', 'kd'] as const) {
  const p = await tf.profile(() => void step(k));
  const by = new Map<string, { calls: number; ms: number }>();
  for (const q of p.kernels) {
    if (q.name === 'forward') continue;
    const e = by.get(q.name) ?? { calls: 0, ms: 0 };
    e.calls++;
    e.ms += Number(q.kernelTimeMs) || 0;
    by.set(q.name, e);
  }
  const rows = [...by.entries()].sort((x, y) => y[1].ms - x[1].ms);
  const total = rows.reduce((s, r) => s + r[1].ms, 0);
  console.log(`\n${k}: kernels ${total.toFixed(0)} ms, peak ${(p.peakBytes / 2 ** 20).toFixed(0)} MB`);
  for (const [n, e] of rows)
    console.log(`  ${n.padEnd(28)} ${String(e.calls).padStart(4)} ${e.ms.toFixed(1).padStart(8)}`);
}
