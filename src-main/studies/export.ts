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
import { join } from 'node:path';
import type { Volume } from '../contract/domain.js';
import { writeFolderAtomic } from '../store/model-files.js';
import { writeNiftiSlices, type NiftiGeometry } from '../data/nifti.js';
import { encodeGrayPng } from '../data/png.js';
import { asStack, finiteRange, stackOfVolume, type SliceStack } from '../data/volume.js';
import type { Db } from '../store/db.js';
import { writePart10, type NaturalDataset } from './dicom/write.js';
import {
  seriesSlices,
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

/** The series-wide 16-bit quantisation: slope/intercept exactly as written, and each value's word. */
export interface Quantiser {
  slope: number;
  intercept: number;
  slopeText: string;
  interceptText: string;
  /** Stored words of some values (a slice); a non-finite value is stored as the minimum. */
  words(data: Float32Array): Uint16Array;
}

/** The quantisation of values whose finite [min, max] is `range` ([Infinity, -Infinity]: none finite). */
export function quantiser(range: [number, number]): Quantiser {
  let [min, max] = range;
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
  const words = (data: Float32Array) => {
    const out = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = Number.isFinite(data[i]) ? data[i] : min;
      out[i] = Math.min(65535, Math.max(0, Math.round((v - intercept) / slope)));
    }
    return out;
  };
  return { slope, intercept, slopeText, interceptText, words };
}

