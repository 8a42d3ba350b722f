/**
 * The streamed conversions and exports on one small fixture, and fingerprints of what they write.
 * Written against APIs that the whole-volume code had too (convertFile, importPathsSync,
 * exportSeriesFiles), so the same procedure run on the commit before streaming (4a00e03) gave the
 * fingerprints that streaming.test.ts expects: outputs equal to the whole-volume ones, byte for byte
 * (NIfTI after gunzip: the deflate stream itself differs), PNG files, and DICOM pixel words with
 * their rescale, window and geometry attributes (UIDs and dates are new on every export).
 *
 * The fixture is made by nibabel and pydicom (/usr/bin/python3): a 64×64×40 int16 volume with
 * scl_slope/scl_inter, as .nii and .nii.gz, and the same voxels as a 40-file DICOM series with a
 * RescaleSlope/Intercept and fixed UIDs, written in reverse slice order (the import sorts them).
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { convertFile } from '../../src-main/services/convert.js';
import { exportSeriesFiles } from '../../src-main/services/exports.js';
import { openDatabase } from '../../src-main/store/db.js';
import { importPathsSync } from '../../src-main/studies/import.js';

export const SERIES_UID = '1.2.826.0.1.3680043.8.498.1001';
export const SHAPE = { nx: 64, ny: 64, nz: 40 };

/** Python (nibabel, pydicom, numpy): `make DIR` writes the fixture; `dicom DIR` fingerprints a series. */
export const PY = String.raw`
import sys, os, json, hashlib
import numpy as np
mode, d = sys.argv[1], sys.argv[2]
NX, NY, NZ = 64, 64, 40
def voxels():
    i, j, k = np.meshgrid(np.arange(NX), np.arange(NY), np.arange(NZ), indexing='ij')
    # smooth structure, a sharp edge and signed values, deterministic
    v = 900 * np.sin(i / 7.0) * np.cos(j / 5.0) + 37 * k - 400 + 250 * ((i - 32) ** 2 + (j - 30) ** 2 < 150)
    return np.round(v).astype(np.int16)
if mode == 'make':
    import nibabel as nib
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    v = voxels()
    img = nib.Nifti1Image(v, np.diag([0.9, 0.8, 2.5, 1.0]))
    img.header.set_data_dtype(np.int16)
    img.header.set_slope_inter(0.5, 10.0)
    nib.save(img, os.path.join(d, 'in.nii'))
    nib.save(img, os.path.join(d, 'in.nii.gz'))
    os.makedirs(os.path.join(d, 'dicom'))
    for k in reversed(range(NZ)):
        sop = '1.2.826.0.1.3680043.8.498.2%03d' % (k + 1)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.4'
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset(); ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = '1.2.826.0.1.3680043.8.498.1000'
        ds.SeriesInstanceUID = '1.2.826.0.1.3680043.8.498.1001'
        ds.FrameOfReferenceUID = '1.2.826.0.1.3680043.8.498.1002'
        ds.PatientName = 'Stream^Fixture'; ds.PatientID = 'STREAM'; ds.Modality = 'MR'
        ds.SeriesNumber = 3; ds.InstanceNumber = k + 1; ds.SeriesDescription = 'stream fixture'
        ds.ImagePositionPatient = [0, 0, 2.5 * k]; ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.8, 0.9]; ds.SliceThickness = 2.5
        ds.Rows = NY; ds.Columns = NX; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.BitsAllocated = 16; ds.BitsStored = 16; ds.HighBit = 15; ds.PixelRepresentation = 1
        ds.RescaleSlope = 0.5; ds.RescaleIntercept = 10
        ds.PixelData = np.ascontiguousarray(v[:, :, k].T).astype('<i2').tobytes()
        ds.is_little_endian = True; ds.is_implicit_VR = False
        pydicom.dcmwrite(os.path.join(d, 'dicom', 'f%03d.dcm' % (NZ - k)), ds, write_like_original=False)
elif mode == 'dicom':
    import pydicom
    h = hashlib.sha256()
    for n in sorted(os.listdir(d)):
        ds = pydicom.dcmread(os.path.join(d, n))
        for key in ('InstanceNumber', 'Rows', 'Columns', 'RescaleSlope', 'RescaleIntercept', 'WindowCenter',
                    'WindowWidth', 'ImagePositionPatient', 'ImageOrientationPatient', 'PixelSpacing',
                    'SliceThickness', 'BitsStored', 'PixelRepresentation'):
            h.update(('%s=%s;' % (key, ds.get(key))).encode())
        h.update(ds.PixelData)
    print(h.hexdigest())
`;

export function python(...args: string[]): string {
  const r = spawnSync('/usr/bin/python3', ['-c', PY, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface Outputs {
  /** NIfTI → .nii, NIfTI.gz → .nii.gz, DICOM folder → .nii.gz (convert). */
  niiToNii: string;
  niigzToNiigz: string;
  dicomToNiigz: string;
  /** The imported series exported as NIfTI, PNG slices, DICOM derived series. */
  seriesNifti: string;
  seriesPngs: string[];
  seriesDicom: string;
}

/** Run every streamed pair on the fixture in `dir` (made by `python('make', dir)`). */
export function runPairs(dir: string): Outputs {
  const out: Outputs = {
    niiToNii: join(dir, 'a.nii'),
    niigzToNiigz: join(dir, 'b.nii.gz'),
    dicomToNiigz: join(dir, 'c.nii.gz'),
    seriesNifti: '',
    seriesPngs: [],
    seriesDicom: join(dir, 'export-dicom'),
  };
  convertFile(join(dir, 'in.nii'), out.niiToNii);
  convertFile(join(dir, 'in.nii.gz'), out.niigzToNiigz);
  convertFile(join(dir, 'dicom'), out.dicomToNiigz);
  const db = openDatabase(join(dir, 'library.db'));
  try {
    importPathsSync(db, [join(dir, 'dicom')]);
    out.seriesNifti = exportSeriesFiles(db, SERIES_UID, 'nifti', join(dir, 'export-nifti')).path;
    out.seriesPngs = exportSeriesFiles(db, SERIES_UID, 'png', join(dir, 'export-png')).paths;
    exportSeriesFiles(db, SERIES_UID, 'dicom', out.seriesDicom);
  } finally {
    db.close();
  }
  return out;
}

/** sha256 of each output: NIfTI after gunzip, PNGs concatenated in order, DICOM through pydicom. */
export function fingerprints(o: Outputs): Record<string, string> {
  const nii = (p: string) => sha(p.endsWith('.gz') ? gunzipSync(readFileSync(p)) : readFileSync(p));
  const pngs = createHash('sha256');
  for (const p of o.seriesPngs) pngs.update(readFileSync(p));
  return {
    niiToNii: nii(o.niiToNii),
    niigzToNiigz: nii(o.niigzToNiigz),
    dicomToNiigz: nii(o.dicomToNiigz),
    seriesNifti: nii(o.seriesNifti),
    seriesPngs: `${o.seriesPngs.length}:${pngs.digest('hex')}`,
    seriesDicom: `${readdirSync(o.seriesDicom).length}:${python('dicom', o.seriesDicom)}`,
  };
}
