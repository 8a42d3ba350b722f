/**
 * The studies library in SQLite (schema: store/migrations/002_library.ts): add a series slice by slice
 * (shown only once whole), list patients → studies → series, read a series' metadata, one slice, or the whole
 * volume from the float32 pixel cache, and turn series into distillation datasets.
 */
import type { PatientSummary, Pixels, SeriesDetail, StudySummary } from '../contract/api.js';
import type { Volume } from '../contract/domain.js';
import type { SliceStack } from '../data/volume.js';
import { niftiGeometryOfDicom } from '../data/dicom-geometry.js';
import type { NiftiGeometry } from '../data/nifti.js';
import type { Db, DatasetRow, JsonObject } from '../store/db.js';
import { pidExists } from '../store/lease.js';

export interface PatientAttrs {
  id: string;
  name: string;
  birthDate: string;
  sex: string;
}
export interface StudyAttrs {
  uid: string;
  date: string;
  time: string;
  description: string;
  accession: string;
  studyId: string;
}
export interface SeriesAttrs {
  uid: string;
  modality: string;
  description: string;
  number: number | null;
  rows: number;
  cols: number;
  spacingRow: number | null;
  spacingCol: number | null;
  sliceThickness: number | null;
  sliceSpacing: number | null;
  sourceKind: 'dicom' | 'nifti' | 'hdf5';
  source: string;
  /** Keyword → text, shown in the browser's attribute panel. */
  attributes: Record<string, string>;
}
export interface InstanceAttrs {
  sopUid: string;
  sopClassUid: string;
  path: string;
  frame: number;
  instanceNumber: number | null;
  position: [number, number, number] | null;
}

/** Everything needed to store one series: instances and slices in slice order (same length). */
export interface SeriesRecord {
  patient: PatientAttrs;
  study: StudyAttrs;
  series: SeriesAttrs;
  instances: InstanceAttrs[];
  slices: Float32Array[];
  /** Acquired k-space (raw-data series): per slice re/im, unshifted + orthonormal; mask H×W. */
  kspace?: { re: Float32Array[]; im: Float32Array[]; mask: Float32Array };
  /** The slice normal (row × column direction cosines), to sort slices added to a stored series. */
  normal?: [number, number, number] | null;
}

const blob = (a: Float32Array): Buffer => {
  // float32 little endian (all supported hosts are LE; the copy also detaches from shared buffers)
  return Buffer.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
};
const floats = (b: Buffer): Float32Array => {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
};

/** Instances already stored for a series UID (SOP UID → path), empty when the series is new. */
export function existingInstances(db: Db, seriesUid: string): Map<string, string> {
  const rows = db.sqlite
    .prepare(
      `SELECT i.sop_uid AS sop, i.path AS path FROM instances i JOIN series s ON s.id = i.series_ref
        WHERE s.series_uid = ? AND i.slice_index >= 0`,
    )
    .all(seriesUid) as { sop: string; path: string }[];
  return new Map(rows.map((r) => [r.sop, r.path]));
}

/**
 * Bytes of pixels written per transaction: each batch commits on its own, so an import never holds
 * the write lock for long (a training job recording an epoch waits at most one batch, far below the
 * store's 5 s busy timeout), whatever the size of the series.
 */
export const IMPORT_BATCH_BYTES = 8 << 20;

/** What storeSeries did: slices added to the series, and whether the series is new. */
export interface StoredSeries {
  added: number;
  created: boolean;
}

/** A series' patient, study and series attributes: what beginSeries needs before any slice. */
export interface SeriesHead {
  patient: PatientAttrs;
  study: StudyAttrs;
  series: SeriesAttrs;
  /** The slice normal (row × column direction cosines), to sort slices added to a stored series. */
  normal?: [number, number, number] | null;
  /** Acquired k-space mask H×W (raw-data series). */
  kspaceMask?: Float32Array;
}

/**
 * Adds slices to one series, a bounded batch at a time (see beginSeries). Every method throws after
 * removing what it had written when a write fails.
 */
export interface SeriesWriter {
  /**
   * Add one slice (float32, rows×cols; with its acquired k-space for raw-data series). Returns false,
   * writing nothing, when the series already has this SOP Instance UID (re-import only adds).
   */
  add(inst: InstanceAttrs, slice: Float32Array, kspace?: { re: Float32Array; im: Float32Array }): boolean;
  /** Slices added so far (pending: invisible until finish). */
  readonly added: number;
  /**
   * Put every added slice in its place at once (readers then see them all) and clear the import mark.
   * `sliceSpacing`, when known only once every slice is read, replaces the series' value if this
   * writer created it.
   */
  finish(update?: { sliceSpacing?: number | null }): StoredSeries;
  /** Remove what this writer added and has not put in place (a new series left empty goes). */
  abort(): void;
}

