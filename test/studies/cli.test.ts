/** `kdmri import / studies / convert / export` as a user runs them (spawned, KDMRI_HOME in a temp dir). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNifti } from '../../src-main/data/nifti.js';
import { EXPECTED, NO_PYDICOM, PYDICOM_DATA, runKdmri } from './helpers.js';

const root = new URL('../..', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'kdmri-studies-cli-'));
const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const data = (f: string) => join(PYDICOM_DATA as string, f);

const kdmri = (...args: string[]) => runKdmri(home, ...args);

test('kdmri import --json: per-file results; kdmri studies lists the series', { skip }, () => {
  const dir = mkdtempSync(join(home, 'in-'));
  copyFileSync(data('CT_small.dcm'), join(dir, 'ct.dcm'));
  copyFileSync(data('rtplan.dcm'), join(dir, 'plan.dcm'));
  writeFileSync(join(dir, 'junk.bin'), Buffer.alloc(300, 7));
  const r = kdmri('import', dir, '--json');
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { path: string; status: string; message: string; seriesUid?: string }[];
  const by = (f: string) => res.find((x) => x.path.endsWith(f))!;
  assert.equal(by('ct.dcm').status, 'imported');
  assert.equal(by('plan.dcm').status, 'skipped');
  assert.equal(by('junk.bin').status, 'failed');
  const s = kdmri('studies', '--json');
  assert.equal(s.code, 0, s.err);
  const patients = JSON.parse(s.out);
  const series = patients.flatMap((p: { studies: { series: { uid: string }[] }[] }) =>
    p.studies.flatMap((x) => x.series),
  );
  assert.ok(series.some((x: { uid: string }) => x.uid === by('ct.dcm').seriesUid));
  const text = kdmri('studies');
  assert.equal(text.code, 0);
  assert.match(text.out, /CT/);
});

test('kdmri import: all files failed → exit 1 with one line; missing path reported', () => {
  const bad = join(home, 'bad.dcm');
  writeFileSync(bad, 'hello');
  const r = kdmri('import', bad, join(home, 'nope.dcm'));
  assert.equal(r.code, 1);
  assert.match(r.out, /failed\s+.*bad\.dcm: not a DICOM/);
  assert.match(r.out, /nope\.dcm: no such file or folder/);
  assert.match(r.err, /kdmri: nothing imported: 2 files failed/);
  assert.doesNotMatch(r.err, /\n\s+at /);
});

test(
  'kdmri convert: DICOM file and DICOMDIR folder to float32 NIfTI (pixels after rescale)',
  { skip },
  () => {
    const out = join(home, 'ct.nii.gz');
    const r = kdmri('convert', data('CT_small.dcm'), out, '--json');
    assert.equal(r.code, 0, r.err);
    const v = readNifti(out);
    const ct = EXPECTED.files.find((f) => f.file === 'CT_small.dcm')!;
    assert.deepEqual([v.slices, v.h, v.w], ct.shape);
    for (const [i, x] of ct.rescaled.samples) assert.equal(v.data[i], x);
    const many = kdmri('convert', data('dicomdirtests'), join(home, 'x.nii'));
    assert.equal(many.code, 2);
    assert.match(many.err, /holds 13 series\/volumes; choose one with --index/);
    const bad = kdmri('convert', data('CT_small.dcm'), join(home, 'x.png'));
    assert.equal(bad.code, 2);
    assert.match(bad.err, /must end in \.nii or \.nii\.gz/);
  },
);

test(
  'kdmri export: dicom / nifti / png of a library series; unknown series is a one-line error',
  { skip },
  () => {
    const db = join(home, 'export.db');
    const imp = kdmri('import', data('CT_small.dcm'), '--db', db, '--json');
    assert.equal(imp.code, 0, imp.err);
    const uid = JSON.parse(imp.out)[0].seriesUid as string;
    for (const format of ['dicom', 'nifti', 'png']) {
      const out = join(home, `exp-${format}`);
      const r = kdmri('export', '--series', uid, '--format', format, '--out', out, '--db', db, '--json');
      assert.equal(r.code, 0, r.err);
      const j = JSON.parse(r.out);
      assert.equal(j.files.length, 1);
      assert.ok(existsSync(j.files[0]));
      assert.ok(readdirSync(out).length >= 1);
    }
    const again = kdmri('import', join(home, 'exp-dicom'), '--db', db, '--json');
    assert.equal(JSON.parse(again.out)[0].status, 'imported');
    const r = kdmri('export', '--series', '1.2.3', '--format', 'png', '--out', join(home, 'x'), '--db', db);
    assert.equal(r.code, 2);
    assert.match(r.err, /no series 1\.2\.3 in the library/);
  },
);

test('kdmri convert: a fastMRI HDF5 file holds k-space and target volumes; --index picks one', () => {
  const h5 = join(root, 'test/fixtures/hdf5/fastmri_singlecoil.h5');
  const many = kdmri('convert', h5, join(home, 'f.nii.gz'));
  assert.equal(many.code, 2);
  assert.match(many.err, /holds 2 series\/volumes; choose one with --index \(0: fastMRI single-coil/);
  const r = kdmri('convert', h5, join(home, 'f.nii.gz'), '--index', '0', '--json');
  assert.equal(r.code, 0, r.err);
  const v = readNifti(join(home, 'f.nii.gz'));
  assert.deepEqual([v.slices, v.h, v.w], [2, 8, 6]);
});
