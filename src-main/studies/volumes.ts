/**
 * Volumes straight from files, without the user's library: what `kdmri distill --data` and
 * `kdmri convert` read (convert slice by slice, see openDicomSeries). DICOM goes through a throw-away in-memory library (so grouping, sorting and
 * decoding are exactly the import's); HDF5 through the registered raw-data readers.
 */
import {
  existsSync,
  readdirSync,
  statSync,
  openSync,
  readSync,
  closeSync,
} from 'node:fs';
import { join, resolve, basename } from 'node:path';
import type { Volume } from '../contract/domain.js';
import type { SliceStack } from '../data/volume.js';
import { openDatabase, type Db } from '../store/db.js';
import { importPathsSync } from './import.js';
import { listStudies, loadSeriesVolume, seriesNiftiGeometry, seriesSlices } from './library.js';
import type { NiftiGeometry } from '../data/nifti.js';
import { makeScratchDir, removeScratchDir } from '../util/scratch.js';
import { readHdf5Volumes } from './hdf5-registry.js';

function head(path: string, n: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function isDicomFile(path: string): boolean {
  if (basename(path).toUpperCase() === 'DICOMDIR') return true;
  const b = head(path, 132);
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

function hasDicom(dir: string, depth = 0): boolean {
  if (depth > 6) return false;
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const st = statSync(p);
    if (st.isFile() && isDicomFile(p)) return true;
    if (st.isDirectory() && hasDicom(p, depth + 1)) return true;
  }
  return false;
}

/** The DICOM series found at a path, read slice by slice from the library they were imported into. */
export interface DicomStacks {
  stacks: SliceStack[];
  labels: string[];
  /** Each series' place in space (IOP/IPP/PixelSpacing), undefined when unknown (told in warnings). */
  geometries: (NiftiGeometry | undefined)[];
  /** Repairs (derived UIDs, frame counts) and files left out of a series. */
  warnings: string[];
  /** Series `i` whole, as the library loads it (with acquired k-space for a raw-data series). */
  volume(i: number): Volume;
  /** Close the library (and remove it when it was a temporary file). */
  close(): void;
}

/**
 * Every series found at `path` (DICOM series in library order), or null if none is DICOM. The files
 * go through a throw-away library, so grouping, sorting and decoding are exactly the import's: in
 * memory (`library: 'memory'`), or in a temporary file that is removed on close (`'disk'`), so that
 * the decoded slices wait on disk and a writer holds one at a time.
 */
export function openDicomSeries(path: string, library: 'memory' | 'disk'): DicomStacks | null {
  const abs = resolve(path);
  if (!existsSync(abs)) return null;
  const dir = statSync(abs).isDirectory();
  if (dir ? !hasDicom(abs) : !isDicomFile(abs)) return null;
  const tmp = library === 'disk' ? makeScratchDir('kdmri-convert-') : null;
  const close = () => {
    db.close();
    if (tmp) removeScratchDir(tmp);
  };
  let db: Db;
  try {
    db = openDatabase(tmp ? join(tmp, 'library.db') : ':memory:');
  } catch (e) {
    if (tmp) removeScratchDir(tmp);
    throw e;
  }
  try {
    const res = importPathsSync(db, [abs]);
    const uids = listStudies(db).flatMap((p) =>
      p.studies.flatMap((s) =>
        s.series.map((x) => ({ uid: x.uid, label: `${x.modality} ${x.description || x.uid}` })),
      ),
    );
    if (uids.length === 0) {
      const why = res
        .filter((r) => r.status === 'failed')
        .slice(0, 3)
        .map((r) => `${r.path}: ${r.message}`);
      throw new Error(
        `${abs}: no DICOM image series could be read${why.length ? ` (${why.join('; ')})` : ''}`,
      );
    }
    // repairs (derived UIDs, frame counts) and files left out of a series are told, not dropped
    const warnings = res.flatMap((r) => [
      ...(r.warnings ?? []).map((w) => `${r.path}: ${w}`),
      ...(r.status === 'failed' ? [`${r.path}: not read: ${r.message}`] : []),
    ]);
    const geo = uids.map((u) => seriesNiftiGeometry(db, u.uid));
    return {
      stacks: uids.map((u) => seriesSlices(db, u.uid)),
      labels: uids.map((u) => u.label),
      geometries: geo.map((g) => g.geometry),
      warnings: [...warnings, ...geo.flatMap((g) => g.warnings)],
      volume: (i) => loadSeriesVolume(db, uids[i].uid),
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

/** Every series found at `path` as a Volume (DICOM series in library order), or null if none is DICOM. */
export function readDicomVolumes(
  path: string,
): { volumes: Volume[]; labels: string[]; warnings: string[] } | null {
  const read = openDicomSeries(path, 'memory');
  if (!read) return null;
  try {
    return {
      volumes: read.stacks.map((_, i) => read.volume(i)),
      labels: read.labels,
      warnings: read.warnings,
    };
  } finally {
    read.close();
  }
}

/** The engine's VolumeReader: DICOM file/folder/DICOMDIR or HDF5 → volumes; null for anything else. */
export function readVolumesForEngine(path: string): Volume[] | null {
  const h5 = readHdf5Volumes(path);
  // the engine trains on the primary volumes only (k-space / ground truth, not the cropped targets)
  if (h5) return h5.filter((v) => v.primary !== false).map((v) => v.volume);
  return readDicomVolumes(path)?.volumes ?? null;
}
