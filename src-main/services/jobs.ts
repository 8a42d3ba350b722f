/**
 * Distillation jobs: a queue (one job trains at a time by default: a CPU box has few cores), start,
 * cancel, resume and list. The app reaches them through the contract's operations, the CLI through
 * `run`, which waits for the job's end; both end in the same `launch`.
 *
 * A study (distill/study.ts: every acceleration × seed, two jobs each) is its jobs queued in plan
 * order; its status follows them (refreshStudyStatus when one starts or ends), and cancelling one of
 * them stops the study: its members still waiting leave the queue.
 */
import { randomUUID } from 'node:crypto';
import { ApiFailure, toApiError, type ApiRequest, type JobInfo } from '../contract/api.js';
import {
  BACKENDS,
  degradationLabel,
  type BackendName,
  type DistillConfig,
  type ProgressEvent,
  type RunStatus,
} from '../contract/domain.js';
import { endedResult, type DataRef, type JobHandle, type JobResult } from '../distill/service.js';
import { createStudy, planStudy, refreshStudyStatus } from '../distill/study.js';
import { openDatabase, type RunRecord, type RunRow } from '../store/db.js';
import { thisProcess } from '../store/lease.js';
import type { ServiceContext } from './context.js';
import type { createDatasets } from './datasets.js';

/** One job to train: a new one (its row may not exist yet when `data` is a path) or one to resume. */
export interface JobLaunch {
  jobId: string;
  config: DistillConfig;
  data: DataRef;
  backend?: BackendName;
  /** Continue the job's stored runs from their checkpoints (the job must exist). */
  resume: boolean;
  /** Also told every event of this job (the CLI's progress bars). */
  onEvent?: (e: ProgressEvent) => void;
  /**
   * A job stored in another database than the library (a sweep task's): it is trained there, with
   * its model folders under `modelsRoot`, and merged into the library later (kdmri runs import).
   */
  store?: { dbPath: string; modelsRoot: string };
}

interface Queued extends JobLaunch {
  queuedAt: number;
  settle(r: JobResult): void;
}

/** A run with its reproducibility record (`kdmri runs --show`). */
export interface RunWithRecord {
  run: RunRow;
  record: RunRecord;
}

/** What repeating a run launches (`kdmri distill --like RUN`): its job's config, data and backend. */
export interface LikeRun {
  config: DistillConfig;
  data: DataRef;
  backend: BackendName;
  /** The wasm thread count the run had (the caller may pin it: KDMRI_WASM_THREADS). */
  threads: number;
  /** The run repeated, to compare the new run's record with. */
  original: RunWithRecord;
}

/** Record fields that differ by nature between a run and its repetition. */
const IDENTITY_FIELDS = new Set(['runId', 'createdAt', 'datasetId']);

/**
 * The fields (dotted paths) where two run records differ, leaving out ids and times: empty when a
 * repetition saw the same config, seeds, mask, data, backend, threads and versions.
 */
export function recordDifferences(a: RunRecord, b: RunRecord): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    if (x !== null && y !== null && typeof x === 'object' && typeof y === 'object') {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const k of keys) {
        if (IDENTITY_FIELDS.has(k)) continue;
        walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      }
    } else if (x !== y) out.push(path);
  };
  walk(a, b, '');
  return out;
}

const labelOf = (c: DistillConfig) => `${degradationLabel(c.degradation)} · ${c.training.epochs} ep`;

const failedResult = (q: JobLaunch, error: string): JobResult =>
  endedResult(q.jobId, 'failed', q.backend, error);

/** Renew the leases of this process's jobs this often (a foreign host's lease goes stale after 30 min). */
const HEARTBEAT_MS = 60_000;

