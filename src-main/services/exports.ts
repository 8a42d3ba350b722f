/**
 * Every export of the workstation, and how an export reaches the user.
 *
 *  - models: the model folder, or one ONNX file (networks/onnx.ts);
 *  - a comparison: a PNG montage, or a DICOM derived series per viewport through the one DICOM writer
 *    (studies/export.ts) in the source's study, with the source's patient and geometry;
 *  - a library series: DICOM derived series, float32 NIfTI or PNG slices.
 * Any of them de-identified on request (studies/deidentify.ts, key map in the library).
 *
 * Exports land in `<data folder>/exports/` (or a destination the caller gives). `downloadExport` hands
 * one to the user: with a `saveAs` port (Electron: a native save dialog) it is copied where the user
 * chooses; without (web mode) it answers a one-time URL /api/download/<ticket> that the server streams
 * (a folder as a zip, fflate). A ticket names one export, is unguessable (24 random bytes) and lapses
 * after TICKET_MS; export ids are checked to stay inside exports/ (no '..', no absolute path, no
 * symbolic link out of it).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  cpSync,
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { Zip, ZipDeflate } from 'fflate';
import {
  ApiFailure,
  type ApiRequest,
  type CompareResult,
  type DownloadResult,
  type ExportEntry,
  type ExportResult,
} from '../contract/api.js';
import type { ModelCard, Volume } from '../contract/domain.js';
import { sampleDataPath } from '../data/sample.js';
import { MODEL_JSON, readModelDir } from '../distill/infer.js';
import { networkToOnnx, ONNX_OPSET } from '../networks/onnx.js';
import type { Db } from '../store/db.js';
import { writeFileAtomic } from '../store/model-files.js';
import { Deidentifier } from '../studies/deidentify.js';
import {
  dicomSourceFromSeries,
  exportSeriesDicom,
  writeDicomComparison,
  writeVolumeNifti,
  writeVolumePngs,
  type DerivationInfo,
  type DicomSource,
  type DisplayWindow,
} from '../studies/export.js';
import {
  getSeries,
  parseSeriesSource,
  seriesContext,
  seriesNiftiGeometry,
  seriesSlices,
} from '../studies/library.js';
import { fileHash, syntheticIdentity } from '../studies/uids.js';
import { montagePng, type SliceOrigin } from './compare.js';
import type { WorkRunner } from '../workers/pool.js';

export const EXPORTS_FOLDER = 'exports';
/** How long a download URL works. */
export const TICKET_MS = 10 * 60 * 1000;

/** Electron's save dialog, as the services see it: the chosen path, or null when cancelled. */
export type SaveAs = (suggested: { name: string; kind: 'file' | 'folder' }) => Promise<string | null>;

