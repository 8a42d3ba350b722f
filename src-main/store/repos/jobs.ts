/** Distillation jobs: one DistillConfig on one dataset, grouping the runs of its steps. */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import {
  BACKENDS,
  DistillConfigSchema,
  RUN_STATUSES,
  type BackendName,
  type DistillConfig,
  type RunStatus,
} from '../../contract/domain.js';
import {
  checkInt,
  checkNullable,
  checkOneOf,
  checkString,
  checkTime,
  fromJson,
  StoreError,
  toJson,
  zodProblem,
} from '../util.js';
import { describeHolder, leaseAlive, sameProcess, type Lease, type LeaseHolder } from '../lease.js';

export interface JobRow {
  /** A UUID (text). */
  id: string;
  datasetId: number;
  config: DistillConfig;
  status: RunStatus;
  backend: BackendName | null;
  /** Epoch ms, as are startedAt / endedAt. */
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  error: string | null;
  /** Process that last set the job running. */
  pid: number | null;
  /** Folder of the job's model folders and checkpoints (null for jobs made before it was recorded). */
  modelsRoot: string | null;
  /** The process the job is leased to, or null (see acquireLease). */
  lease: Lease | null;
}

export interface NewJob {
  /** Defaults to a fresh UUID. */
  id?: string;
  datasetId: number;
  config: DistillConfig;
  /** Defaults to 'queued'. */
  status?: RunStatus;
  backend?: BackendName | null;
  createdAt?: number;
  startedAt?: number | null;
  modelsRoot?: string | null;
  /** Lease the new job to this process. */
  lease?: LeaseHolder;
}

export interface JobPatch {
  status?: RunStatus;
  backend?: BackendName | null;
  startedAt?: number | null;
  endedAt?: number | null;
  error?: string | null;
  modelsRoot?: string | null;
}

export interface JobFilter {
  datasetId?: number;
  status?: RunStatus;
}

interface JobSql {
  id: string;
  dataset_id: number;
  config: string;
  status: RunStatus;
  backend: BackendName | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error: string | null;
  pid: number | null;
  models_root: string | null;
  lease_pid: number | null;
  lease_host: string | null;
  lease_start: string | null;
  lease_label: string | null;
  lease_at: number | null;
}

/** The outcome of acquireLease: the lease, or the live process that holds it. */
export type LeaseResult = { ok: true } | { ok: false; holder: Lease; message: string };

function toRow(r: JobSql): JobRow {
  return {
    id: r.id,
    datasetId: r.dataset_id,
    config: fromJson<DistillConfig>(r.config, `jobs.config of job ${r.id}`),
    status: r.status,
    backend: r.backend,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: r.error,
    pid: r.pid,
    modelsRoot: r.models_root,
    lease:
      r.lease_pid === null
        ? null
        : {
            pid: r.lease_pid,
            host: r.lease_host ?? '',
            start: r.lease_start,
            label: r.lease_label ?? 'another process',
            at: r.lease_at ?? 0,
          },
  };
}

/** Validate a DistillConfig and return it with the schema's defaults filled in. */
export function checkConfig(config: unknown, where: string): DistillConfig {
  const parsed = DistillConfigSchema.safeParse(config);
  if (!parsed.success) throw new StoreError(`${where}: invalid config (${zodProblem(parsed.error.issues)})`);
  return parsed.data;
}

export class JobRepo {
  private readonly byId: Database.Statement<[string], JobSql>;

  constructor(private readonly db: Database.Database) {
    this.byId = db.prepare('SELECT * FROM jobs WHERE id = ?');
  }

