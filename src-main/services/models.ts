/**
 * Runs and models: the runs of the jobs with their epochs, the saved models with their cards, and the
 * paper-style results table of a job or a study. `runDetails` is the full view (`kdmri runs`); `listRuns` is the
 * contract's summary of the same rows.
 */
import {
  ApiFailure,
  type ApiRequest,
  type EpochRow,
  type ExperimentInfo,
  type ModelInfo,
  type ResultsTable,
  type RunInfo,
} from '../contract/api.js';
import { jobTable, renderTable, studyTable, TableError } from '../results/table.js';
import { degradationLabel, type ModelCard, type RunKind, type RunStatus } from '../contract/domain.js';
import type { ModelRow, RunRow } from '../store/db.js';
import type { ServiceContext } from './context.js';

/** A run with its newest live model: what `kdmri runs` prints. */
export interface RunDetail {
  run: RunRow;
  model: ModelRow | null;
}

export function createModels(ctx: ServiceContext) {
  const { db } = ctx;

  function liveModel(id: number): ModelRow {
    const m = db.models.get(id);
    if (!m || m.deletedAt !== null) throw new ApiFailure('not-found', `no model ${id}`, 'modelId');
    return m;
  }

  /** Job id → its dataset and degradation label, read once per call. */
  function jobLookup() {
    const cache = new Map<string, { datasetId: number | null; label: string }>();
    return (id: string) => {
      let j = cache.get(id);
      if (!j) {
        const row = db.jobs.get(id);
        j = { datasetId: row?.datasetId ?? null, label: row ? degradationLabel(row.config.degradation) : '' };
        cache.set(id, j);
      }
      return j;
    };
  }

  function runDetails(filter: { jobId?: string; kind?: RunKind; status?: RunStatus } = {}): RunDetail[] {
    return db.runs
      .list(filter)
      .map((run) => ({ run, model: db.models.list({ runId: run.id }).at(-1) ?? null }));
  }

  return {
    runDetails,
    liveModel,
    handlers: {
      async listRuns(req: ApiRequest<'listRuns'>): Promise<RunInfo[]> {
        const jobOf = jobLookup();
        return db.runs
          .list({ jobId: req.jobId, kind: req.kind, status: req.status })
          .filter((r) => req.datasetId === undefined || jobOf(r.jobId).datasetId === req.datasetId)
          .map((r): RunInfo => ({
            id: r.id,
            jobId: r.jobId,
            datasetId: jobOf(r.jobId).datasetId,
            kind: r.kind,
            status: r.status,
            degradation: jobOf(r.jobId).label,
            backend: r.backend,
            epochs: r.epochsDone,
            bestEpoch: r.bestEpoch,
            bestValLoss: r.bestValLoss,
            wallSeconds: r.wallSeconds,
            startedAt: r.startedAt,
          }));
      },

      async runEpochs(req: ApiRequest<'runEpochs'>): Promise<EpochRow[]> {
        return db.epochs.forRun(req.runId).map((e) => ({
          epoch: e.epoch,
          trainLoss: e.trainLoss,
          valLoss: e.valLoss,
          lr: e.lr,
          seconds: e.seconds,
        }));
      },

      async listModels(req: ApiRequest<'listModels'>): Promise<ModelInfo[]> {
        const jobOf = jobLookup();
        return db.models
          .list()
          .map((m): ModelInfo => {
            const run = m.runId !== null ? db.runs.get(m.runId) : null;
            return {
              id: m.id,
              runId: m.runId,
              kind: m.kind,
              name: m.name,
              params: m.paramCount,
              dir: m.dir,
              degradation: m.card.degradationLabel ?? '',
              datasetId: run ? jobOf(run.jobId).datasetId : null,
              createdAt: m.card.createdAt ?? new Date(m.createdAt).toISOString(),
            };
          })
          .filter((m) => req.datasetId === undefined || m.datasetId === req.datasetId);
      },

      async getModelCard(req: ApiRequest<'getModelCard'>): Promise<ModelCard> {
        return liveModel(req.modelId).card;
      },

      async listExperiments(req: ApiRequest<'listExperiments'>): Promise<ExperimentInfo[]> {
        return db.experiments
          .list()
          .filter((e) => req.datasetId === undefined || e.datasetId === req.datasetId)
          .map((e): ExperimentInfo => {
            const jobs = db.experiments.jobs(e.id);
            const uniq = (xs: (number | null)[]) =>
              [...new Set(xs.filter((x): x is number => x !== null))].sort((a, b) => a - b);
            return {
              id: e.id,
              kind: e.kind,
              name: e.name,
              datasetId: e.datasetId,
              status: e.status,
              accs: uniq(jobs.map((j) => j.acc)),
              seeds: uniq(jobs.map((j) => j.seed)),
              jobs: jobs.length,
              createdAt: e.createdAt,
              endedAt: e.endedAt,
            };
          })
          .sort((a, b) => b.createdAt - a.createdAt);
      },

      /** One job's or one study's validation results, as a paper-shaped table (results/table.ts). */
      async paperTable(req: ApiRequest<'paperTable'>): Promise<{ table: ResultsTable; text: string | null }> {
        let table: ResultsTable;
        try {
          table = req.jobId !== undefined ? jobTable(db, req.jobId) : studyTable(db, req.studyId!);
        } catch (e) {
          if (e instanceof TableError)
            throw new ApiFailure('not-found', e.message, req.jobId ? 'jobId' : 'studyId');
          throw e;
        }
        return { table, text: req.format ? renderTable(table, req.format) : null };
      },
    },
  };
}
