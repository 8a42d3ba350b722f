/**
 * The SQLite store: one database file per installation (runs, models, datasets, evaluations, and
 * the DICOM library), opened with WAL so the app, the CLI and the web server can share it.
 *
 * Conventions: times are epoch milliseconds; SQL is snake_case, TypeScript camelCase; lists are
 * oldest first; `get(id)` returns null for an unknown id while `update`-style calls throw StoreError.
 */
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, type Migration } from './migrations/index.js';
import { DatasetRepo } from './repos/datasets.js';
import { EpochRepo } from './repos/epochs.js';
import { EvaluationRepo } from './repos/evaluations.js';
import { ExperimentRepo } from './repos/experiments.js';
import { RunRecordRepo } from './repos/run-records.js';
import { JobRepo } from './repos/jobs.js';
import { ModelRepo } from './repos/models.js';
import { RunRepo } from './repos/runs.js';
import { PseudonymRepo } from './repos/pseudonyms.js';
import { TimingRepo } from './repos/timings.js';
import { PacsNodeRepo } from './repos/pacs-nodes.js';
import { SweepRepo } from './repos/sweeps.js';
import { StoreError } from './util.js';
import { DB_FILE, libraryHome, mkdirPrivate, preparePrivateFile } from './home.js';

export { StoreError } from './util.js';
export type { JsonObject, JsonValue } from './util.js';
export type { DatasetRow, NewDataset } from './repos/datasets.js';
export type { JobRow, NewJob, JobPatch, JobFilter } from './repos/jobs.js';
export type { RunRow, NewRun, RunPatch, RunFilter } from './repos/runs.js';
export type { EpochRow, EpochInput } from './repos/epochs.js';
export type { ModelRow, NewModel, ModelFilter } from './repos/models.js';
export type {
  EvaluationRow,
  NewEvaluation,
  EvaluationFilter,
  PaperRow,
  EvalKind,
  VolumeValues,
} from './repos/evaluations.js';
export type { ExperimentRow, ExperimentJobRow, NewExperiment, ExperimentPatch } from './repos/experiments.js';
export type { RunRecord, NewRunRecord, RunDataRecord, MaskRecord, StopReason } from './repos/run-records.js';
export type {
  DatasetRepo,
  JobRepo,
  RunRepo,
  EpochRepo,
  ModelRepo,
  EvaluationRepo,
  ExperimentRepo,
  RunRecordRepo,
  PseudonymRepo,
};
export type { PseudonymKind, PseudonymRow } from './repos/pseudonyms.js';
export type { TimingKey, TimingRow, TimingRepo } from './repos/timings.js';
export type { PacsNodeRow, NewPacsNode, PacsAuthKind } from './repos/pacs-nodes.js';
export type { SweepRow, SweepTaskRow, SweepExecutor, TaskState } from './repos/sweeps.js';
export type { SweepRepo };

/** The library home's database: `$KDMRI_HOME/kdmri.db` when KDMRI_HOME is set (and non-empty), else `~/.kdmri/kdmri.db`. */
export function defaultDbPath(): string {
  return join(libraryHome(), DB_FILE);
}

/** A typed handle on the store. Not safe to share across threads: open one per worker. */
export class Db {
  readonly datasets: DatasetRepo;
  readonly jobs: JobRepo;
  readonly runs: RunRepo;
  readonly epochs: EpochRepo;
  readonly models: ModelRepo;
  readonly evaluations: EvaluationRepo;
  readonly experiments: ExperimentRepo;
  readonly runRecords: RunRecordRepo;
  /** The de-identification key map (private: never exported). */
  readonly pseudonyms: PseudonymRepo;
  /** Measured network costs on this machine (duration estimates). */
  readonly timings: TimingRepo;
  /** The lab's PACS nodes (no credentials: those are in the secret store). */
  readonly pacsNodes: PacsNodeRepo;
  /** Sweeps handed to an executor (kdmri sweep) and their tasks. */
  readonly sweeps: SweepRepo;

  /**
   * @param sqlite an open connection, already migrated (use openDatabase). Exposed as `sqlite` for
   *   repositories that live outside this module (the DICOM library).
   */
  constructor(
    readonly sqlite: Database.Database,
    /** The file opened (or ':memory:'). */
    readonly file: string,
  ) {
    this.datasets = new DatasetRepo(sqlite);
    this.jobs = new JobRepo(sqlite);
    this.runs = new RunRepo(sqlite);
    this.epochs = new EpochRepo(sqlite);
    this.models = new ModelRepo(sqlite);
    this.evaluations = new EvaluationRepo(sqlite);
    this.experiments = new ExperimentRepo(sqlite);
    this.runRecords = new RunRecordRepo(sqlite);
    this.pseudonyms = new PseudonymRepo(sqlite);
    this.timings = new TimingRepo(sqlite);
    this.pacsNodes = new PacsNodeRepo(sqlite);
    this.sweeps = new SweepRepo(sqlite);
  }

