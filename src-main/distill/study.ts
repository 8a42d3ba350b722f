/**
 * A study: the whole KD-MRI protocol for every acceleration × seed, as one experiment in the store,
 * so that its table (results/table.ts studyTable) is built from its own jobs only.
 *
 * Per (acceleration, seed) two jobs:
 *  - 'main': teacher, student, attention, KD (the job's defaults, seed = the weights and shuffle seed);
 *  - 'student-long': the control that separates distillation from extra training — a student from
 *    scratch for as many epochs as the attention and KD steps together (2 × epochs), with the StepLR
 *    step stretched by the same factor so that its schedule has the same shape over the longer run.
 * The mask seed is fixed across seeds (as the reference code fixes one mask per acceleration), so
 * ZF and CS do not vary with the seed and the seed-to-seed spread is the training's.
 *
 * Jobs are created up front ('queued', linked to the experiment) and then run one at a time through
 * the distillation service (a worker thread each); a study resumes by running its unfinished jobs.
 */
import { resolve } from 'node:path';
import {
  DistillConfigSchema,
  degradationLabel,
  type BackendName,
  type DistillConfig,
  type ProgressEvent,
  type RunStatus,
  type Task,
} from '../contract/domain.js';
import { openDatabase, type Db, type ExperimentRow, type JobRow, type JsonObject } from '../store/db.js';
import type { LeaseHolder } from '../store/lease.js';
import { loadJobData } from './job-data.js';
import type { DataRef, JobResult } from './protocol.js';
import { startJob } from './service.js';

export interface StudyPlanInput {
  /** The configuration every job starts from; its degradation's acceleration is replaced per job. */
  base: DistillConfig;
  accs: number[];
  seeds: number[];
  /** Add the student-long control (default true). */
  studentLong?: boolean;
}

export interface PlannedJob {
  role: 'main' | 'student-long';
  acc: number;
  seed: number;
  config: DistillConfig;
}

/** Every job of a study, in run order: for each acceleration, for each seed, main then student-long. */
export function planStudy(p: StudyPlanInput): PlannedJob[] {
  if (p.accs.length === 0 || p.seeds.length === 0)
    throw new Error('a study needs at least one acceleration and one seed');
  if (new Set(p.accs).size !== p.accs.length) throw new Error(`--accs repeats a value: ${p.accs.join(',')}`);
  if (new Set(p.seeds).size !== p.seeds.length)
    throw new Error(`--seeds repeats a value: ${p.seeds.join(',')}`);
  const d = p.base.degradation;
  if (d.kind !== 'mask')
    throw new Error('a study compares reconstructions under undersampling masks (task recon)');
  if (d.mask.kind === 'file' && p.accs.length > 1)
    throw new Error('a mask file has one acceleration: give a single --accs value, or a mask kind');
  const jobs: PlannedJob[] = [];
  for (const acc of p.accs) {
    for (const seed of p.seeds) {
      const degradation = { ...d, mask: { ...d.mask, acc: d.mask.kind === 'file' ? d.mask.acc : acc } };
      const main = DistillConfigSchema.parse({
        ...p.base,
        degradation,
        training: { ...p.base.training, seed },
        steps: ['teacher', 'student', 'attention', 'kd'],
      });
      jobs.push({ role: 'main', acc, seed, config: main });
      if (p.studentLong ?? true) {
        const factor = 2; // attention + KD epochs
        jobs.push({
          role: 'student-long',
          acc,
          seed,
          config: DistillConfigSchema.parse({
            ...main,
            training: {
              ...main.training,
              epochs: main.training.epochs * factor,
              lrStep: main.training.lrStep * factor,
            },
            steps: ['student'],
            cs: null,
          }),
        });
      }
    }
  }
  return jobs;
}

export interface StudyRequest {
  name?: string;
  base: DistillConfig;
  accs: number[];
  seeds: number[];
  data: DataRef;
  task: Task;
  dbPath: string;
  modelsRoot: string;
  backend?: BackendName;
}

/** What createStudy records: the plan, its data, and what each job row starts with. */
export interface NewStudy extends Omit<StudyRequest, 'dbPath' | 'modelsRoot' | 'backend'> {
  /** Every job's folder of model folders and checkpoints (kept by its resumes). */
  modelsRoot?: string | null;
  /** The process that will train the jobs (the app's queue): holds every job from its creation. */
  lease?: LeaseHolder;
}

