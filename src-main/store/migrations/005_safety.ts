/**
 * 005 — crash and concurrency safety.
 *
 *  - jobs.models_root: the folder that holds a job's model folders and checkpoints, fixed when the job
 *    is made, so a resume (from any process, with any --out) continues from the job's own checkpoints;
 *  - jobs.lease_*: the process a job is leased to (pid, host, process start identity, what it is, last
 *    heartbeat). One process trains a job at a time; a second resume is refused naming the holder; the
 *    lease of a process that died is taken over;
 *  - series.import_pid: the process appending slices to a series in batches (each batch its own short
 *    transaction, so a long import never holds the write lock for long). Rows it has not yet put in
 *    place have a negative slice_index; if it dies, start-up recovery removes them;
 *  - pending_deletes: files and folders a deletion still has to remove. A deletion removes its rows
 *    and records their files here in ONE transaction, then removes the files and these rows; if the
 *    process dies in between, start-up recovery finishes the job. Deleted patient data never stays on
 *    disk, and no row ever points at removed files.
 */
import type { Migration } from './types.js';

export const migration005Safety: Migration = {
  version: 5,
  name: 'safety',
  sql: /* sql */ `
ALTER TABLE jobs ADD COLUMN models_root TEXT;
ALTER TABLE jobs ADD COLUMN lease_pid INTEGER;
ALTER TABLE jobs ADD COLUMN lease_host TEXT;
-- the holder's start identity (Linux: start time in clock ticks since boot), so a reused pid is not
-- mistaken for the holder
ALTER TABLE jobs ADD COLUMN lease_start TEXT;
ALTER TABLE jobs ADD COLUMN lease_label TEXT;
-- epoch ms of the holder's last heartbeat
ALTER TABLE jobs ADD COLUMN lease_at INTEGER;
ALTER TABLE series ADD COLUMN import_pid INTEGER;
CREATE TABLE pending_deletes (
  path        TEXT    PRIMARY KEY NOT NULL,
  created_at  INTEGER NOT NULL
);
`,
};
