/** Runs: one training step (teacher, student baseline, attention transfer, kd) of a job. */
import type Database from 'better-sqlite3';
import {
  BACKENDS,
  RUN_KINDS,
  RUN_STATUSES,
  type BackendName,
  type DistillConfig,
  type RunKind,
  type RunStatus,
} from '../../contract/domain.js';
import {
  checkInt,
  checkNullable,
  checkNumber,
  checkOneOf,
  checkString,
  checkTime,
  fromJson,
  isOrphaned,
  StoreError,
  toJson,
} from '../util.js';
import { leaseAlive } from '../lease.js';
import { checkConfig } from './jobs.js';

export interface RunRow {
  id: number;
  jobId: string;
  kind: RunKind;
  status: RunStatus;
  config: DistillConfig;
  backend: BackendName | null;
  epochsPlanned: number;
  /** Completed epochs (the next epoch to train is epochsDone, 0-based). */
  epochsDone: number;
  /** 0-based; null before the first validated epoch. */
  bestEpoch: number | null;
  bestValLoss: number | null;
  /** Epoch ms, as are startedAt / endedAt. */
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  wallSeconds: number | null;
  error: string | null;
  /** The teacher run a student was distilled from. */
  parentRunId: number | null;
  checkpointDir: string | null;
  /** Process that last set the run running. */
  pid: number | null;
}

export interface NewRun {
  jobId: string;
  kind: RunKind;
  /** Defaults to 'queued'. */
  status?: RunStatus;
  config: DistillConfig;
  backend?: BackendName | null;
  epochsPlanned: number;
  parentRunId?: number | null;
  checkpointDir?: string | null;
  createdAt?: number;
  startedAt?: number | null;
}

export interface RunPatch {
  status?: RunStatus;
  backend?: BackendName | null;
  epochsPlanned?: number;
  epochsDone?: number;
  bestEpoch?: number | null;
  bestValLoss?: number | null;
  startedAt?: number | null;
  endedAt?: number | null;
  wallSeconds?: number | null;
  error?: string | null;
  checkpointDir?: string | null;
}

export interface RunFilter {
  jobId?: string;
  kind?: RunKind;
  status?: RunStatus;
}

interface RunSql {
  id: number;
  job_id: string;
  kind: RunKind;
  status: RunStatus;
  config: string;
  backend: BackendName | null;
  epochs_planned: number;
  epochs_done: number;
  best_epoch: number | null;
  best_val_loss: number | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  wall_seconds: number | null;
  error: string | null;
  parent_run_id: number | null;
  checkpoint_dir: string | null;
  pid: number | null;
}

function toRow(r: RunSql): RunRow {
  return {
    id: r.id,
    jobId: r.job_id,
    kind: r.kind,
    status: r.status,
    config: fromJson<DistillConfig>(r.config, `runs.config of run ${r.id}`),
    backend: r.backend,
    epochsPlanned: r.epochs_planned,
    epochsDone: r.epochs_done,
    bestEpoch: r.best_epoch,
    bestValLoss: r.best_val_loss,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    wallSeconds: r.wall_seconds,
    error: r.error,
    parentRunId: r.parent_run_id,
    checkpointDir: r.checkpoint_dir,
    pid: r.pid,
  };
}

export class RunRepo {
  private readonly byId: Database.Statement<[number], RunSql>;

  constructor(private readonly db: Database.Database) {
    this.byId = db.prepare('SELECT * FROM runs WHERE id = ?');
  }

