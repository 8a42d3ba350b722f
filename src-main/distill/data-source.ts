/**
 * Where a distillation job's slices come from, and how they are split into training and validation.
 *
 * Sources: the bundled sample (default), a NIfTI volume (slices along its third axis), a folder of
 * volumes, or anything the studies readers open (DICOM series, fastMRI / KD-MRI HDF5). The split is
 * by slice range for a single volume and by file for a folder, so that validation slices never come
 * from the training slices' neighbourhood more than necessary.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Volume } from '../contract/domain.js';
import { readNifti } from '../data/nifti.js';
import { resampleSlices, selectSlices } from '../data/volume.js';
import { SAMPLE_SPLIT, sampleDataPath } from '../data/sample.js';

export interface DataSplit {
  train: Volume[];
  val: Volume[];
  /** 'sample' or the absolute path given. */
  source: string;
  description: string;
  /** For each validation volume: the index of its first slice in the volume it was cut from. */
  valFirst: number[];
}

/** A reader for formats other than NIfTI, registered by the studies module (DICOM, HDF5). */
export type VolumeReader = (path: string) => Volume[] | null;
const extraReaders: VolumeReader[] = [];
export function registerVolumeReader(r: VolumeReader): void {
  extraReaders.push(r);
}

const isNifti = (p: string) => /\.nii(\.gz)?$/i.test(p);

function readAny(path: string): Volume[] {
  if (isNifti(path)) return [readNifti(path)];
  for (const r of extraReaders) {
    const v = r(path);
    if (v) return v;
  }
  throw new Error(
    `${path}: unsupported data (expected a NIfTI .nii/.nii.gz volume, a DICOM series or an HDF5 file)`,
  );
}

/**
 * Every volume at `path`: a NIfTI file, a folder of NIfTI files (sorted by name), or whatever a
 * registered studies reader accepts (a DICOM series folder, an HDF5 file).
 */
export function readVolumes(path: string): Volume[] {
  return readVolumesAt(resolve(path)).vols;
}

function readVolumesAt(abs: string): { vols: Volume[]; byFile: boolean } {
  if (!existsSync(abs)) throw new Error(`${abs}: no such file or folder`);
  if (statSync(abs).isDirectory()) {
    const files = readdirSync(abs)
      .filter(isNifti)
      .sort()
      .map((f) => join(abs, f));
    if (files.length > 0) return { vols: files.flatMap(readAny), byFile: true };
  }
  return { vols: readAny(abs), byFile: false };
}

/** Validation share for user data: a quarter, at least one slice or file. */
const VAL_FRACTION = 0.25;

function splitVolume(
  vol: Volume,
  trainRange: [number, number],
  valRange: [number, number],
): [Volume, Volume] {
  return [selectSlices(vol, trainRange[0], trainRange[1]), selectSlices(vol, valRange[0], valRange[1])];
}

function splitSingle(vol: Volume, label: string): [Volume, Volume] {
  if (vol.slices < 2)
    throw new Error(`${label}: needs at least 2 slices to split into training and validation`);
  const nVal = Math.max(1, Math.round(vol.slices * VAL_FRACTION));
  const cut = vol.slices - nVal;
  return splitVolume(vol, [0, cut], [cut, vol.slices]);
}

function resample(vols: Volume[], size: number | undefined, label: string): Volume[] {
  if (!size) return vols;
  return vols.map((v) => {
    if (v.h === size && v.w === size) return v;
    if (v.kspace) {
      throw new Error(
        `${label}: raw k-space data is ${v.h}×${v.w} and cannot be resampled to ${size}×${size}; omit --size`,
      );
    }
    return resampleSlices(v, size);
  });
}

/**
 * Cut every volume into slabs of `slab` consecutive slices (the last one may be shorter), each a
 * volume of its own. Used after the split, so slabs change the units that metrics are computed and
 * spread over (a slab's PSNR uses the slab's maximum), never which slices train or validate.
 */
export function toSlabs(vols: Volume[], slab: number | undefined): Volume[] {
  if (!slab) return vols;
  return vols.flatMap((v) =>
    Array.from({ length: Math.ceil(v.slices / slab) }, (_, i) =>
      selectSlices(v, i * slab, Math.min(v.slices, (i + 1) * slab)),
    ),
  );
}

function withSlabs(split: DataSplit, slab: number | undefined): DataSplit {
  if (!slab) return split;
  const train = toSlabs(split.train, slab);
  const val = toSlabs(split.val, slab);
  return {
    ...split,
    train,
    val,
    description: `${split.description}; in slabs of ${slab} slices (${train.length} training, ${val.length} validation)`,
  };
}

function checkSlab(slab: number | undefined): void {
  if (slab !== undefined && (!Number.isInteger(slab) || slab < 1 || slab > 4096))
    throw new Error(`--slab must be an integer from 1 to 4096, got ${slab}`);
}

/**
 * Load and split. `path` undefined means the bundled sample; `size` resamples every slice to
 * size×size; `slab` cuts the split's volumes into slabs of that many slices (toSlabs).
 */
export function loadDataSplit(path: string | undefined, size?: number, slab?: number): DataSplit {
  if (size !== undefined && (!Number.isInteger(size) || size < 8 || size > 2048)) {
    throw new Error(`--size must be an integer from 8 to 2048, got ${size}`);
  }
  checkSlab(slab);
  return withSlabs(loadUnslabbed(path, size), slab);
}

function loadUnslabbed(path: string | undefined, size?: number): DataSplit {
  if (path === undefined) {
    const file = sampleDataPath();
    const vol = readNifti(file);
    const [train, val] = splitVolume(vol, SAMPLE_SPLIT.trainSlices, SAMPLE_SPLIT.valSlices);
    return {
      train: resample([train], size, file),
      val: resample([val], size, file),
      source: 'sample',
      valFirst: [SAMPLE_SPLIT.valSlices[0]],
      description: `bundled sample ${basename(file)}: slices ${SAMPLE_SPLIT.trainSlices.join('–')} train, ${SAMPLE_SPLIT.valSlices.join('–')} validation`,
    };
  }
  const abs = resolve(path);
  const { vols, byFile } = readVolumesAt(abs);
  return splitVolumes(vols, size, abs, byFile ? ' (by file name order)' : '');
}

/**
 * Split already-read volumes: a single volume by slice range (the last quarter validates), several by
 * volume (the last quarter of them validates). `label` names the source in messages.
 */
export function splitVolumes(
  read: Volume[],
  size: number | undefined,
  label: string,
  note = '',
  slab?: number,
): DataSplit {
  checkSlab(slab);
  return withSlabs(splitUnslabbed(read, size, label, note), slab);
}

function splitUnslabbed(read: Volume[], size: number | undefined, label: string, note: string): DataSplit {
  const vols = resample(read, size, label);
  if (vols.length === 1) {
    const [train, val] = splitSingle(vols[0], label);
    return {
      train: [train],
      val: [val],
      source: label,
      valFirst: [vols[0].slices - val.slices],
      description: `${label}: last ${val.slices} of ${vols[0].slices} slices for validation`,
    };
  }
  const nVal = Math.max(1, Math.round(vols.length * VAL_FRACTION));
  return {
    train: vols.slice(0, vols.length - nVal),
    val: vols.slice(vols.length - nVal),
    source: label,
    valFirst: Array.from({ length: nVal }, () => 0),
    description: `${label}: ${vols.length - nVal} volumes train, ${nVal} validation${note}`,
  };
}
