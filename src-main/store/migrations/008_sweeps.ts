/**
 * 008 — sweeps: a grid of distillations (dataset × mask × acceleration × seed) handed to an executor
 * (this machine's job queue, or a Slurm job array), each task a `kdmri distill` with its own database
 * and model folder under the sweep's work folder, merged back into the library by `kdmri runs import`.
 *
 *  - sweeps: the plan as asked for (`config`, JSON), where its tasks live (`workdir`), the executor,
 *    and the scheduler's id of its last submission (a Slurm array job id);
 *  - sweep_tasks: one row per grid point, in plan order (`idx` is the Slurm array index). `job_id` is
 *    the job inside the task's database (and in the library once imported, under the same id);
 *    `experiment_id` the experiment its runs form (one per dataset × mask, so a table's columns are
 *    accelerations of one mask). `state` is the last state seen ('imported' once merged);
 *    `scheduler_id` the Slurm "<array>_<index>" that last ran it.
 *
 * Number 8: main has 1–5; 6 and 7 are given to other branches (see migrations/index.ts).
 */
import type { Migration } from './types.js';

export const migration008Sweeps: Migration = {
  version: 8,
  name: 'sweeps',
  sql: /* sql */ `
CREATE TABLE sweeps (
  id            TEXT    PRIMARY KEY NOT NULL,
  name          TEXT    NOT NULL,
  executor      TEXT    NOT NULL CHECK (executor IN ('local', 'slurm')),
  workdir       TEXT    NOT NULL,
  config        TEXT    NOT NULL,
  scheduler_id  TEXT,
  created_at    INTEGER NOT NULL
);
CREATE INDEX sweeps_created ON sweeps (created_at);

CREATE TABLE sweep_tasks (
  sweep_id      TEXT    NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
  idx           INTEGER NOT NULL CHECK (idx >= 0),
  data          TEXT    NOT NULL,
  mask          TEXT    NOT NULL,
  acc           REAL,
  seed          INTEGER NOT NULL,
  job_id        TEXT    NOT NULL UNIQUE,
  experiment_id TEXT    NOT NULL,
  dir           TEXT    NOT NULL,
  state         TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'finished', 'failed', 'cancelled', 'imported')),
  scheduler_id  TEXT,
  error         TEXT,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (sweep_id, idx)
) WITHOUT ROWID;
`,
};
