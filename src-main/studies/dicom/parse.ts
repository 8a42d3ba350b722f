/**
 * A typed adapter over dicom-parser: reads a DICOM Part 10 file (or a bare data set without the
 * preamble/File Meta, as old modalities wrote them) and exposes the attributes the library needs and
 * the raw bytes of each frame. No pixel maths here (see pixels.ts).
 *
 * Conventions: tags are written as dicom-parser spells them ('x00280010'); every failure is a
 * DicomError with a one-line reason meant for the per-file import report.
 */
import dicomParser from 'dicom-parser';
import {
  LimitError,
  checkFrames,
  checkVolume,
  inflateRawBounded,
  inflateRawHead,
} from '../../data/limits.js';

export class DicomError extends Error {
  constructor(
    message: string,
    /** 'skip': a valid object that is not an image we import (SR, RT plan, colour); 'fail': broken. */
    readonly kind: 'skip' | 'fail' = 'fail',
  ) {
    super(message);
    this.name = 'DicomError';
  }
}

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  rle: '1.2.840.10008.1.2.5',
} as const;

/** Transfer syntaxes whose pixel data is stored natively (not encapsulated). */
export const NATIVE_SYNTAXES: ReadonlySet<string> = new Set([
  TS.implicitLE,
  TS.explicitLE,
  TS.deflatedLE,
  TS.explicitBE,
]);

/** Names for reports. */
export const SYNTAX_NAMES: Record<string, string> = {
  [TS.implicitLE]: 'Implicit VR Little Endian',
  [TS.explicitLE]: 'Explicit VR Little Endian',
  [TS.deflatedLE]: 'Deflated Explicit VR Little Endian',
  [TS.explicitBE]: 'Explicit VR Big Endian',
  [TS.rle]: 'RLE Lossless',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
};

/** The Image Pixel module, as numbers. */
export interface PixelModule {
  rows: number;
  columns: number;
  frames: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: 0 | 1;
  photometric: string;
  planarConfiguration: number;
  rescaleSlope: number;
  rescaleIntercept: number;
}

/** One parsed file. */
export interface DicomObject {
  transferSyntax: string;
  /** Whether the file had a Part 10 header (preamble + DICM + File Meta). */
  part10: boolean;
  /** Text of an attribute (trimmed), '' when absent. */
  str(tag: string): string;
  /** Numeric values of a DS/IS/US/SS/UL attribute (multi-valued split on '\'), [] when absent. */
  nums(tag: string): number[];
  /** First numeric value or null. */
  num(tag: string): number | null;
  has(tag: string): boolean;
  /** The pixel module, or null when the object has no Pixel Data. */
  pixel: PixelModule | null;
  /** The stored bytes of frame i (native: the slice of Pixel Data; encapsulated: the compressed frame). */
  frameBytes(i: number): Uint8Array;
  /** True when Pixel Data is encapsulated (compressed). */
  encapsulated: boolean;
  /**
   * What was repaired while reading, one line each (e.g. a malformed NumberOfFrames replaced by the
   * count the Pixel Data holds): reported with the file's import result, never dropped.
   */
  warnings: string[];
}

