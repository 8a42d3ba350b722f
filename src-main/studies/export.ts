/**
 * Exports of reconstructions and series: a DICOM derived series (dcmjs), NIfTI (float32) and PNG.
 *
 * DICOM conventions: MR Image Storage (1.2.840.10008.5.1.4.1.1.4), ImageType DERIVED\SECONDARY, new
 * Series/SOP Instance UIDs (2.25.<uuid as decimal>), the source series' patient and study attributes
 * (same StudyInstanceUID, so PACS show it next to the source) when there is one, DerivationDescription
 * naming the model, mask and acceleration. Pixels are 16-bit unsigned with one RescaleSlope/Intercept
 * for the whole series: intercept = volume min, slope = (max − min)/65535, both written as DS (≤ 16
 * characters) and the stored words computed from the values as written, so that
 * |stored·slope + intercept − value| ≤ slope/2 (+ float32 rounding): within 1/65535 of the range.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Volume } from '../contract/domain.js';
import { writeFileAtomic } from '../store/model-files.js';
import { writeNifti } from '../data/nifti.js';
import { writeGrayPng } from '../data/png.js';
import type { Db } from '../store/db.js';
import { writePart10, type NaturalDataset } from './dicom/write.js';
import {
  loadSeriesVolume,
  seriesContext,
  seriesInstances,
  type PatientAttrs,
  type StudyAttrs,
} from './library.js';
import { newUid } from './uids.js';
import type { Deidentifier } from './deidentify.js';

export const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

export interface DerivationInfo {
  /** Model name (e.g. "kd-student dccnn 5x3"), or what produced the images. */
  model?: string;
  /** Mask label (e.g. "cartesian 4x"). */
  mask?: string;
  acceleration?: number | null;
  /** Free text appended to the generated description. */
  note?: string;
}

export interface DicomSource {
  patient: PatientAttrs;
  study: StudyAttrs;
  /** Geometry of the source slices (same count as the exported volume), when known. */
  positions?: ([number, number, number] | null)[];
  /** Without positions: the index of the first exported slice in the source (positions = index × spacing). */
  firstSlice?: number;
  orientation?: number[] | null;
  frameOfReferenceUid?: string;
  seriesUid?: string;
}

/** Window centre/width in the exported values' units (after rescale), as the viewer shows them. */
export interface DisplayWindow {
  center: number;
  width: number;
}

export interface DicomExportOptions {
  source?: DicomSource | null;
  /** WindowCenter/WindowWidth to write (default: the volume's [min, max]). */
  window?: DisplayWindow;
  /**
   * De-identify every file (PS3.15 basic profile with the library's key map). The series description
   * and the derivation text are kept only as generated here (no note, no source description).
   */
  deidentify?: Deidentifier | null;
  seriesDescription?: string;
  seriesNumber?: number;
  derivation?: DerivationInfo;
  /** Defaults to a new UID. */
  seriesUid?: string;
  /** Used when there is no source study. */
  studyUid?: string;
}

/** A series description made only from the derivation (model, mask), safe to keep when de-identifying. */
export function generatedDescription(d: DerivationInfo | undefined, label?: string): string {
  const what = [label, d?.model, d?.mask].filter(Boolean).join(' ');
  return (what || 'KD-MRI derived series').slice(0, 64);
}

export interface DicomExport {
  seriesUid: string;
  studyUid: string;
  slope: number;
  intercept: number;
  files: { sopUid: string; bytes: Buffer }[];
}

