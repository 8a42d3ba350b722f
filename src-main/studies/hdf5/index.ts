/** Installs the HDF5 reader into the studies module (importer, engine reader, convert). */
import { setHdf5Reader } from '../hdf5-registry.js';
import { readHdf5 } from './read.js';

setHdf5Reader(readHdf5);

export { readHdf5, primaryVolumes, ifft2c, type Hdf5Volume } from './read.js';