// Attribute tags used across the studies module.
export const T = {
  SOPClassUID: 'x00080016',
  SOPInstanceUID: 'x00080018',
  StudyDate: 'x00080020',
  StudyTime: 'x00080030',
  AccessionNumber: 'x00080050',
  Modality: 'x00080060',
  Manufacturer: 'x00080070',
  StudyDescription: 'x00081030',
  SeriesDescription: 'x0008103e',
  ImageType: 'x00080008',
  PatientName: 'x00100010',
  PatientID: 'x00100020',
  PatientBirthDate: 'x00100030',
  PatientSex: 'x00100040',
  SliceThickness: 'x00180050',
  SpacingBetweenSlices: 'x00180088',
  RepetitionTime: 'x00180080',
  EchoTime: 'x00180081',
  MagneticFieldStrength: 'x00180087',
  StudyInstanceUID: 'x0020000d',
  SeriesInstanceUID: 'x0020000e',
  StudyID: 'x00200010',
  SeriesNumber: 'x00200011',
  InstanceNumber: 'x00200013',
  ImagePositionPatient: 'x00200032',
  ImageOrientationPatient: 'x00200037',
  FrameOfReferenceUID: 'x00200052',
  SamplesPerPixel: 'x00280002',
  Photometric: 'x00280004',
  PlanarConfiguration: 'x00280006',
  NumberOfFrames: 'x00280008',
  Rows: 'x00280010',
  Columns: 'x00280011',
  PixelSpacing: 'x00280030',
  BitsAllocated: 'x00280100',
  BitsStored: 'x00280101',
  HighBit: 'x00280102',
  PixelRepresentation: 'x00280103',
  WindowCenter: 'x00281050',
  WindowWidth: 'x00281051',
  RescaleIntercept: 'x00281052',
  RescaleSlope: 'x00281053',
  DirectoryRecordSequence: 'x00041220',
  DirectoryRecordType: 'x00041430',
  ReferencedFileID: 'x00041500',
  MediaStorageSOPClassUID: 'x00020002',
  TransferSyntaxUID: 'x00020010',
  PixelData: 'x7fe00010',
} as const;

type DpDataSet = dicomParser.DataSet;

/** Text of a dicom-parser exception (it throws strings, Errors, or objects with `exception`). */
function parserMessage(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'exception' in e) return String((e as { exception: unknown }).exception);
  return String(e);
}

/**
 * Guess the syntax of a data set written without preamble and File Meta: it starts with an even
 * group tag (usually 0008); explicit VR when bytes 4–5 are two upper-case letters.
 */
function guessBareSyntax(b: Uint8Array): string | null {
  if (b.length < 8) return null;
  const group = b[0] | (b[1] << 8);
  if (group === 0 || group > 0x0010 || group % 2 !== 0) return null;
  const isUpper = (c: number) => c >= 65 && c <= 90;
  return isUpper(b[4]) && isUpper(b[5]) ? TS.explicitLE : TS.implicitLE;
}

