/**
 * Conversions and exports written slice by slice (issue 10, item 1) write what the whole-volume code
 * wrote: the fingerprints below are those of the outputs of commit 4a00e03 (before streaming) on the
 * same fixture (see streaming-fixture.ts); nibabel and pydicom read the outputs independently,
 * voxel for voxel. An input that fails part-way leaves no output, and convert's temporary library of
 * a DICOM input is removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ApiFailure } from '../../src-main/contract/api.js';
import { openNiftiSlices } from '../../src-main/data/nifti.js';
import { convertFile } from '../../src-main/services/convert.js';
import { fingerprints, python, runPairs, SHAPE } from './streaming-fixture.js';

const NEEDS =
  spawnSync('/usr/bin/python3', ['-c', 'import nibabel, pydicom, numpy'], { encoding: 'utf8' }).status === 0
    ? false
    : 'python3 with nibabel, pydicom and numpy is not installed (apt-get install python3-nibabel python3-pydicom): they make the fixture and are the reference';

/** Whole-volume outputs of 4a00e03 on the fixture (NIfTI bytes after gunzip; all four are one file). */
const BEFORE = {
  pngs: '40:855f1edaea204da7b5ac7bc4eb79456dd76cc23949e6d5cd569ff649f9b191c5',
  dicom: '40:48c97723c2aeaac77ac313ffd587348ce7331d6bcc4f7e31ef43faba33e8ec75',
  // NIfTI → NIfTI since the input's qform/sform are kept (4a00e03 wrote neither): the same voxels,
  // the header's geometry fields now the input's (the affine is checked with nibabel below)
  niftiKeepingGeometry: 'a76e05be0047363cf6b7b9945fbc268008b08755b8754c627f5a2aeaec2f4143',
  // DICOM → NIfTI (convert, series export) since the series' IOP/IPP are written as qform/sform
  // (4a00e03 wrote spacing only, sha256 2db355e6…): the same voxels (checked with nibabel below), a new header; the
  // affine itself is checked against dcm2niix in dicom-geometry.test.ts
  niftiDicomGeometry: '190452c461afa15a730e208a1c324afebbcc592f9963bf284fc6b8a806fea02e',
};

const CHECK = String.raw`
import sys, os, glob, json
import numpy as np, nibabel as nib, pydicom
d = sys.argv[1]
ref = nib.load(os.path.join(d, 'in.nii.gz'))
src = ref.get_fdata(dtype=np.float64)  # raw * scl_slope + scl_inter, as the reader scales
want = src.astype(np.float32)
out = {}
for name in sys.argv[2:]:
    img = nib.load(name)
    got = np.asanyarray(img.dataobj)
    out[name] = {
        'shape': list(got.shape), 'dtype': str(got.dtype),
        'equal': bool(got.shape == want.shape and np.array_equal(got, want)),
        'zooms': [float(z) for z in img.header.get_zooms()],
        'same_affine': bool(np.allclose(img.affine, ref.affine)),
    }
files = sorted(glob.glob(os.path.join(d, 'export-dicom', '*.dcm')))
worst = 0.0; slopes = set(); order = []
for f in files:
    ds = pydicom.dcmread(f)
    k = int(ds.InstanceNumber) - 1
    order.append(float(ds.ImagePositionPatient[2]))
    slope = float(ds.RescaleSlope); slopes.add((str(ds.RescaleSlope), str(ds.RescaleIntercept)))
    vals = ds.pixel_array.astype(np.float64) * slope + float(ds.RescaleIntercept)
    # pixel_array is rows x columns = j x i
    worst = max(worst, float(np.max(np.abs(vals - src[:, :, k].T))) / slope)
out['dicom'] = {'files': len(files), 'worst_in_steps': worst, 'rescales': len(slopes), 'z': order,
                'range': [float(src.min()), float(src.max())], 'rescale': sorted(slopes)[0]}
print(json.dumps(out))
`;

