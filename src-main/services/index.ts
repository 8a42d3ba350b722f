/**
 * The services facade: implements every operation of the API contract by calling the engine, store
 * and studies modules. Both the Electron IPC wiring and the web server call `services.call(op, body)`;
 * the facade validates the request with the contract's zod schema, runs the handler and returns an
 * ApiResult (never throws across the boundary). Progress of jobs and imports is broadcast to
 * `subscribe` listeners as ApiEvents.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  ApiFailure,
  parseRequest,
  toApiError,
  type ApiEvent,
  type ApiHandlers,
  type ApiRequest,
  type ApiResult,
  type ImportFileResult,
  type JobInfo,
  type ModelInfo,
  type OpName,
  type RunInfo,
} from '../contract/api.js';
import {
  degradationLabel,
  RUN_KINDS,
  RUN_STATUSES,
  type ProgressEvent,
  type RunKind,
  type RunStatus,
} from '../contract/domain.js';
import {
  createEngine,
  type DbPort,
  type Engine,
  type EngineModules,
  type JobHandlePort,
  type ModuleName,
} from './engine.js';
import { createCompare } from './compare.js';
import { createExports, type SaveAs } from './exports.js';
import { Db } from '../store/db.js';
import { createStudies } from './studies.js';
import { maskLines } from './masks.js';
import { datasetInfo } from './rows.js';
import { jobTable, renderTable, studyTable, TableError } from '../results/table.js';

export interface ServicesOptions {
  dbPath: string;
  dataDir: string;
  mode?: 'web' | 'electron';
  version?: string;
  /** Jobs training at once (default 1; the rest wait in a queue). */
  concurrency?: number;
  /** Engine modules given directly (tests); null marks one absent. */
  modules?: Partial<{ [K in ModuleName]: EngineModules[K] | null }>;
  /** Electron's save dialog: downloadExport copies exports where the user chooses (web mode: a URL). */
  saveAs?: SaveAs;
}

export interface Services {
  handlers: ApiHandlers;
  /** Validate `body` for `op`, run it, and wrap the outcome. */
  call(op: string, body: unknown): Promise<ApiResult<unknown>>;
  subscribe(listener: (e: ApiEvent) => void): () => void;
  /** Cancel running jobs, wait for them, close the database. */
  close(): Promise<void>;
  engine: Engine;
  /** The export a download ticket names (web mode's /api/download/<ticket>), or null. */
  openDownload(ticket: string): { path: string; kind: 'file' | 'folder'; filename: string } | null;
}

