/**
 * A DICOM series converted or exported to NIfTI is placed in space as dcm2niix places it: nibabel's
 * affine of our output equals nibabel's affine of dcm2niix's (an independent DICOM→NIfTI converter)
 * within 1e-3 mm, and the voxels are equal once both are reoriented to RAS+ (as_closest_canonical;
 * dcm2niix flips rows). The fixture (pydicom): 8 oblique 16×16 slices, IOP rotated about two axes,
 * PixelSpacing 0.7\0.9, slice step 2.2 mm, files written in shuffled order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { niftiGeometryOfDicom } from '../../src-main/data/dicom-geometry.js';
import { convertFile } from '../../src-main/services/convert.js';
import { exportSeriesFiles } from '../../src-main/services/exports.js';
import { openDatabase } from '../../src-main/store/db.js';
import { importPathsSync } from '../../src-main/studies/import.js';

const PY_OK =
  spawnSync('/usr/bin/python3', ['-c', 'import nibabel, pydicom, numpy'], { encoding: 'utf8' }).status === 0;
const NEEDS = !PY_OK
  ? '/usr/bin/python3 with pydicom, nibabel and numpy is not installed (apt-get install python3-pydicom python3-nibabel)'
  : !existsSync('/usr/bin/dcm2niix')
    ? 'dcm2niix is not installed (apt-get install dcm2niix)'
    : false;

const SERIES_UID = '1.2.826.0.1.3680043.8.498.3001';

const PY = String.raw`
import sys, os, json
import numpy as np
mode, d = sys.argv[1], sys.argv[2]
if mode == 'make':
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    a, b = np.deg2rad(25.0), np.deg2rad(-15.0)
    Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    Rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    R = Rx @ Rz
    row, col = R[:, 0], R[:, 1]
    normal = np.cross(row, col)
    origin = np.array([-12.3, 40.5, 7.25])
    NX, NY, NZ, step = 16, 16, 8, 2.2
    rng = np.random.default_rng(7)
    vox = rng.integers(0, 4000, size=(NZ, NY, NX)).astype(np.int16)  # slice, row, column
    os.makedirs(os.path.join(d, 'dicom'))
    for k in rng.permutation(NZ):
        sop = '1.2.826.0.1.3680043.8.498.4%03d' % (k + 1)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.4'
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset(); ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = '1.2.826.0.1.3680043.8.498.3000'
        ds.SeriesInstanceUID = '${SERIES_UID}'
        ds.FrameOfReferenceUID = '1.2.826.0.1.3680043.8.498.3002'
        ds.PatientName = 'Oblique^Fixture'; ds.PatientID = 'OBLIQUE'; ds.Modality = 'MR'
        ds.StudyDate = '20260101'; ds.StudyTime = '120000'; ds.SeriesTime = '120000'; ds.AcquisitionTime = '120000'
        ds.SeriesNumber = 5; ds.InstanceNumber = int(k) + 1; ds.SeriesDescription = 'oblique'
        ds.ImagePositionPatient = [float('%.6f' % x) for x in origin + k * step * normal]
        ds.ImageOrientationPatient = [float('%.8f' % x) for x in list(row) + list(col)]
        ds.PixelSpacing = [0.7, 0.9]; ds.SliceThickness = step; ds.SpacingBetweenSlices = step
        ds.Rows = NY; ds.Columns = NX; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.BitsAllocated = 16; ds.BitsStored = 16; ds.HighBit = 15; ds.PixelRepresentation = 1
        ds.PixelData = np.ascontiguousarray(vox[k]).astype('<i2').tobytes()
        ds.is_little_endian = True; ds.is_implicit_VR = False
        pydicom.dcmwrite(os.path.join(d, 'dicom', 'f%02d.dcm' % k), ds, write_like_original=False)
else:
    import nibabel as nib
    ref = nib.load(sys.argv[3])
    rc = nib.as_closest_canonical(ref)
    rv = np.asanyarray(rc.dataobj).astype(np.float64)
    out = {}
    for name in sys.argv[4:]:
        img = nib.load(name)
        c = nib.as_closest_canonical(img)
        v = np.asanyarray(c.dataobj).astype(np.float64)
        out[name] = {
            'affine_max_diff': float(np.max(np.abs(img.affine - ref.affine))) if img.shape == ref.shape else None,
            'canonical_affine_max_diff': float(np.max(np.abs(c.affine - rc.affine))),
            'voxels_equal': bool(v.shape == rv.shape and np.array_equal(v, rv)),
            'codes': [int(img.header['qform_code']), int(img.header['sform_code'])],
            'qform_sform_max_diff': float(np.max(np.abs(img.get_qform() - img.get_sform()))),
            'ref_shape': list(ref.shape), 'shape': list(img.shape),
        }
    print(json.dumps(out))
`;

function py(...args: string[]): string {
  const r = spawnSync('/usr/bin/python3', ['-c', PY, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 ${args[0]} failed: ${r.stderr}`);
  return r.stdout.trim();
}

test(
  'an oblique DICOM series converted and exported to NIfTI has the affine and voxels of dcm2niix (nibabel)',
  { skip: NEEDS },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-dcmgeo-'));
    try {
      py('make', dir);
      const ref = join(dir, 'ref');
      spawnSync('mkdir', [ref]);
      const r = spawnSync('/usr/bin/dcm2niix', ['-z', 'n', '-f', 'ref', '-o', ref, join(dir, 'dicom')], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const refNii = readdirSync(ref).filter((n) => n.endsWith('.nii'));
      assert.deepEqual(refNii, ['ref.nii'], `dcm2niix wrote ${readdirSync(ref).join(', ')}`);
      const converted = join(dir, 'converted.nii.gz');
      const conv = convertFile(join(dir, 'dicom'), converted);
      assert.deepEqual(conv.warnings, []);
      const db = openDatabase(join(dir, 'library.db'));
      let exported: string;
      try {
        importPathsSync(db, [join(dir, 'dicom')]);
        const e = exportSeriesFiles(db, SERIES_UID, 'nifti', join(dir, 'export'));
        assert.deepEqual(e.extra, {});
        exported = e.path;
      } finally {
        db.close();
      }
      const got = JSON.parse(py('check', dir, join(ref, 'ref.nii'), converted, exported)) as Record<
        string,
        {
          affine_max_diff: number | null;
          canonical_affine_max_diff: number;
          voxels_equal: boolean;
          codes: number[];
          qform_sform_max_diff: number;
          ref_shape: number[];
          shape: number[];
        }
      >;
      console.log(JSON.stringify(got));
      for (const p of [converted, exported]) {
        const g = got[p];
        assert.deepEqual(g.shape, [16, 16, 8], p);
        assert.deepEqual(g.codes, [1, 1], p);
        // qform and sform say the same (a rotation: no shear in this series)
        assert.ok(g.qform_sform_max_diff < 1e-4, `${p}: qform vs sform ${g.qform_sform_max_diff}`);
        // dcm2niix flips rows (its affine differs by that flip), so compare in RAS+ orientation
        assert.ok(
          g.canonical_affine_max_diff < 1e-3,
          `${p}: affine differs by ${g.canonical_affine_max_diff} mm`,
        );
        assert.ok(g.voxels_equal, `${p}: voxels differ from dcm2niix's in world orientation`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('niftiGeometryOfDicom: an axial series is RAS-flipped LPS; bad or missing IOP/IPP is unknown', () => {
  const base = {
    orientation: [1, 0, 0, 0, 1, 0],
    first: [10, 20, 30],
    last: [10, 20, 44],
    slices: 8,
    pixelSpacing: [0.5, 0.25] as [number, number],
    sliceStep: 3,
  };
  const g = niftiGeometryOfDicom(base);
  assert.ok('geometry' in g);
  // i (column) along +x LPS = −x RAS, 0.25 mm; j (row) along +y LPS = −y RAS, 0.5 mm; k 2 mm along z
  assert.deepEqual(g.geometry.srow, [
    [-0.25, -0, -0, -10],
    [-0, -0.5, -0, -20],
    [0, 0, 2, 30],
  ]);
  assert.deepEqual(g.geometry.pixdim, [0.25, 0.5, 2]);
  assert.equal(g.geometry.qformCode, 1);
  // diag(−1, −1, 1): a 180° rotation about z, quaternion (b, c, d) = (0, 0, 1)
  assert.deepEqual(
    g.geometry.quatern.map((x) => Math.abs(x)),
    [0, 0, 1],
  );
  const one = niftiGeometryOfDicom({ ...base, slices: 1, last: base.first });
  assert.ok('geometry' in one);
  assert.deepEqual(one.geometry.srow[2], [0, 0, 3, 30]);
  for (const bad of [
    { orientation: null },
    { orientation: [1, 0, 0, 0, 1, NaN] },
    { orientation: [1, 0, 0, 0.5, 1, 0] },
    { first: null },
    { last: base.first },
    { pixelSpacing: [0, 1] as [number, number] },
  ])
    assert.ok('unknown' in niftiGeometryOfDicom({ ...base, ...bad }), JSON.stringify(bad));
});

test('niftiGeometryOfDicom: a series with a missing slice or out-of-line slices is told it is unevenly spaced', () => {
  const at = (zs: number[], x = () => 10) => zs.map((z) => [x(), 20, z]);
  const base = {
    orientation: [1, 0, 0, 0, 1, 0],
    pixelSpacing: [0.5, 0.5] as [number, number],
    sliceStep: 2,
  };
  const geo = (positions: number[][]) =>
    niftiGeometryOfDicom({
      ...base,
      positions,
      first: positions[0],
      last: positions[positions.length - 1],
      slices: positions.length,
    });
  const even = geo(at([0, 2, 4, 6, 8]));
  assert.ok('geometry' in even && even.warning === undefined);
  // rounding in the scanner's positions (well under 5 % of the step) is not a gap
  const jitter = geo(at([0, 2.02, 3.99, 6.01, 8]));
  assert.ok('geometry' in jitter && jitter.warning === undefined);
  // slice 3 of 6 missing: mean step 2.4 mm, steps 2 and 4
  const gap = geo(at([0, 2, 4, 8, 10, 12]));
  assert.ok('geometry' in gap);
  assert.match(
    gap.warning ?? '',
    /unevenly spaced: steps of 2\.00–4\.00 mm .*between stored slices 3 and 4.*one step of 2\.40 mm/,
  );
  // even along z but one slice shifted 1 mm sideways
  let k = 0;
  const side = geo(at([0, 2, 4, 6], () => (k++ === 2 ? 11 : 10)));
  assert.ok('geometry' in side);
  assert.match(side.warning ?? '', /unevenly spaced/);
});

test(
  'a DICOM series without ImageOrientationPatient converts with spacing only and a warning',
  {
    skip: PY_OK ? false : '/usr/bin/python3 with pydicom and numpy is not installed',
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-dcmgeo-'));
    try {
      py('make', dir);
      const strip = String.raw`
import sys, os, pydicom
d = sys.argv[1]
for n in os.listdir(d):
    ds = pydicom.dcmread(os.path.join(d, n)); del ds.ImageOrientationPatient; ds.save_as(os.path.join(d, n))
`;
      const s = spawnSync('/usr/bin/python3', ['-c', strip, join(dir, 'dicom')], { encoding: 'utf8' });
      assert.equal(s.status, 0, s.stderr);
      const out = join(dir, 'o.nii');
      const conv = convertFile(join(dir, 'dicom'), out);
      assert.equal(conv.warnings.length, 1, conv.warnings.join('\n'));
      assert.match(conv.warnings[0], /orientation unknown \(no ImageOrientationPatient\)/);
      assert.deepEqual(conv.spacing, [0.9, 0.7, 2.2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
