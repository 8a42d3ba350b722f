/**
 * Experiments: a study of many jobs (`kdmri study`: every acceleration × seed, plus the
 * student-long control) recorded as one unit, so that its table is built from its own jobs only.
 * `experiment_jobs` says what each job is in the experiment: its role, acceleration, seed and any
 * other grid parameters (JSON), in plan order.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { RUN_STATUSES, type RunStatus } from '../../contract/domain.js';
import {
  checkInt,
  checkNullable,
  checkNumber,
  checkOneOf,
  checkString,
  checkTime,
  fromJson,
  StoreError,
  toJson,
  type JsonObject,
} from '../util.js';

export interface ExperimentRow {
  /** A UUID (text). */
  id: string;
  /** 'study' (kdmri study); other kinds may follow (sweeps). */
  kind: string;
  name: string;
  datasetId: number | null;
  /** The plan as asked for (JSON). */
  config: JsonObject;
  status: RunStatus;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  error: string | null;
  pid: number | null;
}

export interface ExperimentJobRow {
  experimentId: string;
  jobId: string;
  position: number;
  /** 'main' or 'student-long' in a study. */
  role: string;
  acc: number | null;
  seed: number | null;
  params: JsonObject;
}

export interface NewExperiment {
  id?: string;
  kind: string;
  name: string;
  datasetId?: number | null;
  config: JsonObject;
  status?: RunStatus;
  createdAt?: number;
}

export interface ExperimentPatch {
  status?: RunStatus;
  startedAt?: number | null;
  endedAt?: number | null;
  error?: string | null;
}

interface ExpSql {
  id: string;
  kind: string;
  name: string;
  dataset_id: number | null;
  config: string;
  status: RunStatus;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error: string | null;
  pid: number | null;
}

interface ExpJobSql {
  experiment_id: string;
  job_id: string;
  position: number;
  role: string;
  acc: number | null;
  seed: number | null;
  params: string;
}

function toRow(r: ExpSql): ExperimentRow {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    datasetId: r.dataset_id,
    config: fromJson<JsonObject>(r.config, `config of experiment ${r.id}`),
    status: r.status,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: r.error,
    pid: r.pid,
  };
}

function toJobRow(r: ExpJobSql): ExperimentJobRow {
  return {
    experimentId: r.experiment_id,
    jobId: r.job_id,
    position: r.position,
    role: r.role,
    acc: r.acc,
    seed: r.seed,
    params: fromJson<JsonObject>(r.params, `params of job ${r.job_id} in experiment ${r.experiment_id}`),
  };
}

export class ExperimentRepo {
  constructor(private readonly db: Database.Database) {}

  create(e: NewExperiment): ExperimentRow {
    const w = 'experiments.create';
    const status = checkOneOf(e.status ?? 'queued', RUN_STATUSES, `${w}: status`);
    const row = {
      id: e.id === undefined ? randomUUID() : checkString(e.id, `${w}: id`),
      kind: checkString(e.kind, `${w}: kind`),
      name: checkString(e.name, `${w}: name`),
      datasetId: checkNullable(e.datasetId, (d) => checkInt(d, `${w}: datasetId`, 1)),
      config: toJson(e.config, `${w}: config`),
      status,
      createdAt: checkTime(e.createdAt ?? Date.now(), `${w}: createdAt`),
      pid: status === 'running' ? process.pid : null,
    };
    this.db.transaction(() => {
      if (
        row.datasetId !== null &&
        !this.db.prepare('SELECT 1 FROM datasets WHERE id = ?').get(row.datasetId)
      )
        throw new StoreError(`${w}: no dataset ${row.datasetId}`);
      if (this.db.prepare('SELECT 1 FROM experiments WHERE id = ?').get(row.id))
        throw new StoreError(`${w}: experiment ${row.id} already exists`);
      this.db
        .prepare(
          `INSERT INTO experiments (id, kind, name, dataset_id, config, status, created_at, pid)
           VALUES (@id, @kind, @name, @datasetId, @config, @status, @createdAt, @pid)`,
        )
        .run(row);
    })();
    return this.get(row.id)!;
  }

  /** null when there is no such experiment. */
  get(id: string): ExperimentRow | null {
    const r = this.db.prepare('SELECT * FROM experiments WHERE id = ?').get(id) as ExpSql | undefined;
    return r ? toRow(r) : null;
  }

  /** Experiments, oldest first (optionally of one kind). */
  list(filter: { kind?: string } = {}): ExperimentRow[] {
    const rows =
      filter.kind === undefined
        ? this.db.prepare('SELECT * FROM experiments ORDER BY created_at, rowid').all()
        : this.db
            .prepare('SELECT * FROM experiments WHERE kind = ? ORDER BY created_at, rowid')
            .all(filter.kind);
    return (rows as ExpSql[]).map(toRow);
  }

  update(id: string, patch: ExperimentPatch): ExperimentRow {
    const w = `experiments.update(${id})`;
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
    if (sets.length > 0) {
      const info = this.db.prepare(`UPDATE experiments SET ${sets.join(', ')} WHERE id = @id`).run(params);
      if (info.changes === 0) throw new StoreError(`experiments.update: no experiment ${id}`);
    }
    const row = this.get(id);
    if (!row) throw new StoreError(`experiments.update: no experiment ${id}`);
    return row;
  }

  /** Attach a job to an experiment (the job must exist and belong to no other experiment). */
  addJob(j: Omit<ExperimentJobRow, 'params'> & { params?: JsonObject }): ExperimentJobRow {
    const w = 'experiments.addJob';
    const row = {
      experimentId: checkString(j.experimentId, `${w}: experimentId`),
      jobId: checkString(j.jobId, `${w}: jobId`),
      position: checkInt(j.position, `${w}: position`),
      role: checkString(j.role, `${w}: role`),
      acc: checkNullable(j.acc, (a) => checkNumber(a, `${w}: acc`)),
      seed: checkNullable(j.seed, (s) => checkInt(s, `${w}: seed`)),
      params: toJson(j.params ?? {}, `${w}: params`),
    };
    this.db.transaction(() => {
      if (!this.get(row.experimentId)) throw new StoreError(`${w}: no experiment ${row.experimentId}`);
      if (!this.db.prepare('SELECT 1 FROM jobs WHERE id = ?').get(row.jobId))
        throw new StoreError(`${w}: no job ${row.jobId}`);
      const other = this.db
        .prepare('SELECT experiment_id FROM experiment_jobs WHERE job_id = ?')
        .get(row.jobId) as { experiment_id: string } | undefined;
      if (other)
        throw new StoreError(`${w}: job ${row.jobId} already belongs to experiment ${other.experiment_id}`);
      this.db
        .prepare(
          `INSERT INTO experiment_jobs (experiment_id, job_id, position, role, acc, seed, params)
           VALUES (@experimentId, @jobId, @position, @role, @acc, @seed, @params)`,
        )
        .run(row);
    })();
    return this.jobs(row.experimentId).find((x) => x.jobId === row.jobId)!;
  }

  /** The experiment's jobs in plan order. */
  jobs(experimentId: string): ExperimentJobRow[] {
    return (
      this.db
        .prepare('SELECT * FROM experiment_jobs WHERE experiment_id = ? ORDER BY position, job_id')
        .all(experimentId) as ExpJobSql[]
    ).map(toJobRow);
  }

  /** The experiment a job belongs to, if any. */
  ofJob(jobId: string): ExperimentJobRow | null {
    const r = this.db.prepare('SELECT * FROM experiment_jobs WHERE job_id = ?').get(jobId) as
      ExpJobSql | undefined;
    return r ? toJobRow(r) : null;
  }
}