/** A DS value (decimal string, at most 16 characters) as close to x as fits. */
export function dsString(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot write ${x} as a DICOM decimal string`);
  for (let p = 15; p >= 1; p--) {
    const s = String(Number(x.toPrecision(p)));
    if (s.length <= 16) return s;
  }
  return '0';
}

/** The 16-bit quantisation of a volume: words, and slope/intercept exactly as written. */
export function quantise16(data: Float32Array): {
  words: Uint16Array;
  slope: number;
  intercept: number;
  slopeText: string;
  interceptText: string;
} {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min === Infinity) {
    min = 0;
    max = 0;
  }
  const interceptText = dsString(min);
  const intercept = Number(interceptText);
  let slopeText = dsString(max > min ? (max - min) / 65535 : 1);
  let slope = Number(slopeText);
  // rounding the slope down could push the top value past 65535: nudge it up until it fits
  while ((max - intercept) / slope > 65535.5) {
    slopeText = dsString(slope * (1 + 1e-12) + Number.EPSILON);
    slope = Number(slopeText);
  }
  const words = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number.isFinite(data[i]) ? data[i] : min;
    words[i] = Math.min(65535, Math.max(0, Math.round((v - intercept) / slope)));
  }
  return { words, slope, intercept, slopeText, interceptText };
}

function derivationText(d: DerivationInfo | undefined): string {
  if (!d) return 'Reconstruction by KD-MRI Workstation';
  const parts = [
    `model ${d.model ?? 'unknown'}`,
    `mask ${d.mask ?? 'none'}`,
    `acceleration ${d.acceleration !== null && d.acceleration !== undefined ? `${Number(d.acceleration.toFixed(3))}x` : 'n/a'}`,
  ];
  // LO/ST: DerivationDescription is ST (1024 chars)
  return `KD-MRI Workstation reconstruction: ${parts.join(', ')}${d.note ? `; ${d.note}` : ''}`.slice(
    0,
    1024,
  );
}

const today = () => {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return {
    date: `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`,
    time: `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`,
  };
};

/** Build the derived series' files (not written). */
export function volumeToDicom(vol: Volume, opts: DicomExportOptions = {}): DicomExport {
  const n = vol.h * vol.w;
  if (vol.data.length !== vol.slices * n)
    throw new Error(`volume data has ${vol.data.length} values, expected ${vol.slices}×${vol.h}×${vol.w}`);
  const q = quantise16(vol.data);
  const src = opts.source ?? null;
  const seriesUid = opts.seriesUid ?? newUid();
  const studyUid = src?.study.uid ?? opts.studyUid ?? newUid();
  const frameOfRef = src?.frameOfReferenceUid ?? newUid();
  const { date, time } = today();
  const [colSp, rowSp, sliceSp] = vol.spacing ?? [1, 1, 1];
  const orientation = src?.orientation && src.orientation.length === 6 ? src.orientation : [1, 0, 0, 0, 1, 0];
  const normal = [
    orientation[1] * orientation[5] - orientation[2] * orientation[4],
    orientation[2] * orientation[3] - orientation[0] * orientation[5],
    orientation[0] * orientation[4] - orientation[1] * orientation[3],
  ];
  const files: DicomExport['files'] = [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vol.data) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const win: DisplayWindow = opts.window ?? {
    center: Number.isFinite(lo) ? (lo + hi) / 2 : 0,
    width: Number.isFinite(lo) && hi > lo ? hi - lo : 1,
  };
  if (!(Number.isFinite(win.center) && Number.isFinite(win.width) && win.width > 0))
    throw new Error(`window: centre ${win.center} and width ${win.width} must be finite, width > 0`);
  const descriptions = opts.deidentify
    ? {
        SeriesDescription: generatedDescription(opts.derivation, opts.seriesDescription),
        DerivationDescription: derivationText(opts.derivation && { ...opts.derivation, note: undefined }),
      }
    : undefined;
  for (let s = 0; s < vol.slices; s++) {
    const sopUid = newUid();
    const pos = src?.positions?.[s] ?? normal.map((x) => x * ((src?.firstSlice ?? 0) + s) * sliceSp);
    const ds: NaturalDataset = {
      SpecificCharacterSet: 'ISO_IR 100',
      ImageType: ['DERIVED', 'SECONDARY'],
      SOPClassUID: MR_IMAGE_STORAGE,
      SOPInstanceUID: sopUid,
      StudyDate: src?.study.date ?? date,
      SeriesDate: date,
      ContentDate: date,
      StudyTime: src?.study.time ?? time,
      SeriesTime: time,
      ContentTime: time,
      AccessionNumber: src?.study.accession ?? '',
      Modality: 'MR',
      Manufacturer: 'KD-MRI Workstation',
      ReferringPhysicianName: '',
      StudyDescription: src?.study.description ?? 'KD-MRI reconstructions',
      SeriesDescription: (opts.seriesDescription ?? `Recon ${opts.derivation?.model ?? ''}`.trim()).slice(
        0,
        64,
      ),
      DerivationDescription: derivationText(opts.derivation),
      PatientName: src?.patient.name ?? 'Anonymous',
      PatientID: src?.patient.id ?? 'KDMRI',
      PatientBirthDate: src?.patient.birthDate ?? '',
      PatientSex: src?.patient.sex ?? '',
      // MR Image module, Type 1/2 attributes: research-mode reconstruction, not an acquisition
      ScanningSequence: 'RM',
      SequenceVariant: 'NONE',
      ScanOptions: '',
      MRAcquisitionType: '2D',
      RepetitionTime: '',
      EchoTime: '',
      EchoTrainLength: '',
      SliceThickness: dsString(sliceSp),
      SpacingBetweenSlices: dsString(sliceSp),
      StudyInstanceUID: studyUid,
      SeriesInstanceUID: seriesUid,
      StudyID: src?.study.studyId ?? '',
      SeriesNumber: opts.seriesNumber ?? 900,
      InstanceNumber: s + 1,
      ImagePositionPatient: pos.map((x) => dsString(x)),
      ImageOrientationPatient: orientation.map((x) => dsString(x)),
      FrameOfReferenceUID: frameOfRef,
      PositionReferenceIndicator: '',
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: vol.h,
      Columns: vol.w,
      // PixelSpacing = row spacing (between rows) \ column spacing (between columns)
      PixelSpacing: [dsString(rowSp), dsString(colSp)],
      BitsAllocated: 16,
      BitsStored: 16,
      HighBit: 15,
      PixelRepresentation: 0,
      WindowCenter: dsString(win.center),
      WindowWidth: dsString(win.width),
      RescaleIntercept: q.interceptText,
      RescaleSlope: q.slopeText,
      RescaleType: 'US',
      LossyImageCompression: '00',
    };
    files.push({
      sopUid,
      bytes: writePart10(ds, q.words.subarray(s * n, (s + 1) * n), {
        deidentify: opts.deidentify,
        descriptions,
      }),
    });
  }
  const d = opts.deidentify;
  // a de-identified export reports the UIDs its files carry (the key map's pseudonyms)
  return d
    ? {
        seriesUid: d.uid(seriesUid),
        studyUid: d.uid(studyUid),
        slope: q.slope,
        intercept: q.intercept,
        files: files.map((f) => ({ ...f, sopUid: d.uid(f.sopUid) })),
      }
    : { seriesUid, studyUid, slope: q.slope, intercept: q.intercept, files };
}

/** Write a derived series into `outDir` as IM0001.dcm, IM0002.dcm, … Returns the export and paths. */
export function writeDicomSeries(
  vol: Volume,
  outDir: string,
  opts: DicomExportOptions = {},
): DicomExport & { paths: string[] } {
  const exp = volumeToDicom(vol, opts);
  mkdirSync(outDir, { recursive: true });
  const paths = exp.files.map((f, i) => {
    const p = join(outDir, `IM${String(i + 1).padStart(4, '0')}.dcm`);
    writeFileAtomic(p, f.bytes);
    return p;
  });
  return { ...exp, paths };
}

/** Source attributes of a library series (patient, study, geometry) for a derived export. */
export function dicomSourceFromSeries(db: Db, seriesUid: string): DicomSource | null {
  const ctx = seriesContext(db, seriesUid);
  if (!ctx) return null;
  const inst = seriesInstances(db, seriesUid);
  const iop = ctx.series.attributes.ImageOrientationPatient;
  const orientation = iop ? iop.split('\\').map(Number) : null;
  return {
    patient: ctx.patient,
    study: ctx.study,
    positions: inst.map((i) => i.position),
    orientation:
      orientation && orientation.length === 6 && orientation.every(Number.isFinite) ? orientation : null,
    frameOfReferenceUid: ctx.series.attributes.FrameOfReferenceUID || undefined,
    seriesUid,
  };
}

/**
 * Export a reconstruction of a library series (same slices, same grid) as a derived series next to it.
 * `recon` defaults to the series itself (a plain re-export).
 */
export function exportSeriesDicom(
  db: Db,
  seriesUid: string,
  outDir: string,
  opts: {
    recon?: Volume;
    derivation?: DerivationInfo;
    seriesDescription?: string;
    seriesNumber?: number;
    window?: DisplayWindow;
    deidentify?: Deidentifier | null;
  } = {},
): DicomExport & { paths: string[] } {
  const vol = opts.recon ?? loadSeriesVolume(db, seriesUid);
  const source = dicomSourceFromSeries(db, seriesUid);
  if (source?.positions && source.positions.length !== vol.slices) source.positions = undefined;
  const detail = seriesContext(db, seriesUid)?.series;
  const what = opts.recon ? 'recon' : 'export';
  return writeDicomSeries(vol, outDir, {
    source,
    derivation: opts.derivation,
    window: opts.window,
    deidentify: opts.deidentify,
    // a de-identified series keeps no text of the source's
    seriesDescription:
      opts.seriesDescription ??
      (opts.deidentify ? `KD-MRI ${what}` : `${detail?.description || 'Series'} (${what})`),
    seriesNumber:
      opts.seriesNumber ??
      (detail?.number !== null && detail?.number !== undefined ? detail.number + 900 : 900),
  });
}

/**
 * A whole comparison (e.g. zero-filled, teacher, student, KD student on one mask) as one derived series
 * per volume in the same study, all with one display window (the viewer shows them synchronised).
 */
export function writeDicomComparison(
  items: { label: string; volume: Volume; derivation?: DerivationInfo }[],
  outDir: string,
  source: DicomSource | null = null,
  opts: { window?: DisplayWindow; deidentify?: Deidentifier | null } = {},
): (DicomExport & { paths: string[]; label: string })[] {
  const studyUid = source?.study.uid ?? newUid();
  return items.map((it, k) => ({
    label: it.label,
    ...writeDicomSeries(
      it.volume,
      join(outDir, `${String(k + 1).padStart(2, '0')}-${it.label.replace(/[^A-Za-z0-9._-]+/g, '_')}`),
      {
        source,
        studyUid,
        derivation: it.derivation,
        seriesDescription: it.label,
        seriesNumber: 901 + k,
        window: opts.window,
        deidentify: opts.deidentify,
      },
    ),
  }));
}

/** float32 NIfTI of a volume (pixels after rescale, spacing kept). */
export function writeVolumeNifti(vol: Volume, path: string): void {
  writeNifti(path, vol);
}

/**
 * One 8-bit PNG per slice (slice_0001.png …) windowed to the volume's [min, max] (or `range`), so all
 * slices share one grey scale.
 */
export function writeVolumePngs(vol: Volume, outDir: string, range?: [number, number]): string[] {
  mkdirSync(outDir, { recursive: true });
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vol.data) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const r: [number, number] = range ?? [
    Number.isFinite(lo) ? lo : 0,
    Number.isFinite(hi) && hi > lo ? hi : lo + 1,
  ];
  const n = vol.h * vol.w;
  return Array.from({ length: vol.slices }, (_, s) => {
    const p = join(outDir, `slice_${String(s + 1).padStart(4, '0')}.png`);
    writeGrayPng(p, vol.data.subarray(s * n, (s + 1) * n), vol.h, vol.w, r);
    return p;
  });
}