/**
 * Add a series to the library, or add to one that is there: it only ever ADDS. Instances the library
 * already has (by SOP Instance UID) are left as they are; new ones are added and the series re-sorted
 * (by position along `rec.normal` when every slice has one, else instance number, then SOP UID). A
 * series is never rebuilt, so no slice it had is lost, whatever became of its original files.
 *
 * Slices are written through beginSeries (batches of IMPORT_BATCH_BYTES, each its own short
 * transaction, invisible until one last transaction puts them in place). Throws when another live
 * process is adding to the same series, or when the new slices' size differs from the series'.
 */
export function storeSeries(
  db: Db,
  rec: SeriesRecord,
  opts: { batchBytes?: number; between?: () => void } = {},
): StoredSeries {
  const { series } = rec;
  if (rec.slices.length === 0) throw new Error(`series ${series.uid}: no slices`);
  if (rec.instances.length !== rec.slices.length)
    throw new Error(
      `series ${series.uid}: ${rec.instances.length} instances for ${rec.slices.length} slices`,
    );
  const n = series.rows * series.cols;
  for (const s of rec.slices)
    if (s.length !== n) throw new Error(`series ${series.uid}: slice of ${s.length} values, expected ${n}`);
  const w = beginSeries(
    db,
    { patient: rec.patient, study: rec.study, series, normal: rec.normal, kspaceMask: rec.kspace?.mask },
    { ...opts, sopUids: rec.instances.map((i) => i.sopUid) },
  );
  if (!w) return { added: 0, created: false };
  try {
    rec.instances.forEach((inst, i) =>
      w.add(inst, rec.slices[i], rec.kspace ? { re: rec.kspace.re[i], im: rec.kspace.im[i] } : undefined),
    );
  } catch (err) {
    w.abort();
    throw err;
  }
  return w.finish();
}

/**
 * Start adding slices to a series (new, or one in the library): the patient, the study and, for a new
 * series, its row (hidden until its slices are in place) are written at once; the series is marked
 * as being imported by this process (series.import_pid). Slices then go in with `add`, at negative
 * slice indices that readers ignore, in transactions of `batchBytes` (default IMPORT_BATCH_BYTES) so
 * that memory holds one batch, whatever the size of the series, and no transaction holds the write
 * lock for long; `between` runs between two batches. `finish` puts them in place in one last
 * transaction. If the process dies before, start-up recovery (recoverImports) removes what it had
 * written; `abort` does the same at once.
 *
 * With `sopUids` (every instance to come), returns null and writes nothing more when the series
 * already has all of them. Throws when another live process is adding to the same series, or when the
 * series in the library is not rows×cols.
 */
