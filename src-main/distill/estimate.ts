/**
 * How long a distillation job will take, before it is launched: a short measurement on this machine
 * (a few timed training steps and forward passes of each network at the job's size, batch and
 * backend; the CS baseline on one slice) and a cost model that follows what distill/job.ts and
 * distill/trainer.ts do, step by step.
 *
 * The measurement (measureTimings) runs in a worker thread, like a job, so that it sees the same
 * backend and the same start-up cost; its results are kept in the library (timings, migration 007),
 * so a network is measured once per size, batch and backend. The cost model (estimateDuration) is a
 * pure function of the measured figures.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type DistillConfig, type NetworkSpec, type RunKind } from '../contract/domain.js';
import { createNetwork } from '../networks/index.js';
import { csSlices } from '../recon/cs/index.js';
import { measureLatency } from './compactness.js';
import { l1 } from './losses.js';
import { disposeBatch, makeBatch, type SliceBank } from './slice-bank.js';

/** What one network costs on this machine, in ms (see store/repos/timings.ts). */
export interface NetworkTiming {
  trainMs: number;
  inferMs: number;
  warmupMs: number;
  latencyMs: number;
}

/** The figures a job's duration is computed from. */
export interface EstimateInputs {
  config: DistillConfig;
  trainSlices: number;
  valSlices: number;
  teacher: NetworkTiming;
  student: NetworkTiming;
  /** The CS baseline's cost per validation slice (recon jobs with `cs`), else null. */
  csMsPerSlice: number | null;
  /** Worker start-up to a ready backend and library, ms. */
  startupMs: number;
  /** Loading the dataset and simulating its k-space and degraded inputs, ms. */
  dataMs: number;
}

export interface DurationEstimate {
  seconds: number;
  /** Per step, in the job's order. */
  steps: { step: RunKind; seconds: number }[];
  /** Start-up, data loading and the baselines (zero-filled / low-resolution, CS). */
  overheadSeconds: number;
}

/** The canonical identity of a network for the timings table: its spec's fields in a fixed order. */
export function networkKey(spec: NetworkSpec): string {
  return JSON.stringify(Object.fromEntries(Object.entries(spec).sort(([a], [b]) => a.localeCompare(b))));
}

/** The CS baseline's identity for the timings table. */
export function csKey(cs: NonNullable<DistillConfig['cs']>): string {
  return `cs:${JSON.stringify(Object.fromEntries(Object.entries(cs).sort(([a], [b]) => a.localeCompare(b))))}`;
}

/**
 * The job's wall time from the measured costs. Per step (trainer.ts, job.ts): every epoch trains
 * ⌈train/batch⌉ batches and validates ⌈val/batch⌉; a fresh network's first step costs its warm-up;
 * the attention step fills the teacher cache once (train and validation slices), the KD step with
 * imitation once (train slices); teacher, student and KD models are scored on the validation split;
 * every saved model's card measures its 256×256 latency. Early stopping (patience) can only make it
 * shorter.
 */
export function estimateDuration(i: EstimateInputs): DurationEstimate {
  const { config } = i;
  const B = config.training.batchSize;
  const E = config.training.epochs;
  const bt = Math.ceil(i.trainSlices / B);
  const bv = Math.ceil(i.valSlices / B);
  const T = i.teacher;
  const S = i.student;
  const epochs = (n: NetworkTiming) => E * (bt * n.trainMs + bv * n.inferMs) + n.warmupMs + n.latencyMs;
  const stepMs = (k: RunKind): number => {
    switch (k) {
      case 'teacher':
        return epochs(T) + bv * T.inferMs;
      case 'student':
        return epochs(S) + bv * S.inferMs;
      case 'attention':
        return epochs(S) + (bt + bv) * T.inferMs;
      case 'kd':
        return epochs(S) + (config.imitation !== 'off' ? bt * T.inferMs : 0) + bv * S.inferMs;
    }
  };
  const steps = config.steps.map((step) => ({ step, seconds: stepMs(step) / 1000 }));
  const overheadMs = i.startupMs + i.dataMs + (i.csMsPerSlice ?? 0) * i.valSlices;
  const seconds = overheadMs / 1000 + steps.reduce((a, s) => a + s.seconds, 0);
  return { seconds, steps, overheadSeconds: overheadMs / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Time a network on this backend: one training step of a fresh network, then `repeats` more (their
 * median is the step's cost, the first one's excess its warm-up); `repeats` forward passes after a
 * warm one; the model card's 256×256 latency measurement (one cold and three warm passes, as
 * compactness() does, estimated from one cold and one warm pass).
 */
export function measureNetwork(
  spec: NetworkSpec,
  bank: SliceBank,
  batchSize: number,
  repeats = 3,
  /** Throws to stop the measurement; called between two timed calls. */
  checkStop: () => void = () => {},
): NetworkTiming {
  const net = createNetwork(spec, 1);
  const optimizer = tf.train.adam(1e-4);
  const idx = Array.from({ length: Math.min(batchSize, bank.count) }, (_, k) => k);
  const trainStep = () => {
    checkStop();
    const t = performance.now();
    const b = makeBatch(bank, idx);
    const loss = optimizer.minimize(
      () => l1(net.apply({ input: b.input, kspace: b.kspace }).out, b.target),
      true,
      net.variables,
    );
    loss!.dataSync();
    loss!.dispose();
    disposeBatch(b);
    return performance.now() - t;
  };
  const forward = () => {
    checkStop();
    const t = performance.now();
    const b = makeBatch(bank, idx);
    const y = tf.tidy(() => net.apply({ input: b.input, kspace: b.kspace }).out);
    y.dataSync();
    y.dispose();
    disposeBatch(b);
    return performance.now() - t;
  };
  try {
    const first = trainStep();
    // a large network or image: one more step says enough (the measurement must stay short)
    const n = first > 2000 ? 1 : repeats;
    const trainMs = median(Array.from({ length: n }, trainStep));
    forward();
    const inferMs = median(Array.from({ length: n }, forward));
    checkStop();
    const lat = measureLatency(net, 256, 1);
    return { trainMs, inferMs, warmupMs: Math.max(0, first - trainMs), latencyMs: lat.cold + 3 * lat.warm };
  } finally {
    optimizer.dispose();
    net.dispose();
  }
}

/** The CS baseline's cost per slice: one validation slice reconstructed. */
export function measureCs(bank: SliceBank, cs: NonNullable<DistillConfig['cs']>): number | null {
  if (!bank.kre || !bank.kim || !bank.mask || bank.count === 0) return null;
  const hw = bank.h * bank.w;
  const t = performance.now();
  csSlices(bank.kre.subarray(0, hw), bank.kim.subarray(0, hw), bank.mask, 1, bank.h, bank.w, cs);
  return performance.now() - t;
}
