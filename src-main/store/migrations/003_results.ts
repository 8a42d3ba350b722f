/**
 * 003 — results a lab can publish: evaluations with an identity, their per-volume and per-slice
 * values, experiments (studies of many jobs) and run reproducibility records.
 *
 * evaluations is rebuilt (SQLite cannot change a CHECK constraint in place) with:
 *  - `split`: which slices were scored. Tables use 'validation' only. Rows written before this
 *    migration get 'validation' when their job wrote them while it ran (created no later than the job
 *    ended: a job only scores its validation split) and 'unknown' otherwise (`kdmri eval` could score
 *    every slice, and did not say), so they never reach a table;
 *  - `degradation_key`: the degradation's full identity (domain.ts degradationKey: kind,
 *    acceleration, axis, seed, centre, preset, a file mask's lines), and `mask_hash`: SHA-256 of the
 *    mask actually applied (H×W bytes, 1 = sampled, row-major, unshifted), so different masks never
 *    share a row;
 *  - `data_hash`: SHA-256 of the scored targets (see distill/records.ts), so paired comparisons only
 *    pair evaluations of the very same slices;
 *  - `method`: JSON parameters of a baseline that has some (the compressed-sensing 'cs' kind);
 *  - the 'cs' kind.
 * `per_volume` moves to `evaluation_values`, one row per volume (slice = -1) and per slice, so spreads
 * and paired tests can be recomputed from the store.
 *
 * experiments: a study (or, later, a sweep) groups jobs; `experiment_jobs` says what each job is in
 * it (role 'main' or 'student-long', acceleration, seed, and any other grid parameters as JSON).
 * The name avoids `studies`, which holds DICOM studies.
 *
 * run_records: what reproduces a run — exact config, seeds, the mask and its hash, hashes of the
 * training and validation data, backend, threads, versions — written when the run starts; the stop
 * reason is filled in when it ends.
 */
import type { Migration } from './types.js';

