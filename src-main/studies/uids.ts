/**
 * UIDs in the 2.25.<decimal> form (PS3.5 §B.2: a UUID read as one unsigned 128-bit integer), which
 * needs no registered root. Random ones for new objects; deterministic ones (sha256 of the inputs,
 * first 128 bits) for synthetic studies made from NIfTI / HDF5 files, so re-importing finds them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { PatientAttrs, StudyAttrs } from './library.js';

export function uuidToUid(uuid: string): string {
  return `2.25.${BigInt('0x' + uuid.replace(/-/g, '')).toString()}`;
}

export function newUid(): string {
  return uuidToUid(randomUUID());
}

export function deterministicUid(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return `2.25.${BigInt('0x' + h.digest('hex').slice(0, 32)).toString()}`;
}

/** sha256 of a file's bytes, hex. */
export function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * The patient and study a NIfTI or HDF5 file (or a folder of them) stands for, derived once from the
 * path and content hash: what the importer stores for it and what an export of data read from it
 * carries, so both name the same patient and the same study (no fake patient per image).
 */
export function syntheticIdentity(
  path: string,
  kind: 'nifti' | 'hdf5',
  hash: string,
): { patient: PatientAttrs; study: StudyAttrs } {
  const name = basename(path).replace(/\.(nii\.gz|nii|h5|hdf5|hdf)$/i, '');
  return {
    patient: { id: `${kind}:${name}`, name, birthDate: '', sex: '' },
    study: {
      uid: deterministicUid('kdmri-study', path, hash),
      date: '',
      time: '',
      description: `${kind === 'nifti' ? 'NIfTI' : 'HDF5'} ${basename(path)}`,
      accession: '',
      studyId: '',
    },
  };
}