  create(r: NewRun): RunRow {
    const w = 'runs.create';
    const status = checkOneOf(r.status ?? 'queued', RUN_STATUSES, `${w}: status`);
    const row = {
      jobId: checkString(r.jobId, `${w}: jobId`),
      kind: checkOneOf(r.kind, RUN_KINDS, `${w}: kind`),
      status,
      config: toJson(checkConfig(r.config, w), `${w}: config`),
      backend: checkNullable(r.backend, (b) => checkOneOf(b, BACKENDS, `${w}: backend`)),
      epochsPlanned: checkInt(r.epochsPlanned, `${w}: epochsPlanned`),
      parentRunId: checkNullable(r.parentRunId, (p) => checkInt(p, `${w}: parentRunId`, 1)),
      checkpointDir: checkNullable(r.checkpointDir, (d) => checkString(d, `${w}: checkpointDir`)),
      createdAt: checkTime(r.createdAt ?? Date.now(), `${w}: createdAt`),
      startedAt: checkNullable(r.startedAt, (t) => checkTime(t, `${w}: startedAt`)),
      pid: status === 'running' ? process.pid : null,
    };
    const id = this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM jobs WHERE id = ?').get(row.jobId)) {
        throw new StoreError(`${w}: no job ${row.jobId}`);
      }
      if (row.parentRunId !== null && !this.byId.get(row.parentRunId)) {
        throw new StoreError(`${w}: no parent run ${row.parentRunId}`);
      }
      const info = this.db
        .prepare(
          `INSERT INTO runs (job_id, kind, status, config, backend, epochs_planned, parent_run_id,
                             checkpoint_dir, created_at, started_at, pid)
           VALUES (@jobId, @kind, @status, @config, @backend, @epochsPlanned, @parentRunId,
                   @checkpointDir, @createdAt, @startedAt, @pid)`,
        )
        .run(row);
      return Number(info.lastInsertRowid);
    })();
    return this.get(id)!;
  }

  /** null when there is no such run. */
  get(id: number): RunRow | null {
    const r = this.byId.get(id);
    return r ? toRow(r) : null;
  }

  /** Runs matching every given filter, in creation order (so `.at(-1)` is the latest). */
  list(filter: RunFilter = {}): RunRow[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.jobId !== undefined) {
      where.push('job_id = @jobId');
      params.jobId = filter.jobId;
    }
    if (filter.kind !== undefined) {
      where.push('kind = @kind');
      params.kind = checkOneOf(filter.kind, RUN_KINDS, 'runs.list: kind');
    }
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = checkOneOf(filter.status, RUN_STATUSES, 'runs.list: status');
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    return (this.db.prepare(sql).all(params) as RunSql[]).map(toRow);
  }

  /**
   * Change some fields; throws StoreError on an unknown id or an invalid value. Setting status
   * 'running' records this process as the run's owner (see markInterrupted).
   */
  update(id: number, patch: RunPatch): RunRow {
    const w = `runs.update(${id})`;
    const sets: string[] = [];
    const params: Record<string, unknown> = { id };
    const set = (col: string, value: unknown) => {
      sets.push(`${col} = @${col}`);
      params[col] = value;
    };
    const p = patch;
    if (p.status !== undefined) {
      set('status', checkOneOf(p.status, RUN_STATUSES, `${w}: status`));
      if (p.status === 'running') set('pid', process.pid);
    }
    if (p.backend !== undefined)
      set(
        'backend',
        checkNullable(p.backend, (b) => checkOneOf(b, BACKENDS, `${w}: backend`)),
      );
    if (p.epochsPlanned !== undefined)
      set('epochs_planned', checkInt(p.epochsPlanned, `${w}: epochsPlanned`));
    if (p.epochsDone !== undefined) set('epochs_done', checkInt(p.epochsDone, `${w}: epochsDone`));
    if (p.bestEpoch !== undefined)
      set(
        'best_epoch',
        checkNullable(p.bestEpoch, (e) => checkInt(e, `${w}: bestEpoch`, -1)),
      );
    if (p.bestValLoss !== undefined)
      set(
        'best_val_loss',
        checkNullable(p.bestValLoss, (v) => checkNumber(v, `${w}: bestValLoss`)),
      );
    if (p.startedAt !== undefined)
      set(
        'started_at',
        checkNullable(p.startedAt, (t) => checkTime(t, `${w}: startedAt`)),
      );
    if (p.endedAt !== undefined)
      set(
        'ended_at',
        checkNullable(p.endedAt, (t) => checkTime(t, `${w}: endedAt`)),
      );
    if (p.wallSeconds !== undefined)
      set(
        'wall_seconds',
        checkNullable(p.wallSeconds, (s) => checkNumber(s, `${w}: wallSeconds`)),
      );
    if (p.error !== undefined) set('error', p.error === null ? null : String(p.error));
    if (p.checkpointDir !== undefined)
      set(
        'checkpoint_dir',
        checkNullable(p.checkpointDir, (d) => checkString(d, `${w}: checkpointDir`)),
      );
    if (sets.length > 0) {
      const info = this.db.prepare(`UPDATE runs SET ${sets.join(', ')} WHERE id = @id`).run(params);
      if (info.changes === 0) throw new StoreError(`runs.update: no run ${id}`);
    }
    const row = this.get(id);
    if (!row) throw new StoreError(`runs.update: no run ${id}`);
    return row;
  }

  /**
   * Call once at startup, before starting any job: runs left 'running' by a crashed process become
   * 'failed' with error 'interrupted' so they can be resumed from their checkpoint; so do their jobs,
   * and their leases are released. Jobs of another live process (a CLI training next to the app) are
   * left alone: a job's lease decides when it has one (it tells a reused pid from its holder), else
   * the pid that set it running. Returns the ids of the runs marked.
   */
  markInterrupted(now = Date.now()): number[] {
    return this.db.transaction(() => {
      const jobs = this.db.prepare(`SELECT * FROM jobs WHERE status = 'running'`).all() as {
        id: string;
        pid: number | null;
        lease_pid: number | null;
        lease_host: string | null;
        lease_start: string | null;
        lease_label: string | null;
        lease_at: number | null;
      }[];
      const jobAlive = (j: (typeof jobs)[number]) =>
        j.lease_pid !== null
          ? leaseAlive({
              pid: j.lease_pid,
              host: j.lease_host ?? '',
              start: j.lease_start,
              label: j.lease_label ?? '',
              at: j.lease_at ?? 0,
            })
          : !isOrphaned(j.pid);
      const liveJobs = new Set(jobs.filter(jobAlive).map((j) => j.id));
      const running = this.db.prepare(`SELECT id, job_id, pid FROM runs WHERE status = 'running'`).all() as {
        id: number;
        job_id: string;
        pid: number | null;
      }[];
      const orphaned = running.filter((r) => !liveJobs.has(r.job_id) && isOrphaned(r.pid));
      const markRun = this.db.prepare(
        `UPDATE runs SET status = 'failed', error = 'interrupted', ended_at = ?, pid = NULL WHERE id = ?`,
      );
      for (const r of orphaned) markRun.run(now, r.id);
      // The jobs: every orphaned 'running' job, whether or not one of its runs was mid-training.
      const markJob = this.db.prepare(
        `UPDATE jobs SET status = 'failed', error = 'interrupted', ended_at = ?, pid = NULL,
           lease_pid = NULL, lease_host = NULL, lease_start = NULL, lease_label = NULL, lease_at = NULL
         WHERE id = ?`,
      );
      for (const j of jobs) if (!liveJobs.has(j.id)) markJob.run(now, j.id);
      return orphaned.map((r) => r.id);
    })();
  }
}
