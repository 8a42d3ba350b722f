/**
 * Teacher outputs cached across epochs: the attention and KD (imitation on) steps give exactly the
 * losses of recomputing the teacher every batch; the teacher runs once per slice, not per epoch;
 * with imitation off the KD step never runs the teacher; a cache over its memory budget spills to a
 * file that is removed afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultDistillConfig, type DistillConfig, type RunKind } from '../../src-main/contract/domain.js';
import { initBackend } from '../../src-main/compute/backend.js';
import { createNetwork, type Network } from '../../src-main/networks/index.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { buildSliceBank } from '../../src-main/distill/slice-bank.js';
import { trainRun, type EpochRecord } from '../../src-main/distill/trainer.js';

await initBackend({ prefer: 'wasm' });

const SIZE = 16;
const split = loadDataSplit(undefined, SIZE);
const base = defaultDistillConfig('recon', {
  kind: 'mask',
  mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
});
const train = buildSliceBank(split.train, base.degradation);
const val = buildSliceBank(split.val, base.degradation);

/** The teacher, counting its forward passes (whole, or to its last attention layer). */
function countingTeacher(): { net: Network; calls: () => number } {
  const net = createNetwork(base.teacher, 7);
  let calls = 0;
  const apply = net.apply.bind(net);
  const maps = net.attentionMaps.bind(net);
  net.apply = (x) => {
    calls++;
    return apply(x);
  };
  net.attentionMaps = (x) => {
    calls++;
    return maps(x);
  };
  return { net, calls: () => calls };
}

async function run(kind: RunKind, config: DistillConfig, cacheTeacher: boolean, cacheDir?: string) {
  const teacher = countingTeacher();
  const net = createNetwork(config.student, 3);
  const epochs: EpochRecord[] = [];
  const r = await trainRun(
    { kind, runId: 1, net, teacher: teacher.net, train, val, config, cacheTeacher, cacheDir },
    {
      onEvent: () => {},
      onEpoch: async (rec) => void epochs.push(rec),
      loadCheckpoint: async () => null,
      shouldStop: () => false,
    },
  );
  net.dispose();
  teacher.net.dispose();
  return { r, epochs, calls: teacher.calls() };
}

const cfg = (imitation: DistillConfig['imitation']): DistillConfig => ({
  ...base,
  imitation,
  training: { ...base.training, epochs: 3 },
});
const losses = (e: EpochRecord[]) => e.map((x) => [x.trainLoss, x.valLoss]);
const batches = (n: number) => Math.ceil(n / base.training.batchSize);

test('attention step: cached teacher maps give the same losses; the teacher runs once per slice', async () => {
  const plain = await run('attention', cfg('off'), false);
  const cached = await run('attention', cfg('off'), true);
  assert.deepEqual(losses(cached.epochs), losses(plain.epochs));
  assert.equal(plain.calls, 3 * (batches(train.count) + batches(val.count)));
  assert.equal(cached.calls, batches(train.count) + batches(val.count));
});

test('kd step with imitation: cached teacher reconstructions give the same losses', async () => {
  for (const mode of ['unit', 'alpha'] as const) {
    const plain = await run('kd', cfg(mode), false);
    const cached = await run('kd', cfg(mode), true);
    assert.deepEqual(losses(cached.epochs), losses(plain.epochs), mode);
    assert.equal(cached.calls, batches(train.count), 'train slices only: kd validates against the target');
  }
});

test('kd step with imitation off never runs the teacher', async () => {
  for (const cache of [true, false]) {
    const r = await run('kd', cfg('off'), cache);
    assert.equal(r.calls, 0);
    assert.equal(r.epochs.length, 3);
  }
});

test('a cache over its memory budget spills to a file, same losses, file removed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-tcache-'));
  const prev = process.env.KDMRI_TEACHER_CACHE_MB;
  process.env.KDMRI_TEACHER_CACHE_MB = '0.01'; // 10 KiB: a few slices in memory, the rest on disk
  try {
    const plain = await run('attention', cfg('off'), false);
    const spilled = await run('attention', cfg('off'), true, dir);
    assert.deepEqual(losses(spilled.epochs), losses(plain.epochs));
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    if (prev === undefined) delete process.env.KDMRI_TEACHER_CACHE_MB;
    else process.env.KDMRI_TEACHER_CACHE_MB = prev;
  }
});
