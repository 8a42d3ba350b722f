/**
 * 004 — the de-identification key map: for every identifier a de-identified export replaced (a patient,
 * a UID, a data source), the pseudonym it was given. Exports reuse a pseudonym, so de-identified
 * files of one patient, study or series stay linked to each other (and UIDs stay consistent across a
 * series); the lab re-identifies through this table, which never leaves the library.
 *
 * Number 4 on this branch (the next free one); the lead renumbers at merge (the exports issue was
 * given number 6).
 */
import type { Migration } from './types.js';

export const migration004Pseudonyms: Migration = {
  version: 4,
  name: 'pseudonyms',
  sql: /* sql */ `
CREATE TABLE pseudonyms (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  -- 'patient' (PatientID \\ PatientName), 'uid' (any DICOM UID), 'source' (a dataset source: path or series list)
  kind        TEXT    NOT NULL CHECK (kind IN ('patient', 'uid', 'source')),
  original    TEXT    NOT NULL,
  pseudonym   TEXT    NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  UNIQUE (kind, original)
);
`,
};
