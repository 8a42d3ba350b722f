/**
 * Import files, folders and DICOMDIR media into the library.
 *
 * Pass 1 reads every file's header (DICOM up to Pixel Data); pass 2 groups images by series, drops
 * duplicate SOP Instance UIDs, rejects inconsistent series, sorts slices by their headers, then
 * decodes and stores pixels one file at a time (library.beginSeries: batches invisible until the
 * series' last transaction), so memory does not grow with the series. Every input file gets a result: imported, skipped (a valid object we
 * do not import: SR, RT plan, colour, DICOMDIR, duplicate, already stored) or failed (with the reason).
 * NIfTI and HDF5 files become one synthetic study/series each (uids.ts).
 *
 * Slice order: by ImagePositionPatient projected on the slice normal (row × column direction cosines
 * of ImageOrientationPatient), when every image has both; else by InstanceNumber; ties by SOP UID.
 * Frames of a multi-frame file keep their file order.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ApiFailure, type ImportFileResult } from '../contract/api.js';
import type { Volume } from '../contract/domain.js';
import { checkVolume, inputLimits, readFileBounded } from '../data/limits.js';
import { readNifti } from '../data/nifti.js';
import type { Db } from '../store/db.js';
import { decodeFrames, unsupportedImageReason } from './dicom/decode.js';
import { headerOf, sopClassName, type DicomHeader } from './dicom/header.js';
import { DicomError, dicomdirReferencedFiles, looksLikeDicom, parseDicom } from './dicom/parse.js';
import {
  beginSeries,
  existingInstances,
  storeSeries,
  type InstanceAttrs,
  type SeriesHead,
  type SeriesRecord,
  type SeriesWriter,
} from './library.js';
import { bytesHash, derivedDicomUids, deterministicUid, fileHash, syntheticIdentity } from './uids.js';
import { readHdf5Volumes } from './hdf5-registry.js';
// side effects: the HDF5 reader and the compressed-syntax codecs register themselves, so every entry
// into the importer (the services load this file directly) has them
import './hdf5/index.js';
import './dicom/codecs.js';

export type ImportProgress = (done: number, total: number, file: ImportFileResult) => void;

const isNifti = (p: string) => /\.nii(\.gz)?$/i.test(p);
const isHdf5 = (p: string) => /\.(h5|hdf5|hdf)$/i.test(p);
const isDicomdir = (p: string) => basename(p).toUpperCase() === 'DICOMDIR';

interface Candidate {
  path: string;
  /** Set when the file came in only because the library already holds its series (not reported). */
  existing?: boolean;
}

/** Expand paths into files (folders recursively, DICOMDIR → referenced files); unreadable ones reported. */
function expand(paths: string[], results: ImportFileResult[]): Candidate[] {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  const add = (p: string) => {
    if (seen.has(p)) return;
    seen.add(p);
    out.push({ path: p });
  };
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (e) {
      results.push({
        path: dir,
        status: 'failed',
        message: `unreadable folder: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      });
      return;
    }
    for (const n of names) {
      if (n.startsWith('.')) continue;
      const p = join(dir, n);
      let st;
      try {
        st = statSync(p);
      } catch (e) {
        results.push({
          path: p,
          status: 'failed',
          message: `unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        });
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) add(p);
    }
  };
  for (const raw of paths) {
    const p = resolve(raw);
    let st;
    try {
      st = statSync(p);
    } catch {
      results.push({ path: p, status: 'failed', message: 'no such file or folder' });
      continue;
    }
    if (st.isDirectory()) walk(p);
    else add(p);
  }
  // DICOMDIR: follow its references (the files may also have been found by the walk: seen dedups)
  for (const c of [...out]) {
    if (!isDicomdir(c.path)) continue;
    try {
      const refs = dicomdirReferencedFiles(readFileBounded(c.path));
      const folder = dirname(c.path);
      let refused = 0;
      for (const r of refs) {
        const why = escapesFolder(folder, r);
        if (why) {
          refused++;
          results.push({
            path: c.path,
            status: 'failed',
            message: `DICOMDIR references "${r}", ${why}: not followed (references must stay inside the DICOMDIR's folder)`,
          });
        } else add(resolve(folder, r));
      }
      c.existing = true; // reported below as skipped, not parsed as an image
      results.push({
        path: c.path,
        status: 'skipped',
        message:
          `DICOMDIR: ${refs.length - refused} referenced files followed` +
          (refused ? `, ${refused} outside its folder refused` : ''),
      });
    } catch (e) {
      c.existing = true;
      results.push({ path: c.path, status: 'failed', message: e instanceof Error ? e.message : String(e) });
    }
  }
  return out.filter((c) => !(isDicomdir(c.path) && c.existing));
}

