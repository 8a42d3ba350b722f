/**
 * Cancelling an import (ImportOptions.cancelled, what the work thread asks when the Studies page's
 * Cancel is pressed): a cancel while a folder's headers are read stores nothing; a cancel after the
 * first of two series is stored keeps that series whole and stores nothing of the second.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiFailure } from '../../src-main/contract/api.js';
import type { Volume } from '../../src-main/contract/domain.js';
import { openDatabase } from '../../src-main/store/db.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import { importPaths } from '../../src-main/studies/import.js';
import { listStudies } from '../../src-main/studies/library.js';

const dir = mkdtempSync(join(tmpdir(), 'kdmri-import-cancel-'));
const SLICES = 12;
const vol = (phase: number): Volume => {
  const data = new Float32Array(SLICES * 16 * 16);
  for (let i = 0; i < data.length; i++) data[i] = Math.abs(Math.sin(i * 0.02 + phase)) * 500;
  return { data, slices: SLICES, h: 16, w: 16, spacing: [1, 1, 2] };
};
const source = {
  patient: { id: 'CANCEL-1', name: 'Cancel^Unit', birthDate: '19700101', sex: 'F' },
  study: {
    uid: '1.2.826.0.1.3680043.8.498.424243.1',
    date: '20240601',
    time: '090000',
    description: 'c',
    accession: 'A',
    studyId: '1',
  },
};
const uids = [1, 2].map(
  (k) => writeDicomSeries(vol(k), join(dir, 'in', `s${k}`), { source, seriesDescription: `S${k}` }).seriesUid,
);
const seriesIn = (db: ReturnType<typeof openDatabase>) =>
  listStudies(db).flatMap((p) =>
    p.studies.flatMap((s) => s.series.map((x) => ({ uid: x.uid, slices: x.slices }))),
  );
const isCancel = (e: unknown) => e instanceof ApiFailure && e.message === 'import cancelled';

test('a cancel while headers are read stores nothing', async () => {
  const db = openDatabase(join(dir, 'a.db'));
  try {
    let asked = 0;
    // the 6th question comes before the 6th file: in the header pass, before any series is stored
    await assert.rejects(
      importPaths(db, [join(dir, 'in')], undefined, { cancelled: () => ++asked >= 6 }),
      isCancel,
    );
    assert.equal(asked, 6);
    assert.deepEqual(seriesIn(db), []);
  } finally {
    db.close();
  }
});

test('a cancel after the first series is stored keeps it whole and nothing of the second', async () => {
  const db = openDatabase(join(dir, 'b.db'));
  try {
    let stored = 0;
    await assert.rejects(
      importPaths(db, [join(dir, 'in')], (_d, _t, f) => void (f.status === 'imported' && stored++), {
        cancelled: () => stored > 0,
      }),
      isCancel,
    );
    assert.equal(stored, SLICES);
    const s = seriesIn(db);
    assert.equal(s.length, 1);
    assert.ok(uids.includes(s[0].uid));
    assert.equal(s[0].slices, SLICES);
  } finally {
    db.close();
  }
});
