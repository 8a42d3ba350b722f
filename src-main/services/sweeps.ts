/**
 * Sweeps: a grid of distillations, one task per dataset × mask × acceleration × seed, each a
 * `kdmri distill` with its own database and model folder under the sweep's work folder
 * (`<workdir>/<sweep id>/tasks/NNN-<mask>-<acc>x-s<seed>/{kdmri.db,models/}`), run by an executor:
 *
 *  - 'local': this machine's job queue (the jobs service trains each task in its own database);
 *  - 'slurm': one job array (services/slurm.ts) on a cluster that sees the work folder.
 *
 * Every task database is made at planning time with its dataset, its job ('queued', its models root
 * set) and its experiment membership, so that a task is always `distill --resume <job>`: a first run
 * starts it, a run after a kill continues from its checkpoints. The tasks of one dataset × mask form
 * one experiment (kind 'sweep'; the same id in every task database), whose table in the library,
 * once the tasks are imported (store/merge.ts), is a study's table over accelerations × seeds.
 *
 * States: a Slurm task still in squeue is 'queued' or 'running'; once it has left the queue its own
 * database says how it ended (read only then: SQLite's WAL must not be shared across hosts). A job
 * left 'running' there was killed before it could record it: 'failed', resumable.
 */
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  ApiFailure,
  type ApiRequest,
  type ImportReport,
  type SweepInfo,
  type SweepTaskInfo,
  type SweepTaskState,
} from '../contract/api.js';
import {
  DistillConfigSchema,
  type BackendName,
  type DistillConfig,
  type MaskSpec,
  type ProgressEvent,
} from '../contract/domain.js';
import { loadJobData } from '../distill/job-data.js';
import type { JobResult } from '../distill/protocol.js';
import { openDatabase, type SweepRow, type SweepTaskRow } from '../store/db.js';
import { databasesIn, mergeDatabase } from '../store/merge.js';
import { isOrphaned, type JsonObject } from '../store/util.js';
import type { ServiceContext } from './context.js';
import type { createJobs } from './jobs.js';
import { accountingStates, queueStates, submitArray, writeArrayScript, type SlurmOptions } from './slurm.js';

export type MaskChoice = Pick<MaskSpec, 'kind' | 'preset' | 'axis'>;

export interface SweepRequest {
  name?: string;
  /** Data paths (a NIfTI volume, a folder, a DICOM series, an HDF5 file); 'sample' for the bundled one. */
  data: string[];
  masks: MaskChoice[];
  accs: number[];
  seeds: number[];
  /** Every task's configuration before its mask, acceleration and seed are set. */
  base: DistillConfig;
  size?: number;
  slab?: number;
  executor: 'local' | 'slurm';
  /** The shared work folder: the sweep's folder is made in it. */
  workdir: string;
  /** Copy the data into the sweep's folder (for a cluster that cannot see where it is). */
  copyData?: boolean;
  backend?: BackendName;
  slurm?: Omit<SlurmOptions, 'backend'>;
}

export interface PlannedTask {
  idx: number;
  data: string;
  mask: MaskChoice;
  maskLabel: string;
  acc: number | null;
  seed: number;
  config: DistillConfig;
}

export const maskLabel = (m: MaskChoice) => (m.kind === 'preset' ? `preset:${m.preset}` : m.kind);

/** The tasks of a sweep in plan order: for each dataset, mask, acceleration, seed. */
export function planSweep(
  r: Pick<SweepRequest, 'data' | 'masks' | 'accs' | 'seeds' | 'base'>,
): PlannedTask[] {
  const dup = (name: string, xs: unknown[]) => {
    if (new Set(xs.map(String)).size !== xs.length)
      throw new Error(`${name} repeats a value: ${xs.join(',')}`);
  };
  if (!r.data.length || !r.masks.length || !r.seeds.length)
    throw new Error('a sweep needs data, masks and seeds');
  dup('--data', r.data);
  dup('--masks', r.masks.map(maskLabel));
  dup('--accs', r.accs);
  dup('--seeds', r.seeds);
  const d = r.base.degradation;
  const recon = d.kind === 'mask';
  if (recon && !r.accs.length) throw new Error('a recon sweep needs at least one acceleration');
  if (recon && d.mask.kind === 'file')
    throw new Error('a sweep varies the mask kind: a mask file has no grid');
  const tasks: PlannedTask[] = [];
  for (const data of r.data)
    for (const mask of recon ? r.masks : r.masks.slice(0, 1))
      for (const acc of recon ? r.accs : [null])
        for (const seed of r.seeds) {
          const degradation = d.kind === 'mask' ? { ...d, mask: { ...d.mask, ...mask, acc: acc! } } : d;
          const config = DistillConfigSchema.parse({
            ...r.base,
            degradation,
            training: { ...r.base.training, seed },
          });
          tasks.push({
            idx: tasks.length,
            data,
            mask,
            maskLabel: recon ? maskLabel(mask) : 'lowres',
            acc,
            seed,
            config,
          });
        }
  return tasks;
}