  create(j: NewJob): JobRow {
    const w = 'jobs.create';
    const id = j.id === undefined ? randomUUID() : checkString(j.id, `${w}: id`);
    const datasetId = checkInt(j.datasetId, `${w}: datasetId`, 1);
    const status = checkOneOf(j.status ?? 'queued', RUN_STATUSES, `${w}: status`);
    const row = {
      id,
      datasetId,
      config: toJson(checkConfig(j.config, w), `${w}: config`),
      status,
      backend: checkNullable(j.backend, (b) => checkOneOf(b, BACKENDS, `${w}: backend`)),
      createdAt: checkTime(j.createdAt ?? Date.now(), `${w}: createdAt`),
      startedAt: checkNullable(j.startedAt, (t) => checkTime(t, `${w}: startedAt`)),
      pid: status === 'running' ? process.pid : null,
      modelsRoot: checkNullable(j.modelsRoot, (d) => checkString(d, `${w}: modelsRoot`)),
      leasePid: j.lease?.pid ?? null,
      leaseHost: j.lease?.host ?? null,
      leaseStart: j.lease?.start ?? null,
      leaseLabel: j.lease?.label ?? null,
      leaseAt: j.lease ? Date.now() : null,
    };
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM datasets WHERE id = ?').get(datasetId)) {
        throw new StoreError(`${w}: no dataset ${datasetId}`);
      }
      if (this.byId.get(id)) throw new StoreError(`${w}: job ${id} already exists`);
      this.db
        .prepare(
          `INSERT INTO jobs (id, dataset_id, config, status, backend, created_at, started_at, pid, models_root,
                             lease_pid, lease_host, lease_start, lease_label, lease_at)
           VALUES (@id, @datasetId, @config, @status, @backend, @createdAt, @startedAt, @pid, @modelsRoot,
                   @leasePid, @leaseHost, @leaseStart, @leaseLabel, @leaseAt)`,
        )
        .run(row);
    })();
    return this.get(id)!;
  }

  /** null when there is no such job. */
  get(id: string): JobRow | null {
    const r = this.byId.get(id);
    return r ? toRow(r) : null;
  }

  /** Jobs matching every given filter, oldest first. */
  list(filter: JobFilter = {}): JobRow[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.datasetId !== undefined) {
      where.push('dataset_id = @datasetId');
      params.datasetId = filter.datasetId;
    }
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = checkOneOf(filter.status, RUN_STATUSES, 'jobs.list: status');
    }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid`;
    return (this.db.prepare(sql).all(params) as JobSql[]).map(toRow);
  }

  /**
   * Change some fields; throws on an unknown id. Setting status 'running' records this process as
   * the job's owner (see markInterrupted).
   */
  update(id: string, patch: JobPatch): JobRow {
    const w = `jobs.update(${id})`;
    const sets: string[] = [];
    const params: Record<string, unknown> = { id };
    const set = (col: string, value: unknown) => {
      sets.push(`${col} = @${col}`);
      params[col] = value;
    };
    if (patch.status !== undefined) {
      set('status', checkOneOf(patch.status, RUN_STATUSES, `${w}: status`));
      if (patch.status === 'running') set('pid', process.pid);
    }
    if (patch.backend !== undefined)
      set(
        'backend',
        checkNullable(patch.backend, (b) => checkOneOf(b, BACKENDS, `${w}: backend`)),
      );
    if (patch.startedAt !== undefined)
      set(
        'started_at',
        checkNullable(patch.startedAt, (t) => checkTime(t, `${w}: startedAt`)),
      );
    if (patch.endedAt !== undefined)
      set(
        'ended_at',
        checkNullable(patch.endedAt, (t) => checkTime(t, `${w}: endedAt`)),
      );
    if (patch.error !== undefined) set('error', patch.error === null ? null : String(patch.error));
    if (patch.modelsRoot !== undefined)
      set(
        'models_root',
        checkNullable(patch.modelsRoot, (d) => checkString(d, `${w}: modelsRoot`)),
      );
    if (sets.length > 0) {
      const info = this.db.prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = @id`).run(params);
      if (info.changes === 0) throw new StoreError(`jobs.update: no job ${id}`);
    }
    const row = this.get(id);
    if (!row) throw new StoreError(`jobs.update: no job ${id}`);
    return row;
  }

  /**
   * Lease the job to `holder`, in one IMMEDIATE transaction (two processes cannot both win): refused
   * while another live process holds it; the lease of a process that died is taken over; the holder's
   * own lease is renewed. Throws StoreError for an unknown job.
   */
  acquireLease(id: string, holder: LeaseHolder, now = Date.now()): LeaseResult {
    return this.db
      .transaction((): LeaseResult => {
        const row = this.get(id);
        if (!row) throw new StoreError(`jobs.acquireLease: no job ${id}`);
        const held = row.lease;
        if (held && !sameProcess(held, holder) && leaseAlive(held, now)) {
          return {
            ok: false,
            holder: held,
            message: `job ${id} is leased to ${describeHolder(held)}: stop it there, or wait for it to finish`,
          };
        }
        this.db
          .prepare(
            `UPDATE jobs SET lease_pid = ?, lease_host = ?, lease_start = ?, lease_label = ?, lease_at = ? WHERE id = ?`,
          )
          .run(holder.pid, holder.host, holder.start, holder.label, now, id);
        return { ok: true };
      })
      .immediate();
  }

  /** Renew `holder`'s lease on the job (no-op when it does not hold it). */
  heartbeat(id: string, holder: LeaseHolder, now = Date.now()): void {
    this.db
      .prepare(`UPDATE jobs SET lease_at = ? WHERE id = ? AND lease_pid = ? AND lease_host = ?`)
      .run(now, id, holder.pid, holder.host);
  }

  /** Give the lease up (no-op when `holder` does not hold it). */
  releaseLease(id: string, holder: LeaseHolder): void {
    this.db
      .prepare(
        `UPDATE jobs SET lease_pid = NULL, lease_host = NULL, lease_start = NULL, lease_label = NULL, lease_at = NULL
          WHERE id = ? AND lease_pid = ? AND lease_host = ?`,
      )
      .run(id, holder.pid, holder.host);
  }
}
