/**
 * One training run (one step of the KD-MRI procedure): epochs of Adam on shuffled batches, validation
 * every epoch, the best epoch kept by the step's validation metric, a checkpoint every epoch so that a
 * crashed or cancelled run resumes where it stopped.
 *
 * Losses per step (method spec §3): teacher / student baseline L1(out, target); attention: L1 between
 * attention maps; kd: the configured imitation loss. Validation: MSE against the target, or for the
 * attention step the attention-map MSE (L1 for restoration, as in the SR code).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DistillConfig, ProgressEvent, RunKind } from '../contract/domain.js';
import type { Network, NetOutputs } from '../networks/index.js';
import { namedWeights, setNamedWeights } from '../networks/index.js';
import { Rng } from '../util/random.js';
import { attentionLoss, kdLoss, l1, mse, stepLr } from './losses.js';
import {
  cacheBudget,
  disposeTeacherBatch,
  TeacherCache,
  teacherPass,
  type TeacherBatch,
} from './teacher-cache.js';
import { batchesOf, disposeBatch, makeBatch, type Batch, type SliceBank } from './slice-bank.js';

export interface OptimizerSlot {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Everything needed to continue a run after its last completed epoch. */
export interface TrainState {
  /** Last completed epoch (0-based). */
  epoch: number;
  weights: Map<string, Float32Array>;
  optimizer: OptimizerSlot[];
  bestEpoch: number;
  bestValLoss: number;
  bestWeights: Map<string, Float32Array>;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  seconds: number;
  best: boolean;
}

/** How a run talks to the outside world; the job implements it with the store and the file system. */
export interface RunHooks {
  onEvent(e: ProgressEvent): void;
  onEpoch(rec: EpochRecord, state: TrainState): Promise<void>;
  loadCheckpoint(): Promise<TrainState | null>;
  shouldStop(): boolean;
}

export interface RunPlan {
  kind: RunKind;
  runId: number;
  net: Network;
  /** Frozen teacher for the attention and kd steps. */
  teacher?: Network;
  train: SliceBank;
  val: SliceBank;
  config: DistillConfig;
  /**
   * Compute the frozen teacher's outputs once per slice and reuse them every epoch (default true;
   * false recomputes them for every batch, the reference code's way, kept for the benchmark).
   */
  cacheTeacher?: boolean;
  /** Folder for a teacher cache that outgrows its memory budget. */
  cacheDir?: string;
}

/** What of the teacher a step needs: attention energies (step 2), its reconstruction (step 3 with imitation). */
export function teacherNeeds(kind: RunKind, config: DistillConfig): { out: boolean; energy: boolean } {
  return {
    out: kind === 'kd' && config.imitation !== 'off',
    energy: kind === 'attention',
  };
}

export interface RunResult {
  status: 'finished' | 'cancelled';
  bestEpoch: number;
  bestValLoss: number;
  bestWeights: Map<string, Float32Array>;
  epochsDone: number;
  seconds: number;
  /** The run ended before its last epoch because `training.patience` epochs brought no new best. */
  stoppedEarly: boolean;
}

/** A step on the reconstruction: without attention maps the network keeps less for backward. */
function forward(net: Network, b: Batch): NetOutputs {
  return net.apply({ input: b.input, kspace: b.kspace, attention: false });
}

/** The attention step reads the student's attention maps only: nothing past the last one runs. */
function studentMaps(net: Network, b: Batch): tf.Tensor3D[] {
  return net.attentionMaps({ input: b.input, kspace: b.kspace });
}

function trainingLoss(plan: RunPlan, b: Batch, teacher: TeacherBatch | null): tf.Scalar {
  const cfg = plan.config;
  if (plan.kind === 'attention')
    return attentionLoss(teacher!.energy!, studentMaps(plan.net, b), cfg.atNorm, 'l1');
  const out = forward(plan.net, b);
  switch (plan.kind) {
    case 'teacher':
    case 'student':
      return l1(out.out, b.target);
    case 'kd':
      // the teacher's reconstruction only matters to the imitation term; 'off' never asks for it
      return kdLoss(out.out, b.target, teacher?.out ?? out.out, cfg.imitation, cfg.alpha);
  }
}