const taskName = (t: PlannedTask) =>
  `${String(t.idx).padStart(3, '0')}-${t.maskLabel.replace(/[^\w.-]/g, '_')}-${t.acc ?? 'sr'}x-s${t.seed}`;

export function createSweeps(ctx: ServiceContext, jobs: ReturnType<typeof createJobs>) {
  const { db } = ctx;

  function sweepOf(id: string): SweepRow {
    const s = db.sweeps.find(id);
    if (!s) throw new ApiFailure('not-found', `no sweep ${id} in ${ctx.dbPath}`, 'sweepId');
    return s;
  }

  /** Make the sweep's folder, its task databases and its row; nothing is submitted yet. */
  function plan(req: SweepRequest): SweepRow {
    const tasks = planSweep(req);
    const id = randomUUID();
    const dir = join(resolve(req.workdir), `sweep-${id.slice(0, 8)}`);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    // the data as the tasks will read it: where it is, or a copy inside the sweep's folder
    const dataPath = new Map<string, string>();
    for (const d of req.data) {
      if (d === 'sample' || !req.copyData) dataPath.set(d, d === 'sample' ? d : resolve(d));
      else {
        if (!existsSync(d)) throw new ApiFailure('bad-request', `${d}: no such file or folder`, 'data');
        const to = join(dir, 'data', `${dataPath.size}-${basename(resolve(d))}`);
        cpSync(resolve(d), to, { recursive: statSync(d).isDirectory() });
        dataPath.set(d, to);
      }
    }
    const experiments = new Map<string, string>();
    const rows = tasks.map((t) => {
      const group = `${t.data}\0${t.maskLabel}`;
      if (!experiments.has(group)) experiments.set(group, randomUUID());
      const experimentId = experiments.get(group)!;
      const taskDir = join(dir, 'tasks', taskName(t));
      const tdb = openDatabase(join(taskDir, 'kdmri.db'));
      try {
        const path = dataPath.get(t.data)!;
        const data = loadJobData(
          tdb,
          { kind: 'path', path: path === 'sample' ? undefined : path, size: req.size, slab: req.slab },
          t.config.task,
        );
        tdb.transaction(() => {
          tdb.jobs.create({
            id: randomUUID(),
            datasetId: data.datasetId,
            config: t.config,
            status: 'queued',
            modelsRoot: join(taskDir, 'models'),
          });
          const job = tdb.jobs.list().at(-1)!;
          tdb.experiments.create({
            id: experimentId,
            kind: 'sweep',
            name: `${req.name ?? `sweep ${id.slice(0, 8)}`} · ${t.maskLabel} · ${basename(t.data)}`,
            datasetId: data.datasetId,
            config: {
              sweepId: id,
              data: t.data,
              mask: t.maskLabel,
              accs: req.accs,
              seeds: req.seeds,
              base: req.base as unknown as JsonObject,
            },
          });
          tdb.experiments.addJob({
            experimentId,
            jobId: job.id,
            position: t.idx,
            role: 'main',
            acc: t.acc,
            seed: t.seed,
            params: { sweepId: id, mask: t.maskLabel, data: t.data },
          });
        });
        return {
          idx: t.idx,
          data: t.data,
          mask: t.maskLabel,
          acc: t.acc,
          seed: t.seed,
          jobId: tdb.jobs.list().at(-1)!.id,
          experimentId,
          dir: taskDir,
        };
      } finally {
        tdb.close();
      }
    });
    const config: JsonObject = {
      data: req.data,
      masks: req.masks.map(maskLabel),
      accs: req.accs,
      seeds: req.seeds,
      size: req.size ?? null,
      slab: req.slab ?? null,
      copyData: req.copyData ?? false,
      backend: req.backend ?? null,
      base: req.base as unknown as JsonObject,
      slurm: req.slurm ? (req.slurm as unknown as JsonObject) : null,
    };
    return db.sweeps.create(
      { id, name: req.name ?? `sweep ${id.slice(0, 8)}`, executor: req.executor, workdir: dir, config },
      rows,
    );
  }

  function slurmOptions(s: SweepRow): SlurmOptions {
    const c = s.config.slurm as unknown as Omit<SlurmOptions, 'backend'>;
    const backend = typeof s.config.backend === 'string' ? s.config.backend : undefined;
    return { ...c, ...(backend ? { backend } : {}) };
  }

  /** Submit tasks of a Slurm sweep as one job array (all of them, or the given ones). */
  function submitSlurm(s: SweepRow, tasks: SweepTaskRow[]): string {
    const all = db.sweeps.tasks(s.id);
    const script = writeArrayScript(s.workdir, `kdmri-${s.id.slice(0, 8)}`, all, slurmOptions(s));
    const arrayId = submitArray(
      script,
      tasks.map((t) => t.idx),
    );
    db.transaction(() => {
      db.sweeps.setSchedulerId(s.id, arrayId);
      for (const t of tasks)
        db.sweeps.updateTask(s.id, t.idx, {
          state: 'queued',
          schedulerId: `${arrayId}_${t.idx}`,
          error: null,
        });
    });
    return arrayId;
  }

  /** Queue tasks of a local sweep in this machine's job queue; settles when they have all ended. */
  function runLocal(
    s: SweepRow,
    tasks: SweepTaskRow[],
    onEvent?: (t: SweepTaskRow, e: ProgressEvent) => void,
  ): Promise<JobResult[]> {
    const backend = typeof s.config.backend === 'string' ? (s.config.backend as BackendName) : undefined;
    return Promise.all(
      tasks.map((t) => {
        db.sweeps.updateTask(s.id, t.idx, { state: 'queued', error: null });
        return jobs.runStored(
          t.jobId,
          { dbPath: join(t.dir, 'kdmri.db'), modelsRoot: join(t.dir, 'models') },
          { ...(backend ? { backend } : {}), ...(onEvent ? { onEvent: (e) => onEvent(t, e) } : {}) },
        ).done;
      }),
    );
  }

  /** The task's job as its own database records it (status and error). */
  function storedJob(t: SweepTaskRow): { status: string; error: string | null; pid: number | null } | null {
    const file = join(t.dir, 'kdmri.db');
    if (!existsSync(file)) return null;
    const tdb = openDatabase(file);
    try {
      const j = tdb.jobs.get(t.jobId);
      return j ? { status: j.status, error: j.error, pid: j.pid } : null;
    } finally {
      tdb.close();
    }
  }

  /** Whether the task's array script has written its last line ('exit N') in `<task>/state`. */
  const scriptEnded = (dir: string): boolean => {
    try {
      return readFileSync(join(dir, 'state'), 'utf8').startsWith('exit');
    } catch {
      return false;
    }
  };

  const fromStored = (
    j: { status: string; error: string | null } | null,
    killed: string,
  ): { state: SweepTaskState; error: string | null } => {
    if (!j) return { state: 'failed', error: 'the task database is missing' };
    if (j.status === 'running' && killed) return { state: 'failed', error: killed };
    return { state: j.status as SweepTaskState, error: j.error };
  };

  /** Refresh the states of a sweep's tasks from its executor and the task databases. */
  function refresh(s: SweepRow): SweepTaskRow[] {
    const tasks = db.sweeps.tasks(s.id);
    const open = tasks.filter((t) => t.state !== 'imported');
    if (s.executor === 'slurm') {
      const arrays = [
        ...new Set(open.map((t) => t.schedulerId?.split('_')[0]).filter((x): x is string => !!x)),
      ];
      // a workstation that is not a Slurm submit host has no squeue: the tasks' own state files say
      // whether their script has ended (it writes 'exit N' last)
      let queued: Map<string, string> | null = null;
      try {
        queued = queueStates(arrays);
      } catch (err) {
        if (!/not found/.test((err as Error).message)) throw err;
      }
      const gone = open.filter((t) => t.schedulerId && !queued?.has(t.schedulerId));
      const acct = gone.length && queued ? accountingStates(arrays) : new Map<string, string>();
      for (const t of open) {
        if (!t.schedulerId) continue;
        const q = queued?.get(t.schedulerId);
        let next: { state: SweepTaskState; error: string | null };
        if (q) next = { state: /PENDING|CONFIGURING|REQUEUE/.test(q) ? 'queued' : 'running', error: null };
        else if (!queued && !scriptEnded(t.dir)) continue;
        else {
          const a = acct.get(t.schedulerId);
          next = fromStored(
            storedJob(t),
            `stopped without recording its end${a ? ` (Slurm: ${a})` : ''}: resubmit to resume it`,
          );
        }
        db.sweeps.updateTask(s.id, t.idx, next);
      }
    } else {
      for (const t of open) {
        const j = storedJob(t);
        // a job left 'running' by a process that is gone (the sweep's process was killed)
        const dead = j?.status === 'running' && !jobs.isActive(t.jobId) && isOrphaned(j.pid);
        db.sweeps.updateTask(
          s.id,
          t.idx,
          dead ? { state: 'failed', error: 'its process stopped: resubmit to resume it' } : fromStored(j, ''),
        );
      }
    }
    return db.sweeps.tasks(s.id);
  }

  const info = (s: SweepRow, tasks: SweepTaskRow[]): SweepInfo => ({
    id: s.id,
    name: s.name,
    executor: s.executor,
    workdir: s.workdir,
    createdAt: s.createdAt,
    // a task row is its SweepTaskInfo plus two bookkeeping fields
    tasks: tasks.map(({ sweepId: _s, updatedAt: _u, ...t }): SweepTaskInfo => t),
  });

  /** Merge databases (files, or folders searched for kdmri.db) into the library. */
  function importPaths(paths: string[]): ImportReport {
    const report: ImportReport = { imported: [], skipped: [], conflicts: [] };
    let files: string[];
    try {
      files = databasesIn(paths);
    } catch (e) {
      throw new ApiFailure('bad-request', (e as Error).message, 'paths');
    }
    for (const f of files) mergeDatabase(db, ctx.modelsRoot, f, report);
    if (report.imported.length) ctx.emit({ channel: 'library', what: 'jobs' });
    return report;
  }

  /** Import a sweep's finished tasks; a task whose job is in the library (now or before) is 'imported'. */
  function importSweep(id: string): ImportReport {
    const s = sweepOf(id);
    const done = refresh(s).filter((t) => t.state === 'finished');
    const report: ImportReport = { imported: [], skipped: [], conflicts: [] };
    for (const t of done) mergeDatabase(db, ctx.modelsRoot, join(t.dir, 'kdmri.db'), report);
    const inLibrary = new Set([
      ...report.imported.map((r) => r.jobId),
      ...report.skipped.filter((r) => r.reason === 'already in the library').map((r) => r.jobId),
    ]);
    db.transaction(() => {
      for (const t of done)
        if (inLibrary.has(t.jobId)) db.sweeps.updateTask(s.id, t.idx, { state: 'imported', error: null });
      // an experiment whose every task is in the library is finished
      const tasks = db.sweeps.tasks(s.id);
      for (const exp of new Set(tasks.map((t) => t.experimentId))) {
        const mine = tasks.filter((t) => t.experimentId === exp);
        if (mine.every((t) => t.state === 'imported') && db.experiments.get(exp))
          db.experiments.update(exp, { status: 'finished', endedAt: Date.now(), error: null });
      }
    });
    if (report.imported.length) ctx.emit({ channel: 'library', what: 'jobs' });
    return report;
  }

  return {
    plan,
    /**
     * Plan and start a sweep: a Slurm one is submitted (returns once sbatch has); a local one is
     * queued here, and `done` settles when its tasks have ended.
     */
    start(
      req: SweepRequest,
      onEvent?: (t: SweepTaskRow, e: ProgressEvent) => void,
    ): { sweep: SweepRow; done: Promise<unknown> } {
      const sweep = plan(req);
      const tasks = db.sweeps.tasks(sweep.id);
      if (req.executor === 'slurm') {
        try {
          submitSlurm(sweep, tasks);
        } catch (e) {
          // planned but not submitted: the tasks wait for `kdmri sweep resubmit` (once sbatch works)
          const error = (e as Error).message;
          db.transaction(() =>
            tasks.forEach((t) => db.sweeps.updateTask(sweep.id, t.idx, { state: 'failed', error })),
          );
          throw new ApiFailure(
            'conflict',
            `sweep ${sweep.id} is planned in ${sweep.workdir} but was not submitted: ${error}; submit it with kdmri sweep resubmit ${sweep.id.slice(0, 8)}`,
            'executor',
          );
        }
        return { sweep: db.sweeps.get(sweep.id)!, done: Promise.resolve() };
      }
      return { sweep, done: runLocal(sweep, tasks, onEvent) };
    },
    status(id: string): SweepInfo {
      const s = sweepOf(id);
      return info(s, refresh(s));
    },
    /** Submit again the failed and cancelled tasks; each resumes from its checkpoints. */
    resubmit(
      id: string,
      onEvent?: (t: SweepTaskRow, e: ProgressEvent) => void,
    ): { tasks: number[]; done: Promise<unknown> } {
      const s = sweepOf(id);
      const todo = refresh(s).filter((t) => t.state === 'failed' || t.state === 'cancelled');
      if (todo.length === 0) return { tasks: [], done: Promise.resolve() };
      if (s.executor === 'slurm') {
        submitSlurm(s, todo);
        return { tasks: todo.map((t) => t.idx), done: Promise.resolve() };
      }
      return { tasks: todo.map((t) => t.idx), done: runLocal(s, todo, onEvent) };
    },
    importSweep,
    importPaths,
    handlers: {
      async listSweeps(): Promise<SweepInfo[]> {
        return db.sweeps.list().map((s) => {
          try {
            return info(s, refresh(s));
          } catch {
            // squeue unreachable from here (not a submit host): the states last seen
            return info(s, db.sweeps.tasks(s.id));
          }
        });
      },
      async importSweep(req: ApiRequest<'importSweep'>): Promise<ImportReport> {
        return importSweep(req.sweepId);
      },
    },
  };
}