interface Deps {
  db(): Promise<Db>;
  /** The library file, for work threads that open their own connection. */
  dbPath: string;
  /** Where series exports run (a work thread, or this thread). */
  work: WorkRunner;
  dataDir: string;
  version: string;
  compare: {
    compare(req: ApiRequest<'compare'>): Promise<CompareResult>;
    locate(req: ApiRequest<'compare'>): Promise<SliceOrigin>;
  };
  /** Present in Electron: downloads go through a save dialog instead of a URL. */
  saveAs?: SaveAs;
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');
const safeName = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'export';

function sizeOf(paths: string[]): number {
  return paths.reduce((n, p) => n + statSync(p).size, 0);
}

/** Files under a folder, recursively, sorted (zip order). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Models.

/** The ONNX file of a model folder: its network with the (optionally de-identified) card as metadata. */
export function writeModelOnnx(
  dir: string,
  outFile: string,
  opts: { version: string; deidentify?: Deidentifier | null },
): { path: string; bytes: number; card: ModelCard } {
  const m = readModelDir(dir);
  const card = opts.deidentify ? opts.deidentify.card(m.card) : m.card;
  const inputs = m.spec.arch === 'dccnn' ? 'kspace [N,H,W,2], mask [H,W]' : 'input [N,1,H,W]';
  const bytes = networkToOnnx(m.spec, m.weights, {
    name: card.name,
    producerVersion: opts.version,
    description: `KD-MRI ${card.kind} model "${card.name}" (${card.task === 'recon' ? 'reconstruction' : 'restoration'}, ${card.degradationLabel}), exported by KD-MRI Workstation ${opts.version}. Inputs: ${inputs}; see each input's doc string for its conventions.`,
    metadata: {
      'kdmri.card': JSON.stringify(card),
      'kdmri.kind': card.kind,
      'kdmri.task': card.task,
      'kdmri.degradation': JSON.stringify(card.degradation),
      'kdmri.opset': String(ONNX_OPSET),
    },
  });
  writeFileAtomic(outFile, bytes);
  return { path: outFile, bytes: bytes.byteLength, card };
}

/** A copy of a model folder (its model.json's card de-identified on request), written via a temp folder. */
export function copyModelFolder(dir: string, dest: string, deidentify: Deidentifier | null): string[] {
  const m = deidentify ? readModelDir(dir) : null;
  const tmp = `${dest}.part-${randomBytes(6).toString('hex')}`;
  try {
    cpSync(dir, tmp, { recursive: true });
    if (m && deidentify) {
      const json = JSON.parse(readFileSync(join(tmp, MODEL_JSON), 'utf8')) as Record<string, unknown>;
      json.card = deidentify.card(m.card);
      writeFileAtomic(join(tmp, MODEL_JSON), JSON.stringify(json));
    }
    rmSync(dest, { recursive: true, force: true });
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return filesUnder(dest);
}

// ---------------------------------------------------------------------------------------------------
// Series.

/**
 * A library series as files: `out` is a folder (dicom, png) or the folder of the NIfTI file. Each
 * format reads the series one slice at a time (DICOM and PNG twice: the range, then the files).
 */
export function exportSeriesFiles(
  db: Db,
  uid: string,
  format: 'dicom' | 'nifti' | 'png',
  out: string,
  opts: { window?: DisplayWindow; deidentify?: Deidentifier | null } = {},
): { paths: string[]; kind: 'file' | 'folder'; path: string; extra: Record<string, unknown> } {
  const ctx = seriesContext(db, uid);
  if (!ctx) throw new ApiFailure('not-found', `no series ${uid} in the library (see kdmri studies)`, 'uid');
  const d = opts.deidentify ?? null;
  if (format === 'dicom') {
    const e = exportSeriesDicom(db, uid, out, {
      derivation: { model: 'none (re-export)', note: d ? undefined : `exported from series ${uid}` },
      window: opts.window,
      deidentify: d,
    });
    return {
      paths: e.paths,
      kind: 'folder',
      path: out,
      extra: {
        seriesUid: e.seriesUid,
        studyUid: e.studyUid,
        rescaleSlope: e.slope,
        rescaleIntercept: e.intercept,
      },
    };
  }
  if (format === 'nifti') {
    // the file name is the only place a NIfTI export could name its source
    const name = d
      ? `${d.patient(ctx.patient.id, ctx.patient.name)}-series${ctx.series.number ?? ''}.nii.gz`
      : `${uid}.nii.gz`;
    const p = join(out, name);
    const { geometry, warnings } = seriesNiftiGeometry(db, uid);
    writeVolumeNifti(seriesSlices(db, uid), p, geometry);
    return { paths: [p], kind: 'file', path: p, extra: warnings.length ? { warnings } : {} };
  }
  return { paths: writeVolumePngs(seriesSlices(db, uid), out), kind: 'folder', path: out, extra: {} };
}

// ---------------------------------------------------------------------------------------------------
// Comparisons: the source's patient, study and geometry.

/**
 * The patient and study of a dataset source, derived once from the source: a library series' own; for
 * a NIfTI/HDF5 file (the bundled sample included) the synthetic identity the importer gives that file,
 * so an export and the library name the same patient and study.
 */
export function datasetIdentity(db: Db, source: string): Pick<DicomSource, 'patient' | 'study'> {
  const series = parseSeriesSource(source);
  if (series) {
    const ctx = seriesContext(db, series[0]);
    if (ctx) return { patient: ctx.patient, study: ctx.study };
  }
  const path = source === 'sample' ? sampleDataPath() : source;
  const kind = /\.(h5|hdf5|hdf)$/i.test(path) ? 'hdf5' : 'nifti';
  const isFile = existsSync(path) && statSync(path).isFile();
  return syntheticIdentity(path, kind, isFile ? fileHash(path) : 'folder');
}

/**
 * DICOM source of one compared slice. A series slice keeps its position; when Compare resampled the
 * slice (h×w differs from the series), spacing scales and the first pixel's centre moves by
 * (½·scale − ½) source pixels along each axis, as data/volume.ts resamples (pixel centres aligned).
 */
function sliceSource(db: Db, origin: SliceOrigin, h: number, w: number): DicomSource | null {
  if (origin.kind === 'dataset') {
    const id = datasetIdentity(db, origin.source);
    return { ...id, firstSlice: origin.slice ?? 0 };
  }
  const src = dicomSourceFromSeries(db, origin.uid);
  if (!src) return null;
  const detail = getSeries(db, origin.uid);
  const pos = src.positions?.[origin.slice] ?? null;
  let position = pos;
  if (pos && detail && src.orientation && (detail.rows !== h || detail.columns !== w) && detail.spacing) {
    const [colSp, rowSp] = detail.spacing;
    const o = src.orientation;
    const dc = (0.5 * (detail.columns / w) - 0.5) * colSp; // along the row direction (columns)
    const dr = (0.5 * (detail.rows / h) - 0.5) * rowSp; // along the column direction (rows)
    position = [0, 1, 2].map((i) => pos[i] + o[i] * dc + o[3 + i] * dr) as [number, number, number];
  }
  return { ...src, positions: position ? [position] : undefined, firstSlice: origin.slice };
}

// ---------------------------------------------------------------------------------------------------
// Downloads.

/** An export id (relative path inside exports/) as an absolute path; refuses anything that leaves it. */
export function resolveExportId(exportsRoot: string, exportId: string): string {
  const bad = (why: string) => new ApiFailure('bad-request', `exportId: ${why}`, 'exportId');
  if (exportId.includes('\0')) throw bad('contains a NUL character');
  if (isAbsolute(exportId) || /^[A-Za-z]:/.test(exportId))
    throw bad('must be relative to the exports folder');
  if (exportId.split(/[\\/]+/).some((part) => part === '..')) throw bad("must not contain '..'");
  const root = resolve(exportsRoot);
  const p = resolve(root, exportId);
  if (p === root || !p.startsWith(root + sep)) throw bad('is outside the exports folder');
  if (!existsSync(p)) throw new ApiFailure('not-found', `no export ${exportId}`, 'exportId');
  // a symbolic link may not lead out of the folder either
  const real = realpathSync(p);
  const realRoot = realpathSync(root);
  if (!real.startsWith(realRoot + sep)) throw bad('leads outside the exports folder');
  return p;
}

/** Stream a folder's files as a zip (deflate) into `out`, with backpressure; resolves when written. */
export async function zipFolderTo(dir: string, out: Writable): Promise<void> {
  let failed: Error | null = null;
  let finished!: () => void;
  const done = new Promise<void>((ok) => (finished = ok));
  let waiting: Promise<unknown> | null = null;
  const zip = new Zip((err, chunk, final) => {
    if (err) {
      failed = err;
      finished();
      return;
    }
    if (!out.write(chunk)) waiting ??= once(out, 'drain').finally(() => (waiting = null));
    if (final) finished();
  });
  for (const file of filesUnder(dir)) {
    const entry = new ZipDeflate(relative(dir, file).split(sep).join('/'), { level: 6 });
    zip.add(entry);
    for await (const chunk of createReadStream(file)) {
      entry.push(chunk as Uint8Array);
      if (waiting) await waiting;
      if (failed) throw failed;
    }
    entry.push(new Uint8Array(0), true);
  }
  zip.end();
  await done;
  if (failed) throw failed;
}

export function createExports({ db, dbPath, work, dataDir, version, compare, saveAs }: Deps) {
  const exportsRoot = join(dataDir, EXPORTS_FOLDER);
  const tickets = new Map<
    string,
    { path: string; kind: 'file' | 'folder'; filename: string; expiresAt: number }
  >();

  const destRoot = (destination: string | undefined) => {
    const root = destination ? resolve(destination) : exportsRoot;
    mkdirSync(root, { recursive: true });
    return root;
  };

  function result(
    path: string,
    kind: 'file' | 'folder',
    paths: string[],
    deidentified: boolean,
  ): ExportResult {
    const rel = relative(resolve(exportsRoot), resolve(path));
    const inside = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
    return {
      exportId: inside ? rel.split(sep).join('/') : null,
      path,
      kind,
      paths,
      bytes: sizeOf(paths),
      deidentified,
    };
  }

  async function deidentifier(on: boolean): Promise<Deidentifier | null> {
    return on ? new Deidentifier((await db()).pseudonyms) : null;
  }

  function fail(e: unknown, where: string): never {
    if (e instanceof ApiFailure) throw e;
    throw new ApiFailure('bad-request', e instanceof Error ? e.message : String(e), where);
  }

  return {
    exportsRoot,

    async exportModel(req: ApiRequest<'exportModel'>): Promise<ExportResult> {
      const d = await db();
      const m = d.models.get(req.modelId);
      if (!m || m.deletedAt !== null) throw new ApiFailure('not-found', `no model ${req.modelId}`, 'modelId');
      if (!existsSync(m.dir))
        throw new ApiFailure('not-found', `model folder ${m.dir} is missing`, 'modelId');
      const deid = await deidentifier(req.deidentify);
      const root = destRoot(req.destination);
      const base = `${safeName(basename(m.dir))}-${m.id}${deid ? '-deid' : ''}`;
      try {
        if (req.format === 'onnx') {
          const file = join(root, `${base}.onnx`);
          writeModelOnnx(m.dir, file, { version, deidentify: deid });
          return result(file, 'file', [file], !!deid);
        }
        const dest = join(root, base);
        return result(dest, 'folder', copyModelFolder(m.dir, dest, deid), !!deid);
      } catch (e) {
        fail(e, 'modelId');
      }
    },

    async exportSeries(req: ApiRequest<'exportSeries'>): Promise<ExportResult> {
      const d = await db();
      if (!getSeries(d, req.uid)) throw new ApiFailure('not-found', `no series ${req.uid}`, 'uid');
      const deid = await deidentifier(req.deidentify);
      const out = join(
        destRoot(req.destination),
        `series-${deid ? 'deid' : safeName(req.uid)}-${req.format}-${stamp()}`,
      );
      const r = await work.run('exportSeries', {
        dbPath,
        uid: req.uid,
        format: req.format,
        out,
        ...(req.window ? { window: req.window } : {}),
        deidentify: req.deidentify,
      });
      return result(r.kind === 'file' ? r.paths[0] : out, r.kind, r.paths, !!deid);
    },

    async exportComparison(req: ApiRequest<'exportComparison'>): Promise<ExportResult> {
      const r = await compare.compare(req);
      const deid = await deidentifier(req.deidentify);
      const root = destRoot(req.destination);
      const base = `compare-${safeName(r.degradation)}-slice${r.sliceIndex}-${stamp()}${deid ? '-deid' : ''}`;
      if (req.format === 'png') {
        // pixels only: a PNG montage carries no text chunks, so nothing in it names the source
        const path = join(root, `${base}.png`);
        writeFileAtomic(path, montagePng(r));
        return result(path, 'file', [path], !!deid);
      }
      const d = await db();
      const origin = await compare.locate(req);
      const source = sliceSource(d, origin, r.h, r.w);
      const target = r.viewports.find((v) => v.name === 'target')?.image;
      let lo = Infinity;
      let hi = -Infinity;
      for (const x of target?.data ?? []) {
        if (!Number.isFinite(x)) continue;
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
      // the viewer's default tones: the target's range (Compare's "Auto")
      const window: DisplayWindow =
        req.window ?? (hi > lo ? { center: (lo + hi) / 2, width: hi - lo } : { center: 0.5, width: 1 });
      const spacing = origin.spacing ?? undefined;
      const labels: Record<string, string> = {
        zf: r.mask ? 'Zero-filled' : 'Low resolution',
        target: 'Target',
        teacher: 'Teacher',
        student: 'Student',
        kd: 'KD student',
        cs: 'CS',
      };
      const items = r.viewports.flatMap((v) => {
        if (!v.image) return [];
        const volume: Volume = { data: v.image.data, slices: 1, h: v.image.h, w: v.image.w, spacing };
        const model =
          v.modelId !== null ? (d.models.get(v.modelId)?.name ?? `model ${v.modelId}`) : undefined;
        const derivation: DerivationInfo = {
          model:
            model ??
            (v.name === 'target'
              ? 'none (fully sampled target)'
              : v.name === 'cs'
                ? 'none (compressed sensing, l1-wavelet FISTA)'
                : 'none (zero-filled input)'),
          mask: r.degradation,
          acceleration: r.mask?.acceleration ?? null,
          note: v.metrics
            ? `PSNR ${v.metrics.psnr.toFixed(2)} dB, SSIM ${v.metrics.ssim.toFixed(4)}, NMSE ${v.metrics.nmse.toExponential(3)}`
            : undefined,
        };
        return [{ label: `${labels[v.name]} ${r.degradation}`, volume, derivation }];
      });
      const dir = join(root, base);
      const written = writeDicomComparison(items, dir, source, { window, deidentify: deid });
      return result(
        dir,
        'folder',
        written.flatMap((s) => s.paths),
        !!deid,
      );
    },

    async downloadExport(req: ApiRequest<'downloadExport'>): Promise<DownloadResult> {
      const path = resolveExportId(exportsRoot, req.exportId);
      const kind = statSync(path).isDirectory() ? 'folder' : 'file';
      if (lstatSync(path).isSymbolicLink() && kind === 'folder')
        throw new ApiFailure('bad-request', 'exportId: is a link to a folder', 'exportId');
      const filename = kind === 'folder' ? `${basename(path)}.zip` : basename(path);
      if (saveAs) {
        const dest = await saveAs({ name: filename, kind });
        if (!dest) return { delivered: 'cancelled' };
        const tmp = `${dest}.part-${randomBytes(6).toString('hex')}`;
        try {
          if (kind === 'file') cpSync(path, tmp);
          else {
            const out = createWriteStream(tmp);
            await zipFolderTo(path, out);
            out.end();
            await once(out, 'finish');
          }
          renameSync(tmp, dest);
        } catch (e) {
          rmSync(tmp, { force: true });
          throw new ApiFailure('internal', `could not save ${filename} to ${dest}: ${(e as Error).message}`);
        }
        return { delivered: 'saved', path: dest };
      }
      const now = Date.now();
      for (const [t, v] of tickets) if (v.expiresAt <= now) tickets.delete(t);
      const ticket = randomBytes(24).toString('hex');
      const expiresAt = now + TICKET_MS;
      tickets.set(ticket, { path, kind, filename, expiresAt });
      return { delivered: 'url', url: `/api/download/${ticket}`, filename, expiresAt };
    },

    /** The exports folder's entries (a file or a folder each), newest first; temporaries left out. */
    async listExports(): Promise<ExportEntry[]> {
      if (!existsSync(exportsRoot)) return [];
      const out: ExportEntry[] = [];
      for (const e of readdirSync(exportsRoot, { withFileTypes: true })) {
        if (e.name.startsWith('.') || /\.(tmp|part)-/.test(e.name)) continue;
        const p = join(exportsRoot, e.name);
        if (!e.isFile() && !e.isDirectory()) continue;
        const files = e.isDirectory() ? filesUnder(p) : [p];
        const head = (f: string) => {
          const b = Buffer.alloc(132);
          const fd = openSync(f, 'r');
          try {
            return readSync(fd, b, 0, 132, 0) === 132 && b.toString('latin1', 128, 132) === 'DICM';
          } finally {
            closeSync(fd);
          }
        };
        out.push({
          exportId: e.name,
          kind: e.isDirectory() ? 'folder' : 'file',
          files: files.length,
          bytes: sizeOf(files),
          modifiedAt: statSync(p).mtimeMs,
          dicom: files.some((f) => f.endsWith('.dcm') && head(f)),
        });
      }
      return out.sort((a, b) => b.modifiedAt - a.modifiedAt);
    },

    /** An export id as its path inside exports/ (refusing anything that leaves it). */
    resolve: (exportId: string) => resolveExportId(exportsRoot, exportId),

    /** What a download ticket names (null: unknown or lapsed). For the web server's download route. */
    openDownload(ticket: string): { path: string; kind: 'file' | 'folder'; filename: string } | null {
      const t = tickets.get(ticket);
      if (!t) return null;
      if (t.expiresAt <= Date.now()) {
        tickets.delete(ticket);
        return null;
      }
      if (!existsSync(t.path)) return null;
      return { path: t.path, kind: t.kind, filename: t.filename };
    },
  };
}

export type Exports = ReturnType<typeof createExports>;