function validationLoss(plan: RunPlan, b: Batch, teacher: TeacherBatch | null): number {
  return tf.tidy(() => {
    if (plan.kind === 'attention') {
      const metric = plan.config.task === 'sr' ? 'l1' : 'mse';
      return attentionLoss(
        teacher!.energy!,
        studentMaps(plan.net, b),
        plan.config.atNorm,
        metric,
      ).dataSync()[0];
    }
    return mse(forward(plan.net, b).out, b.target).dataSync()[0];
  });
}

/**
 * Where a step's teacher outputs come from: a cache filled once per bank, or (cacheTeacher false)
 * the frozen teacher run outside any gradient tape for every batch. Null when the step needs none.
 */
interface TeacherSource {
  get(bank: 'train' | 'val', b: Batch, indices: number[]): TeacherBatch | null;
  dispose(): void;
}

function teacherSource(plan: RunPlan, valNeeded: boolean): TeacherSource {
  const needs = teacherNeeds(plan.kind, plan.config);
  const t = plan.teacher;
  if (!t || (!needs.out && !needs.energy)) return { get: () => null, dispose: () => {} };
  if (plan.cacheTeacher === false) {
    return {
      get: (_bank, b) => teacherPass(t, b, needs),
      dispose: () => {},
    };
  }
  const opts = {
    ...needs,
    batchSize: plan.config.training.batchSize,
    budgetBytes: cacheBudget(),
    dir: plan.cacheDir,
  };
  const train = new TeacherCache(t, plan.train, opts);
  const val = valNeeded ? new TeacherCache(t, plan.val, opts) : null;
  return {
    get: (bank, _b, indices) => (bank === 'train' ? train : val)?.get(indices) ?? null,
    dispose: () => {
      train.dispose();
      val?.dispose();
    },
  };
}