export function createJobs(
  ctx: ServiceContext,
  datasets: ReturnType<typeof createDatasets>,
  opts: { concurrency?: number; holder: string },
) {
  const { db, emit } = ctx;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  /** This process as the holder of the jobs it queues and trains (one process trains a job). */
  const holder = thisProcess(opts.holder);
  const queue: Queued[] = [];
  const live = new Map<string, { handle: JobHandle; q: Queued }>();
  /** Jobs this process launched, as last seen: listed even before (or without) their database row. */
  const launched = new Map<
    string,
    { q: Queued; status: RunStatus; startedAt: number; endedAt: number | null; error: string | null }
  >();

  const datasetIdOf = (q: JobLaunch): number | null => (q.data.kind === 'dataset' ? q.data.datasetId : null);

  function pump(): void {
    while (live.size < concurrency && queue.length) {
      const q = queue.shift()!;
      launched.set(q.jobId, { q, status: 'running', startedAt: Date.now(), endedAt: null, error: null });
      try {
        launch(q);
      } catch (err) {
        const error = toApiError(err).message;
        const l = launched.get(q.jobId);
        if (l) Object.assign(l, { status: 'failed', endedAt: Date.now(), error });
        const ev: ProgressEvent = { type: 'job-end', status: 'failed', error };
        q.onEvent?.(ev);
        emit({ channel: 'job', jobId: q.jobId, event: ev });
        emit({ channel: 'library', what: 'jobs' });
        q.settle(failedResult(q, error));
      }
    }
  }

  function launch(q: Queued): void {
    const handle = ctx.engine.startJob(
      {
        config: q.config,
        data: q.data,
        modelsRoot: q.store?.modelsRoot ?? ctx.modelsRoot,
        dbPath: q.store?.dbPath ?? ctx.dbPath,
        jobId: q.jobId,
        resume: q.resume,
        holder: holder.label,
        ...(q.backend ? { backend: q.backend } : {}),
      },
      (event) => {
        const l = launched.get(q.jobId);
        if (l && event.type === 'job-end')
          Object.assign(l, { status: event.status, endedAt: Date.now(), error: event.error ?? null });
        q.onEvent?.(event);
        emit({ channel: 'job', jobId: q.jobId, event });
        if (event.type === 'job-start' && !q.store) followStudy(q.jobId);
        if (event.type === 'job-start' || event.type === 'job-end')
          emit({ channel: 'library', what: 'jobs' });
        if (event.type === 'step-end') emit({ channel: 'library', what: 'models' });
      },
    );
    live.set(q.jobId, { handle, q });
    emit({ channel: 'library', what: 'jobs' });
    void handle.done.then(
      (r) => finish(q, r),
      (e: unknown) => finish(q, failedResult(q, toApiError(e).message)),
    );
  }

  function finish(q: Queued, r: JobResult): void {
    live.delete(q.jobId);
    // a worker that died (a crash in native code, an out-of-memory kill of the thread) could not say
    // so in the library: record it, so the job shows failed with the reason instead of queued forever
    if (r.status === 'failed' && db.open && !q.store)
      db.failJob(q.jobId, r.error ?? 'the training worker stopped', { unendedOnly: true });
    if (!q.store) {
      release(q.jobId);
      if (r.status === 'cancelled') stopStudy(q.jobId);
      followStudy(q.jobId);
    }
    emit({ channel: 'library', what: 'jobs' });
    q.settle(r);
    pump();
  }

  /** The study (experiment) a library job belongs to, if any. */
  const studyOf = (jobId: string): string | null =>
    db.open ? (db.experiments.ofJob(jobId)?.experimentId ?? null) : null;

  /** A job's label in the queue; a study's member says which (its role and seed). */
  function jobLabel(jobId: string, config: DistillConfig): string {
    const m = db.open ? db.experiments.ofJob(jobId) : null;
    return m ? `${labelOf(config)} · study ${m.role} · seed ${m.seed ?? '–'}` : labelOf(config);
  }

  /** A study member started or ended: the study's status follows its jobs. */
  function followStudy(jobId: string): void {
    const studyId = studyOf(jobId);
    if (studyId) refreshStudyStatus(db, studyId);
  }

  /** A study member was cancelled: the study stops as a whole, its members waiting here leave the queue. */
  function stopStudy(jobId: string): void {
    const studyId = studyOf(jobId);
    if (!studyId) return;
    for (const m of db.experiments.jobs(studyId))
      if (m.jobId !== jobId && queue.some((q) => q.jobId === m.jobId && !q.store)) cancel(m.jobId);
  }

  /** Give up this process's lease on a job (it ended, or left the queue). */
  function release(jobId: string): void {
    if (db.open && db.jobs.get(jobId)) db.jobs.releaseLease(jobId, holder);
  }

  /** Lease a stored job to this process, or refuse naming the live process that holds it. */
  function lease(jobId: string): void {
    const r = db.jobs.acquireLease(jobId, holder);
    if (!r.ok) throw new ApiFailure('conflict', r.message, 'jobId');
  }

  const heartbeat = setInterval(() => {
    if (!db.open) return;
    for (const id of [...live.keys(), ...queue.map((q) => q.jobId)])
      if (db.jobs.get(id)) db.jobs.heartbeat(id, holder);
  }, HEARTBEAT_MS);
  heartbeat.unref();

  /** Queue a job; `done` settles with its result (never rejects). */
  function enqueue(launch: JobLaunch): { jobId: string; done: Promise<JobResult> } {
    let settle!: (r: JobResult) => void;
    const done = new Promise<JobResult>((ok) => (settle = ok));
    queue.push({ ...launch, queuedAt: Date.now(), settle });
    emit({ channel: 'library', what: 'jobs' });
    pump();
    return { jobId: launch.jobId, done };
  }

  function isActive(jobId: string): boolean {
    return live.has(jobId) || queue.some((q) => q.jobId === jobId);
  }

  /**
   * The stored job `jobId`, leased to this process, ready to resume: refused when unknown, finished,
   * already active here, or leased to another live process.
   */
  function resumable(jobId: string) {
    if (isActive(jobId)) throw new ApiFailure('conflict', `job ${jobId} is already running`, 'jobId');
    const row = db.jobs.get(jobId);
    if (!row) throw new ApiFailure('not-found', `no job ${jobId}`, 'jobId');
    if (row.status === 'finished') throw new ApiFailure('conflict', `job ${jobId} has finished`, 'jobId');
    lease(jobId);
    return row;
  }

  function cancel(jobId: string): boolean {
    const entry = live.get(jobId);
    if (entry) {
      entry.handle.cancel();
      return true;
    }
    const qi = queue.findIndex((q) => q.jobId === jobId);
    if (qi < 0) return false;
    const [q] = queue.splice(qi, 1);
    if (!q.store && db.jobs.get(jobId)) db.jobs.update(jobId, { status: 'cancelled', endedAt: Date.now() });
    if (!q.store) release(jobId);
    const ev: ProgressEvent = { type: 'job-end', status: 'cancelled' };
    q.onEvent?.(ev);
    emit({ channel: 'job', jobId, event: ev });
    emit({ channel: 'library', what: 'jobs' });
    q.settle(endedResult(q.jobId, 'cancelled', q.backend));
    if (!q.store) {
      stopStudy(jobId);
      followStudy(jobId);
    }
    return true;
  }

  /** A run and its record; refused naming the run when either is missing. */
  function runWithRecord(runId: number): RunWithRecord {
    const run = db.runs.get(runId);
    if (!run) throw new ApiFailure('not-found', `no run ${runId} (see kdmri runs)`, 'runId');
    const record = db.runRecords.get(runId);
    if (!record)
      throw new ApiFailure(
        'not-found',
        `run ${runId} has no reproducibility record (it was trained before records existed)`,
        'runId',
      );
    return { run, record };
  }

  /**
   * How to repeat run `runId`: its job's exact config (every step, seeds included), the same data
   * (the recorded dataset, else its source at the recorded size and slabs) and backend.
   */
  function likeRun(runId: number): LikeRun {
    const original = runWithRecord(runId);
    const { record } = original;
    const d = record.data;
    const opt = {
      ...(d.size !== null ? { size: d.size } : {}),
      ...(d.slab !== null ? { slab: d.slab } : {}),
    };
    let data: DataRef;
    if (db.datasets.get(d.datasetId)) data = { kind: 'dataset', datasetId: d.datasetId, ...opt };
    else if (d.source.startsWith('series:'))
      throw new ApiFailure(
        'not-found',
        `run ${runId} trained on library series whose dataset ${d.datasetId} was deleted`,
        'runId',
      );
    else data = { kind: 'path', ...(d.source === 'sample' ? {} : { path: d.source }), ...opt };
    const backend = BACKENDS.find((b) => b === record.backend);
    if (!backend)
      throw new ApiFailure(
        'bad-request',
        `run ${runId} ran on an unknown backend '${record.backend}'`,
        'runId',
      );
    return { config: record.config, data, backend, threads: record.threads, original };
  }

  /**
   * After repeating `original` as job `jobId`: the repetition's run of the same step and where its
   * record differs from the original's (ids and times aside).
   */
  function compareRepetition(
    original: RunWithRecord,
    jobId: string,
  ): { runId: number; differences: string[] } {
    const again = db.runs.list({ jobId, kind: original.run.kind }).at(-1);
    const record = again ? db.runRecords.get(again.id) : null;
    if (!again || !record)
      throw new ApiFailure('not-found', `job ${jobId} has no recorded ${original.run.kind} run`, 'jobId');
    return { runId: again.id, differences: recordDifferences(original.record, record) };
  }

  return {
    runWithRecord,
    likeRun,
    compareRepetition,
    /** Start (or resume) a job and wait for its end: the CLI's `kdmri distill`. */
    run(launch: Omit<JobLaunch, 'jobId'> & { jobId?: string }): Promise<JobResult> {
      if (launch.resume) {
        if (!launch.jobId) throw new ApiFailure('bad-request', 'resume needs a job id', 'jobId');
        const row = resumable(launch.jobId);
        return enqueue({
          ...launch,
          jobId: row.id,
          config: row.config,
          data: { kind: 'dataset', datasetId: row.datasetId },
        }).done;
      }
      return enqueue({ ...launch, jobId: launch.jobId ?? randomUUID() }).done;
    },

    /**
     * Queue a job stored in another database (a sweep task's, made 'queued' there) and wait for its
     * end; it starts, or resumes from its checkpoints, as `kdmri distill --db FILE --resume ID` would.
     */
    runStored(
      jobId: string,
      store: { dbPath: string; modelsRoot: string },
      opts: { backend?: BackendName; onEvent?: (e: ProgressEvent) => void } = {},
    ): { jobId: string; done: Promise<JobResult> } {
      if (isActive(jobId)) throw new ApiFailure('conflict', `job ${jobId} is already running`, 'jobId');
      const other = openDatabase(store.dbPath);
      let row;
      try {
        row = other.jobs.get(jobId);
      } finally {
        other.close();
      }
      if (!row) throw new ApiFailure('not-found', `no job ${jobId} in ${store.dbPath}`, 'jobId');
      return enqueue({
        jobId,
        config: row.config,
        data: { kind: 'dataset', datasetId: row.datasetId },
        resume: true,
        store,
        ...(opts.backend ? { backend: opts.backend } : {}),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      });
    },

    /** Cancel a queued or running job of this process; false when it is neither. */
    cancel,
    isActive,

    handlers: {
      async startDistillation(req: ApiRequest<'startDistillation'>): Promise<{ jobId: string }> {
        const ds = db.datasets.get(req.datasetId);
        if (!ds) throw new ApiFailure('not-found', `no dataset ${req.datasetId}`, 'datasetId');
        const datasetId = datasets.atSize(ds, req.size).id;
        // the job row exists from the start (status 'queued'), so the queue survives in the library
        const jobId = randomUUID();
        db.jobs.create({
          id: jobId,
          datasetId,
          config: req.config,
          status: 'queued',
          modelsRoot: ctx.modelsRoot,
          lease: holder,
        });
        enqueue({ jobId, config: req.config, data: { kind: 'dataset', datasetId }, resume: true });
        return { jobId };
      },

      /**
       * A study: every acceleration × seed as its main job and its student-long control, recorded
       * with its jobs in one transaction (all 'queued', leased to this process, on the dataset at
       * `size`), then queued in plan order.
       */
      async startStudy(req: ApiRequest<'startStudy'>): Promise<{ studyId: string; jobIds: string[] }> {
        const ds = db.datasets.get(req.datasetId);
        if (!ds) throw new ApiFailure('not-found', `no dataset ${req.datasetId}`, 'datasetId');
        const refuse = (e: unknown) =>
          new ApiFailure('bad-request', e instanceof Error ? e.message : String(e), 'config');
        try {
          // a plan that cannot be made is refused before the dataset at `size` is made
          planStudy({ base: req.config, accs: req.accs, seeds: req.seeds });
        } catch (e) {
          throw refuse(e);
        }
        const datasetId = datasets.atSize(ds, req.size).id;
        let study;
        try {
          study = createStudy(db, {
            ...(req.name !== undefined ? { name: req.name } : {}),
            base: req.config,
            accs: req.accs,
            seeds: req.seeds,
            data: { kind: 'dataset', datasetId },
            task: req.config.task,
            modelsRoot: ctx.modelsRoot,
            lease: holder,
          });
        } catch (e) {
          throw refuse(e);
        }
        for (const m of study.jobs) {
          const row = db.jobs.get(m.jobId)!;
          enqueue({ jobId: row.id, config: row.config, data: { kind: 'dataset', datasetId }, resume: true });
        }
        return { studyId: study.studyId, jobIds: study.jobs.map((m) => m.jobId) };
      },

      async cancelJob(req: ApiRequest<'cancelJob'>): Promise<{ jobId: string; cancelled: boolean }> {
        const cancelled = (() => {
          if (isActive(req.jobId)) return cancel(req.jobId);
          if (!db.jobs.get(req.jobId)) throw new ApiFailure('not-found', `no job ${req.jobId}`, 'jobId');
          return false;
        })();
        return { jobId: req.jobId, cancelled };
      },

      async resumeJob(req: ApiRequest<'resumeJob'>): Promise<{ jobId: string }> {
        const row = resumable(req.jobId);
        enqueue({
          jobId: row.id,
          config: row.config,
          data: { kind: 'dataset', datasetId: row.datasetId },
          resume: true,
        });
        return { jobId: row.id };
      },

      async listJobs(): Promise<JobInfo[]> {
        const queued = queue.map((q): JobInfo => ({
          id: q.jobId,
          datasetId: datasetIdOf(q),
          status: 'queued',
          label: jobLabel(q.jobId, q.config),
          config: q.config,
          backend: q.backend ?? null,
          startedAt: q.queuedAt,
          endedAt: null,
          error: null,
          live: true,
        }));
        const inQueue = new Set(queue.map((q) => q.jobId));
        const stored = db.jobs
          .list()
          .filter((j) => !inQueue.has(j.id))
          .map((j): JobInfo => ({
            id: j.id,
            datasetId: j.datasetId,
            status: live.has(j.id) && j.status === 'queued' ? 'running' : j.status,
            label: jobLabel(j.id, j.config),
            config: j.config,
            backend: j.backend,
            startedAt: j.startedAt,
            endedAt: j.endedAt,
            error: j.error,
            live: live.has(j.id),
          }));
        const inDb = new Set(stored.map((j) => j.id));
        const unstored = [...launched.values()]
          .filter((l) => !inDb.has(l.q.jobId) && !inQueue.has(l.q.jobId))
          .map((l): JobInfo => ({
            id: l.q.jobId,
            datasetId: datasetIdOf(l.q),
            status: l.status,
            label: jobLabel(l.q.jobId, l.q.config),
            config: l.q.config,
            backend: l.q.backend ?? null,
            startedAt: l.startedAt,
            endedAt: l.endedAt,
            error: l.error,
            live: live.has(l.q.jobId),
          }));
        return [...queued, ...unstored, ...stored].sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0));
      },
    },

    /** Drop the queue, cancel running jobs and wait for their workers to stop. */
    async close(): Promise<void> {
      clearInterval(heartbeat);
      for (const q of queue.splice(0)) {
        release(q.jobId);
        q.settle(endedResult(q.jobId, 'cancelled', q.backend));
      }
      const pending = [...live.values()].map((e) => {
        e.handle.cancel();
        return e.handle.done.catch(() => undefined);
      });
      await Promise.all(pending);
    },
  };
}