function hasPreamble(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

/** Whether the bytes look like DICOM at all (Part 10 or a bare data set). */
export function looksLikeDicom(b: Uint8Array): boolean {
  return hasPreamble(b) || guessBareSyntax(b) !== null;
}

/**
 * The image size a deflated data set declares, read from the first 256 KiB it inflates to, checked
 * against the limits before the rest (the pixels) is inflated: a 512 MiB stream of zeros behind
 * Rows×Columns 16384² is refused in milliseconds, not after inflating it (found by the fuzzer).
 * A head that does not parse is left to the full parse to judge.
 */
function checkDeflatedImageSize(byteArray: Uint8Array, position: number): void {
  const head = inflateRawHead(byteArray.subarray(position), 256 * 1024);
  const bytes = new Uint8Array(position + head.length);
  bytes.set(byteArray.subarray(0, position), 0);
  bytes.set(head, position);
  let ds: DpDataSet;
  try {
    ds = dicomParser.parseDicom(bytes, {
      inflater: (b: Uint8Array) => b,
      untilTag: T.PixelData,
    } as dicomParser.ParseDicomOptions);
  } catch {
    return;
  }
  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  if (!rows || !columns) return;
  const frames = Number.parseInt(ds.string('x00280008') ?? '1', 10);
  const samples = ds.uint16('x00280002') ?? 1;
  checkVolume([columns, rows, Number.isSafeInteger(frames) && frames > 0 ? frames : 1], 4 * samples, 'image');
}

/**
 * Deflated Explicit VR Little Endian: the data set after the File Meta is inflated within the byte
 * cap (limits.ts), instead of dicom-parser's unbounded zlib.inflateRawSync.
 */
function boundedInflater(byteArray: Uint8Array, position: number): Uint8Array {
  checkDeflatedImageSize(byteArray, position);
  const inflated = inflateRawBounded(byteArray.subarray(position), 'Deflated Explicit VR data set');
  const full = Buffer.allocUnsafe(position + inflated.length);
  full.set(byteArray.subarray(0, position), 0);
  full.set(inflated, position);
  return full;
}

/** A valid IS (PS3.5 §6.2): optional sign and digits, padded with spaces. */
const IS_INTEGER = /^[+-]?\d{1,12}$/;

/**
 * Parse a DICOM object. `untilPixels` stops before Pixel Data (fast header scan for DICOMDIR and
 * listings). Throws DicomError('fail') for non-DICOM or truncated input.
 */
export function parseDicom(bytes: Uint8Array, opts: { untilPixels?: boolean } = {}): DicomObject {
  const part10 = hasPreamble(bytes);
  let ds: DpDataSet;
  let syntax: string;
  try {
    if (part10) {
      ds = dicomParser.parseDicom(bytes, {
        inflater: boundedInflater,
        ...(opts.untilPixels ? { untilTag: T.PixelData } : {}),
      } as dicomParser.ParseDicomOptions);
    } else {
      const guess = guessBareSyntax(bytes);
      if (!guess)
        throw new DicomError('not a DICOM file (no "DICM" marker at byte 128 and no data set at the start)');
      ds = dicomParser.parseDicom(bytes, {
        TransferSyntaxUID: guess,
        ...(opts.untilPixels ? { untilTag: T.PixelData } : {}),
      });
    }
  } catch (e) {
    if (e instanceof DicomError) throw e;
    if (e instanceof LimitError) throw new DicomError(e.message);
    const msg = parserMessage(e);
    if (/missing required meta header attribute 0002,0010/.test(msg))
      throw new DicomError(
        'File Meta without Transfer Syntax UID (0002,0010): cannot tell how the data set is encoded',
      );
    if (/DICM prefix not found/i.test(msg))
      throw new DicomError('not a DICOM file (no "DICM" marker at byte 128)');
    if (
      /buffer overread|beyond|exceed|past end|truncat|overrun|maxPosition|cannot be greater than/i.test(msg)
    )
      throw new DicomError(`truncated or corrupt DICOM file (${msg})`);
    throw new DicomError(`unreadable DICOM file: ${msg}`);
  }
  syntax = (ds.string(T.TransferSyntaxUID) ?? '').replace(/\0/g, '').trim();
  if (!syntax) syntax = part10 ? TS.implicitLE : (guessBareSyntax(bytes) ?? TS.implicitLE);
  // dicom-parser records elements cut short by the end of the file as warnings on the data set
  const warnings = (ds as unknown as { warnings?: string[] }).warnings ?? [];

  const str = (tag: string): string => {
    const el = ds.elements[tag];
    if (!el || el.length === 0) return '';
    // dicom-parser's string() returns the first value only; read the whole text and trim padding
    const raw = Buffer.from(
      ds.byteArray.buffer,
      ds.byteArray.byteOffset + el.dataOffset,
      Math.max(0, Math.min(el.length, ds.byteArray.length - el.dataOffset)),
    );
    return raw.toString('latin1').replace(/\0+$/g, '').trim();
  };
  const BINARY: Record<string, 'US' | 'SS' | 'UL'> = {};
  const nums = (tag: string): number[] => {
    const el = ds.elements[tag];
    if (!el || el.length === 0) return [];
    const vr = el.vr ?? BINARY[tag];
    if (vr === 'US') return Array.from({ length: el.length / 2 }, (_, i) => ds.uint16(tag, i) ?? NaN);
    if (vr === 'SS') return Array.from({ length: el.length / 2 }, (_, i) => ds.int16(tag, i) ?? NaN);
    if (vr === 'UL') return Array.from({ length: el.length / 4 }, (_, i) => ds.uint32(tag, i) ?? NaN);
    return str(tag)
      .split('\\')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .map(Number);
  };
  // implicit VR: the binary Image Pixel attributes have no VR in the file; name them here
  for (const t of [
    T.SamplesPerPixel,
    T.Rows,
    T.Columns,
    T.BitsAllocated,
    T.BitsStored,
    T.HighBit,
    T.PixelRepresentation,
    T.PlanarConfiguration,
  ])
    BINARY[t] = 'US';
  const num = (tag: string): number | null => {
    const v = nums(tag)[0];
    return v === undefined || !Number.isFinite(v) ? null : v;
  };

  const pixEl = ds.elements[T.PixelData];
  const repairs: string[] = [];
  let pixel: PixelModule | null = null;
  const encapsulated = Boolean(pixEl?.encapsulatedPixelData);
  if (pixEl || (opts.untilPixels && ds.elements[T.Rows])) {
    const rows = num(T.Rows);
    const columns = num(T.Columns);
    const bitsAllocated = num(T.BitsAllocated);
    if (!rows || !columns || !bitsAllocated)
      throw new DicomError('Pixel Data without Rows, Columns or Bits Allocated');
    const bitsStored = num(T.BitsStored) ?? bitsAllocated;
    const samplesPerPixel = num(T.SamplesPerPixel) ?? 1;
    if (!Number.isInteger(samplesPerPixel) || samplesPerPixel < 1 || samplesPerPixel > 4)
      throw new DicomError(`Samples per Pixel ${samplesPerPixel} is not supported`);
    // NumberOfFrames is an IS string: "1A", "", "0" or "-3" is malformed; the count is then derived
    // from the Pixel Data below (or the object refused), never silently taken as 1
    const nfText = ds.elements[T.NumberOfFrames] ? str(T.NumberOfFrames) : null;
    const nfValid = nfText === null || (IS_INTEGER.test(nfText) && Number(nfText) >= 1);
    let frames = nfText === null || !nfValid ? 1 : Number(nfText);
    // caps on what will be decoded (float32 per sample): on the declared size first, then on the
    // count derived from the data, before any frame is touched
    const caps = () => {
      try {
        checkFrames(frames, 'image');
        checkVolume([columns, rows, frames], 4 * samplesPerPixel, 'image');
      } catch (e) {
        throw e instanceof LimitError ? new DicomError(e.message) : e;
      }
    };
    caps();
    if (pixEl && !opts.untilPixels) {
      const frameLen = Math.ceil((rows * columns * samplesPerPixel * bitsAllocated) / 8);
      if (!encapsulated) {
        const avail = Math.max(0, Math.min(pixEl.length, ds.byteArray.length - pixEl.dataOffset));
        const whole = Math.floor(avail / frameLen);
        if (!nfValid) {
          // one trailing pad byte makes an odd-length value even (PS3.5 §8.1.1)
          if (whole < 1 || avail - whole * frameLen > 1)
            throw new DicomError(
              `Number of Frames "${nfText}" is not a valid integer, and the Pixel Data (${avail} bytes) is not a whole number of ${columns}×${rows} frames of ${frameLen} bytes`,
            );
          repairs.push(
            `Number of Frames "${nfText}" is not a valid integer: ${whole} frames of ${columns}×${rows} read, as the Pixel Data holds (${avail} bytes)`,
          );
          frames = whole;
        } else if (whole < frames) {
          throw new DicomError(
            `truncated Pixel Data: ${frames} frames of ${columns}×${rows} × ${bitsAllocated} bits need ${frames * frameLen} bytes, ${avail} present`,
          );
        } else if (whole > frames) {
          repairs.push(
            `Pixel Data holds ${whole} whole frames of ${columns}×${rows}, Number of Frames says ${frames}: the first ${frames} read, ${avail - frames * frameLen} bytes ignored`,
          );
        }
      } else if (!nfValid) {
        const bot = pixEl.basicOffsetTable ?? [];
        const fragments = pixEl.fragments ?? [];
        const derived = bot.length > 0 ? bot.length : fragments.length;
        if (derived < 1)
          throw new DicomError(
            `Number of Frames "${nfText}" is not a valid integer, and the Pixel Data has no fragments`,
          );
        repairs.push(
          `Number of Frames "${nfText}" is not a valid integer: ${derived} frames read, one per ${bot.length > 0 ? 'offset table entry' : 'fragment'}`,
        );
        frames = derived;
      }
    } else if (!nfValid) {
      repairs.push(`Number of Frames "${nfText}" is not a valid integer`);
    }
    caps();
    pixel = {
      rows,
      columns,
      frames,
      samplesPerPixel,
      bitsAllocated,
      bitsStored,
      highBit: num(T.HighBit) ?? bitsStored - 1,
      pixelRepresentation: num(T.PixelRepresentation) === 1 ? 1 : 0,
      photometric: str(T.Photometric) || 'MONOCHROME2',
      planarConfiguration: num(T.PlanarConfiguration) ?? 0,
      rescaleSlope: num(T.RescaleSlope) ?? 1,
      rescaleIntercept: num(T.RescaleIntercept) ?? 0,
    };
    if (pixel.rescaleSlope === 0) pixel.rescaleSlope = 1;
  }
  if (pixEl && !opts.untilPixels) {
    if (
      pixEl.dataOffset + (pixEl.encapsulatedPixelData ? 0 : pixEl.length) > ds.byteArray.length ||
      warnings.some((w) => /7fe00010|pixel/i.test(w))
    )
      throw new DicomError('truncated DICOM file: Pixel Data runs past the end of the file');
  }

  const frameBytes = (i: number): Uint8Array => {
    if (!pixEl || !pixel) throw new DicomError('no Pixel Data');
    if (!encapsulated) {
      const frameLen = Math.ceil(
        (pixel.rows * pixel.columns * pixel.samplesPerPixel * pixel.bitsAllocated) / 8,
      );
      const start = pixEl.dataOffset + i * frameLen;
      const avail = Math.min(pixEl.length, ds.byteArray.length - pixEl.dataOffset) - i * frameLen;
      if (avail < frameLen)
        throw new DicomError(
          `truncated Pixel Data: frame ${i + 1} needs ${frameLen} bytes, ${Math.max(0, avail)} present`,
        );
      return ds.byteArray.subarray(start, start + frameLen);
    }
    try {
      const fragments = pixEl.fragments ?? [];
      const bot = pixEl.basicOffsetTable ?? [];
      if (bot.length > 0) return dicomParser.readEncapsulatedImageFrame(ds, pixEl, i) as Uint8Array;
      if (pixel.frames === 1)
        return dicomParser.readEncapsulatedPixelDataFromFragments(
          ds,
          pixEl,
          0,
          fragments.length,
        ) as Uint8Array;
      if (fragments.length === pixel.frames)
        return dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixEl, i, 1) as Uint8Array;
      const table = dicomParser.createJPEGBasicOffsetTable(ds, pixEl);
      return dicomParser.readEncapsulatedImageFrame(ds, pixEl, i, table) as Uint8Array;
    } catch (e) {
      throw new DicomError(`cannot read compressed frame ${i + 1}: ${parserMessage(e)}`);
    }
  };

  return {
    transferSyntax: syntax,
    part10,
    str,
    nums,
    num,
    has: (t) => Boolean(ds.elements[t]),
    pixel,
    frameBytes,
    encapsulated,
    warnings: repairs,
  };
}

/**
 * The files a DICOMDIR references (ReferencedFileID of its directory records, components joined with
 * '/', relative to the DICOMDIR's folder), in record order. Throws DicomError when not a DICOMDIR.
 */
export function dicomdirReferencedFiles(bytes: Uint8Array): string[] {
  let ds: DpDataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (e) {
    throw new DicomError(`unreadable DICOMDIR: ${parserMessage(e)}`);
  }
  const seq = ds.elements[T.DirectoryRecordSequence];
  if (!seq) throw new DicomError('not a DICOMDIR (no Directory Record Sequence)');
  const out: string[] = [];
  for (const item of seq.items ?? []) {
    const rec = item.dataSet;
    if (!rec) continue;
    const id = rec.string(T.ReferencedFileID);
    if (!id) continue;
    // dicom-parser's string() returns only the first value of a multi-valued CS: read all of it
    const el = rec.elements[T.ReferencedFileID];
    const raw = Buffer.from(
      rec.byteArray.buffer,
      rec.byteArray.byteOffset + el.dataOffset,
      el.length,
    ).toString('latin1');
    out.push(
      raw
        .replace(/[\0 ]+$/g, '')
        .split('\\')
        .map((s) => s.trim())
        .join('/'),
    );
  }
  return out;
}
