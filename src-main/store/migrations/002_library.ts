/**
 * 002 — the studies library: patients → studies → series → instances, as a DICOM browser shows them,
 * plus a pixel cache so a series opens without re-decoding its files.
 *
 * Pixel cache choice: float32 slices (after RescaleSlope/Intercept) as BLOBs in `series_slices`, one
 * row per slice, in the same database. Reasons: a series and its pixels are written in ONE transaction
 * (nothing half-imported, no orphan files next to the DB), one slice is read without loading the whole
 * volume (the viewer asks slice by slice), and deleting a series cascades to its pixels. BLOBs are
 * little-endian float32, row-major H×W. Raw-k-space series (fastMRI / KD-MRI HDF5) also keep the
 * acquired k-space per slice (`kspace_re`, `kspace_im`: unshifted, orthonormal, float32 H×W) and the
 * sampling mask once per series (`series.kspace_mask`, float32 H×W, 1 = sampled).
 *
 * Synthetic objects (NIfTI, HDF5) get deterministic UIDs (2.25.<decimal>) derived from path + content
 * hash, so importing the same file twice finds the same series.
 */
import type { Migration } from './types.js';

export const migration002Library: Migration = {
  version: 2,
  name: 'library',
  sql: /* sql */ `
CREATE TABLE patients (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  -- PatientID + '\\' + PatientName: DICOM has no patient UID, and IDs are only unique per issuer
  patient_key   TEXT    NOT NULL UNIQUE,
  patient_id    TEXT    NOT NULL DEFAULT '',
  name          TEXT    NOT NULL DEFAULT '',
  birth_date    TEXT    NOT NULL DEFAULT '',
  sex           TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE studies (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  study_uid     TEXT    NOT NULL UNIQUE,
  patient_ref   INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
  study_date    TEXT    NOT NULL DEFAULT '',
  study_time    TEXT    NOT NULL DEFAULT '',
  description   TEXT    NOT NULL DEFAULT '',
  accession     TEXT    NOT NULL DEFAULT '',
  study_id      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX studies_patient ON studies (patient_ref);

CREATE TABLE series (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  series_uid      TEXT    NOT NULL UNIQUE,
  study_ref       INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
  modality        TEXT    NOT NULL DEFAULT '',
  description     TEXT    NOT NULL DEFAULT '',
  series_number   INTEGER,
  rows            INTEGER NOT NULL CHECK (rows > 0),
  cols            INTEGER NOT NULL CHECK (cols > 0),
  slices          INTEGER NOT NULL CHECK (slices > 0),
  -- mm; NULL when unknown
  spacing_row     REAL,
  spacing_col     REAL,
  slice_thickness REAL,
  slice_spacing   REAL,
  -- 'dicom' | 'nifti' | 'hdf5'
  source_kind     TEXT    NOT NULL CHECK (source_kind IN ('dicom', 'nifti', 'hdf5')),
  -- a file or folder path (first file for DICOM)
  source          TEXT    NOT NULL DEFAULT '',
  -- JSON object: attribute keyword -> text, what the browser's tag panel shows
  attributes      TEXT    NOT NULL DEFAULT '{}',
  kspace_mask     BLOB,
  created_at      INTEGER NOT NULL
);
CREATE INDEX series_study ON series (study_ref);

CREATE TABLE instances (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  series_ref      INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
  -- for multi-frame files: '<SOPInstanceUID>' for frame 1, '<SOPInstanceUID>#<n>' for frame n
  sop_uid         TEXT    NOT NULL,
  sop_class_uid   TEXT    NOT NULL DEFAULT '',
  path            TEXT    NOT NULL,
  frame           INTEGER NOT NULL DEFAULT 0,
  instance_number INTEGER,
  -- ImagePositionPatient as JSON [x, y, z], or NULL
  position        TEXT,
  slice_index     INTEGER NOT NULL,
  UNIQUE (series_ref, sop_uid)
);
CREATE INDEX instances_series ON instances (series_ref, slice_index);

CREATE TABLE series_slices (
  series_ref      INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
  slice_index     INTEGER NOT NULL,
  data            BLOB    NOT NULL,
  kspace_re       BLOB,
  kspace_im       BLOB,
  PRIMARY KEY (series_ref, slice_index)
);
`,
};