/**
 * Why a DICOMDIR reference leaves the DICOMDIR's folder (absolute, `..`, or a symbolic link out of
 * it), or null when it stays inside.
 */
function escapesFolder(folder: string, ref: string): string | null {
  if (isAbsolute(ref) || /^[a-zA-Z]:/.test(ref)) return 'an absolute path';
  const target = resolve(folder, ref);
  const rel = relative(folder, target);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    return 'outside its folder';
  try {
    const realRel = relative(realpathSync(folder), realpathSync(target));
    if (realRel === '..' || realRel.startsWith(`..${sep}`) || isAbsolute(realRel))
      return 'a link to a file outside its folder';
  } catch {
    // a missing file is reported when it is read
  }
  return null;
}

interface Img {
  path: string;
  header: DicomHeader;
  existing: boolean;
  /** UIDs derived and counts repaired while reading the file (import result warnings). */
  warnings: string[];
}

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

function sortKey(imgs: Img[]): (a: Img, b: Img) => number {
  const o = imgs[0].header.orientation;
  const allGeom = o !== null && imgs.every((i) => i.header.position && i.header.orientation);
  let normal: [number, number, number] | null = null;
  if (allGeom && o) {
    normal = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
  }
  const proj = (i: Img) => {
    const p = i.header.position as [number, number, number];
    return normal ? p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2] : 0;
  };
  return (a, b) => {
    if (normal) {
      const d = proj(a) - proj(b);
      if (Math.abs(d) > 1e-6) return d;
    }
    const ia = a.header.instanceNumber ?? Number.MAX_SAFE_INTEGER;
    const ib = b.header.instanceNumber ?? Number.MAX_SAFE_INTEGER;
    if (ia !== ib) return ia - ib;
    return a.header.sopInstanceUid < b.header.sopInstanceUid
      ? -1
      : a.header.sopInstanceUid > b.header.sopInstanceUid
        ? 1
        : 0;
  };
}

function median(v: number[]): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Hook for tests: called with the number of decoded slices held in memory each time a file's frames
 * are handed to the library (what proves an import holds a bounded part of a series, not all of it).
 */
export const importProbe: { decodedHeld?: (slices: number) => void } = {};

/**
 * Build and store one DICOM series; returns per-file results for its (non-existing) files. The slice
 * order comes from the headers (read in pass 1), so pixels are decoded and handed to the library one
 * file at a time, in that order: memory holds one file's frames and one write batch, whatever the
 * size of the series. Yields before each file after the first stored one (a cancel point: the
 * caller's `return()` runs the `finally` below, which removes what was added of this series).
 */