/**
 * The dataset a study names and what its record says about it. A library dataset is taken as it
 * is (its size and slabs are its own, as a job of it trains on them), without reading its pixels: the
 * app creates studies on its event loop. A path is loaded once, to make or find its dataset row.
 */
function studyData(db: Db, ref: DataRef, task: Task) {
  if (ref.kind === 'dataset') {
    const ds = db.datasets.get(ref.datasetId);
    if (!ds) throw new Error(`no dataset ${ref.datasetId} in the library`);
    const meta = ds.meta;
    return {
      datasetId: ds.id,
      source: ds.source,
      description: typeof meta.description === 'string' ? meta.description : ds.name,
      size: typeof meta.size === 'number' ? meta.size : null,
      slab: typeof meta.slab === 'number' ? meta.slab : null,
    };
  }
  const data = loadJobData(db, ref, task);
  return {
    datasetId: data.datasetId,
    source: data.source,
    description: data.split.description,
    size: ref.size ?? null,
    slab: ref.slab ?? null,
  };
}

/**
 * Record a study and its jobs (all 'queued') in one transaction, data resolved once so that every
 * job names the same dataset. Returns the study id and its jobs in run order.
 */
export function createStudy(db: Db, req: NewStudy) {
  const plan = planStudy({ base: req.base, accs: req.accs, seeds: req.seeds });
  const { datasetId, ...data } = studyData(db, req.data, req.task);
  const config: JsonObject = {
    accs: req.accs,
    seeds: req.seeds,
    base: req.base as unknown as JsonObject,
    data,
  };
  return db.transaction(() => {
    const study = db.experiments.create({
      kind: 'study',
      name:
        req.name ??
        `study ${degradationLabel(req.base.degradation).split(' ')[0]} ${req.accs.join('/')}x × ${req.seeds.length} seeds`,
      datasetId,
      config,
    });
    plan.forEach((p, position) => {
      const job = db.jobs.create({
        datasetId,
        config: p.config,
        status: 'queued',
        ...(req.modelsRoot !== undefined ? { modelsRoot: req.modelsRoot } : {}),
        ...(req.lease ? { lease: req.lease } : {}),
      });
      db.experiments.addJob({
        experimentId: study.id,
        jobId: job.id,
        position,
        role: p.role,
        acc: p.acc,
        seed: p.seed,
      });
    });
    return { studyId: study.id, datasetId, jobs: db.experiments.jobs(study.id) };
  });
}

/** A study's state as its member jobs give it. */
export interface StudyState {
  status: RunStatus;
  startedAt: number | null;
  endedAt: number | null;
  error: string | null;
}

/**
 * The study's state from its member jobs (in plan order), one rule for the CLI's runner and the
 * app's queue: running while a member runs; cancelled when a member was cancelled and none runs
 * (a study stops as a whole; resuming its jobs resumes it); running while members wait behind ones
 * that have ended, queued while none has started; then failed if any failed, else finished.
 */
export function studyState(
  jobs: Pick<JobRow, 'status' | 'startedAt' | 'endedAt' | 'error'>[],
  now = Date.now(),
): StudyState {
  const has = (s: RunStatus) => jobs.some((j) => j.status === s);
  const failed = jobs.filter((j) => j.status === 'failed');
  const starts = jobs.flatMap((j) => (j.startedAt === null ? [] : [j.startedAt]));
  const ends = jobs.flatMap((j) => (j.endedAt === null ? [] : [j.endedAt]));
  const startedAt = starts.length ? Math.min(...starts) : null;
  const status: RunStatus = has('running')
    ? 'running'
    : has('cancelled')
      ? 'cancelled'
      : has('queued')
        ? jobs.every((j) => j.status === 'queued')
          ? 'queued'
          : 'running'
        : failed.length
          ? 'failed'
          : 'finished';
  const ended = status === 'finished' || status === 'failed' || status === 'cancelled';
  return {
    status,
    startedAt,
    endedAt: ended ? (ends.length ? Math.max(...ends) : now) : null,
    error:
      status === 'failed'
        ? `${failed.length} job(s) failed: ${failed.map((j) => j.error ?? 'failed').join('; ')}`
        : null,
  };
}

/**
 * Set a study's status, start, end and error from its member jobs as the database has them now
 * (studyState); null when there is no such study. Called when a member job starts or ends.
 */
