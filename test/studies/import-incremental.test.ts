/**
 * A DICOM series is imported one file at a time: each file's decoded frames go to the library before
 * the next file is read, the stored batches stay hidden (negative slice indices, series not listed)
 * until the series' last transaction, a cancel midway leaves nothing of it, and the result is row for
 * row what storing the whole decoded series at once (storeSeries) gives. The files are renamed so that
 * their directory order is not their slice order: the order comes from the headers.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiFailure } from '../../src-main/contract/api.js';
import type { Volume } from '../../src-main/contract/domain.js';
import { openDatabase, type Db } from '../../src-main/store/db.js';
import { decodeFrames } from '../../src-main/studies/dicom/decode.js';
import { headerOf } from '../../src-main/studies/dicom/header.js';
import { parseDicom } from '../../src-main/studies/dicom/parse.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import { importPaths, importProbe } from '../../src-main/studies/import.js';
import {
  IMPORT_BATCH_BYTES,
  listStudies,
  loadSeriesVolume,
  storeSeries,
  type SeriesRecord,
} from '../../src-main/studies/library.js';

const dir = mkdtempSync(join(tmpdir(), 'kdmri-import-incremental-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// 512×512 float32 slices are 1 MiB: a write batch (IMPORT_BATCH_BYTES) holds 8 of them, so 20 slices
// give batches committed (hidden) while the import is still reading files
const N = 512;
const SLICES = 20;
const PER_BATCH = Math.ceil(IMPORT_BATCH_BYTES / (N * N * 4));
const vol: Volume = (() => {
  const data = new Float32Array(SLICES * N * N);
  for (let s = 0; s < SLICES; s++)
    for (let i = 0; i < N * N; i++) data[s * N * N + i] = ((i % 97) + 31 * s) % 1000;
  return { data, slices: SLICES, h: N, w: N, spacing: [0.5, 0.5, 2] };
})();
const source = {
  patient: { id: 'INC-1', name: 'Incremental^Unit', birthDate: '19700101', sex: 'M' },
  study: {
    uid: '1.2.826.0.1.3680043.8.498.515151.1',
    date: '20240601',
    time: '090000',
    description: 'inc',
    accession: 'A',
    studyId: '1',
  },
};
const folder = join(dir, 'in');
const written = writeDicomSeries(vol, folder, { source, seriesDescription: 'INC' });
// directory order ≠ slice order: file k of the series becomes f<(7k mod 20)>.dcm
readdirSync(folder)
  .sort()
  .forEach((f, k) =>
    renameSync(join(folder, f), join(folder, `t${String((7 * k) % SLICES).padStart(2, '0')}.dcm`)),
  );
for (const f of readdirSync(folder)) renameSync(join(folder, f), join(folder, f.replace(/^t/, 'f')));

const pending = (db: Db) =>
  (db.sqlite.prepare(`SELECT COUNT(*) AS n FROM series_slices WHERE slice_index < 0`).get() as { n: number })
    .n;
const rowsOf = (db: Db) => ({
  instances: db.sqlite
    .prepare(
      `SELECT sop_uid, sop_class_uid, path, frame, instance_number, position, slice_index FROM instances ORDER BY slice_index`,
    )
    .all(),
  slices: db.sqlite
    .prepare(`SELECT slice_index, data, kspace_re, kspace_im FROM series_slices ORDER BY slice_index`)
    .all(),
  series: db.sqlite
    .prepare(
      `SELECT series_uid, modality, description, series_number, rows, cols, slices, spacing_row, spacing_col,
              slice_thickness, slice_spacing, source_kind, source, attributes, kspace_mask, import_pid FROM series`,
    )
    .all(),
});

test('a series is stored file by file, hidden until its last transaction, and equals the whole-series store row for row', async () => {
  const db = openDatabase(join(dir, 'a.db'));
  const held: number[] = [];
  const seen: { pending: number; listed: number; reported: boolean }[] = [];
  let reported = false;
  importProbe.decodedHeld = (n) => held.push(n);
  try {
    const results = await importPaths(db, [folder], () => (reported = true), {
      // asked before each file: what the library holds at that moment
      cancelled: () => (seen.push({ pending: pending(db), listed: listStudies(db).length, reported }), false),
    });
    assert.deepEqual(
      results.map((r) => r.status),
      Array(SLICES).fill('imported'),
    );
    // one file's frames at a time were handed to the library
    assert.deepEqual(held, Array(SLICES).fill(1));
    // batches reached the database while files were still being read, and were hidden until the end
    const maxPending = Math.max(...seen.map((s) => s.pending));
    assert.equal(maxPending, PER_BATCH * Math.floor((SLICES - 1) / PER_BATCH));
    assert.ok(maxPending > 0 && maxPending < SLICES, `pending ${maxPending}`);
    const before = seen.filter((s) => !s.reported);
    assert.ok(before.length >= SLICES, 'asked before each file of both passes');
    assert.ok(
      before.every((s) => s.listed === 0),
      'the series was not listed before it was complete',
    );
    assert.equal(seen.at(-1)?.listed, 1, 'listed once complete');
    assert.equal(pending(db), 0);

    // pixels and order: the written volume (a 0…999 range with slope 1 is stored exactly), slice by slice
    const v = loadSeriesVolume(db, written.seriesUid);
    assert.equal(v.slices, SLICES);
    assert.deepEqual(v.spacing, [0.5, 0.5, 2]);
    for (let i = 0; i < v.data.length; i += 4099)
      assert.ok(Math.abs(v.data[i] - vol.data[i]) <= Math.abs(written.slope) / 2 + 1e-3, `voxel ${i}`);

    // the same files decoded whole, sorted by instance number, stored at once
    const ref = openDatabase(join(dir, 'ref.db'));
    try {
      const files = readdirSync(folder).map((f) => join(folder, f));
      const objs = files
        .map((path) => ({ path, obj: parseDicom(readFileSync(path)) }))
        .map((x) => ({ ...x, h: headerOf(x.obj) }))
        .sort((a, b) => (a.h.instanceNumber ?? 0) - (b.h.instanceNumber ?? 0));
      const h = objs[0].h;
      const o = h.orientation!;
      const rec: SeriesRecord = {
        patient: { id: h.patientId, name: h.patientName, birthDate: h.birthDate, sex: h.sex },
        study: {
          uid: h.studyUid,
          date: h.studyDate,
          time: h.studyTime,
          description: h.studyDescription,
          accession: h.accession,
          studyId: h.studyId,
        },
        series: {
          uid: h.seriesUid,
          modality: h.modality,
          description: h.seriesDescription,
          number: h.seriesNumber,
          rows: N,
          cols: N,
          spacingRow: 0.5,
          spacingCol: 0.5,
          sliceThickness: h.sliceThickness,
          sliceSpacing: 2,
          sourceKind: 'dicom',
          source: objs[0].path,
          attributes: h.attributes,
        },
        instances: objs.map((x) => ({
          sopUid: x.h.sopInstanceUid,
          sopClassUid: x.h.sopClassUid,
          path: x.path,
          frame: 0,
          instanceNumber: x.h.instanceNumber,
          position: x.h.position,
        })),
        slices: objs.map((x) => decodeFrames(x.obj)[0]),
        normal: [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]],
      };
      assert.deepEqual(storeSeries(ref, rec), { added: SLICES, created: true });
      const a = rowsOf(db);
      const b = rowsOf(ref);
      assert.equal(a.instances.length, SLICES);
      assert.deepEqual(a.instances, b.instances);
      assert.deepEqual(a.series, b.series);
      assert.equal(a.slices.length, b.slices.length);
      a.slices.forEach((row, i) => assert.deepEqual(row, b.slices[i], `slice row ${i}`));
    } finally {
      ref.close();
    }
  } finally {
    delete importProbe.decodedHeld;
    db.close();
  }
});

test('a cancel in the middle of a series (batches already written) leaves nothing of it', async () => {
  const db = openDatabase(join(dir, 'b.db'));
  try {
    let at = -1;
    await assert.rejects(
      importPaths(db, [folder], undefined, {
        cancelled: () => {
          if (pending(db) > 0 && at < 0) at = pending(db);
          return at > 0;
        },
      }),
      (e: unknown) => e instanceof ApiFailure && e.message === 'import cancelled',
    );
    assert.equal(at, PER_BATCH, 'cancelled once a batch was written');
    for (const t of ['series', 'instances', 'series_slices', 'studies', 'patients'])
      assert.equal(
        (db.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n,
        0,
        `${t} is empty`,
      );
  } finally {
    db.close();
  }
});
