/**
 * The teacher cache's speed-up (distill/teacher-cache.ts): the attention step and the KD step with
 * imitation on ('unit'), each trained for a few epochs with the frozen teacher recomputed every batch
 * (the reference code's way, `cacheTeacher: false`) and with its outputs cached once per slice, on
 * real slices (the bundled Colin27 sample resampled to size×size). The KD step with imitation off
 * is timed too: it never runs the teacher, so it costs what the student baseline costs.
 *
 * Figures (9 epochs: with 5, the median of four epoch times of three batches each moved by up to 15 %
 * between runs on an idle machine): the median epoch time from the second epoch on (the cache is filled before the first
 * epoch, and that fill is reported as part of the run's total), teacher forward passes counted, and
 * losses compared (the cache must not change them).
 */
import {
  defaultDistillConfig,
  type DistillConfig,
  type RunKind,
  type Volume,
} from '../../src-main/contract/domain.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { buildSliceBank } from '../../src-main/distill/slice-bank.js';
import { trainRun, type EpochRecord } from '../../src-main/distill/trainer.js';
import { createNetwork } from '../../src-main/networks/index.js';

export interface CacheTiming {
  epoch_s: number;
  run_s: number;
  teacher_calls: number;
  losses: number[];
}

export interface TeacherCacheFigures {
  size: number;
  batch: number;
  train_slices: number;
  val_slices: number;
  epochs: number;
  attention: { plain: CacheTiming; cached: CacheTiming; speedup: number; same_losses: boolean };
  kd_imitation: { plain: CacheTiming; cached: CacheTiming; speedup: number; same_losses: boolean };
  kd_no_imitation: CacheTiming;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** The first `n` slices of a list of volumes, as one volume. */
function firstSlices(vols: Volume[], n: number): Volume {
  const { h, w } = vols[0];
  const hw = h * w;
  const data = new Float32Array(n * hw);
  let k = 0;
  for (const v of vols)
    for (let s = 0; s < v.slices && k < n; s++, k++) data.set(v.data.subarray(s * hw, (s + 1) * hw), k * hw);
  if (k < n) throw new Error(`the sample has ${k} slices, not ${n}`);
  return { data, slices: n, h, w };
}

export async function benchTeacherCache(
  size: number,
  batch: number,
  log: (s: string) => void,
  epochs = 9,
): Promise<TeacherCacheFigures> {
  const split = loadDataSplit(undefined, size);
  // two training batches and one validation batch: enough for steady epochs, short at 256²
  const trainSlices = 2 * batch;
  const valSlices = batch;
  const base = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
  });
  const train = buildSliceBank([firstSlices(split.train, trainSlices)], base.degradation);
  const val = buildSliceBank([firstSlices(split.val, valSlices)], base.degradation);
  const teacherNet = createNetwork(base.teacher, 7);
  let calls = 0;
  const apply = teacherNet.apply.bind(teacherNet);
  const maps = teacherNet.attentionMaps.bind(teacherNet);
  teacherNet.apply = (x) => {
    calls++;
    return apply(x);
  };
  teacherNet.attentionMaps = (x) => {
    calls++;
    return maps(x);
  };

  async function time(kind: RunKind, imitation: DistillConfig['imitation'], cacheTeacher: boolean) {
    const config: DistillConfig = {
      ...base,
      imitation,
      training: { ...base.training, epochs, batchSize: batch },
    };
    const net = createNetwork(config.student, 3);
    const recs: EpochRecord[] = [];
    calls = 0;
    const t = performance.now();
    await trainRun(
      { kind, runId: 1, net, teacher: teacherNet, train, val, config, cacheTeacher },
      {
        onEvent: () => {},
        onEpoch: async (rec) => void recs.push(rec),
        loadCheckpoint: async () => null,
        shouldStop: () => false,
      },
    );
    const runS = (performance.now() - t) / 1000;
    net.dispose();
    const r: CacheTiming = {
      epoch_s: median(recs.slice(1).map((e) => e.seconds)),
      run_s: runS,
      teacher_calls: calls,
      losses: recs.flatMap((e) => [e.trainLoss, e.valLoss]),
    };
    log(
      `teacher cache: ${kind}${kind === 'kd' ? ` (imitation ${imitation})` : ''} ${cacheTeacher ? 'cached' : 'recomputed'}: ` +
        `${r.epoch_s.toFixed(2)} s/epoch, ${r.run_s.toFixed(1)} s in all, ${r.teacher_calls} teacher passes`,
    );
    return r;
  }

  const pair = async (kind: RunKind, imitation: DistillConfig['imitation']) => {
    const plain = await time(kind, imitation, false);
    const cached = await time(kind, imitation, true);
    return {
      plain,
      cached,
      speedup: plain.epoch_s / cached.epoch_s,
      same_losses: plain.losses.every((x, i) => x === cached.losses[i]),
    };
  };
  const attention = await pair('attention', 'off');
  const kdImitation = await pair('kd', 'unit');
  const kdOff = await time('kd', 'off', true);
  teacherNet.dispose();
  return {
    size,
    batch,
    train_slices: trainSlices,
    val_slices: valSlices,
    epochs,
    attention,
    kd_imitation: kdImitation,
    kd_no_imitation: kdOff,
  };
}

/** The section as text: epoch times recomputed vs cached and the speed-up. */
export function teacherCacheText(
  f: TeacherCacheFigures,
  table: (rows: (string | number)[][]) => string,
): string {
  const row = (name: string, p: CacheTiming, c: CacheTiming, speedup: number, same: boolean) => [
    name,
    p.epoch_s.toFixed(2),
    c.epoch_s.toFixed(2),
    `${speedup.toFixed(2)}×`,
    `${p.teacher_calls} / ${c.teacher_calls}`,
    same ? 'identical' : 'DIFFERENT',
  ];
  return (
    `\nTeacher cache, ${f.size}×${f.size}, batch ${f.batch}, ${f.train_slices} training + ${f.val_slices} validation slices, ${f.epochs} epochs ` +
    `(s/epoch: median from the second epoch; the cache is filled before the first):\n\n` +
    `${table([
      ['step', 'recomputed s/epoch', 'cached s/epoch', 'speed-up', 'teacher passes', 'losses'],
      row('attention', f.attention.plain, f.attention.cached, f.attention.speedup, f.attention.same_losses),
      row(
        'kd, imitation unit',
        f.kd_imitation.plain,
        f.kd_imitation.cached,
        f.kd_imitation.speedup,
        f.kd_imitation.same_losses,
      ),
    ])}\n` +
    `kd with imitation off: ${f.kd_no_imitation.epoch_s.toFixed(2)} s/epoch, ${f.kd_no_imitation.teacher_calls} teacher passes\n`
  );
}
