/**
 * Evaluate a saved model under its training degradation or another one, next to the degraded input's
 * own score. By default on the model's own dataset (the one its job trained on, through the same
 * train/validation split) and its validation split. When the model is one of the library's, the
 * evaluation is recorded with its split, full degradation, mask hash and data hash, but with no job:
 * results tables show a job's own validation rows only, so an evaluation here never changes one.
 * `kdmri eval` is this operation.
 */
import { resolve } from 'node:path';
import { ApiFailure } from '../contract/api.js';
import {
  degradationKey,
  degradationLabel,
  type EvalSplit,
  type BackendName,
  type Degradation,
  type MetricRow,
  type ModelCard,
  type VolumeMetrics,
} from '../contract/domain.js';
import { initBackend } from '../compute/backend.js';
import { bankHash, evaluatePrediction, evaluationFigures, metricRow, predict } from '../distill/evaluate.js';
import { loadModelDir } from '../distill/infer.js';
import { loadJobData } from '../distill/job-data.js';
import type { DataRef } from '../distill/protocol.js';
import { maskOfBank } from '../distill/records.js';
import { buildSliceBank } from '../distill/slice-bank.js';
import type { ServiceContext } from './context.js';

export interface EvaluateRequest {
  /** A model folder (model.json + weights.bin). */
  modelDir: string;
  /** Data to evaluate on (default: the model's own dataset, as its job split it). */
  data?: string;
  /** Resample slices to size×size (default: the model's training size when square). */
  size?: number;
  split: EvalSplit;
  /** Default: the model's training degradation. */
  degradation?: (card: ModelCard) => Degradation;
  backend?: BackendName;
}

export interface EvaluateResult {
  model: string;
  kind: ModelCard['kind'];
  task: ModelCard['task'];
  degradation: string;
  acceleration: number | null;
  split: EvalSplit;
  /** What the slices are (the data split's description). */
  data: string;
  backend: BackendName;
  slices: number;
  rows: MetricRow[];
  perVolume: VolumeMetrics[];
  compactness: ModelCard['compactness'];
  /** The library model the evaluation was recorded for, or null for a folder from elsewhere. */
  recordedFor: number | null;
}

const bad = (e: unknown, where: string) =>
  new ApiFailure('bad-request', e instanceof Error ? e.message : String(e), where);

export function createEvaluation(ctx: ServiceContext) {
  const { db } = ctx;
  return {
    async evaluate(req: EvaluateRequest): Promise<EvaluateResult> {
      const info = await initBackend({ prefer: req.backend }).catch((e: unknown) => {
        throw bad(e, 'backend');
      });
      const dir = resolve(req.modelDir);
      let loaded;
      try {
        loaded = loadModelDir(dir);
      } catch (e) {
        throw bad(e, 'model');
      }
      const { net, card } = loaded;
      try {
        const degradation = req.degradation ? req.degradation(card) : card.degradation;
        const size = req.size ?? (card.data.h === card.data.w ? card.data.h : undefined);
        const modelRow = db.models.list().find((m) => resolve(m.dir) === dir) ?? null;
        const run = modelRow?.runId ? db.runs.get(modelRow.runId) : null;
        const job = run ? db.jobs.get(run.jobId) : null;
        // the model's own data: its job's dataset when this library knows it, else what its card names
        const ref: DataRef =
          req.data !== undefined
            ? { kind: 'path', path: req.data, size }
            : job
              ? { kind: 'dataset', datasetId: job.datasetId, size }
              : { kind: 'path', path: card.data.source === 'sample' ? undefined : card.data.source, size };
        let data;
        try {
          data = loadJobData(db, ref, card.task);
        } catch (e) {
          throw bad(e, 'data');
        }
        const { split } = req;
        const vols =
          split === 'all'
            ? [...data.split.train, ...data.split.val]
            : split === 'train'
              ? data.split.train
              : data.split.val;
        const bank = buildSliceBank(vols, degradation);
        const label = degradationLabel(degradation);
        const base = evaluatePrediction(bank, bank.input);
        const mine = evaluatePrediction(bank, predict(net, bank));
        const baseKind = card.task === 'sr' ? 'lr' : 'zf';
        const rows = [metricRow(baseKind, label, base), metricRow(card.kind, label, mine)];
        const acceleration = bank.maskInfo?.acceleration ?? null;
        if (modelRow) {
          db.evaluations.record({
            modelId: modelRow.id,
            runKind: card.kind,
            datasetId: data.datasetId,
            jobId: null,
            split,
            degradation: label,
            degradationJson: degradation,
            degradationKey: degradationKey(degradation),
            maskHash: maskOfBank(bank).hash,
            acceleration,
            dataHash: bankHash(bank),
            ...evaluationFigures(mine),
            backend: info.name,
          });
        }
        return {
          model: card.name,
          kind: card.kind,
          task: card.task,
          degradation: label,
          acceleration,
          split,
          data: data.split.description,
          backend: info.name,
          slices: bank.count,
          rows,
          perVolume: mine.perVolume,
          compactness: card.compactness,
          recordedFor: modelRow?.id ?? null,
        };
      } finally {
        net.dispose();
      }
    },
  };
}
