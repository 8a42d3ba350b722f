/**
 * Import into the library: files, folders and DICOMDIR from pydicom's test data, grouping, slice order
 * and pixels vs pydicom (fixtures), de-duplication, re-import, bad input with per-file reasons and no
 * half-imported series.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src-main/store/db.js';
import {
  importPaths,
  listStudies,
  getSeries,
  getSeriesSlice,
  loadSeriesVolume,
  loadSeriesSource,
  createDatasetFromSeries,
  seriesInstances,
} from '../../src-main/studies/index.js';
import { writeNifti, readNifti } from '../../src-main/data/nifti.js';
import { EXPECTED, NO_PYDICOM, PYDICOM_DATA } from './helpers.js';

const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const data = (f: string) => join(PYDICOM_DATA as string, f);
const tmp = () => mkdtempSync(join(tmpdir(), 'kdmri-import-'));
const sha = (a: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

test(
  'DICOMDIR: every referenced image imported, series grouped, sorted and decoded as pydicom does',
  { skip },
  async () => {
    const db = openDatabase(':memory:');
    const progress: number[] = [];
    const res = await importPaths(db, [data('dicomdirtests/DICOMDIR')], (done) => progress.push(done));
    const exp = EXPECTED.dicomdir.DICOMDIR as unknown as {
      images: string[];
      series: number;
      bySeries: Record<
        string,
        { sopOrder: string[]; shape: number[]; sha256Float32: string; modality: string }
      >;
    };
    const imported = res.filter((r) => r.status === 'imported');
    assert.equal(
      imported.length,
      exp.images.length,
      JSON.stringify(res.filter((r) => r.status !== 'imported')),
    );
    assert.match(
      res.find((r) => r.path.endsWith('DICOMDIR'))!.message,
      /DICOMDIR: \d+ referenced files followed/,
    );
    assert.equal(progress.at(-1), res.length);
    const series = listStudies(db).flatMap((p) => p.studies.flatMap((s) => s.series));
    assert.equal(series.length, exp.series);
    for (const [uid, e] of Object.entries(exp.bySeries)) {
      const vol = loadSeriesVolume(db, uid);
      assert.deepEqual([vol.slices, vol.h, vol.w], e.shape);
      assert.deepEqual(
        seriesInstances(db, uid).map((i) => i.sopUid),
        e.sopOrder,
        `slice order of ${uid}`,
      );
      assert.equal(sha(vol.data), e.sha256Float32, `pixels of ${uid}`);
      assert.equal(getSeries(db, uid)!.modality, e.modality);
    }
    db.close();
  },
);

test(
  'folder import: duplicates by SOP UID skipped, non-images skipped, bad files failed with reasons, good series intact',
  { skip },
  async () => {
    const dir = tmp();
    try {
      for (const f of [
        'MR_small.dcm',
        'MR_small_implicit.dcm',
        'CT_small.dcm',
        'rtplan.dcm',
        'test-SR.dcm',
        'SC_rgb_rle.dcm',
        'rtdose.dcm',
      ])
        copyFileSync(data(f), join(dir, f));
      writeFileSync(join(dir, 'notes.txt'), 'not dicom at all\n');
      // wrong magic: a DICOM file whose "DICM" marker was overwritten
      const bad = Buffer.from(readFileSync(data('CT_small.dcm')));
      bad.write('XXXX', 128, 'latin1');
      writeFileSync(join(dir, 'wrong_magic.dcm'), bad);
      const db = openDatabase(':memory:');
      const res = await importPaths(db, [dir]);
      const by = (f: string) => res.find((r) => r.path.endsWith(`/${f}`))!;
      assert.equal(by('CT_small.dcm').status, 'imported');
      assert.equal(by('MR_small.dcm').status, 'imported');
      assert.equal(by('MR_small_implicit.dcm').status, 'skipped');
      assert.match(
        by('MR_small_implicit.dcm').message,
        /duplicate of .*MR_small.dcm \(same SOP Instance UID/,
      );
      assert.equal(by('rtplan.dcm').status, 'skipped');
      assert.match(by('rtplan.dcm').message, /RT Plan: no Pixel Data/);
      assert.match(by('test-SR.dcm').message, /SR: no Pixel Data/);
      // MR_truncated.dcm shares MR_small's SOP UID: alone, it fails as truncated
      const [trunc] = await importPaths(openDatabase(':memory:'), [data('MR_truncated.dcm')]);
      assert.equal(trunc.status, 'failed');
      assert.match(trunc.message, /truncated/);
      assert.equal(by('SC_rgb_rle.dcm').status, 'skipped');
      assert.match(by('SC_rgb_rle.dcm').message, /colour image/);
      assert.equal(by('notes.txt').status, 'failed');
      assert.match(by('notes.txt').message, /not a DICOM/);
      assert.equal(by('wrong_magic.dcm').status, 'failed');
      assert.match(by('wrong_magic.dcm').message, /not a DICOM/);
      const [jls] = await importPaths(openDatabase(':memory:'), [data('MR_small_jpeg_ls_lossless.dcm')]);
      assert.ok(
        jls.status === 'imported' ||
          /unsupported transfer syntax 1\.2\.840\.10008\.1\.2\.4\.80/.test(jls.message),
        jls.message,
      );
      // multi-frame rtdose: 15 frames, one series
      const rt = by('rtdose.dcm');
      assert.equal(rt.status, 'imported');
      assert.equal(getSeries(db, rt.seriesUid!)!.slices, 15);
      // CT: pixels after rescale equal pydicom's
      const ct = EXPECTED.files.find((f) => f.file === 'CT_small.dcm')!;
      const v = loadSeriesVolume(db, by('CT_small.dcm').seriesUid!);
      for (const [i, x] of ct.rescaled.samples) assert.equal(v.data[i], x);
      assert.deepEqual(v.spacing?.slice(0, 2), [0.661468, 0.661468]);
      const slice = getSeriesSlice(db, by('CT_small.dcm').seriesUid!, 0)!;
      assert.deepEqual([slice.h, slice.w], [128, 128]);
      assert.equal(getSeriesSlice(db, by('CT_small.dcm').seriesUid!, 1), null);
      // re-import: nothing new
      const again = await importPaths(db, [join(dir, 'CT_small.dcm')]);
      assert.equal(again[0].status, 'skipped');
      assert.match(again[0].message, /already in the library/);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a series with mixed image sizes is rejected whole; other series still import', { skip }, async () => {
  const dir = tmp();
  try {
    // two slices of one series, the second with another SOP Instance UID and Rows 32 instead of 64
    const mrSeries = '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457';
    const mr = readFileSync(data('MR_small.dcm'));
    const other = Buffer.from(mr);
    const sop = Buffer.from('1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457', 'latin1');
    const at = other.lastIndexOf(sop);
    assert.ok(at > 0);
    other.write('8', at + sop.length - 1, 'latin1');
    const rows = other.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00, 0x40, 0x00]));
    assert.ok(rows > 0);
    other.writeUInt16LE(32, rows + 8);
    writeFileSync(join(dir, 'a.dcm'), mr);
    writeFileSync(join(dir, 'b.dcm'), other);
    copyFileSync(data('rtdose.dcm'), join(dir, 'c.dcm'));
    const db = openDatabase(':memory:');
    const res = await importPaths(db, [dir]);
    for (const f of ['a.dcm', 'b.dcm']) {
      const r = res.find((x) => x.path.endsWith(f))!;
      assert.equal(r.status, 'failed');
      assert.match(r.message, /mixed image sizes \(64×64 in 1 file, 32×64 in 1 file\)/);
    }
    assert.equal(res.find((x) => x.path.endsWith('c.dcm'))!.status, 'imported');
    assert.equal(getSeries(db, mrSeries), null, 'no half series');
    assert.equal((db.sqlite.prepare('SELECT COUNT(*) AS n FROM instances').get() as { n: number }).n, 15);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a series whose write fails leaves nothing behind (one transaction per series)', { skip }, async () => {
  const db = openDatabase(':memory:');
  // make the slice insert fail after the series row was written
  db.sqlite.exec(
    `CREATE TRIGGER boom BEFORE INSERT ON series_slices BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END;`,
  );
  const res = await importPaths(db, [data('MR_small.dcm')]);
  assert.equal(res[0].status, 'failed');
  assert.match(res[0].message, /not stored: disk full \(test\)/);
  for (const t of ['patients', 'studies', 'series', 'instances', 'series_slices'])
    assert.equal((db.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n, 0, t);
  db.close();
});

test('NIfTI import: a synthetic study with deterministic UIDs; datasets from series load as volumes', async () => {
  const dir = tmp();
  try {
    const h = 6,
      w = 5,
      s = 4;
    const vol = {
      data: Float32Array.from({ length: s * h * w }, (_, i) => (i * 37) % 11),
      slices: s,
      h,
      w,
      spacing: [0.5, 0.7, 2] as [number, number, number],
    };
    const file = join(dir, 'phantom.nii.gz');
    writeNifti(file, vol);
    const db = openDatabase(':memory:');
    const [r] = await importPaths(db, [file]);
    assert.equal(r.status, 'imported', r.message);
    const [r2] = await importPaths(db, [file]);
    assert.equal(r2.seriesUid, r.seriesUid, 'same file → same UID');
    assert.match(r.seriesUid!, /^2\.25\.\d+$/);
    const back = loadSeriesVolume(db, r.seriesUid!);
    assert.deepEqual(Array.from(back.data), Array.from(readNifti(file).data));
    const p = listStudies(db, 'phantom');
    assert.equal(p.length, 1);
    assert.equal(listStudies(db, 'no-such-thing').length, 0);
    const ds = createDatasetFromSeries(db, r.seriesUid!, { trainFraction: 0.75 });
    assert.equal(ds.source, `series:${r.seriesUid}`);
    assert.deepEqual([ds.trainSlices, ds.valSlices, ds.h, ds.w], [3, 1, h, w]);
    const vols = loadSeriesSource(db, ds.source)!;
    assert.equal(vols.length, 1);
    assert.deepEqual(Array.from(vols[0].data), Array.from(back.data));
    assert.equal(loadSeriesSource(db, 'sample'), null);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unreadable and missing paths are reported, the rest imports', { skip }, async () => {
  const dir = tmp();
  try {
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    copyFileSync(data('MR_small.dcm'), join(dir, 'ok.dcm'));
    const db = openDatabase(':memory:');
    const res = await importPaths(db, [dir, join(dir, 'missing.dcm')]);
    assert.equal(res.find((r) => r.path.endsWith('ok.dcm'))!.status, 'imported');
    const miss = res.find((r) => r.path.endsWith('missing.dcm'))!;
    assert.equal(miss.status, 'failed');
    assert.match(miss.message, /no such file or folder/);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'the engine data source reads a DICOM series folder (kdmri distill --data <folder>)',
  { skip },
  async () => {
    const { loadDataSplit } = await import('../../src-main/distill/data-source.js');
    const split = loadDataSplit(data('dicomdirtests/98892003/MR700'));
    assert.deepEqual([split.train.length, split.val.length], [1, 1]); // one series, split by slice range
    assert.equal(split.train[0].slices + split.val[0].slices, 7);
    assert.deepEqual([split.train[0].h, split.train[0].w], [16, 16]);
  },
);

test(
  'a dataset made from a library series loads in the engine with the split the dataset row states',
  { skip },
  async () => {
    const { loadJobData } = await import('../../src-main/distill/job-data.js');
    const db = openDatabase(':memory:');
    const res = await importPaths(db, [data('dicomdirtests/98892003/MR700')]);
    const uid = res[0].seriesUid!;
    const ds = createDatasetFromSeries(db, uid);
    assert.equal(ds.source, `series:${uid}`);
    const job = loadJobData(db, { kind: 'dataset', datasetId: ds.id }, 'recon');
    assert.equal(
      job.split.train.reduce((n, v) => n + v.slices, 0),
      ds.trainSlices,
    );
    assert.equal(
      job.split.val.reduce((n, v) => n + v.slices, 0),
      ds.valSlices,
    );
    db.close();
  },
);