function* importDicomSeries(db: Db, uid: string, imgs: Img[]): Generator<void, ImportFileResult[]> {
  const results: ImportFileResult[] = [];
  const report = (img: Img, r: Omit<ImportFileResult, 'path'>) => {
    if (!img.existing) results.push({ path: img.path, ...r });
  };
  // sizes must agree
  const sizes = new Map<string, number>();
  for (const i of imgs) {
    const k = `${i.header.pixel?.rows}×${i.header.pixel?.columns}`;
    sizes.set(k, (sizes.get(k) ?? 0) + 1);
  }
  if (sizes.size > 1) {
    const what = [...sizes].map(([k, n]) => `${k} in ${n} file${n > 1 ? 's' : ''}`).join(', ');
    const message = `inconsistent series ${uid}: mixed image sizes (${what}); series not imported`;
    for (const i of imgs) report(i, { status: 'failed', message });
    return results;
  }
  imgs.sort(sortKey(imgs));
  const instances: InstanceAttrs[] = [];
  const good: Img[] = [];
  const frameCount = new Map<Img, number>();
  const limits = inputLimits();
  const px0 = imgs[0].header.pixel;
  let frames = 0;
  // opened with the first image that decodes (its header names the patient, study and series)
  let writer: SeriesWriter | null = null;
  let storeError: string | null = null;
  const normalOf = (o: DicomHeader['orientation']): [number, number, number] | null =>
    o ? [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]] : null;
  try {
    for (const img of imgs) {
      if (storeError !== null) {
        report(img, { status: 'failed', message: `series ${uid} not stored: ${storeError}` });
        continue;
      }
      if (writer) yield;
      let decoded: Float32Array[];
      try {
        const obj = parseDicom(readFileBounded(img.path, limits));
        // the series is one volume: its frames so far plus this object's stay under the caps
        if (px0 && obj.pixel)
          checkVolume([px0.columns, px0.rows, frames + obj.pixel.frames], 4, `series ${uid}`, limits);
        decoded = decodeFrames(obj);
        img.warnings.push(...obj.warnings);
      } catch (e) {
        const skip = e instanceof DicomError && e.kind === 'skip';
        report(img, { status: skip ? 'skipped' : 'failed', message: errMsg(e) });
        continue;
      }
      const h = img.header;
      try {
        writer ??= beginSeries(db, seriesHead(uid, h, img.path, normalOf(h.orientation)));
        if (!writer) throw new Error('nothing to add'); // not reached: no sopUids given
        importProbe.decodedHeld?.(decoded.length);
        for (const [k, f] of decoded.entries()) {
          const inst: InstanceAttrs = {
            sopUid: k === 0 ? h.sopInstanceUid : `${h.sopInstanceUid}#${k + 1}`,
            sopClassUid: h.sopClassUid,
            path: img.path,
            frame: k,
            instanceNumber: h.instanceNumber,
            position: decoded.length === 1 ? h.position : null,
          };
          writer.add(inst, f);
          instances.push(inst);
        }
      } catch (e) {
        // the writer removed what it had added; this file and every other good one fail with the reason
        writer = null;
        storeError = errMsg(e);
        for (const g of [...good, img])
          report(g, { status: 'failed', message: `series ${uid} not stored: ${storeError}` });
        continue;
      }
      frames += decoded.length;
      frameCount.set(img, decoded.length);
      good.push(img);
    }
    if (!writer || good.length === 0) return results;
    const first = good[0].header;
    const positions = instances.flatMap((i) => (i.position ? [i.position] : []));
    const o = first.orientation;
    let sliceSpacing: number | null = null;
    if (o && positions.length === instances.length && positions.length > 1) {
      const n = normalOf(o)!;
      const proj = positions.map((p) => p[0] * n[0] + p[1] * n[1] + p[2] * n[2]);
      sliceSpacing = median(proj.slice(1).map((p, i) => Math.abs(p - proj[i])));
    }
    sliceSpacing ??= first.spacingBetweenSlices ?? first.sliceThickness;
    let stored;
    try {
      const w = writer;
      writer = null;
      stored = w.finish({ sliceSpacing });
    } catch (e) {
      for (const g of good)
        report(g, { status: 'failed', message: `series ${uid} not stored: ${errMsg(e)}` });
      return results;
    }
    const total = existingInstances(db, uid).size;
    for (const g of good) {
      const n = frameCount.get(g) ?? 1;
      report(g, {
        status: 'imported',
        message:
          `${n > 1 ? `${n} frames` : 'slice'} of series ${uid} (${total} slices` +
          `${stored.created ? '' : `, ${stored.added} added`})`,
        seriesUid: uid,
        ...(g.warnings.length ? { warnings: g.warnings } : {}),
      });
    }
    return results;
  } finally {
    // cancelled (the caller returned the generator) or an unexpected throw: nothing of it stays
    (writer as SeriesWriter | null)?.abort();
  }
}

/** Patient, study and series attributes of a DICOM series, from its first image that decodes. */
function seriesHead(
  uid: string,
  first: DicomHeader,
  source: string,
  normal: [number, number, number] | null,
): SeriesHead {
  return {
    patient: { id: first.patientId, name: first.patientName, birthDate: first.birthDate, sex: first.sex },
    study: {
      uid: first.studyUid || deterministicUid('study-of-series', uid),
      date: first.studyDate,
      time: first.studyTime,
      description: first.studyDescription,
      accession: first.accession,
      studyId: first.studyId,
    },
    series: {
      uid,
      modality: first.modality,
      description: first.seriesDescription,
      number: first.seriesNumber,
      rows: first.pixel!.rows,
      cols: first.pixel!.columns,
      spacingRow: first.pixelSpacing?.[0] ?? null,
      spacingCol: first.pixelSpacing?.[1] ?? null,
      sliceThickness: first.sliceThickness,
      // replaced once every slice's position is known (finish)
      sliceSpacing: first.spacingBetweenSlices ?? first.sliceThickness,
      sourceKind: 'dicom',
      source,
      attributes: first.attributes,
    },
    normal,
  };
}