export function refreshStudyStatus(db: Db, studyId: string): ExperimentRow | null {
  const study = db.experiments.get(studyId);
  if (!study) return null;
  const jobs = db.experiments.jobs(studyId).flatMap((m) => {
    const j = db.jobs.get(m.jobId);
    return j ? [j] : [];
  });
  const s = studyState(jobs);
  // a study started when its first job first did: a resumed job's new start does not move it
  return db.experiments.update(studyId, { ...s, startedAt: study.startedAt ?? s.startedAt });
}

/**
 * Mark a study's members still 'queued' as cancelled: the study stopped, they will not start until
 * resumed (as start-up recovery leaves jobs queued by a process that closed). Returns their ids.
 */
export function cancelQueuedMembers(db: Db, studyId: string): string[] {
  const out: string[] = [];
  for (const m of db.experiments.jobs(studyId)) {
    if (db.jobs.get(m.jobId)?.status !== 'queued') continue;
    db.jobs.update(m.jobId, { status: 'cancelled', endedAt: Date.now() });
    out.push(m.jobId);
  }
  return out;
}

export interface StudyIO {
  onEvent(
    jobIndex: number,
    total: number,
    job: { jobId: string; role: string; acc: number | null; seed: number | null },
    e: ProgressEvent,
  ): void;
  shouldStop(): boolean;
}

/** Run (or resume) a study's unfinished jobs one at a time; the study's status follows its jobs. */
export async function runStudy(
  studyId: string,
  opts: { dbPath: string; modelsRoot: string; backend?: BackendName },
  io: StudyIO,
): Promise<{ status: RunStatus; failed: { jobId: string; error: string }[] }> {
  const dbPath = resolve(opts.dbPath);
  const db = openDatabase(dbPath);
  let members;
  let datasetId: number | null;
  try {
    const study = db.experiments.get(studyId);
    if (!study) throw new Error(`no study ${studyId} in ${dbPath}`);
    datasetId = study.datasetId;
    members = db.experiments.jobs(studyId);
    db.experiments.update(studyId, {
      status: 'running',
      startedAt: study.startedAt ?? Date.now(),
      error: null,
    });
  } finally {
    db.close();
  }
  const failed: { jobId: string; error: string }[] = [];
  const missing: string[] = [];
  for (const [i, m] of members.entries()) {
    if (io.shouldStop()) break;
    const check = openDatabase(dbPath);
    const row = check.jobs.get(m.jobId);
    check.close();
    if (!row) {
      missing.push(m.jobId);
      failed.push({ jobId: m.jobId, error: `job ${m.jobId} is missing from the database` });
      continue;
    }
    if (row.status === 'finished') continue;
    const handle = startJob(
      {
        config: row.config,
        data: { kind: 'dataset', datasetId: datasetId! },
        modelsRoot: opts.modelsRoot,
        dbPath,
        backend: opts.backend,
        jobId: m.jobId,
      },
      (e) => io.onEvent(i, members.length, m, e),
    );
    const stopWatch = setInterval(() => {
      if (io.shouldStop()) handle.cancel();
    }, 200);
    const r: JobResult = await handle.done;
    clearInterval(stopWatch);
    if (r.status === 'cancelled') break;
    if (r.status === 'failed') {
      const error = r.error ?? 'failed';
      failed.push({ jobId: m.jobId, error });
      // a worker that died could not record its end: the study's status is read from the rows
      const db2 = openDatabase(dbPath);
      try {
        db2.failJob(m.jobId, error, { unendedOnly: true });
      } finally {
        db2.close();
      }
    }
  }
  const end = openDatabase(dbPath);
  let final: RunStatus;
  try {
    // stopped (a cancelled job, or a stop between jobs): the jobs not yet started stay for a resume
    if (
      io.shouldStop() ||
      end.experiments.jobs(studyId).some((m) => end.jobs.get(m.jobId)?.status === 'cancelled')
    )
      cancelQueuedMembers(end, studyId);
    final = refreshStudyStatus(end, studyId)!.status;
    if (missing.length && final === 'finished') {
      final = 'failed';
      end.experiments.update(studyId, {
        status: final,
        error: `${missing.length} job(s) missing from the database: ${missing.join(', ')}`,
      });
    }
  } finally {
    end.close();
  }
  return { status: final, failed };
}
