/**
 * Sweeps and their tasks (migration 008): what was planned, where each task's database and model
 * folder live, and the state each task was last seen in.
 */
import type Database from 'better-sqlite3';
import { SWEEP_TASK_STATES, type SweepTaskInfo, type SweepTaskState } from '../../contract/api.js';
import { checkOneOf, checkString, fromJson, StoreError, toJson, type JsonObject } from '../util.js';

export const SWEEP_EXECUTORS = ['local', 'slurm'] as const;
export type SweepExecutor = (typeof SWEEP_EXECUTORS)[number];
export const TASK_STATES = SWEEP_TASK_STATES;
export type TaskState = SweepTaskState;

export interface SweepRow {
  id: string;
  name: string;
  executor: SweepExecutor;
  /** The sweep's folder (on the shared folder for Slurm): tasks/, logs/, the job script. */
  workdir: string;
  /** The plan as asked for (JSON). */
  config: JsonObject;
  /** The scheduler's id of the last submission (Slurm: the array job id). */
  schedulerId: string | null;
  createdAt: number;
}

/** A task as the contract shows it (SweepTaskInfo), with its sweep and when its state was last set. */
export interface SweepTaskRow extends SweepTaskInfo {
  sweepId: string;
  updatedAt: number;
}

interface SweepSql {
  id: string;
  name: string;
  executor: SweepExecutor;
  workdir: string;
  config: string;
  scheduler_id: string | null;
  created_at: number;
}

interface TaskSql {
  sweep_id: string;
  idx: number;
  data: string;
  mask: string;
  acc: number | null;
  seed: number;
  job_id: string;
  experiment_id: string;
  dir: string;
  state: TaskState;
  scheduler_id: string | null;
  error: string | null;
  updated_at: number;
}

const toSweep = (r: SweepSql): SweepRow => ({
  id: r.id,
  name: r.name,
  executor: r.executor,
  workdir: r.workdir,
  config: fromJson<JsonObject>(r.config, `config of sweep ${r.id}`),
  schedulerId: r.scheduler_id,
  createdAt: r.created_at,
});

const toTask = (r: TaskSql): SweepTaskRow => ({
  sweepId: r.sweep_id,
  idx: r.idx,
  data: r.data,
  mask: r.mask,
  acc: r.acc,
  seed: r.seed,
  jobId: r.job_id,
  experimentId: r.experiment_id,
  dir: r.dir,
  state: r.state,
  schedulerId: r.scheduler_id,
  error: r.error,
  updatedAt: r.updated_at,
});

export class SweepRepo {
  constructor(private readonly db: Database.Database) {}

  /** Record a sweep and all its tasks in one transaction. */
  create(
    s: Omit<SweepRow, 'createdAt' | 'schedulerId'>,
    tasks: Omit<SweepTaskRow, 'sweepId' | 'updatedAt' | 'schedulerId' | 'error' | 'state'>[],
  ): SweepRow {
    const w = 'sweeps.create';
    const now = Date.now();
    this.db.transaction(() => {
      if (this.get(s.id)) throw new StoreError(`${w}: sweep ${s.id} already exists`);
      this.db
        .prepare(
          `INSERT INTO sweeps (id, name, executor, workdir, config, created_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(
          checkString(s.id, `${w}: id`),
          checkString(s.name, `${w}: name`),
          checkOneOf(s.executor, SWEEP_EXECUTORS, `${w}: executor`),
          checkString(s.workdir, `${w}: workdir`),
          toJson(s.config, `${w}: config`),
          now,
        );
      const ins = this.db.prepare(
        `INSERT INTO sweep_tasks (sweep_id, idx, data, mask, acc, seed, job_id, experiment_id, dir, state, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)`,
      );
      for (const t of tasks)
        ins.run(s.id, t.idx, t.data, t.mask, t.acc, t.seed, t.jobId, t.experimentId, t.dir, now);
    })();
    return this.get(s.id)!;
  }

  get(id: string): SweepRow | null {
    const r = this.db.prepare('SELECT * FROM sweeps WHERE id = ?').get(id) as SweepSql | undefined;
    return r ? toSweep(r) : null;
  }

  /** A sweep by its id or an unambiguous prefix of it (what `kdmri sweep status` prints). */
  find(idOrPrefix: string): SweepRow | null {
    const exact = this.get(idOrPrefix);
    if (exact) return exact;
    const rows = this.db
      .prepare("SELECT * FROM sweeps WHERE id LIKE ? ESCAPE '\\' LIMIT 2")
      .all(`${idOrPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) as SweepSql[];
    return rows.length === 1 ? toSweep(rows[0]) : null;
  }

  /** Sweeps, newest first. */
  list(): SweepRow[] {
    return (this.db.prepare('SELECT * FROM sweeps ORDER BY created_at DESC, id').all() as SweepSql[]).map(
      toSweep,
    );
  }

  tasks(sweepId: string): SweepTaskRow[] {
    return (
      this.db.prepare('SELECT * FROM sweep_tasks WHERE sweep_id = ? ORDER BY idx').all(sweepId) as TaskSql[]
    ).map(toTask);
  }

  setSchedulerId(sweepId: string, schedulerId: string): void {
    this.db.prepare('UPDATE sweeps SET scheduler_id = ? WHERE id = ?').run(schedulerId, sweepId);
  }

  updateTask(
    sweepId: string,
    idx: number,
    patch: { state?: TaskState; schedulerId?: string | null; error?: string | null },
  ): void {
    const w = `sweeps.updateTask(${sweepId}, ${idx})`;
    const cur = this.tasks(sweepId).find((t) => t.idx === idx);
    if (!cur) throw new StoreError(`${w}: no such task`);
    this.db
      .prepare(
        `UPDATE sweep_tasks SET state = ?, scheduler_id = ?, error = ?, updated_at = ?
         WHERE sweep_id = ? AND idx = ?`,
      )
      .run(
        checkOneOf(patch.state ?? cur.state, TASK_STATES, `${w}: state`),
        patch.schedulerId === undefined ? cur.schedulerId : patch.schedulerId,
        patch.error === undefined ? cur.error : patch.error,
        Date.now(),
        sweepId,
        idx,
      );
  }
}