/** One synthetic study/series per volume of a NIfTI / HDF5 file. */
function importSynthetic(
  db: Db,
  file: string,
  kind: 'nifti' | 'hdf5',
  volumes: { label: string; volume: Volume; attributes: Record<string, string> }[],
  modality: string,
  origin: (p: string) => string,
): ImportFileResult[] {
  const hash = fileHash(file);
  // the identity (and UIDs) come from where the file is from, so importing it again finds its series
  const path = origin(file);
  const identity = syntheticIdentity(path, kind, hash);
  const uids: { uid: string; added: number }[] = [];
  volumes.forEach(({ label, volume: v, attributes }, idx) => {
    const uid = deterministicUid('kdmri-series', path, hash, label);
    const n = v.h * v.w;
    const slices = Array.from({ length: v.slices }, (_, s) => v.data.slice(s * n, (s + 1) * n));
    const rec: SeriesRecord = {
      patient: identity.patient,
      study: identity.study,
      series: {
        uid,
        modality,
        description: label,
        number: idx + 1,
        rows: v.h,
        cols: v.w,
        spacingRow: v.spacing?.[1] ?? null,
        spacingCol: v.spacing?.[0] ?? null,
        sliceThickness: v.spacing?.[2] ?? null,
        sliceSpacing: v.spacing?.[2] ?? null,
        sourceKind: kind,
        source: path,
        attributes: { ...attributes, SourceFile: path, ContentSHA256: hash },
      },
      instances: slices.map((_, s) => ({
        sopUid: deterministicUid('kdmri-instance', uid, String(s)),
        sopClassUid: '',
        path,
        frame: s,
        instanceNumber: s + 1,
        position: null,
      })),
      slices,
    };
    if (v.kspace) {
      const k = v.kspace;
      rec.kspace = {
        re: slices.map((_, s) => k.re.slice(s * n, (s + 1) * n)),
        im: slices.map((_, s) => k.im.slice(s * n, (s + 1) * n)),
        mask: k.mask,
      };
    }
    const stored = storeSeries(db, rec);
    uids.push({ uid, added: stored.added });
  });
  return uids.map(({ uid, added }, i) =>
    added === 0
      ? {
          path: file,
          status: 'skipped' as const,
          message: `already in the library (series ${uid})`,
          seriesUid: uid,
        }
      : {
          path: file,
          status: 'imported' as const,
          message: `${kind === 'nifti' ? 'NIfTI' : 'HDF5'} ${volumes[i].label}: ${volumes[i].volume.slices} slices of ${volumes[i].volume.h}×${volumes[i].volume.w}`,
          seriesUid: uid,
        },
  );
}

/**
 * Where files are from, when their paths are only temporary (a web upload): a file under `dir` is
 * named `<as>/<its path relative to dir>`, and NIfTI/HDF5 identities and UIDs derive from that name,
 * so the same file uploaded again finds its series. Plain data, so that it crosses to a work thread.
 */
export interface ImportOrigin {
  dir: string;
  as: string;
}

/** Import options. */
export interface ImportOptions {
  /** Default: a file is named by its own path. */
  origin?: ImportOrigin;
  /**
   * Asked before each file (headers, then pixels) and between two series; true stops the import. A
   * series (and each NIfTI/HDF5 file) is shown only once all its slices are in place, and the one
   * being read is removed on a cancel, so what is stored stays whole and nothing of the other is.
   */
  cancelled?: () => boolean;
}

function originOf(o: ImportOrigin | undefined): (path: string) => string {
  if (!o) return (p) => p;
  return (p) => `${o.as}/${relative(o.dir, p).split(sep).join('/')}`;
}

/**
 * Import files and folders. Resolves with one result per input file (a NIfTI/HDF5 file with several
 * volumes gives one per volume). `onProgress(done, total, file)` is called as results are known.
 */
export async function importPaths(
  db: Db,
  paths: string[],
  onProgress?: ImportProgress,
  opts: ImportOptions = {},
): Promise<ImportFileResult[]> {
  const steps = importSteps(db, paths, onProgress, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    // before a file or between two series: what is stored stays; the series being read is removed
    // (returning the steps runs their clean-up)
    if (opts.cancelled?.()) {
      steps.return([]);
      throw new ApiFailure('conflict', 'import cancelled');
    }
    await new Promise((res) => setImmediate(res)); // let progress events out between series
  }
}