/** The 16-bit quantisation of a volume: words, and slope/intercept exactly as written. */
export function quantise16(data: Float32Array): {
  words: Uint16Array;
  slope: number;
  intercept: number;
  slopeText: string;
  interceptText: string;
} {
  const q = quantiser(finiteRange(stackOfVolume({ data, slices: 1, h: 1, w: data.length })));
  return { ...q, words: q.words(data) };
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

/** What every file of a derived series shares, fixed before the first file is built. */
interface SeriesPlan {
  q: Quantiser;
  seriesUid: string;
  studyUid: string;
  frameOfRef: string;
  date: string;
  time: string;
  orientation: number[];
  normal: number[];
  win: DisplayWindow;
  descriptions?: Record<string, string>;
}

/**
 * The first pass over a series: the finite [min, max] of all its slices, which fixes the one
 * RescaleSlope/Intercept and the default window; nothing else of the volume is kept.
 */
function planSeries(stack: SliceStack, opts: DicomExportOptions): SeriesPlan {
  const [lo, hi] = finiteRange(stack);
  const q = quantiser([lo, hi]);
  const src = opts.source ?? null;
  const orientation = src?.orientation && src.orientation.length === 6 ? src.orientation : [1, 0, 0, 0, 1, 0];
  const win: DisplayWindow = opts.window ?? {
    center: Number.isFinite(lo) ? (lo + hi) / 2 : 0,
    width: Number.isFinite(lo) && hi > lo ? hi - lo : 1,
  };
  if (!(Number.isFinite(win.center) && Number.isFinite(win.width) && win.width > 0))
    throw new Error(`window: centre ${win.center} and width ${win.width} must be finite, width > 0`);
  return {
    q,
    seriesUid: opts.seriesUid ?? newUid(),
    studyUid: src?.study.uid ?? opts.studyUid ?? newUid(),
    frameOfRef: src?.frameOfReferenceUid ?? newUid(),
    ...today(),
    orientation,
    normal: [
      orientation[1] * orientation[5] - orientation[2] * orientation[4],
      orientation[2] * orientation[3] - orientation[0] * orientation[5],
      orientation[0] * orientation[4] - orientation[1] * orientation[3],
    ],
    win,
    descriptions: opts.deidentify
      ? {
          SeriesDescription: generatedDescription(opts.derivation, opts.seriesDescription),
          DerivationDescription: derivationText(opts.derivation && { ...opts.derivation, note: undefined }),
        }
      : undefined,
  };
}

/** The second pass: one Part 10 file per slice, built as the slice is read (through the one writer). */
function* seriesFiles(
  stack: SliceStack,
  opts: DicomExportOptions,
  plan: SeriesPlan,
): Generator<{ sopUid: string; bytes: Buffer }> {
  const src = opts.source ?? null;
  const { q, date, time, orientation, normal, win } = plan;
  const [colSp, rowSp, sliceSp] = stack.spacing ?? [1, 1, 1];
  let s = 0;
  for (const slice of stack.read()) {
    if (s >= stack.slices || slice.length !== stack.h * stack.w)
      throw new Error(`slice ${s} has ${slice.length} values, expected ${stack.h}×${stack.w}`);
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
      StudyInstanceUID: plan.studyUid,
      SeriesInstanceUID: plan.seriesUid,
      StudyID: src?.study.studyId ?? '',
      SeriesNumber: opts.seriesNumber ?? 900,
      InstanceNumber: s + 1,
      ImagePositionPatient: pos.map((x) => dsString(x)),
      ImageOrientationPatient: orientation.map((x) => dsString(x)),
      FrameOfReferenceUID: plan.frameOfRef,
      PositionReferenceIndicator: '',
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: stack.h,
      Columns: stack.w,
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
    yield {
      sopUid,
      bytes: writePart10(ds, q.words(slice), {
        deidentify: opts.deidentify,
        descriptions: plan.descriptions,
      }),
    };
    s++;
  }
  if (s !== stack.slices) throw new Error(`series ends after ${s} of ${stack.slices} slices`);
}

/** A written series' UIDs as its files carry them (a de-identified export: the key map's pseudonyms). */
function seriesInfo(
  plan: SeriesPlan,
  d: Deidentifier | null | undefined,
): Omit<DicomExport, 'files'> & { uid(sop: string): string } {
  const uid = (x: string) => (d ? d.uid(x) : x);
  return {
    seriesUid: uid(plan.seriesUid),
    studyUid: uid(plan.studyUid),
    slope: plan.q.slope,
    intercept: plan.q.intercept,
    uid,
  };
}

/** Build the derived series' files in memory (not written; a large series: writeDicomSeries). */
export function volumeToDicom(vol: Volume, opts: DicomExportOptions = {}): DicomExport {
  const stack = stackOfVolume(vol);
  const plan = planSeries(stack, opts);
  const files = [...seriesFiles(stack, opts, plan)];
  const { uid, ...info } = seriesInfo(plan, opts.deidentify);
  return { ...info, files: files.map((f) => ({ ...f, sopUid: uid(f.sopUid) })) };
}

/** A derived series as written: its UIDs, quantisation, and files (IM0001.dcm, … in slice order). */
export type WrittenSeries = Omit<DicomExport, 'files'> & { sopUids: string[]; paths: string[] };

/**
 * Write a derived series into `outDir` as IM0001.dcm, IM0002.dcm, … in two passes over the slices
 * (the series' value range, then one file at a time), so that a SliceStack source is never held
 * whole. The files are staged in a temporary folder: a failure leaves none of them.
 */
export function writeDicomSeries(
  vol: Volume | SliceStack,
  outDir: string,
  opts: DicomExportOptions = {},
): WrittenSeries {
  const stack = asStack(vol);
  const plan = planSeries(stack, opts);
  const sops: string[] = [];
  const paths = writeFolderAtomic(
    outDir,
    (function* () {
      for (const f of seriesFiles(stack, opts, plan)) {
        sops.push(f.sopUid);
        yield [`IM${String(sops.length).padStart(4, '0')}.dcm`, f.bytes] as [string, Buffer];
      }
    })(),
  );
  const { uid, ...info } = seriesInfo(plan, opts.deidentify);
  return { ...info, sopUids: sops.map(uid), paths };
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
): WrittenSeries {
  // a plain re-export reads the series one slice at a time (twice: its range, then the files)
  const vol = opts.recon ?? seriesSlices(db, seriesUid);
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
): (WrittenSeries & { label: string })[] {
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

/**
 * float32 NIfTI of a volume or SliceStack (pixels after rescale, spacing kept), slice by slice; with
 * `geometry` (a series', see seriesNiftiGeometry) placed in space.
 */
export function writeVolumeNifti(vol: Volume | SliceStack, path: string, geometry?: NiftiGeometry): void {
  writeNiftiSlices(path, asStack(vol), geometry);
}

/**
 * One 8-bit PNG per slice (slice_0001.png …) windowed to the volume's [min, max] (or `range`), so all
 * slices share one grey scale: a first pass for the range (unless given), then one slice at a time.
 * The files are staged in a temporary folder: a failure leaves none of them.
 */
export function writeVolumePngs(
  vol: Volume | SliceStack,
  outDir: string,
  range?: [number, number],
): string[] {
  const stack = asStack(vol);
  const [lo, hi] = range ? [Infinity, -Infinity] : finiteRange(stack);
  const r: [number, number] = range ?? [
    Number.isFinite(lo) ? lo : 0,
    Number.isFinite(hi) && hi > lo ? hi : lo + 1,
  ];
  return writeFolderAtomic(
    outDir,
    (function* () {
      let s = 0;
      for (const slice of stack.read()) {
        s++;
        yield [`slice_${String(s).padStart(4, '0')}.png`, encodeGrayPng(slice, stack.h, stack.w, r)] as [
          string,
          Buffer,
        ];
      }
    })(),
  );
}
