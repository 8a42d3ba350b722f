/** The attributes the library keeps from one DICOM object (patient, study, series, instance, geometry). */
import { parseDicom, T, type DicomObject, type PixelModule } from './parse.js';

export interface DicomHeader {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntax: string;
  patientId: string;
  patientName: string;
  birthDate: string;
  sex: string;
  studyUid: string;
  studyDate: string;
  studyTime: string;
  studyDescription: string;
  accession: string;
  studyId: string;
  seriesUid: string;
  modality: string;
  seriesDescription: string;
  seriesNumber: number | null;
  instanceNumber: number | null;
  position: [number, number, number] | null;
  orientation: [number, number, number, number, number, number] | null;
  pixelSpacing: [number, number] | null;
  sliceThickness: number | null;
  spacingBetweenSlices: number | null;
  pixel: PixelModule | null;
  /** Keyword → text, for the browser's attribute panel. */
  attributes: Record<string, string>;
}

/** SOP classes that never carry images we import, named for the skip reason. */
const NON_IMAGE_CLASSES: Record<string, string> = {
  '1.2.840.10008.1.3.10': 'DICOMDIR (media directory)',
  '1.2.840.10008.5.1.4.1.1.481.5': 'RT Plan',
  '1.2.840.10008.5.1.4.1.1.481.8': 'RT Ion Plan',
  '1.2.840.10008.5.1.4.1.1.481.3': 'RT Structure Set',
  '1.2.840.10008.5.1.4.1.1.88.11': 'Basic Text SR',
  '1.2.840.10008.5.1.4.1.1.88.22': 'Enhanced SR',
  '1.2.840.10008.5.1.4.1.1.88.33': 'Comprehensive SR',
  '1.2.840.10008.5.1.4.1.1.88.59': 'Key Object Selection',
  '1.2.840.10008.5.1.4.1.1.11.1': 'Grayscale Softcopy Presentation State',
  '1.2.840.10008.5.1.4.1.1.9.1.1': '12-lead ECG waveform',
  '1.2.840.10008.5.1.4.1.1.104.1': 'Encapsulated PDF',
};

export function sopClassName(uid: string): string | null {
  return NON_IMAGE_CLASSES[uid] ?? null;
}

function vec<N extends number>(v: number[], n: N): number[] | null {
  return v.length >= n && v.slice(0, n).every(Number.isFinite) ? v.slice(0, n) : null;
}

const SHOWN: [string, string][] = [
  ['Modality', T.Modality],
  ['Manufacturer', T.Manufacturer],
  ['ImageType', T.ImageType],
  ['SOPClassUID', T.SOPClassUID],
  ['TransferSyntaxUID', T.TransferSyntaxUID],
  ['PhotometricInterpretation', T.Photometric],
  ['BitsStored', T.BitsStored],
  ['RescaleSlope', T.RescaleSlope],
  ['RescaleIntercept', T.RescaleIntercept],
  ['WindowCenter', T.WindowCenter],
  ['WindowWidth', T.WindowWidth],
  ['RepetitionTime', T.RepetitionTime],
  ['EchoTime', T.EchoTime],
  ['MagneticFieldStrength', T.MagneticFieldStrength],
  ['FrameOfReferenceUID', T.FrameOfReferenceUID],
  ['ImageOrientationPatient', T.ImageOrientationPatient],
  ['PixelSpacing', T.PixelSpacing],
  ['SliceThickness', T.SliceThickness],
];

export function headerOf(o: DicomObject): DicomHeader {
  const attributes: Record<string, string> = {};
  for (const [k, tag] of SHOWN) {
    if (!o.has(tag)) continue;
    const binary = tag === T.BitsStored;
    attributes[k] = binary ? String(o.num(tag) ?? '') : o.str(tag);
  }
  if (!attributes.TransferSyntaxUID) attributes.TransferSyntaxUID = o.transferSyntax;
  const ps = vec(o.nums(T.PixelSpacing), 2);
  return {
    sopClassUid: o.str(T.SOPClassUID) || o.str(T.MediaStorageSOPClassUID),
    sopInstanceUid: o.str(T.SOPInstanceUID),
    transferSyntax: o.transferSyntax,
    patientId: o.str(T.PatientID),
    patientName: o.str(T.PatientName),
    birthDate: o.str(T.PatientBirthDate),
    sex: o.str(T.PatientSex),
    studyUid: o.str(T.StudyInstanceUID),
    studyDate: o.str(T.StudyDate),
    studyTime: o.str(T.StudyTime),
    studyDescription: o.str(T.StudyDescription),
    accession: o.str(T.AccessionNumber),
    studyId: o.str(T.StudyID),
    seriesUid: o.str(T.SeriesInstanceUID),
    modality: o.str(T.Modality),
    seriesDescription: o.str(T.SeriesDescription),
    seriesNumber: o.num(T.SeriesNumber),
    instanceNumber: o.num(T.InstanceNumber),
    position: vec(o.nums(T.ImagePositionPatient), 3) as [number, number, number] | null,
    orientation: vec(o.nums(T.ImageOrientationPatient), 6) as DicomHeader['orientation'],
    // PixelSpacing is [row spacing (between rows), column spacing (between columns)]
    pixelSpacing: ps as [number, number] | null,
    sliceThickness: o.num(T.SliceThickness),
    spacingBetweenSlices: o.num(T.SpacingBetweenSlices),
    pixel: o.pixel,
    attributes,
  };
}

/** Parse a file's header only (stops before Pixel Data). */
export function readHeader(bytes: Uint8Array): DicomHeader {
  return headerOf(parseDicom(bytes, { untilPixels: true }));
}