/** The same, synchronously (for readers that must answer at once, e.g. the engine's data source). */
export function importPathsSync(db: Db, paths: string[], onProgress?: ImportProgress): ImportFileResult[] {
  const steps = importSteps(db, paths, onProgress);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

function* importSteps(
  db: Db,
  paths: string[],
  onProgress?: ImportProgress,
  opts: ImportOptions = {},
): Generator<void, ImportFileResult[]> {
  const origin = originOf(opts.origin);
  const results: ImportFileResult[] = [];
  const candidates = expand(paths, results);
  const total = candidates.length + results.length;
  let done = 0;
  const emit = (rs: ImportFileResult[]) => {
    for (const r of rs) {
      results.push(r);
      done = Math.min(total, done + 1);
      onProgress?.(done, total, r);
    }
  };
  for (const r of [...results]) {
    done++;
    onProgress?.(done, total, r);
  }

  const series = new Map<string, Img[]>();
  const bySop = new Map<string, string>();
  for (const c of candidates) {
    // a cancel point before each file: a cancel while headers are read (a large folder) stores nothing
    yield;
    const p = c.path;
    if (isNifti(p)) {
      try {
        emit(
          importSynthetic(
            db,
            p,
            'nifti',
            [{ label: 'NIfTI volume', volume: readNifti(p), attributes: {} }],
            'OT',
            origin,
          ),
        );
      } catch (e) {
        emit([{ path: p, status: 'failed', message: `NIfTI: ${errMsg(e)}` }]);
      }
      continue;
    }
    if (isHdf5(p)) {
      try {
        const vols = readHdf5Volumes(p);
        if (!vols || vols.length === 0) throw new Error('no image or k-space datasets found');
        emit(importSynthetic(db, p, 'hdf5', vols, 'MR', origin));
      } catch (e) {
        emit([{ path: p, status: 'failed', message: `HDF5: ${errMsg(e)}` }]);
      }
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = readFileBounded(p);
    } catch (e) {
      emit([
        {
          path: p,
          status: 'failed',
          message: (e as NodeJS.ErrnoException).code
            ? `unreadable: ${(e as NodeJS.ErrnoException).code}`
            : errMsg(e),
        },
      ]);
      continue;
    }
    if (!looksLikeDicom(bytes)) {
      emit([
        {
          path: p,
          status: 'failed',
          message: 'not a DICOM, NIfTI or HDF5 file (no "DICM" marker at byte 128)',
        },
      ]);
      continue;
    }
    let h: DicomHeader;
    try {
      h = headerOf(parseDicom(bytes, { untilPixels: true }));
    } catch (e) {
      emit([{ path: p, status: 'failed', message: errMsg(e) }]);
      continue;
    }
    const cls = sopClassName(h.sopClassUid);
    if (!h.pixel) {
      emit([
        {
          path: p,
          status: 'skipped',
          message: `${cls ?? `SOP class ${h.sopClassUid || 'unknown'}`}: no Pixel Data (not an image)`,
        },
      ]);
      continue;
    }
    const why = unsupportedImageReason({ pixel: h.pixel } as Parameters<typeof unsupportedImageReason>[0]);
    if (why) {
      emit([{ path: p, status: 'skipped', message: why }]);
      continue;
    }
    const warnings: string[] = [];
    if (!h.seriesUid || !h.sopInstanceUid) {
      const px = h.pixel;
      const d = derivedDicomUids(
        {
          ...h,
          frameOfReference: h.attributes.FrameOfReferenceUID ?? '',
          size: `${px.columns}x${px.rows}`,
        },
        bytesHash(bytes),
      );
      h = { ...h, sopInstanceUid: d.sopInstanceUid, seriesUid: d.seriesUid };
      warnings.push(...d.warnings);
    }
    const dup = bySop.get(h.sopInstanceUid);
    if (dup) {
      emit([
        {
          path: p,
          status: 'skipped',
          message: `duplicate of ${dup} (same SOP Instance UID ${h.sopInstanceUid})`,
        },
      ]);
      continue;
    }
    bySop.set(h.sopInstanceUid, p);
    const list = series.get(h.seriesUid) ?? [];
    list.push({ path: p, header: h, existing: false, warnings });
    series.set(h.seriesUid, list);
  }

  for (const [uid, incoming] of series) {
    let imgs = incoming;
    // a series already in the library: its stored slices stay as they are (whatever became of their
    // files); only images it does not have yet are added
    const stored = existingInstances(db, uid);
    if (stored.size > 0) {
      const known = imgs.filter((i) => stored.has(i.header.sopInstanceUid));
      emit(
        known.map((i) => ({
          path: i.path,
          status: 'skipped' as const,
          message: `already in the library (series ${uid})`,
          seriesUid: uid,
        })),
      );
      imgs = imgs.filter((i) => !stored.has(i.header.sopInstanceUid));
      if (imgs.length === 0) continue;
    }
    emit(yield* importDicomSeries(db, uid, imgs));
    yield;
  }
  return results;
}