async function optimizerSlots(opt: tf.AdamOptimizer): Promise<OptimizerSlot[]> {
  const named = await opt.getWeights();
  return Promise.all(
    named.map(async (n) => ({
      name: n.name,
      shape: n.tensor.shape,
      data: (await n.tensor.data()) as Float32Array,
    })),
  );
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/** Train one run to its configured number of epochs (or until cancelled), resuming from a checkpoint. */
export async function trainRun(plan: RunPlan, hooks: RunHooks): Promise<RunResult> {
  const { training } = plan.config;
  const optimizer = tf.train.adam(training.lr, 0.9, 0.999, 1e-8);
  let startEpoch = 0;
  let bestEpoch = -1;
  let bestValLoss = Infinity;
  let bestWeights = namedWeights(plan.net);

  const resumed = await hooks.loadCheckpoint();
  if (resumed) {
    setNamedWeights(plan.net, resumed.weights);
    if (resumed.optimizer.length > 0) {
      // Adam's getWeights/setWeights order is [iterations, first moments…, second moments…], by
      // variable position, so the same network spec restores the same slots.
      await optimizer.setWeights(
        resumed.optimizer.map((s) => ({ name: s.name, tensor: tf.tensor(s.data, s.shape) })),
      );
    }
    startEpoch = resumed.epoch + 1;
    bestEpoch = resumed.bestEpoch;
    bestValLoss = resumed.bestValLoss;
    bestWeights = resumed.bestWeights;
  }

  hooks.onEvent({
    type: 'step-start',
    step: plan.kind,
    runId: plan.runId,
    epochs: training.epochs,
    startEpoch,
  });
  const t0 = Date.now();
  const valBatches = batchesOf(
    Array.from({ length: plan.val.count }, (_, i) => i),
    training.batchSize,
  );
  const epochSeconds: number[] = [];
  // the attention step validates against the teacher's maps; the kd step validates against the target
  const teacher = teacherSource(plan, plan.kind === 'attention');
  let status: RunResult['status'] = 'finished';
  let epochsDone = startEpoch;
  // a run resumed after its patience ran out stops at once (configs older than patience have none)
  const patience = training.patience ?? null;
  const patienceOver = (epoch: number) =>
    patience !== null && bestEpoch >= 0 && epoch - bestEpoch >= patience;
  let stoppedEarly = startEpoch < training.epochs && patienceOver(startEpoch - 1);

  try {
    for (let epoch = startEpoch; epoch < training.epochs && !stoppedEarly; epoch++) {
      const te = Date.now();
      const lr = stepLr(epoch, training.lr, training.lrStep, training.lrGamma);
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      // A permutation per (seed, epoch) makes a resumed run see the same batches it would have seen.
      const order = new Rng(training.seed * 100003 + epoch).permutation(plan.train.count);
      const batches = batchesOf(order, training.batchSize);
      let lossSum = 0;
      let lastEmit = 0;
      for (const [bi, idx] of batches.entries()) {
        if (hooks.shouldStop()) {
          status = 'cancelled';
          break;
        }
        const b = makeBatch(plan.train, idx);
        const tOut = teacher.get('train', b, idx);
        const loss = optimizer.minimize(() => trainingLoss(plan, b, tOut), true, plan.net.variables);
        const value = loss!.dataSync()[0];
        loss!.dispose();
        disposeTeacherBatch(tOut);
        disposeBatch(b);
        if (!Number.isFinite(value))
          throw new Error(`${plan.kind}: training loss became ${value} at epoch ${epoch + 1}`);
        lossSum += value;
        const now = Date.now();
        if (now - lastEmit > 250 || bi === batches.length - 1) {
          lastEmit = now;
          hooks.onEvent({
            type: 'batch',
            step: plan.kind,
            epoch,
            batch: bi + 1,
            batches: batches.length,
            loss: value,
          });
        }
        await yieldToEventLoop();
      }
      if (status === 'cancelled') break;
      const trainSeconds = (Date.now() - te) / 1000;

      let valSum = 0;
      for (const idx of valBatches) {
        const b = makeBatch(plan.val, idx);
        const tOut = teacher.get('val', b, idx);
        valSum += validationLoss(plan, b, tOut);
        disposeTeacherBatch(tOut);
        disposeBatch(b);
      }
      const valLoss = valSum / Math.max(1, valBatches.length);
      const trainLoss = lossSum / Math.max(1, batches.length);
      const best = valLoss < bestValLoss;
      if (best) {
        bestValLoss = valLoss;
        bestEpoch = epoch;
        bestWeights = namedWeights(plan.net);
      }
      const seconds = (Date.now() - te) / 1000;
      epochSeconds.push(seconds);
      const state: TrainState = {
        epoch,
        weights: namedWeights(plan.net),
        optimizer: await optimizerSlots(optimizer),
        bestEpoch,
        bestValLoss,
        bestWeights,
      };
      await hooks.onEpoch({ epoch, trainLoss, valLoss, lr, seconds, best }, state);
      epochsDone = epoch + 1;
      const meanEpoch = epochSeconds.reduce((a, c) => a + c, 0) / epochSeconds.length;
      hooks.onEvent({
        type: 'epoch',
        step: plan.kind,
        runId: plan.runId,
        epoch,
        epochs: training.epochs,
        trainLoss,
        valLoss,
        lr,
        best,
        slicesPerSecond: plan.train.count / Math.max(trainSeconds, 1e-9),
        etaSeconds: meanEpoch * (training.epochs - epoch - 1),
      });
      if (patienceOver(epoch)) stoppedEarly = epoch + 1 < training.epochs;
    }
  } finally {
    optimizer.dispose();
    teacher.dispose();
  }
  return {
    status,
    bestEpoch,
    bestValLoss,
    bestWeights,
    epochsDone,
    seconds: (Date.now() - t0) / 1000,
    stoppedEarly,
  };
}
