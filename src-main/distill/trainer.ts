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
}

export interface RunResult {
  status: 'finished' | 'cancelled';
  bestEpoch: number;
  bestValLoss: number;
  bestWeights: Map<string, Float32Array>;
  epochsDone: number;
  seconds: number;
}

function forward(net: Network, b: Batch): NetOutputs {
  return net.apply({ input: b.input, kspace: b.kspace });
}

function trainingLoss(plan: RunPlan, b: Batch, teacherOut: NetOutputs | null): tf.Scalar {
  const out = forward(plan.net, b);
  const cfg = plan.config;
  switch (plan.kind) {
    case 'teacher':
    case 'student':
      return l1(out.out, b.target);
    case 'attention':
      return attentionLoss(teacherOut!.attention, out.attention, cfg.atNorm, 'l1');
    case 'kd':
      return kdLoss(out.out, b.target, teacherOut!.out, cfg.imitation, cfg.alpha);
  }
}

function validationLoss(plan: RunPlan, b: Batch, teacherOut: NetOutputs | null): number {
  return tf.tidy(() => {
    const out = forward(plan.net, b);
    if (plan.kind === 'attention') {
      const metric = plan.config.task === 'sr' ? 'l1' : 'mse';
      return attentionLoss(teacherOut!.attention, out.attention, plan.config.atNorm, metric).dataSync()[0];
    }
    return mse(out.out, b.target).dataSync()[0];
  });
}

/** The teacher's outputs for a batch, computed outside any gradient tape (its weights are frozen). */
function teacherOutputs(plan: RunPlan, b: Batch): NetOutputs | null {
  if (!plan.teacher || plan.kind === 'teacher' || plan.kind === 'student') return null;
  const t = plan.teacher;
  return tf.tidy(() => {
    const o = forward(t, b);
    return { out: o.out, attention: o.attention };
  });
}

function disposeOutputs(o: NetOutputs | null): void {
  if (o) tf.dispose([o.out, ...o.attention]);
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
  let status: RunResult['status'] = 'finished';
  let epochsDone = startEpoch;

  for (let epoch = startEpoch; epoch < training.epochs; epoch++) {
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
      const tOut = teacherOutputs(plan, b);
      const loss = optimizer.minimize(() => trainingLoss(plan, b, tOut), true, plan.net.variables);
      const value = loss!.dataSync()[0];
      loss!.dispose();
      disposeOutputs(tOut);
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
      const tOut = teacherOutputs(plan, b);
      valSum += validationLoss(plan, b, tOut);
      disposeOutputs(tOut);
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
  }
  optimizer.dispose();
  return { status, bestEpoch, bestValLoss, bestWeights, epochsDone, seconds: (Date.now() - t0) / 1000 };
}