export function beginSeries(
  db: Db,
  head: SeriesHead,
  opts: { batchBytes?: number; between?: () => void; sopUids?: readonly string[] } = {},
): SeriesWriter | null {
  const { patient, study, series } = head;
  const q = db.sqlite;
  const n = series.rows * series.cols;

  // 1. the patient, the study, the series row (new: hidden until its slices are in place)
  const start = db.transaction(() => {
    const key = `${patient.id}\\${patient.name}`;
    q.prepare(
      `INSERT INTO patients (patient_key, patient_id, name, birth_date, sex) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (patient_key) DO UPDATE SET birth_date = excluded.birth_date, sex = excluded.sex`,
    ).run(key, patient.id, patient.name, patient.birthDate, patient.sex);
    const pid = (q.prepare(`SELECT id FROM patients WHERE patient_key = ?`).get(key) as { id: number }).id;
    q.prepare(
      `INSERT INTO studies (study_uid, patient_ref, study_date, study_time, description, accession, study_id) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (study_uid) DO UPDATE SET study_date = excluded.study_date, study_time = excluded.study_time,
         description = excluded.description, accession = excluded.accession, study_id = excluded.study_id`,
    ).run(study.uid, pid, study.date, study.time, study.description, study.accession, study.studyId);
    const sid = (q.prepare(`SELECT id FROM studies WHERE study_uid = ?`).get(study.uid) as { id: number }).id;
    const found = q
      .prepare(`SELECT id, rows, cols, slices, import_pid FROM series WHERE series_uid = ?`)
      .get(series.uid) as
      { id: number; rows: number; cols: number; slices: number; import_pid: number | null } | undefined;
    if (found) {
      if (found.import_pid !== null && found.import_pid !== process.pid && pidExists(found.import_pid))
        throw new Error(
          `series ${series.uid} is being imported by process ${found.import_pid}: try again when it is done`,
        );
      if (found.import_pid !== null) {
        // an import that died midway: what it had not put in place goes
        q.prepare(`DELETE FROM instances WHERE series_ref = ? AND slice_index < 0`).run(found.id);
        q.prepare(`DELETE FROM series_slices WHERE series_ref = ? AND slice_index < 0`).run(found.id);
      }
      if (found.rows !== series.rows || found.cols !== series.cols)
        throw new Error(
          `series ${series.uid} is ${found.rows}×${found.cols} in the library; these images are ${series.rows}×${series.cols}`,
        );
      const stored = new Set(
        (
          q
            .prepare(`SELECT sop_uid FROM instances WHERE series_ref = ? AND slice_index >= 0`)
            .all(found.id) as {
            sop_uid: string;
          }[]
        ).map((r) => r.sop_uid),
      );
      const anyFresh = !opts.sopUids || opts.sopUids.some((u) => !stored.has(u));
      if (anyFresh) q.prepare(`UPDATE series SET import_pid = ? WHERE id = ?`).run(process.pid, found.id);
      return { ref: found.id, stored, created: false, anyFresh };
    }
    const info = q
      .prepare(
        `INSERT INTO series (series_uid, study_ref, modality, description, series_number, rows, cols, slices, spacing_row, spacing_col,
           slice_thickness, slice_spacing, source_kind, source, attributes, kspace_mask, created_at, import_pid)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        series.uid,
        sid,
        series.modality,
        series.description,
        series.number,
        series.rows,
        series.cols,
        // the count is set when the slices are in place (the row is hidden until then)
        Math.max(1, opts.sopUids?.length ?? 1),
        series.spacingRow,
        series.spacingCol,
        series.sliceThickness,
        series.sliceSpacing,
        series.sourceKind,
        series.source,
        JSON.stringify(series.attributes),
        head.kspaceMask ? blob(head.kspaceMask) : null,
        Date.now(),
        process.pid,
      );
    return { ref: Number(info.lastInsertRowid), stored: new Set<string>(), created: true, anyFresh: true };
  });
  if (!start.anyFresh) return null;
  const { ref, stored, created } = start;

  // 2. the new slices, a batch at a time, at negative indices -1, -2, … (invisible to readers)
  const insI = q.prepare(
    `INSERT INTO instances (series_ref, sop_uid, sop_class_uid, path, frame, instance_number, position, slice_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insS = q.prepare(
    `INSERT INTO series_slices (series_ref, slice_index, data, kspace_re, kspace_im) VALUES (?, ?, ?, ?, ?)`,
  );
  const limit = opts.batchBytes ?? IMPORT_BATCH_BYTES;
  type Pending = { inst: InstanceAttrs; data: Buffer; re: Buffer | null; im: Buffer | null; index: number };
  let batch: Pending[] = [];
  let bytes = 0;
  let added = 0;
  // a batch committed and more to come: `between` runs before the next batch starts
  let committed = false;
  let state: 'open' | 'done' | 'aborted' = 'open';

  const fail = (err: unknown): never => {
    abort();
    throw err;
  };
  const flush = () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    bytes = 0;
    db.transaction(() => {
      for (const r of rows) {
        insI.run(
          ref,
          r.inst.sopUid,
          r.inst.sopClassUid,
          r.inst.path,
          r.inst.frame,
          r.inst.instanceNumber,
          r.inst.position ? JSON.stringify(r.inst.position) : null,
          r.index,
        );
        insS.run(ref, r.index, r.data, r.re, r.im);
      }
    });
    committed = true;
  };
  const abort = () => {
    if (state !== 'open') return;
    state = 'aborted';
    batch = [];
    discardPending(db, ref);
  };
  const open = () => {
    if (state !== 'open')
      throw new Error(`series ${series.uid}: import already ${state === 'done' ? 'finished' : 'aborted'}`);
  };

  return {
    get added() {
      return added;
    },
    add(inst, slice, kspace) {
      open();
      if (slice.length !== n)
        fail(new Error(`series ${series.uid}: slice of ${slice.length} values, expected ${n}`));
      if (stored.has(inst.sopUid)) return false;
      stored.add(inst.sopUid);
      try {
        if (committed) {
          committed = false;
          opts.between?.();
        }
        batch.push({
          inst,
          data: blob(slice),
          re: kspace ? blob(kspace.re) : null,
          im: kspace ? blob(kspace.im) : null,
          index: -1 - added,
        });
        added++;
        bytes += slice.byteLength * (kspace ? 3 : 1);
        if (bytes >= limit) flush();
      } catch (err) {
        fail(err);
      }
      return true;
    },
    finish(update = {}) {
      open();
      try {
        flush();
        if (added === 0) {
          // nothing new: a new series goes, a stored one loses its import mark
          abort();
          return { added: 0, created: false };
        }
        // 3. put every slice in its place at once
        db.transaction(() => {
          const rows = q
            .prepare(
              `SELECT slice_index AS idx, sop_uid AS sop, frame, instance_number AS num, position FROM instances WHERE series_ref = ?`,
            )
            .all(ref) as {
            idx: number;
            sop: string;
            frame: number;
            num: number | null;
            position: string | null;
          }[];
          const order = sliceOrder(rows, head.normal ?? null);
          // old indices ≥ 0 and pending ones < 0 → final 0…n-1, through a range neither uses
          const park = -1_000_000_000;
          q.prepare(
            `UPDATE instances SET slice_index = ? - slice_index WHERE series_ref = ? AND slice_index >= 0`,
          ).run(park, ref);
          q.prepare(
            `UPDATE series_slices SET slice_index = ? - slice_index WHERE series_ref = ? AND slice_index >= 0`,
          ).run(park, ref);
          const moveI = q.prepare(
            `UPDATE instances SET slice_index = ? WHERE series_ref = ? AND slice_index = ?`,
          );
          const moveS = q.prepare(
            `UPDATE series_slices SET slice_index = ? WHERE series_ref = ? AND slice_index = ?`,
          );
          order.forEach((r, final) => {
            const now = r.idx >= 0 ? park - r.idx : r.idx;
            moveI.run(final, ref, now);
            moveS.run(final, ref, now);
          });
          q.prepare(`UPDATE series SET slices = ?, import_pid = NULL WHERE id = ?`).run(order.length, ref);
          if (created && update.sliceSpacing !== undefined)
            q.prepare(`UPDATE series SET slice_spacing = ? WHERE id = ?`).run(update.sliceSpacing, ref);
        });
      } catch (err) {
        fail(err);
      }
      state = 'done';
      return { added, created };
    },
    abort,
  };
}

/** Slice order: by position along `normal` when every slice has one, else instance number; then SOP UID, frame. */
function sliceOrder<T extends { sop: string; frame: number; num: number | null; position: string | null }>(
  rows: T[],
  normal: [number, number, number] | null,
): T[] {
  const pos = rows.map((r) => (r.position ? (JSON.parse(r.position) as [number, number, number]) : null));
  const geometric = normal !== null && pos.every((p) => p !== null);
  const key = new Map(
    rows.map((r, i) => {
      const p = pos[i];
      return [r, geometric && p ? p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2] : 0];
    }),
  );
  return [...rows].sort((a, b) => {
    const d = key.get(a)! - key.get(b)!;
    if (Math.abs(d) > 1e-6) return d;
    const na = a.num ?? Number.MAX_SAFE_INTEGER;
    const nb = b.num ?? Number.MAX_SAFE_INTEGER;
    if (na !== nb) return na - nb;
    const sa = a.sop.replace(/#\d+$/, '');
    const sb = b.sop.replace(/#\d+$/, '');
    return sa < sb ? -1 : sa > sb ? 1 : a.frame - b.frame;
  });
}

/** Remove the slices an import had not put in place; a series left empty goes (and its study, patient). */
function discardPending(db: Db, ref: number): void {
  db.transaction(() => {
    const q = db.sqlite;
    q.prepare(`DELETE FROM instances WHERE series_ref = ? AND slice_index < 0`).run(ref);
    q.prepare(`DELETE FROM series_slices WHERE series_ref = ? AND slice_index < 0`).run(ref);
    const left = (
      q.prepare(`SELECT COUNT(*) AS n FROM series_slices WHERE series_ref = ?`).get(ref) as { n: number }
    ).n;
    if (left === 0) q.prepare(`DELETE FROM series WHERE id = ?`).run(ref);
    else q.prepare(`UPDATE series SET import_pid = NULL WHERE id = ?`).run(ref);
    q.prepare(`DELETE FROM studies WHERE id NOT IN (SELECT study_ref FROM series)`).run();
    q.prepare(`DELETE FROM patients WHERE id NOT IN (SELECT patient_ref FROM studies)`).run();
  });
}

/** Start-up recovery: imports whose process died leave no half-added slices. Returns the series UIDs fixed. */
export function recoverImports(db: Db): string[] {
  const rows = db.sqlite
    .prepare(`SELECT id, series_uid, import_pid FROM series WHERE import_pid IS NOT NULL`)
    .all() as {
    id: number;
    series_uid: string;
    import_pid: number;
  }[];
  const fixed: string[] = [];
  for (const r of rows) {
    if (r.import_pid !== process.pid && pidExists(r.import_pid)) continue;
    discardPending(db, r.id);
    fixed.push(r.series_uid);
  }
  return fixed;
}

interface SeriesSql {
  id: number;
  series_uid: string;
  modality: string;
  description: string;
  series_number: number | null;
  rows: number;
  cols: number;
  slices: number;
  spacing_row: number | null;
  spacing_col: number | null;
  slice_thickness: number | null;
  slice_spacing: number | null;
  source_kind: string;
  source: string;
  attributes: string;
  study_uid: string;
  patient_name: string;
  patient_id: string;
}

/** A series being created by an import (import_pid set, no slice in place yet) is not shown. */
const VISIBLE = `(se.import_pid IS NULL OR EXISTS (SELECT 1 FROM series_slices x WHERE x.series_ref = se.id AND x.slice_index >= 0))`;

const SERIES_SELECT = `SELECT se.*, st.study_uid AS study_uid, p.name AS patient_name, p.patient_id AS patient_id
  FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref`;

/** Patients → studies → series, filtered by a case-insensitive search over names, IDs, descriptions, UIDs, dates. */
export function listStudies(db: Db, search?: string): PatientSummary[] {
  const rows = db.sqlite
    .prepare(
      `SELECT p.id AS pid, p.patient_id, p.name AS pname, st.id AS stid, st.study_uid, st.study_date, st.description AS stdesc, st.accession,
              se.series_uid, se.series_number, se.description AS sedesc, se.modality, se.slices, se.rows, se.cols
         FROM patients p JOIN studies st ON st.patient_ref = p.id JOIN series se ON se.study_ref = st.id
        WHERE ${VISIBLE}
        ORDER BY p.name, p.patient_id, st.study_date, st.study_uid, se.series_number, se.series_uid`,
    )
    .all() as {
    pid: number;
    patient_id: string;
    pname: string;
    stid: number;
    study_uid: string;
    study_date: string;
    stdesc: string;
    accession: string;
    series_uid: string;
    series_number: number | null;
    sedesc: string;
    modality: string;
    slices: number;
    rows: number;
    cols: number;
  }[];
  const needle = search?.trim().toLowerCase() ?? '';
  const out: PatientSummary[] = [];
  const patients = new Map<number, PatientSummary>();
  const studies = new Map<number, StudySummary>();
  for (const r of rows) {
    if (needle) {
      const hay = [
        r.patient_id,
        r.pname,
        r.study_uid,
        r.study_date,
        r.stdesc,
        r.accession,
        r.series_uid,
        r.sedesc,
        r.modality,
      ]
        .join('\n')
        .toLowerCase();
      if (!hay.includes(needle)) continue;
    }
    let p = patients.get(r.pid);
    if (!p) {
      p = { id: r.patient_id, name: r.pname, studies: [] };
      patients.set(r.pid, p);
      out.push(p);
    }
    let st = studies.get(r.stid);
    if (!st) {
      st = { uid: r.study_uid, date: r.study_date, description: r.stdesc, series: [] };
      studies.set(r.stid, st);
      p.studies.push(st);
    }
    st.series.push({
      uid: r.series_uid,
      number: r.series_number,
      description: r.sedesc,
      modality: r.modality,
      slices: r.slices,
      rows: r.rows,
      columns: r.cols,
    });
  }
  return out;
}

function seriesRow(db: Db, uid: string): SeriesSql | undefined {
  return db.sqlite.prepare(`${SERIES_SELECT} WHERE se.series_uid = ? AND ${VISIBLE}`).get(uid) as
    SeriesSql | undefined;
}

/** Metadata and attributes of one series, or null. */
export function getSeries(db: Db, uid: string): SeriesDetail | null {
  const r = seriesRow(db, uid);
  if (!r) return null;
  const sliceStep = r.slice_spacing ?? r.slice_thickness;
  return {
    uid: r.series_uid,
    number: r.series_number,
    description: r.description,
    modality: r.modality,
    slices: r.slices,
    rows: r.rows,
    columns: r.cols,
    studyUid: r.study_uid,
    patientName: r.patient_name,
    patientId: r.patient_id,
    spacing:
      r.spacing_col !== null && r.spacing_row !== null
        ? [r.spacing_col, r.spacing_row, sliceStep ?? 1]
        : null,
    attributes: JSON.parse(r.attributes) as Record<string, string>,
    source: r.source,
  };
}

/** One slice (float32 after rescale) from the pixel cache, or null when the series or index is unknown. */
export function getSeriesSlice(db: Db, uid: string, index: number): Pixels | null {
  const r = db.sqlite
    .prepare(
      `SELECT se.rows AS h, se.cols AS w, ss.data AS data FROM series se JOIN series_slices ss ON ss.series_ref = se.id WHERE se.series_uid = ? AND ss.slice_index = ?`,
    )
    .get(uid, index) as { h: number; w: number; data: Buffer } | undefined;
  return r ? { h: r.h, w: r.w, data: floats(r.data) } : null;
}

/**
 * A series as a SliceStack: one slice of the pixel cache in memory at a time (a query per slice, so
 * that the connection stays free for other statements between slices, e.g. the de-identifier's key
 * map). Throws for an unknown UID.
 */
export function seriesSlices(db: Db, uid: string): SliceStack {
  const r = seriesRow(db, uid);
  if (!r) throw new Error(`no series ${uid} in the library`);
  const indexes = (
    db.sqlite
      .prepare(
        `SELECT slice_index FROM series_slices WHERE series_ref = ? AND slice_index >= 0 ORDER BY slice_index`,
      )
      .all(r.id) as { slice_index: number }[]
  ).map((x) => x.slice_index);
  const one = db.sqlite.prepare(`SELECT data FROM series_slices WHERE series_ref = ? AND slice_index = ?`);
  const n = r.rows * r.cols;
  return {
    slices: indexes.length,
    h: r.rows,
    w: r.cols,
    spacing: seriesSpacing(r),
    *read() {
      for (const k of indexes) {
        const row = one.get(r.id, k) as { data: Buffer } | undefined;
        if (!row) throw new Error(`slice ${k} of series ${uid} is no longer in the library`);
        const slice = floats(row.data);
        if (slice.length !== n)
          throw new Error(
            `slice ${k} of series ${uid} has ${slice.length} values, expected ${r.rows}×${r.cols}`,
          );
        yield slice;
      }
    },
  };
}

function seriesSpacing(r: SeriesSql): [number, number, number] | undefined {
  return r.spacing_col !== null && r.spacing_row !== null
    ? [r.spacing_col, r.spacing_row, r.slice_spacing ?? r.slice_thickness ?? 1]
    : undefined;
}

/** The whole series as a Volume (with acquired k-space for raw-data series). Throws for an unknown UID. */
export function loadSeriesVolume(db: Db, uid: string, sops?: readonly string[]): Volume {
  const r = seriesRow(db, uid);
  if (!r) throw new Error(`no series ${uid} in the library`);
  const mask = db.sqlite.prepare(`SELECT kspace_mask FROM series WHERE id = ?`).get(r.id) as {
    kspace_mask: Buffer | null;
  };
  type Row = { data: Buffer; kspace_re: Buffer | null; kspace_im: Buffer | null };
  let rows: Row[];
  if (sops) {
    // exactly these instances, in this order (a dataset's slices, whatever was added to the series since)
    const one = db.sqlite.prepare(
      `SELECT ss.data, ss.kspace_re, ss.kspace_im FROM instances i
         JOIN series_slices ss ON ss.series_ref = i.series_ref AND ss.slice_index = i.slice_index
        WHERE i.series_ref = ? AND i.sop_uid = ? AND i.slice_index >= 0`,
    );
    rows = sops.map((sop) => {
      const row = one.get(r.id, sop) as Row | undefined;
      if (!row) throw new Error(`instance ${sop} of series ${uid} is no longer in the library`);
      return row;
    });
  } else {
    rows = db.sqlite
      .prepare(
        `SELECT data, kspace_re, kspace_im FROM series_slices WHERE series_ref = ? AND slice_index >= 0 ORDER BY slice_index`,
      )
      .all(r.id) as Row[];
  }
  const n = r.rows * r.cols;
  const data = new Float32Array(rows.length * n);
  rows.forEach((s, i) => data.set(floats(s.data), i * n));
  const vol: Volume = { data, slices: rows.length, h: r.rows, w: r.cols };
  const spacing = seriesSpacing(r);
  if (spacing) vol.spacing = spacing;
  if (mask.kspace_mask && rows.every((s) => s.kspace_re && s.kspace_im)) {
    const re = new Float32Array(rows.length * n);
    const im = new Float32Array(rows.length * n);
    rows.forEach(
      (s, i) => (re.set(floats(s.kspace_re as Buffer), i * n), im.set(floats(s.kspace_im as Buffer), i * n)),
    );
    vol.kspace = { re, im, mask: floats(mask.kspace_mask) };
  }
  return vol;
}

/** Delete a series (and its study/patient when left empty). Returns whether it existed. */
export function deleteSeries(db: Db, uid: string): boolean {
  return db.transaction(() => {
    const n = db.sqlite.prepare(`DELETE FROM series WHERE series_uid = ?`).run(uid).changes;
    db.sqlite.prepare(`DELETE FROM studies WHERE id NOT IN (SELECT study_ref FROM series)`).run();
    db.sqlite.prepare(`DELETE FROM patients WHERE id NOT IN (SELECT patient_ref FROM studies)`).run();
    return n > 0;
  });
}

/** Instances of a series in slice order (paths to the original files). */
export function seriesInstances(db: Db, uid: string): InstanceAttrs[] {
  const rows = db.sqlite
    .prepare(
      `SELECT i.* FROM instances i JOIN series s ON s.id = i.series_ref WHERE s.series_uid = ? AND i.slice_index >= 0 ORDER BY i.slice_index`,
    )
    .all(uid) as {
    sop_uid: string;
    sop_class_uid: string;
    path: string;
    frame: number;
    instance_number: number | null;
    position: string | null;
  }[];
  return rows.map((r) => ({
    sopUid: r.sop_uid,
    sopClassUid: r.sop_class_uid,
    path: r.path,
    frame: r.frame,
    instanceNumber: r.instance_number,
    position: r.position ? (JSON.parse(r.position) as [number, number, number]) : null,
  }));
}

/** Patient and study attributes of a series (for derived exports), or null. */
export function seriesContext(
  db: Db,
  uid: string,
): { patient: PatientAttrs; study: StudyAttrs; series: SeriesDetail } | null {
  const s = getSeries(db, uid);
  if (!s) return null;
  const r = db.sqlite
    .prepare(
      `SELECT p.patient_id, p.name, p.birth_date, p.sex, st.study_uid, st.study_date, st.study_time, st.description, st.accession, st.study_id
         FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.series_uid = ?`,
    )
    .get(uid) as Record<string, string>;
  return {
    patient: { id: r.patient_id, name: r.name, birthDate: r.birth_date, sex: r.sex },
    study: {
      uid: r.study_uid,
      date: r.study_date,
      time: r.study_time,
      description: r.description,
      accession: r.accession,
      studyId: r.study_id,
    },
    series: s,
  };
}

// ---------------------------------------------------------------------------------------------------
// Datasets built from series.

export const SERIES_SOURCE_PREFIX = 'series:';

/** Validation share, the same as the engine's for user data (distill/data-source.ts). */
const DEFAULT_TRAIN_FRACTION = 0.75;

/** The series UIDs of a dataset source 'series:<uid>[,<uid>…]', or null for other sources. */
export function parseSeriesSource(source: string): string[] | null {
  if (!source.startsWith(SERIES_SOURCE_PREFIX)) return null;
  const uids = source
    .slice(SERIES_SOURCE_PREFIX.length)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return uids.length ? uids : null;
}

/**
 * The volumes of a dataset source 'series:<uid>[,<uid>…]' (one Volume per series, from the pixel cache,
 * raw-data series with their acquired k-space), or null when `source` is not a series source. With the
 * dataset's `meta`, exactly the slices the dataset was made of (meta.instances), so slices added to a
 * series later never change a dataset (nor a job resumed on it). Throws when a series or one of those
 * slices is not in the library. The engine splits them as it splits any volumes.
 */
export function loadSeriesSource(db: Db, source: string, meta?: JsonObject): Volume[] | null {
  const uids = parseSeriesSource(source);
  if (!uids) return null;
  const frozen = meta?.instances as Record<string, string[]> | undefined;
  return uids.map((u) => loadSeriesVolume(db, u, frozen?.[u]));
}

/** Train/validation slice counts, split as the engine splits: by slice range for one volume, by volume otherwise. */
export function splitCounts(
  slices: number[],
  trainFraction = DEFAULT_TRAIN_FRACTION,
): { train: number; val: number } {
  if (slices.length === 1) {
    const s = slices[0];
    if (s < 2) throw new Error('a series needs at least 2 slices to split into training and validation');
    const val = Math.min(s - 1, Math.max(1, Math.round(s * (1 - trainFraction))));
    return { train: s - val, val };
  }
  const nVal = Math.min(slices.length - 1, Math.max(1, Math.round(slices.length * (1 - trainFraction))));
  const cut = slices.length - nVal;
  return {
    train: slices.slice(0, cut).reduce((a, b) => a + b, 0),
    val: slices.slice(cut).reduce((a, b) => a + b, 0),
  };
}

/**
 * Insert a dataset row with source 'series:<uid>[,<uid>…]'. All series must share rows×cols (or give
 * `size`, the engine resamples then). `trainFraction` defaults to 0.75 (the engine's own split).
 */
export function createDatasetFromSeries(
  db: Db,
  seriesUids: string | string[],
  opts: { name?: string; size?: number; trainFraction?: number; task?: 'recon' | 'sr' } = {},
): DatasetRow {
  const uids = Array.isArray(seriesUids) ? seriesUids : [seriesUids];
  if (uids.length === 0) throw new Error('no series given');
  const details = uids.map((u) => {
    const s = getSeries(db, u);
    if (!s) throw new Error(`no series ${u} in the library`);
    return s;
  });
  const h = opts.size ?? details[0].rows;
  const w = opts.size ?? details[0].columns;
  if (!opts.size) {
    const odd = details.find((d) => d.rows !== h || d.columns !== w);
    if (odd)
      throw new Error(`series ${odd.uid} is ${odd.rows}×${odd.columns}, not ${h}×${w}: choose a common size`);
  }
  const tf = opts.trainFraction ?? DEFAULT_TRAIN_FRACTION;
  if (!(tf > 0 && tf < 1)) throw new Error(`trainFraction must be between 0 and 1, got ${tf}`);
  const { train, val } = splitCounts(
    details.map((d) => d.slices),
    tf,
  );
  const label =
    details.length === 1
      ? `${details[0].patientName || details[0].patientId} ${details[0].description || details[0].uid}`.trim()
      : `${details.length} series`;
  return db.datasets.create({
    name: opts.name ?? `${label} ${h}×${w}`,
    source: SERIES_SOURCE_PREFIX + uids.join(','),
    task: opts.task ?? 'recon',
    h,
    w,
    trainSlices: train,
    valSlices: val,
    meta: {
      size: opts.size ?? null,
      trainFraction: tf,
      series: uids,
      description: `${details.length} series from the studies library`,
      // the slices it is made of: slices added to a series later never change the dataset
      instances: Object.fromEntries(uids.map((u) => [u, seriesInstances(db, u).map((i) => i.sopUid)])),
    },
  });
}

/**
 * The NIfTI geometry of a series (see niftiGeometryOfDicom: IOP from its attributes, the IPP of its
 * first and last stored slice, PixelSpacing), or none with a warning saying the orientation is
 * unknown (the NIfTI then has the voxel spacing only). Throws for an unknown UID.
 */
export function seriesNiftiGeometry(db: Db, uid: string): { geometry?: NiftiGeometry; warnings: string[] } {
  const r = seriesRow(db, uid);
  if (!r) throw new Error(`no series ${uid} in the library`);
  const positions = seriesInstances(db, uid).map((i) => i.position);
  const iop = (JSON.parse(r.attributes) as Record<string, string>).ImageOrientationPatient;
  const res = niftiGeometryOfDicom({
    orientation: iop ? iop.split('\\').map(Number) : null,
    first: positions.length && positions.every((p) => p) ? positions[0] : null,
    last: positions.length && positions.every((p) => p) ? positions[positions.length - 1] : null,
    slices: positions.length,
    pixelSpacing: [r.spacing_row ?? NaN, r.spacing_col ?? NaN],
    sliceStep: r.slice_spacing ?? r.slice_thickness ?? NaN,
    positions: positions.every((p) => p) ? (positions as number[][]) : undefined,
  });
  if ('geometry' in res)
    return { geometry: res.geometry, warnings: res.warning ? [`series ${uid}: ${res.warning}`] : [] };
  return {
    warnings: [
      `series ${uid}: orientation unknown (${res.unknown}); the NIfTI has the voxel spacing only, not its place in space`,
    ],
  };
}