export function createServices(opts: ServicesOptions): Services {
  const dataDir = resolve(opts.dataDir);
  const dbPath = resolve(opts.dbPath);
  mkdirSync(dataDir, { recursive: true });
  const engine = createEngine(opts.modules);
  const listeners = new Set<(e: ApiEvent) => void>();
  const emit = (e: ApiEvent) => {
    for (const l of listeners) {
      try {
        l(e);
      } catch {
        // a failing listener must not stop the others
      }
    }
  };

  let dbPromise: Promise<DbPort> | null = null;
  async function db(): Promise<DbPort> {
    if (!dbPromise) {
      const p = engine.need('store').then((m) => {
        const d = m.openDatabase(dbPath);
        // runs a crashed process left 'running' become resumable failures
        d.runs.markInterrupted?.();
        // jobs left 'queued' by an earlier launch never started: say so instead of waiting forever
        for (const j of d.jobs.list()) {
          if (j.status === 'queued') {
            d.jobs.update(j.id, {
              status: 'cancelled',
              error: 'the app closed before this job started; resume it',
              endedAt: Date.now(),
            });
          }
        }
        return d;
      });
      dbPromise = p;
      p.catch(() => {
        if (dbPromise === p) dbPromise = null;
      });
    }
    return dbPromise;
  }

  const live = new Map<string, { handle: JobHandlePort; last: ProgressEvent | null }>();
  const compare = createCompare({ engine, db });
  /** The SQLite store itself (exports use the library and the key map through it). */
  async function realDb(): Promise<Db> {
    const d = await db();
    if (!(d instanceof Db))
      throw new ApiFailure('unavailable', 'exports need the SQLite store', 'src-main/store/db.ts');
    return d;
  }
  const exportsService = createExports({
    db: realDb,
    dataDir,
    version: opts.version ?? '0.1.0',
    compare,
    saveAs: opts.saveAs,
  });
  const studies = createStudies({ engine, db, dataDir, emit });

  /** Jobs waiting for the worker: one job trains at a time (a CPU box has few cores). */
  interface Queued {
    jobId: string;
    datasetId: number;
    config: ApiRequest<'startDistillation'>['config'];
    size: number | undefined;
    resume: boolean;
    queuedAt: number;
  }
  const queue: Queued[] = [];
  /** Jobs this process launched, as last seen: listed even before (or without) their database row. */
  const launched = new Map<
    string,
    { q: Queued; status: RunStatus; startedAt: number; endedAt: number | null; error: string | null }
  >();
  const concurrency = Math.max(1, opts.concurrency ?? 1);

  function pump(): void {
    while (live.size < concurrency && queue.length) {
      const q = queue.shift()!;
      launched.set(q.jobId, { q, status: 'running', startedAt: Date.now(), endedAt: null, error: null });
      void launch(q).catch((err: unknown) => {
        const error = toApiError(err);
        const l = launched.get(q.jobId);
        if (l) Object.assign(l, { status: 'failed', endedAt: Date.now(), error: error.message });
        emit({
          channel: 'job',
          jobId: q.jobId,
          event: { type: 'job-end', status: 'failed', error: error.message },
        });
        emit({ channel: 'library', what: 'jobs' });
      });
    }
  }

  async function launch(q: Queued): Promise<void> {
    const m = await engine.need('distill');
    const handle = m.startJob(
      {
        config: q.config,
        data:
          q.size === undefined
            ? { kind: 'dataset', datasetId: q.datasetId }
            : { kind: 'dataset', datasetId: q.datasetId, size: q.size },
        modelsRoot: join(dataDir, 'models'),
        dbPath,
        jobId: q.jobId,
      },
      (event) => {
        const entry = live.get(q.jobId);
        if (entry) entry.last = event;
        const l = launched.get(q.jobId);
        if (l && event.type === 'job-end')
          Object.assign(l, { status: event.status, endedAt: Date.now(), error: event.error ?? null });
        emit({ channel: 'job', jobId: q.jobId, event });
        if (event.type === 'job-start' || event.type === 'job-end')
          emit({ channel: 'library', what: 'jobs' });
        if (event.type === 'step-end') emit({ channel: 'library', what: 'models' });
      },
    );
    live.set(q.jobId, { handle, last: null });
    emit({ channel: 'library', what: 'jobs' });
    const finish = () => {
      live.delete(q.jobId);
      emit({ channel: 'library', what: 'jobs' });
      pump();
    };
    void handle.done.then(finish, finish);
  }

  async function enqueue(q: Omit<Queued, 'queuedAt'>): Promise<{ jobId: string }> {
    await engine.need('distill'); // fail now, not later, when the engine is missing
    queue.push({ ...q, queuedAt: Date.now() });
    emit({ channel: 'library', what: 'jobs' });
    pump();
    return { jobId: q.jobId };
  }

  const handlers: ApiHandlers = {
    async appInfo() {
      return {
        version: opts.version ?? '0.1.0',
        mode: opts.mode ?? 'web',
        dataDir,
        dbPath,
        modules: await engine.available(),
      };
    },

    listStudies: (req) => studies.listStudies(req),
    getSeries: (req) => studies.getSeries(req),
    getSeriesSlice: (req) => studies.getSeriesSlice(req),
    importPaths: (req) => studies.importPaths(req),
    importSample: () => studies.importSample(),

    async listDatasets() {
      return (await db()).datasets.list().map(datasetInfo);
    },

    async createDatasetFromSeries(req) {
      const d = await studies.createDatasetFromSeries(req);
      emit({ channel: 'library', what: 'datasets' });
      return d;
    },

    async previewMask(req) {
      const masks = await engine.need('masks');
      const r = maskLines(masks.buildMask(req.mask, req.h, req.w), req.mask, req.h, req.w);
      return { ...r, h: req.h, w: req.w };
    },

    async startDistillation(req) {
      const d = await db();
      const ds = d.datasets.get(req.datasetId);
      if (!ds) throw new ApiFailure('not-found', `no dataset ${req.datasetId}`, 'datasetId');
      await engine.need('distill'); // refuse now, not later, when the engine is missing
      // a resampled size is its own dataset row (same source, size in meta), as the engine's own
      // data references make it: then a job, its runs and evaluations all name the size they used
      let datasetId = ds.id;
      if (req.size !== undefined && (req.size !== ds.h || req.size !== ds.w)) {
        const size = req.size;
        const found = d.datasets
          .list()
          .find((x) => x.source === ds.source && x.task === ds.task && x.h === size && x.w === size);
        datasetId =
          found?.id ??
          d.datasets.create({
            name: `${ds.name.replace(/\s*\d+×\d+$/, '')} ${size}×${size}`,
            source: ds.source,
            task: ds.task,
            h: size,
            w: size,
            trainSlices: ds.trainSlices,
            valSlices: ds.valSlices,
            meta: { ...(ds.meta ?? {}), size, resampledFrom: ds.id },
          }).id;
        if (!found) emit({ channel: 'library', what: 'datasets' });
      }
      // the job row exists from the start (status 'queued'), so the queue survives in the library
      const jobId = randomUUID();
      d.jobs.create({ id: jobId, datasetId, config: req.config, status: 'queued' });
      return enqueue({ jobId, datasetId, config: req.config, size: undefined, resume: true });
    },

    async cancelJob(req) {
      const qi = queue.findIndex((q) => q.jobId === req.jobId);
      if (qi >= 0) {
        queue.splice(qi, 1);
        (await db()).jobs.update(req.jobId, { status: 'cancelled', endedAt: Date.now() });
        emit({ channel: 'job', jobId: req.jobId, event: { type: 'job-end', status: 'cancelled' } });
        emit({ channel: 'library', what: 'jobs' });
        return { jobId: req.jobId, cancelled: true };
      }
      const entry = live.get(req.jobId);
      if (!entry) {
        const row = (await db()).jobs.get(req.jobId);
        if (!row) throw new ApiFailure('not-found', `no job ${req.jobId}`, 'jobId');
        return { jobId: req.jobId, cancelled: false };
      }
      entry.handle.cancel();
      return { jobId: req.jobId, cancelled: true };
    },

    async resumeJob(req) {
      if (live.has(req.jobId) || queue.some((q) => q.jobId === req.jobId))
        throw new ApiFailure('conflict', `job ${req.jobId} is already running`, 'jobId');
      const row = (await db()).jobs.get(req.jobId);
      if (!row) throw new ApiFailure('not-found', `no job ${req.jobId}`, 'jobId');
      if (row.status === 'finished')
        throw new ApiFailure('conflict', `job ${req.jobId} has finished`, 'jobId');
      return enqueue({
        jobId: row.id,
        datasetId: row.datasetId,
        config: row.config,
        size: undefined,
        resume: true,
      });
    },

    async listJobs() {
      const d = await db();
      const queued = queue.map((q): JobInfo => ({
        id: q.jobId,
        datasetId: q.datasetId,
        status: 'queued',
        label: `${degradationLabel(q.config.degradation)} · ${q.config.training.epochs} ep`,
        config: q.config,
        backend: null,
        startedAt: q.queuedAt,
        endedAt: null,
        error: null,
        live: true,
      }));
      const stored = d.jobs
        .list()
        .filter((j) => !queue.some((q) => q.jobId === j.id))
        .map((j): JobInfo => ({
          id: j.id,
          datasetId: j.datasetId ?? null,
          status: live.has(j.id) && j.status === 'queued' ? 'running' : asStatus(j.status),
          label: j.config
            ? `${degradationLabel(j.config.degradation)} · ${j.config.training.epochs} ep`
            : j.id,
          config: j.config ?? null,
          backend: (j.backend ?? null) as JobInfo['backend'],
          startedAt: j.startedAt ?? null,
          endedAt: j.endedAt ?? null,
          error: j.error ?? null,
          live: live.has(j.id),
        }));
      const inDb = new Set(stored.map((j) => j.id));
      const unstored = [...launched.values()]
        .filter((l) => !inDb.has(l.q.jobId))
        .map((l): JobInfo => ({
          id: l.q.jobId,
          datasetId: l.q.datasetId,
          status: l.status,
          label: `${degradationLabel(l.q.config.degradation)} · ${l.q.config.training.epochs} ep`,
          config: l.q.config,
          backend: null,
          startedAt: l.startedAt,
          endedAt: l.endedAt,
          error: l.error,
          live: live.has(l.q.jobId),
        }));
      return [...queued, ...unstored, ...stored].sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0));
    },

    async listRuns(req) {
      const d = await db();
      const jobs = new Map<string, { datasetId: number; label: string }>();
      const jobOf = (id: string) => {
        let j = jobs.get(id);
        if (!j) {
          const row = d.jobs.get(id);
          j = {
            datasetId: row?.datasetId ?? -1,
            label: row?.config ? degradationLabel(row.config.degradation) : '',
          };
          jobs.set(id, j);
        }
        return j;
      };
      const filter: Record<string, unknown> = {};
      if (req.jobId) filter.jobId = req.jobId;
      if (req.kind) filter.kind = req.kind;
      if (req.status) filter.status = req.status;
      return d.runs
        .list(filter)
        .filter((r) => (req.kind ? r.kind === req.kind : true))
        .filter((r) => (req.status ? r.status === req.status : true))
        .filter((r) => (req.jobId ? r.jobId === req.jobId : true))
        .filter((r) => (req.datasetId !== undefined ? jobOf(r.jobId).datasetId === req.datasetId : true))
        .map((r): RunInfo => ({
          id: r.id,
          jobId: r.jobId ?? null,
          datasetId: r.jobId ? jobOf(r.jobId).datasetId : null,
          kind: asKind(r.kind),
          status: asStatus(r.status),
          degradation: r.jobId ? jobOf(r.jobId).label : '',
          backend: r.backend ?? null,
          epochs: r.epochsDone ?? r.epochsPlanned ?? null,
          bestEpoch: r.bestEpoch ?? null,
          bestValLoss: r.bestValLoss ?? null,
          wallSeconds: r.wallSeconds ?? null,
          startedAt: r.startedAt ?? null,
        }));
    },

    async runEpochs(req) {
      const d = await db();
      return d.epochs.forRun(req.runId).map((e) => ({
        epoch: e.epoch,
        trainLoss: e.trainLoss,
        valLoss: e.valLoss,
        lr: e.lr,
        seconds: e.seconds ?? null,
      }));
    },

    async listModels(req) {
      const d = await db();
      return d.models
        .list()
        .filter((m) => !m.deletedAt)
        .map((m): ModelInfo => {
          const card = m.card;
          const run = m.runId !== null ? (d.runs.get?.(m.runId) ?? null) : null;
          const datasetId = run ? (d.jobs.get(run.jobId)?.datasetId ?? null) : null;
          return {
            id: m.id,
            runId: m.runId,
            kind: asKind(m.kind),
            name: m.name,
            params: m.paramCount ?? m.params ?? card?.params ?? 0,
            dir: m.dir,
            degradation: card?.degradationLabel ?? '',
            datasetId,
            createdAt: card?.createdAt ?? (m.createdAt ? new Date(m.createdAt).toISOString() : null),
          };
        })
        .filter((m) => (req.datasetId !== undefined ? m.datasetId === req.datasetId : true));
    },

    async getModelCard(req) {
      const m = (await db()).models.get(req.modelId);
      if (!m || m.deletedAt) throw new ApiFailure('not-found', `no model ${req.modelId}`, 'modelId');
      if (m.card) return m.card;
      return (await engine.need('infer')).loadModelDir(m.dir).card;
    },

    async deleteModel(req) {
      const d = await db();
      const m = d.models.get(req.modelId);
      if (!m || m.deletedAt) throw new ApiFailure('not-found', `no model ${req.modelId}`, 'modelId');
      d.models.softDelete(req.modelId);
      compare.forget(m.dir);
      emit({ channel: 'library', what: 'models' });
      return { deleted: true };
    },

    exportModel: (req) => exportsService.exportModel(req),
    exportSeries: (req) => exportsService.exportSeries(req),
    downloadExport: (req) => exportsService.downloadExport(req),

    async paperTable(req) {
      const d = await db();
      let table;
      try {
        table = req.jobId !== undefined ? jobTable(d, req.jobId) : studyTable(d, req.studyId!);
      } catch (e) {
        if (e instanceof TableError)
          throw new ApiFailure('not-found', e.message, req.jobId ? 'jobId' : 'studyId');
        throw e;
      }
      return { table, text: req.format ? renderTable(table, req.format) : null };
    },

    compare: (req) => compare.compare(req),
    exportComparison: (req) => exportsService.exportComparison(req),
  };

  return {
    handlers,
    engine,
    openDownload: (ticket) => exportsService.openDownload(ticket),
    async call(op, body) {
      if (!Object.prototype.hasOwnProperty.call(handlers, op)) {
        return { ok: false, error: { code: 'not-found', message: `no operation ${op}`, where: 'op' } };
      }
      const name = op as OpName;
      const parsed = parseRequest(name, body);
      if (!parsed.ok) return parsed;
      try {
        const fn = handlers[name] as (req: unknown) => Promise<unknown>;
        return { ok: true, value: await fn(parsed.value) };
      } catch (err) {
        return { ok: false, error: toApiError(err) };
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      queue.length = 0;
      const pending = [...live.values()].map((e) => {
        e.handle.cancel();
        return e.handle.done.catch(() => undefined);
      });
      await Promise.all(pending);
      listeners.clear();
      if (dbPromise) {
        try {
          (await dbPromise).close();
        } catch {
          // store never opened
        }
      }
    },
  };
}

function asStatus(s: string): RunStatus {
  return (RUN_STATUSES as readonly string[]).includes(s) ? (s as RunStatus) : 'failed';
}
function asKind(s: string): RunKind {
  return (RUN_KINDS as readonly string[]).includes(s) ? (s as RunKind) : 'student';
}

export type { ImportFileResult };