export const migration003Results: Migration = {
  version: 3,
  name: 'results',
  sql: /* sql */ `
CREATE TABLE evaluations_v3 (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  -- NULL for the baselines (zero-filled, low-resolution, compressed sensing)
  model_id         INTEGER REFERENCES models (id) ON DELETE CASCADE,
  run_kind         TEXT    NOT NULL CHECK (run_kind IN ('zf', 'lr', 'cs', 'teacher', 'student', 'attention', 'kd')),
  dataset_id       INTEGER NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
  -- the job that wrote it (NULL for kdmri eval and other evaluations outside a job)
  job_id           TEXT    REFERENCES jobs (id) ON DELETE SET NULL,
  split            TEXT    NOT NULL CHECK (split IN ('validation', 'train', 'all', 'unknown')),
  degradation      TEXT    NOT NULL,
  degradation_json TEXT,
  degradation_key  TEXT,
  mask_hash        TEXT,
  acceleration     REAL,
  data_hash        TEXT,
  method           TEXT,
  psnr             REAL,
  ssim             REAL,
  nmse             REAL,
  psnr_std2        REAL,
  ssim_std2        REAL,
  nmse_std2        REAL,
  volumes          INTEGER NOT NULL CHECK (volumes >= 0),
  backend          TEXT,
  created_at       INTEGER NOT NULL
);

CREATE TABLE evaluation_values (
  evaluation_id INTEGER NOT NULL REFERENCES evaluations_v3 (id) ON DELETE CASCADE,
  -- 0-based volume index within the scored split
  volume        INTEGER NOT NULL CHECK (volume >= 0),
  -- 0-based slice index within the volume; -1 for the whole volume
  slice         INTEGER NOT NULL CHECK (slice >= -1),
  -- NULL stands for NaN
  psnr          REAL,
  ssim          REAL,
  nmse          REAL,
  PRIMARY KEY (evaluation_id, volume, slice)
) WITHOUT ROWID;

INSERT INTO evaluations_v3 (id, model_id, run_kind, dataset_id, job_id, split, degradation,
    degradation_json, acceleration, psnr, ssim, nmse, psnr_std2, ssim_std2, nmse_std2, volumes, backend,
    created_at)
  SELECT e.id, e.model_id, e.run_kind, e.dataset_id, e.job_id,
    CASE WHEN e.job_id IS NOT NULL
          AND e.created_at <= (SELECT j.ended_at FROM jobs j WHERE j.id = e.job_id)
         THEN 'validation' ELSE 'unknown' END,
    e.degradation, e.degradation_json, e.acceleration, e.psnr, e.ssim, e.nmse, e.psnr_std2, e.ssim_std2,
    e.nmse_std2, e.volumes, e.backend, e.created_at
  FROM evaluations e;

INSERT INTO evaluation_values (evaluation_id, volume, slice, psnr, ssim, nmse)
  SELECT e.id, CAST(v.key AS INTEGER), -1, json_extract(v.value, '$.psnr'),
    json_extract(v.value, '$.ssim'), json_extract(v.value, '$.nmse')
  FROM evaluations e, json_each(e.per_volume) v;

DROP TABLE evaluations;
ALTER TABLE evaluations_v3 RENAME TO evaluations;
CREATE INDEX evaluations_job ON evaluations (job_id, split);
CREATE INDEX evaluations_model ON evaluations (model_id);
CREATE INDEX evaluations_dataset ON evaluations (dataset_id, split, created_at);

CREATE TABLE experiments (
  id          TEXT    PRIMARY KEY NOT NULL,
  -- 'study' (kdmri study); other kinds (sweeps) may follow
  kind        TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  dataset_id  INTEGER REFERENCES datasets (id) ON DELETE RESTRICT,
  -- JSON: the plan (what was asked for), enough to list its jobs again
  config      TEXT    NOT NULL,
  status      TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
  created_at  INTEGER NOT NULL,
  started_at  INTEGER,
  ended_at    INTEGER,
  error       TEXT,
  pid         INTEGER
);
CREATE INDEX experiments_created ON experiments (created_at);

CREATE TABLE experiment_jobs (
  experiment_id TEXT    NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  job_id        TEXT    NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
  -- order of the job in the plan
  position      INTEGER NOT NULL CHECK (position >= 0),
  -- 'main' (teacher, student, attention, kd) or 'student-long' (the extra-training control)
  role          TEXT    NOT NULL,
  acc           REAL,
  seed          INTEGER,
  -- JSON object: the grid point's other parameters
  params        TEXT    NOT NULL DEFAULT '{}',
  PRIMARY KEY (experiment_id, job_id)
);
CREATE INDEX experiment_jobs_order ON experiment_jobs (experiment_id, position);

CREATE TABLE run_records (
  run_id        INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  -- the exact DistillConfig, defaults filled in
  config        TEXT    NOT NULL,
  -- JSON: {source, size, description, datasetId, trainSlices, valSlices, trainVolumes, valVolumes}
  data          TEXT    NOT NULL,
  weight_seed   INTEGER NOT NULL,
  shuffle_seed  INTEGER NOT NULL,
  mask_seed     INTEGER,
  -- JSON {h, w, axis, lines}: the mask itself (1-D Cartesian: its sampled line indices), or NULL
  mask          TEXT,
  mask_hash     TEXT,
  train_hash    TEXT    NOT NULL,
  val_hash      TEXT    NOT NULL,
  backend       TEXT    NOT NULL,
  threads       INTEGER NOT NULL CHECK (threads >= 1),
  app_version   TEXT    NOT NULL,
  tfjs_version  TEXT    NOT NULL,
  node_version  TEXT    NOT NULL,
  platform      TEXT    NOT NULL,
  -- 'completed' | 'patience' | 'cancelled' | NULL while it runs
  stop_reason   TEXT,
  created_at    INTEGER NOT NULL
);
`,
};
