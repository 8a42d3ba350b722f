/**
 * Convert: any supported input file (DICOM file, folder or DICOMDIR; NIfTI; fastMRI or KD-MRI HDF5) to
 * a float32 NIfTI with pixels after rescale, one slice at a time from NIfTI and DICOM inputs (memory
 * does not grow with the slice count). `kdmri convert`, the worker pool and the fuzzer call this
 * one function; a library series (`series:<UID>`) is read by the studies service instead.
 *
 * Errors are user-facing ApiFailures ('bad-request'): the input is the user's file, and whatever a
 * reader objects to is a statement about that file.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ApiFailure } from '../contract/api.js';
import { openNiftiSlices, readNiftiGeometry, writeNiftiSlices, type NiftiGeometry } from '../data/nifti.js';
import { stackOfVolume, type SliceStack } from '../data/volume.js';
import { readHdf5Volumes } from '../studies/hdf5-registry.js';
import { openDicomSeries } from '../studies/volumes.js';
// side effects: the HDF5 reader and the compressed-syntax codecs register themselves
import '../studies/hdf5/index.js';
import '../studies/dicom/codecs.js';

export interface ConvertInput {
  /** The input's volumes, read slice by slice when written (a file is read afresh, not held). */
  volumes: SliceStack[];
  labels: string[];
  /**
   * Where each volume sits in space, when the input says so (a NIfTI input's qform and sform, written
   * back unchanged; a DICOM series' from its IOP/IPP, see niftiGeometryOfDicom), so that the output
   * overlays its source; absent: spacing only.
   */
  geometries?: (NiftiGeometry | undefined)[];
  /** Repairs and left-out files, reported with the result. */
  warnings?: string[];
  /** Release what the slices are read from (a temporary library); call once written. */
  close?(): void;
}

export interface ConvertSummary {
  out: string;
  label: string;
  slices: number;
  h: number;
  w: number;
  spacing: [number, number, number] | null;
  /** Repairs and left-out files (stderr, or "warnings" in --json). */
  warnings: string[];
}

/** A JavaScript engine error (a bug in our code or a library's), not a reader's statement about a file. */
export function isInternalError(e: unknown): boolean {
  return (
    e instanceof TypeError ||
    e instanceof RangeError ||
    e instanceof ReferenceError ||
    e instanceof EvalError ||
    e instanceof URIError
  );
}

/**
 * A reader's error as the user's: its own refusal names the file's problem; a TypeError/RangeError
 * escaping a reader is a bug of ours, and stays internal so that it is reported as one (and found by
 * the fuzzer).
 */
function inputFailure(e: unknown): unknown {
  if (e instanceof ApiFailure || isInternalError(e)) return e;
  return new ApiFailure('bad-request', e instanceof Error ? e.message : String(e), 'input');
}

/** `stack` whose reading errors (a file truncated past its header) are input failures, as at open. */
function guardReads(stack: SliceStack): SliceStack {
  return {
    ...stack,
    *read() {
      try {
        yield* stack.read();
      } catch (e) {
        throw inputFailure(e);
      }
    },
  };
}

/**
 * Every volume of an input file or folder, with a label each. A NIfTI file is only opened and
 * checked here (its slices are read as they are written); a DICOM input is imported into a temporary
 * library on disk (removed by `close`), from which its slices are read one at a time. HDF5 volumes
 * are read whole: the raw-data readers build each volume from its k-space in memory.
 */
export function readConvertInput(input: string): ConvertInput {
  const abs = resolve(input);
  if (!existsSync(abs)) throw new ApiFailure('not-found', `${abs}: no such file or folder`, 'input');
  const guarded = (r: ConvertInput): ConvertInput => ({ ...r, volumes: r.volumes.map(guardReads) });
  try {
    if (/\.nii(\.gz)?$/i.test(abs))
      return guarded({
        volumes: [openNiftiSlices(abs)],
        labels: ['NIfTI volume'],
        geometries: [readNiftiGeometry(abs)],
      });
    const h5 = readHdf5Volumes(abs);
    if (h5) return { volumes: h5.map((v) => stackOfVolume(v.volume)), labels: h5.map((v) => v.label) };
    const dcm = openDicomSeries(abs, 'disk');
    if (dcm)
      return guarded({
        volumes: dcm.stacks,
        labels: dcm.labels,
        geometries: dcm.geometries,
        warnings: dcm.warnings,
        close: dcm.close,
      });
  } catch (e) {
    throw inputFailure(e);
  }
  throw new ApiFailure('bad-request', `${abs}: not a DICOM file/folder, NIfTI or HDF5 file`, 'input');
}

/**
 * Volume `index` of a read input (required when it holds several) written as float32 NIfTI to `out`,
 * slice by slice and atomically (an input that fails part-way leaves no output).
 */
export function writeConverted(
  read: ConvertInput,
  input: string,
  out: string,
  index?: number,
): ConvertSummary {
  if (!/\.nii(\.gz)?$/i.test(out))
    throw new ApiFailure('bad-request', `output must end in .nii or .nii.gz, got ${out}`, 'out');
  const { volumes, labels } = read;
  if (volumes.length > 1 && index === undefined) {
    const list = labels
      .map((l, i) => `${i}: ${l} (${volumes[i].slices}×${volumes[i].h}×${volumes[i].w})`)
      .join('; ');
    throw new ApiFailure(
      'bad-request',
      `${input} holds ${volumes.length} series/volumes; choose one with --index (${list})`,
      'index',
    );
  }
  const k = index ?? 0;
  if (k >= volumes.length)
    throw new ApiFailure(
      'bad-request',
      `--index ${k}: ${input} holds ${volumes.length} series/volumes`,
      'index',
    );
  const vol = volumes[k];
  const path = resolve(out);
  writeNiftiSlices(path, vol, read.geometries?.[k]);
  return {
    out: path,
    label: labels[k],
    slices: vol.slices,
    h: vol.h,
    w: vol.w,
    spacing: vol.spacing ?? null,
    warnings: read.warnings ?? [],
  };
}

/** Read `input` and write one of its volumes to `out`. */
export function convertFile(input: string, out: string, index?: number): ConvertSummary {
  if (!/\.nii(\.gz)?$/i.test(out))
    throw new ApiFailure('bad-request', `output must end in .nii or .nii.gz, got ${out}`, 'out');
  const read = readConvertInput(input);
  try {
    return writeConverted(read, input, out, index);
  } finally {
    read.close?.();
  }
}
