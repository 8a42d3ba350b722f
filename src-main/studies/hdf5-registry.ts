/**
 * Where raw-data (HDF5) readers plug in: the HDF5 module registers itself here and with the importer,
 * so the rest of the studies module does not load h5wasm unless an HDF5 file is read.
 */
import type { Volume } from '../contract/domain.js';

export interface LabelledVolume {
  label: string;
  volume: Volume;
  attributes: Record<string, string>;
  /** False for volumes shown in the library only (fastMRI's cropped targets); default true. */
  primary?: boolean;
}
export type Hdf5Reader = (path: string) => LabelledVolume[] | null;

let reader: Hdf5Reader | null = null;
export function setHdf5Reader(r: Hdf5Reader): void {
  reader = r;
}

/** Volumes of an HDF5 file, or null when the path is not HDF5 (or no reader is installed). */
export function readHdf5Volumes(path: string): LabelledVolume[] | null {
  if (!/\.(h5|hdf5|hdf)$/i.test(path)) return null;
  if (!reader) throw new Error(`${path}: HDF5 files are not supported by this build`);
  return reader(path);
}