test(
  'streamed convert and series exports equal the whole-volume outputs; nibabel and pydicom agree',
  {
    skip: NEEDS,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-stream-'));
    try {
      python('make', dir);
      const o = runPairs(dir);
      const fp = fingerprints(o);
      assert.deepEqual(fp, {
        niiToNii: BEFORE.niftiKeepingGeometry,
        niigzToNiigz: BEFORE.niftiKeepingGeometry,
        dicomToNiigz: BEFORE.niftiDicomGeometry,
        seriesNifti: BEFORE.niftiDicomGeometry,
        seriesPngs: BEFORE.pngs,
        seriesDicom: BEFORE.dicom,
      });
      const r = spawnSync(
        '/usr/bin/python3',
        ['-c', CHECK, dir, o.niiToNii, o.niigzToNiigz, o.dicomToNiigz, o.seriesNifti],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      const got = JSON.parse(r.stdout) as Record<
        string,
        { shape: number[]; dtype: string; equal: boolean; zooms: number[]; same_affine: boolean }
      > & {
        dicom: {
          files: number;
          worst_in_steps: number;
          rescales: number;
          z: number[];
          range: number[];
          rescale: string[];
        };
      };
      for (const p of [o.niiToNii, o.niigzToNiigz, o.dicomToNiigz, o.seriesNifti]) {
        assert.deepEqual(got[p].shape, [SHAPE.nx, SHAPE.ny, SHAPE.nz], p);
        assert.equal(got[p].dtype, 'float32', p);
        assert.ok(got[p].equal, `${p}: voxels differ from nibabel's reading of the input`);
        assert.deepEqual(
          got[p].zooms.map((z) => Number(z.toFixed(5))),
          [0.9, 0.8, 2.5],
          p,
        );
      }
      // a NIfTI input's qform/sform are written back: the output overlays its source
      for (const p of [o.niiToNii, o.niigzToNiigz])
        assert.ok(got[p].same_affine, `${p}: nibabel's affine differs from the input's`);
      const dcm = got.dicom;
      assert.equal(dcm.files, SHAPE.nz);
      assert.equal(dcm.rescales, 1, 'one RescaleSlope/Intercept for the whole series (first pass)');
      assert.ok(dcm.worst_in_steps <= 0.5 + 1e-6, `worst error ${dcm.worst_in_steps} quantisation steps`);
      assert.deepEqual(
        dcm.z,
        Array.from({ length: SHAPE.nz }, (_, k) => 2.5 * k),
      );
      // the intercept is the series minimum; the slope spans the range in 65535 steps
      assert.equal(Number(dcm.rescale[1]), dcm.range[0]);
      assert.ok(Math.abs(Number(dcm.rescale[0]) - (dcm.range[1] - dcm.range[0]) / 65535) < 1e-9);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a NIfTI.gz whose voxels end in the 31st slice: read slice by slice up to there, then refused; no output left',
  {
    skip: NEEDS,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-stream-'));
    try {
      python('make', dir);
      const whole = readFileSync(join(dir, 'in.nii'));
      const sliceBytes = SHAPE.nx * SHAPE.ny * 2;
      // a complete gzip stream of too few voxels: only reading finds out (an uncompressed file's
      // size is checked against its header before anything is read)
      const cut = join(dir, 'cut.nii.gz');
      writeFileSync(cut, gzipSync(whole.subarray(0, 352 + 30 * sliceBytes + 100)));
      // the slices before the cut come out one at a time, before the reader sees the end
      let seen = 0;
      assert.throws(() => {
        for (const _ of openNiftiSlices(cut).read()) seen++;
      }, /truncated \(needs/);
      assert.equal(seen, 30);
      const before = readdirSync(dir).sort();
      for (const out of ['cut-out.nii', 'cut-out.nii.gz']) {
        assert.throws(
          () => convertFile(cut, join(dir, out)),
          (e: unknown) =>
            e instanceof ApiFailure &&
            e.code === 'bad-request' &&
            /cut\.nii\.gz: truncated \(needs/.test(e.message),
        );
      }
      assert.deepEqual(readdirSync(dir).sort(), before, 'no output and no temporary file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'convert of a DICOM folder removes its temporary library, also when the output cannot be written',
  {
    skip: NEEDS,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-stream-'));
    const tmpRoot = mkdtempSync(join(tmpdir(), 'kdmri-stream-tmp-'));
    const saved = process.env.TMPDIR;
    try {
      python('make', dir);
      process.env.TMPDIR = tmpRoot;
      convertFile(join(dir, 'dicom'), join(dir, 'out.nii'));
      assert.deepEqual(readdirSync(tmpRoot), []);
      // an output path under a file: the write fails after the import
      writeFileSync(join(dir, 'afile'), '');
      assert.throws(() => convertFile(join(dir, 'dicom'), join(dir, 'afile', 'out.nii')));
      assert.deepEqual(readdirSync(tmpRoot), []);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      rmSync(dir, { recursive: true, force: true });
      rmSync(tmpRoot, { recursive: true, force: true });
    }
  },
);