  /** The schema version (PRAGMA user_version). */
  get schemaVersion(): number {
    return this.sqlite.pragma('user_version', { simple: true }) as number;
  }

  /** Run `fn` in one transaction (nested calls become savepoints); rolled back if it throws. */
  transaction<T>(fn: () => T): T {
    return this.sqlite.transaction(fn)();
  }

  get open(): boolean {
    return this.sqlite.open;
  }

  /**
   * Record a failure on job `jobId` and its running runs, in one transaction. No-op for an unknown
   * job; with `unendedOnly`, also for a job whose end is already recorded (the case of a worker that
   * died without recording its own: its job is still 'queued' or 'running').
   */
  failJob(jobId: string, error: string, opts: { unendedOnly?: boolean } = {}): void {
    this.transaction(() => {
      const job = this.jobs.get(jobId);
      if (!job) return;
      if (opts.unendedOnly && job.status !== 'queued' && job.status !== 'running') return;
      const now = Date.now();
      for (const r of this.runs.list({ jobId, status: 'running' }))
        this.runs.update(r.id, { status: 'failed', error, endedAt: now });
      this.jobs.update(jobId, { status: 'failed', error, endedAt: now });
    });
  }

  /** Idempotent. */
  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }
}

/** Check that migrations are numbered 1, 2, 3, … in order: a mistake here would corrupt databases. */
function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StoreError(
        `store migrations are misnumbered: entry ${i} ('${m.name}') has version ${m.version}, expected ${i + 1}`,
      );
    }
  });
}

function tooNewError(file: string, version: number, known: number): StoreError {
  return new StoreError(
    `database ${file} has schema version ${version}, newer than this version of KD-MRI Workstation ` +
      `understands (${known}); update the application or use another database`,
  );
}

/**
 * Bring the schema up to date. Each pending migration runs in its own IMMEDIATE transaction together
 * with its `user_version` bump, re-reading the version inside it, so two processes opening the same
 * new file at once cannot both apply a migration.
 */
export function migrate(
  sqlite: Database.Database,
  file: string,
  migrations: readonly Migration[] = MIGRATIONS,
): void {
  checkMigrations(migrations);
  const known = migrations.length;
  const version = () => sqlite.pragma('user_version', { simple: true }) as number;
  const tooNew = (v: number) => tooNewError(file, v, known);
  const current = version();
  if (current > known) throw tooNew(current);
  // Up to date: take no write lock, so opening never waits for another process's transaction.
  if (current === known) return;
  for (const m of migrations) {
    sqlite
      .transaction(() => {
        const v = version();
        if (v > known) throw tooNew(v);
        if (v >= m.version) return;
        try {
          sqlite.exec(m.sql);
        } catch (err) {
          throw new StoreError(
            `database ${file}: migration ${m.version} (${m.name}) failed: ${(err as Error).message}`,
          );
        }
        sqlite.pragma(`user_version = ${m.version}`);
      })
      .immediate();
  }
}

/**
 * Open (creating if needed) the database at `file` — a path, or ':memory:' — and migrate it.
 * Creates the parent folder (0700) and the file (0600): the library holds patient data. Throws StoreError when the file is not a SQLite database or was written
 * by a newer version of the application.
 */
export function openDatabase(file: string): Db {
  if (typeof file !== 'string' || file.length === 0)
    throw new StoreError('openDatabase: no database path given');
  const memory = file === ':memory:';
  const path = memory ? file : resolve(file);
  let sqlite: Database.Database;
  try {
    if (!memory) {
      mkdirPrivate(dirname(path));
      preparePrivateFile(path);
    }
    sqlite = new Database(path);
  } catch (err) {
    throw new StoreError(`cannot open database ${path}: ${(err as Error).message}`);
  }
  try {
    // busy_timeout first: the journal-mode switch itself may have to wait for another process.
    sqlite.pragma('busy_timeout = 5000');
    // Refuse a newer database before changing anything in it (journal mode is persistent).
    const version = sqlite.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) throw tooNewError(path, version, MIGRATIONS.length);
    if (!memory) sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    // WAL + NORMAL is durable against application crashes, which is what resume relies on.
    sqlite.pragma('synchronous = NORMAL');
    migrate(sqlite, path);
  } catch (err) {
    sqlite.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot open database ${path}: ${(err as Error).message}`);
  }
  return new Db(sqlite, path);
}
