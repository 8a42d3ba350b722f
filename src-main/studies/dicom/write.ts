/**
 * A typed adapter over dcmjs for writing DICOM Part 10 files: the caller gives a natural data set
 * (attribute keyword → value) and 16-bit pixel words; this writes Explicit VR Little Endian with a
 * proper File Meta group (our implementation class UID and version name), de-identified on request
 * (../deidentify.ts) with the File Meta's SOP Instance UID following the data set's.
 */
import dcmjs from 'dcmjs';
import type { Deidentifier } from '../deidentify.js';

const SOP_INSTANCE_UID = '00080018';

export const IMPLEMENTATION_CLASS_UID = '2.25.158459224806264574626532151212433306201';
export const IMPLEMENTATION_VERSION = 'KDMRI_WS_0.1';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';

/** Attribute keyword → value (strings, numbers, arrays for multi-valued attributes). */
export type NaturalDataset = Record<string, string | number | (string | number)[] | null>;

export interface WriteOptions {
  /** De-identify the data set (PS3.15 basic profile, key map) before writing. */
  deidentify?: Deidentifier | null;
  /** Descriptions the exporter generated itself, kept by a de-identified file (Clean Descriptors). */
  descriptions?: Record<string, string>;
}

/** One Part 10 file. `pixels` becomes Pixel Data (OW, 16-bit little endian). */
export function writePart10(dataset: NaturalDataset, pixels: Uint16Array, opts: WriteOptions = {}): Buffer {
  const sopClass = dataset.SOPClassUID;
  const sopInstance = dataset.SOPInstanceUID;
  if (typeof sopClass !== 'string' || !sopClass || typeof sopInstance !== 'string' || !sopInstance)
    throw new Error('writePart10: SOPClassUID and SOPInstanceUID are required');
  const version = new Uint8Array([0, 1]);
  const words = new Uint16Array(pixels); // own buffer, little endian on every supported host
  const natural: Record<string, unknown> = {
    ...dataset,
    PixelData: [words.buffer],
    _vrMap: { PixelData: 'OW' },
  };
  for (const k of Object.keys(natural)) if (natural[k] === null) delete natural[k];
  const body = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(natural) as Parameters<
    Deidentifier['dicom']
  >[0];
  if (opts.deidentify) opts.deidentify.dicom(body, opts.descriptions);
  const sop = body[SOP_INSTANCE_UID]?.Value?.[0];
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: version.buffer,
    MediaStorageSOPClassUID: sopClass,
    MediaStorageSOPInstanceUID: typeof sop === 'string' ? sop : sopInstance,
    TransferSyntaxUID: EXPLICIT_VR_LE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
    _vrMap: {},
  });
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = body;
  return Buffer.from(dict.write());
}
