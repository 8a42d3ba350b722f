/**
 * A typed adapter over dcmjs for writing DICOM Part 10 files: the caller gives a natural data set
 * (attribute keyword → value) and 16-bit pixel words; this writes Explicit VR Little Endian with a
 * proper File Meta group (our implementation class UID and version name).
 */
import dcmjs from 'dcmjs';

export const IMPLEMENTATION_CLASS_UID = '2.25.158459224806264574626532151212433306201';
export const IMPLEMENTATION_VERSION = 'KDMRI_WS_0.1';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';

/** Attribute keyword → value (strings, numbers, arrays for multi-valued attributes). */
export type NaturalDataset = Record<string, string | number | (string | number)[] | null>;

/** One Part 10 file. `pixels` becomes Pixel Data (OW, 16-bit little endian). */
export function writePart10(dataset: NaturalDataset, pixels: Uint16Array): Buffer {
  const sopClass = dataset.SOPClassUID;
  const sopInstance = dataset.SOPInstanceUID;
  if (typeof sopClass !== 'string' || !sopClass || typeof sopInstance !== 'string' || !sopInstance)
    throw new Error('writePart10: SOPClassUID and SOPInstanceUID are required');
  const version = new Uint8Array([0, 1]);
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: version.buffer,
    MediaStorageSOPClassUID: sopClass,
    MediaStorageSOPInstanceUID: sopInstance,
    TransferSyntaxUID: EXPLICIT_VR_LE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
    _vrMap: {},
  });
  const words = new Uint16Array(pixels); // own buffer, little endian on every supported host
  const dict = new dcmjs.data.DicomDict(meta);
  const natural: Record<string, unknown> = {
    ...dataset,
    PixelData: [words.buffer],
    _vrMap: { PixelData: 'OW' },
  };
  for (const k of Object.keys(natural)) if (natural[k] === null) delete natural[k];
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(natural);
  return Buffer.from(dict.write());
}
