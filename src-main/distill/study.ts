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
import { openDatabase, type Db, type JsonObject } from '../store/db.js';
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

/**
 * Record a study and its jobs (all 'queued') in one transaction, data resolved once so that every
 * job names the same dataset. Returns the study id and its jobs in run order.
 */
export function createStudy(db: Db, req: Omit<StudyRequest, 'dbPath' | 'modelsRoot' | 'backend'>) {
  const plan = planStudy({ base: req.base, accs: req.accs, seeds: req.seeds });
  const data = loadJobData(db, req.data, req.task);
  const config: JsonObject = {
    accs: req.accs,
    seeds: req.seeds,
    base: req.base as unknown as JsonObject,
    data: {
      source: data.source,
      description: data.split.description,
      size: req.data.size ?? null,
      slab: req.data.slab ?? null,
    },
  };
  return db.transaction(() => {
    const study = db.experiments.create({
      kind: 'study',
      name:
        req.name ??
        `study ${degradationLabel(req.base.degradation).split(' ')[0]} ${req.accs.join('/')}x × ${req.seeds.length} seeds`,
      datasetId: data.datasetId,
      config,
    });
    plan.forEach((p, position) => {
      const job = db.jobs.create({ datasetId: data.datasetId, config: p.config, status: 'queued' });
      db.experiments.addJob({
        experimentId: study.id,
        jobId: job.id,
        position,
        role: p.role,
        acc: p.acc,
        seed: p.seed,
      });
    });
    return { studyId: study.id, datasetId: data.datasetId, jobs: db.experiments.jobs(study.id) };
  });
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
  let cancelled = false;
  for (const [i, m] of members.entries()) {
    if (io.shouldStop()) {
      cancelled = true;
      break;
    }
    const check = openDatabase(dbPath);
    const row = check.jobs.get(m.jobId);
    check.close();
    if (!row) {
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
    if (r.status === 'cancelled') {
      cancelled = true;
      break;
    }
    if (r.status === 'failed') failed.push({ jobId: m.jobId, error: r.error ?? 'failed' });
  }
  const final: RunStatus = cancelled ? 'cancelled' : failed.length ? 'failed' : 'finished';
  const end = openDatabase(dbPath);
  try {
    end.experiments.update(studyId, {
      status: final,
      endedAt: Date.now(),
      error: failed.length
        ? `${failed.length} job(s) failed: ${failed.map((f) => f.error).join('; ')}`
        : null,
    });
  } finally {
    end.close();
  }
  return { status: final, failed };
}
