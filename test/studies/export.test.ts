/**
 * Export: a reconstruction as a DICOM derived series → re-import gives the same pixels within the
 * quantisation step; pydicom reads the files (independent check of the Part 10 encoding and the
 * attributes); NIfTI and PNG exports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { Volume } from '../../src-main/contract/domain.js';
import { readNifti } from '../../src-main/data/nifti.js';
import { openDatabase } from '../../src-main/store/db.js';
import { importPaths, loadSeriesVolume, getSeries, seriesInstances } from '../../src-main/studies/index.js';
import {
  dsString,
  exportSeriesDicom,
  quantise16,
  writeDicomSeries,
  writeVolumeNifti,
  writeVolumePngs,
} from '../../src-main/studies/export.js';
import { NO_PYDICOM, PYDICOM_DATA, pyAvailable } from './helpers.js';

const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const tmp = () => mkdtempSync(join(tmpdir(), 'kdmri-export-'));

function phantom(s: number, h: number, w: number): Volume {
  const data = new Float32Array(s * h * w);
  for (let k = 0; k < s; k++)
    for (let r = 0; r < h; r++)
      for (let c = 0; c < w; c++)
        data[(k * h + r) * w + c] =
          Math.sin(r * 0.3 + k) * Math.cos(c * 0.2) * 0.37 + (r * c) / (h * w) + 1e-3 * k;
  return { data, slices: s, h, w, spacing: [0.8, 0.9, 3] };
}

test('dsString fits 16 characters; quantise16 stays within slope/2', () => {
  for (const x of [1 / 3, -1234.56789012345, 1e-9 / 7, 6.02214076e23, 0, 65535]) {
    const s = dsString(x);
    assert.ok(s.length <= 16, s);
    assert.ok(Math.abs(Number(s) - x) <= Math.abs(x) * 1e-9 + 1e-300, `${s} vs ${x}`);
  }
  const v = phantom(3, 17, 13).data;
  const q = quantise16(v);
  let maxErr = 0;
  v.forEach((x, i) => (maxErr = Math.max(maxErr, Math.abs(q.words[i] * q.slope + q.intercept - x))));
  assert.ok(maxErr <= q.slope / 2 + 1e-7, `${maxErr} > ${q.slope / 2}`);
  let lo = Infinity,
    hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  assert.ok(q.slope <= ((hi - lo) / 65535) * (1 + 1e-9));
});

test('derived series round trip: export → re-import = same pixels within the quantisation step, valid attributes', async () => {
  const dir = tmp();
  try {
    const vol = phantom(4, 21, 19); // odd sizes on purpose
    const exp = writeDicomSeries(vol, join(dir, 'out'), {
      derivation: { model: 'kd-student', mask: 'cartesian 4x', acceleration: 4 },
      seriesDescription: 'KD student 4x',
    });
    assert.match(exp.seriesUid, /^2\.25\.\d+$/);
    assert.ok(exp.seriesUid.length <= 64);
    const db = openDatabase(':memory:');
    const res = await importPaths(db, [join(dir, 'out')]);
    assert.ok(
      res.every((r) => r.status === 'imported'),
      JSON.stringify(res),
    );
    const back = loadSeriesVolume(db, exp.seriesUid);
    assert.deepEqual([back.slices, back.h, back.w], [4, 21, 19]);
    let maxErr = 0;
    vol.data.forEach((x, i) => (maxErr = Math.max(maxErr, Math.abs(back.data[i] - x))));
    assert.ok(maxErr <= exp.slope / 2 + 1e-6, `max error ${maxErr}, step ${exp.slope}`);
    assert.deepEqual(back.spacing, [0.8, 0.9, 3]);
    const s = getSeries(db, exp.seriesUid)!;
    assert.equal(s.attributes.ImageType, 'DERIVED\\SECONDARY');
    assert.equal(s.attributes.SOPClassUID, '1.2.840.10008.5.1.4.1.1.4');
    assert.equal(s.modality, 'MR');
    // the exported series re-exported and re-imported again gives identical pixels (already quantised)
    const again = exportSeriesDicom(db, exp.seriesUid, join(dir, 'again'));
    const db2 = openDatabase(':memory:');
    await importPaths(db2, [join(dir, 'again')]);
    const back2 = loadSeriesVolume(db2, again.seriesUid);
    let err2 = 0;
    back.data.forEach((x, i) => (err2 = Math.max(err2, Math.abs(back2.data[i] - x))));
    assert.ok(err2 <= again.slope / 2 + 1e-6, `${err2}`);
    db.close();
    db2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'an export from a real series keeps patient/study and geometry; pydicom reads it',
  { skip },
  async (t) => {
    const dir = tmp();
    try {
      const db = openDatabase(':memory:');
      const [r] = await importPaths(db, [join(PYDICOM_DATA as string, 'CT_small.dcm')]);
      const src = loadSeriesVolume(db, r.seriesUid!);
      // a "reconstruction": the source scaled, as a model output would be (floats)
      const recon = { ...src, data: src.data.map((x) => x * 0.001 + 0.25) };
      const exp = exportSeriesDicom(db, r.seriesUid!, join(dir, 'derived'), {
        recon,
        derivation: { model: 'teacher dccnn 5x5', mask: 'random 4x', acceleration: 3.97 },
      });
      const [r2] = await importPaths(db, [exp.paths[0]]);
      assert.equal(r2.status, 'imported', r2.message);
      const back = loadSeriesVolume(db, exp.seriesUid);
      let maxErr = 0;
      recon.data.forEach((x, i) => (maxErr = Math.max(maxErr, Math.abs(back.data[i] - x))));
      assert.ok(maxErr <= exp.slope / 2 + 1e-6);
      const srcSeries = getSeries(db, r.seriesUid!)!;
      const derived = getSeries(db, exp.seriesUid)!;
      assert.equal(derived.studyUid, srcSeries.studyUid);
      assert.equal(derived.patientName, srcSeries.patientName);
      assert.deepEqual(
        seriesInstances(db, exp.seriesUid)[0].position,
        seriesInstances(db, r.seriesUid!)[0].position,
      );
      db.close();
      if (!pyAvailable()) return t.skip('pydicom not importable');
      const py = spawnSync(
        '/usr/bin/python3',
        [
          '-c',
          `import pydicom, sys, json, numpy as np
d = pydicom.dcmread(sys.argv[1])
a = d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept)
print(json.dumps({"ts": str(d.file_meta.TransferSyntaxUID), "cls": str(d.SOPClassUID), "mscls": str(d.file_meta.MediaStorageSOPClassUID),
  "msinst": str(d.file_meta.MediaStorageSOPInstanceUID), "inst": str(d.SOPInstanceUID), "type": list(d.ImageType),
  "deriv": str(d.DerivationDescription), "pid": str(d.PatientID), "study": str(d.StudyInstanceUID), "bits": int(d.BitsAllocated),
  "rep": int(d.PixelRepresentation), "shape": list(a.shape), "first": float(a.flat[0]), "sum": float(a.sum())}))`,
          exp.paths[0],
        ],
        { encoding: 'utf8' },
      );
      assert.equal(py.status, 0, py.stderr);
      const j = JSON.parse(py.stdout);
      assert.equal(j.ts, '1.2.840.10008.1.2.1');
      assert.equal(j.cls, '1.2.840.10008.5.1.4.1.1.4');
      assert.equal(j.mscls, j.cls);
      assert.equal(j.msinst, j.inst);
      assert.deepEqual(j.type, ['DERIVED', 'SECONDARY']);
      assert.match(j.deriv, /model teacher dccnn 5x5, mask random 4x, acceleration 3\.97x/);
      assert.equal(j.study, srcSeries.studyUid);
      assert.equal(j.pid, srcSeries.patientId);
      assert.deepEqual([j.bits, j.rep, ...j.shape], [16, 0, 128, 128]);
      assert.ok(Math.abs(j.first - back.data[0]) < 1e-5);
      let sum = 0;
      for (let i = 0; i < 128 * 128; i++) sum += back.data[i];
      assert.ok(Math.abs(j.sum - sum) < 1e-2, `${j.sum} vs ${sum}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('NIfTI and PNG exports', () => {
  const dir = tmp();
  try {
    const vol = phantom(3, 8, 10);
    writeVolumeNifti(vol, join(dir, 'v.nii.gz'));
    const back = readNifti(join(dir, 'v.nii.gz'));
    assert.deepEqual(Array.from(back.data), Array.from(vol.data));
    const pngs = writeVolumePngs(vol, join(dir, 'png'));
    assert.equal(pngs.length, 3);
    const png = PNG.sync.read(readFileSync(pngs[0]));
    assert.deepEqual([png.width, png.height], [10, 8]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
