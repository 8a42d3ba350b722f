/**
 * The studies module: DICOM / NIfTI / HDF5 import, the SQLite library, exports and the DICOMweb
 * client. This file is what the services (src-main/services/studies.ts) and the engine load.
 *
 * Importing it also registers the studies readers with the engine's data source, so
 * `kdmri distill --data <DICOM folder | DICOM file | DICOMDIR | fastMRI/KD-MRI .h5>` works.
 */
import { registerVolumeReader } from '../distill/data-source.js';
import { readVolumesForEngine } from './volumes.js';
import './hdf5/index.js';
import './dicom/codecs.js';

export { importPaths, importPathsSync, type ImportProgress } from './import.js';
export {
  listStudies,
  getSeries,
  getSeriesSlice,
  loadSeriesVolume,
  seriesSlices,
  loadSeriesSource,
  parseSeriesSource,
  createDatasetFromSeries,
  deleteSeries,
  seriesInstances,
  SERIES_SOURCE_PREFIX,
} from './library.js';
export { readVolumesForEngine } from './volumes.js';

registerVolumeReader(readVolumesForEngine);
