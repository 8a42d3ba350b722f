/**
 * UIDs in the 2.25.<decimal> form (PS3.5 §B.2: a UUID read as one unsigned 128-bit integer), which
 * needs no registered root. Random ones for new objects; deterministic ones (sha256 of the inputs,
 * first 128 bits) for synthetic studies made from NIfTI / HDF5 files, so re-importing finds them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
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

/**
 * UIDs for a DICOM image that lacks them (pydicom reads such files; conversion needs no UIDs, the
 * library does), derived from content so that importing the file again finds the same instance:
 *  - SOP Instance UID: from the sha256 of the file's bytes;
 *  - Series Instance UID: from the attributes that define a series (patient, study, series number,
 *    modality, description, frame of reference, image size) when the file has any of them, so the
 *    slices of one UID-less series stay together; otherwise from the file's own content hash.
 */
export function derivedDicomUids(
  h: {
    sopInstanceUid: string;
    seriesUid: string;
    patientId: string;
    studyUid: string;
    seriesNumber: number | null;
    modality: string;
    seriesDescription: string;
    frameOfReference: string;
    size: string;
  },
  contentHash: string,
): { sopInstanceUid: string; seriesUid: string; warnings: string[] } {
  const warnings: string[] = [];
  let sop = h.sopInstanceUid;
  if (!sop) {
    sop = deterministicUid('kdmri-derived-sop', contentHash);
    warnings.push(`no SOP Instance UID: ${sop} derived from the file's content`);
  }
  let series = h.seriesUid;
  if (!series) {
    const grouped = Boolean(h.studyUid || h.seriesNumber !== null || h.frameOfReference);
    series = grouped
      ? deterministicUid(
          'kdmri-derived-series',
          h.patientId,
          h.studyUid,
          String(h.seriesNumber ?? ''),
          h.modality,
          h.seriesDescription,
          h.frameOfReference,
          h.size,
        )
      : deterministicUid('kdmri-derived-series', contentHash);
    warnings.push(
      `no Series Instance UID: ${series} derived from ${grouped ? 'the series attributes' : "the file's content"}`,
    );
  }
  return { sopInstanceUid: sop, seriesUid: series, warnings };
}

/** sha256 of bytes, hex. */
export function bytesHash(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** sha256 of a file's bytes, hex, read in 1 MiB pieces (the file is never held whole). */
export function fileHash(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.allocUnsafe(2 ** 20);
    for (let pos = 0; ;) {
      const n = readSync(fd, b, 0, b.length, pos);
      if (n === 0) break;
      h.update(b.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
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
