/**
 * 001 — the run-tracking core: datasets, distillation jobs, their runs, per-epoch metrics, saved
 * models and evaluations (modelled on MLflow's SQLite schema, specialised to KD-MRI).
 *
 * Conventions: times are epoch milliseconds (INTEGER); JSON columns hold UTF-8 JSON text; enum-like
 * TEXT columns carry CHECK constraints as a backstop (the repositories validate first, with clearer
 * messages).
 *
 * ON DELETE choices:
 *  - deleting a dataset is refused while jobs or evaluations use it (RESTRICT): results must not
 *    silently lose their data lineage;
 *  - deleting a job deletes its runs, and a run's epoch metrics (CASCADE): they have no meaning alone;
 *  - models outlive their runs (run_id SET NULL) and their teachers (teacher_model_id SET NULL), since
 *    the folder on disk stays usable; models are normally soft-deleted (deleted_at) anyway;
 *  - an evaluation dies with its model (CASCADE); a job's deletion only unlinks its evaluations.
 */
import type { Migration } from './types.js';

export const migration001Core: Migration = {
  version: 1,
  name: 'core',
  sql: /* sql */ `
CREATE TABLE datasets (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT    NOT NULL,
  -- a file or folder path, 'sample', or 'series:<SeriesInstanceUID>'
  source        TEXT    NOT NULL,
  task          TEXT    NOT NULL CHECK (task IN ('recon', 'sr')),
  h             INTEGER NOT NULL CHECK (h > 0),
  w             INTEGER NOT NULL CHECK (w > 0),
  train_slices  INTEGER NOT NULL CHECK (train_slices >= 0),
  val_slices    INTEGER NOT NULL CHECK (val_slices >= 0),
  created_at    INTEGER NOT NULL,
  meta          TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX datasets_source ON datasets (source);

CREATE TABLE jobs (
  id            TEXT    PRIMARY KEY NOT NULL,
  dataset_id    INTEGER NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
  config        TEXT    NOT NULL,
  status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
  backend       TEXT,
  created_at    INTEGER NOT NULL,
  started_at    INTEGER,
  ended_at      INTEGER,
  error         TEXT,
  -- process that set status 'running'; lets markInterrupted spare jobs of another live process
  pid           INTEGER
);
CREATE INDEX jobs_dataset ON jobs (dataset_id);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE runs (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id         TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  kind           TEXT    NOT NULL CHECK (kind IN ('teacher', 'student', 'attention', 'kd')),
  status         TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
  config         TEXT    NOT NULL,
  backend        TEXT,
  epochs_planned INTEGER NOT NULL CHECK (epochs_planned >= 0),
  epochs_done    INTEGER NOT NULL DEFAULT 0 CHECK (epochs_done >= 0),
  best_epoch     INTEGER,
  best_val_loss  REAL,
  created_at     INTEGER NOT NULL,
  started_at     INTEGER,
  ended_at       INTEGER,
  wall_seconds   REAL,
  error          TEXT,
  -- the teacher run a student was distilled from
  parent_run_id  INTEGER REFERENCES runs (id) ON DELETE SET NULL,
  checkpoint_dir TEXT,
  pid            INTEGER
);
CREATE INDEX runs_job ON runs (job_id);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_parent ON runs (parent_run_id);

CREATE TABLE epoch_metrics (
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  epoch       INTEGER NOT NULL CHECK (epoch >= 0),
  -- NULL stands for NaN (SQLite cannot store NaN); a diverged epoch is still recorded
  train_loss  REAL,
  val_loss    REAL,
  lr          REAL,
  seconds     REAL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;

CREATE TABLE models (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id           INTEGER REFERENCES runs (id) ON DELETE SET NULL,
  kind             TEXT    NOT NULL CHECK (kind IN ('teacher', 'student', 'attention', 'kd')),
  name             TEXT    NOT NULL,
  -- absolute folder holding model.json + weights
  dir              TEXT    NOT NULL,
  param_count      INTEGER NOT NULL CHECK (param_count >= 0),
  spec             TEXT    NOT NULL,
  card             TEXT    NOT NULL,
  teacher_model_id INTEGER REFERENCES models (id) ON DELETE SET NULL,
  created_at       INTEGER NOT NULL,
  deleted_at       INTEGER
);
CREATE INDEX models_run ON models (run_id);
CREATE INDEX models_teacher ON models (teacher_model_id);
-- one live model per folder: a folder replaced on disk supersedes the model that pointed at it
CREATE UNIQUE INDEX models_live_dir ON models (dir) WHERE deleted_at IS NULL;

CREATE TABLE evaluations (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  -- NULL for the zero-filled / low-resolution baseline
  model_id         INTEGER REFERENCES models (id) ON DELETE CASCADE,
  run_kind         TEXT    NOT NULL CHECK (run_kind IN ('zf', 'lr', 'teacher', 'student', 'attention', 'kd')),
  dataset_id       INTEGER NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
  job_id           TEXT    REFERENCES jobs (id) ON DELETE SET NULL,
  degradation      TEXT    NOT NULL,
  degradation_json TEXT,
  -- true acceleration of the mask (recon), NULL for low-resolution degradations
  acceleration     REAL,
  -- metric NULL stands for NaN (e.g. the 2·std of a single volume, or a diverged model)
  psnr             REAL,
  ssim             REAL,
  nmse             REAL,
  psnr_std2        REAL,
  ssim_std2        REAL,
  nmse_std2        REAL,
  volumes          INTEGER NOT NULL CHECK (volumes >= 0),
  per_volume       TEXT    NOT NULL DEFAULT '[]',
  backend          TEXT,
  created_at       INTEGER NOT NULL
);
CREATE INDEX evaluations_table ON evaluations (dataset_id, degradation, run_kind, created_at);
CREATE INDEX evaluations_model ON evaluations (model_id);
CREATE INDEX evaluations_job ON evaluations (job_id);
`,
};
