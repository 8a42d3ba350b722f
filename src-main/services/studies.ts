/**
 * Studies operations: browse the library, read series pixels, import files (DICOM, NIfTI, HDF5) and
 * the bundled sample. The library itself is src-main/studies; this module adds progress events and
 * the contract's error shapes.
 */
import { randomUUID } from 'node:crypto';
import {
  ApiFailure,
  toApiError,
  type ApiRequest,
  type ImportFileResult,
  type ImportSummary,
  type PatientSummary,
  type Pixels,
  type SeriesDetail,
} from '../contract/api.js';
import type { SliceStack } from '../data/volume.js';
import { getSeries, getSeriesSlice, listStudies, seriesSlices } from '../studies/index.js';
import type { PacsSettings } from '../studies/dicomweb.js';
import type { ImportOrigin } from '../studies/import.js';
import type { ConvertSummary } from './convert.js';
import type { ServiceContext } from './context.js';
import type { createDatasets } from './datasets.js';

export function createStudies(ctx: ServiceContext, datasets: ReturnType<typeof createDatasets>) {
  const { db, emit, work, dbPath } = ctx;
  /** Running imports by id, to cancel. */
  const running = new Map<string, AbortController>();

  /** Import now (in a work thread) and resolve with one result per file (the CLI's `kdmri import`). */
  async function importNow(
    paths: string[],
    onFile: (done: number, total: number, file: ImportFileResult) => void = () => undefined,
    opts: { origin?: ImportOrigin; signal?: AbortSignal } = {},
  ): Promise<ImportFileResult[]> {
    const files = await work.run(
      'import',
      { dbPath, paths, ...(opts.origin ? { origin: opts.origin } : {}) },
      { onProgress: (p) => onFile(p.done, p.total, p.file), signal: opts.signal },
    );
    if (files.some((f) => f.status === 'imported')) emit({ channel: 'library', what: 'studies' });
    return files;
  }

  /** A series from a PACS (WADO-RS) into the library (`kdmri pacs retrieve`). */
  async function retrieveNow(
    settings: PacsSettings,
    studyUid: string,
    seriesUid: string,
    storeDir?: string,
  ): Promise<ImportFileResult[]> {
    const files = await work.run('retrieve', {
      dbPath,
      settings,
      studyUid,
      seriesUid,
      ...(storeDir ? { storeDir } : {}),
    });
    if (files.some((f) => f.status === 'imported')) emit({ channel: 'library', what: 'studies' });
    return files;
  }

  /** A file or folder to a float32 NIfTI, off this thread (the CLI calls services/convert.ts in-thread). */
  function convertNow(input: string, out: string, index?: number): Promise<ConvertSummary> {
    return work.run('convert', { input, out, ...(index === undefined ? {} : { index }) });
  }

  const summaryOf = (importId: string, files: ImportFileResult[]): ImportSummary => ({
    importId,
    files,
    series: [...new Set(files.flatMap((f) => (f.seriesUid ? [f.seriesUid] : [])))],
  });

  function series(uid: string): SeriesDetail {
    const s = getSeries(db, uid);
    if (!s) throw new ApiFailure('not-found', `no series ${uid} in the library (see kdmri studies)`, 'uid');
    return s;
  }

  /** A library series as a SliceStack (float32 after rescale, read one slice at a time). */
  function seriesStack(uid: string): { stack: SliceStack; detail: SeriesDetail } {
    const detail = series(uid);
    return { stack: seriesSlices(db, uid), detail };
  }

  /**
   * Run an import in the background under a new id: its per-file progress, then its summary (or its
   * error), go out as import events. Answers the id at once.
   */
  function trackImport(
    run: (
      onFile: (done: number, total: number, file: ImportFileResult) => void,
      importId: string,
      signal: AbortSignal,
    ) => Promise<ImportFileResult[]>,
  ): string {
    const importId = randomUUID();
    const abort = new AbortController();
    running.set(importId, abort);
    setImmediate(() => {
      run(
        (done, total, file) =>
          emit({ channel: 'import', importId, event: { type: 'progress', done, total, file } }),
        importId,
        abort.signal,
      )
        .finally(() => running.delete(importId))
        .then(
          (files) =>
            emit({
              channel: 'import',
              importId,
              event: { type: 'end', summary: summaryOf(importId, files) },
            }),
          (err: unknown) =>
            emit({ channel: 'import', importId, event: { type: 'error', error: toApiError(err) } }),
        );
    });
    return importId;
  }

  return {
    importNow,
    retrieveNow,
    convertNow,
    trackImport,
    seriesStack,
    handlers: {
      async listStudies(req: ApiRequest<'listStudies'>): Promise<PatientSummary[]> {
        return listStudies(db, req.search);
      },
      async getSeries(req: ApiRequest<'getSeries'>): Promise<SeriesDetail> {
        const s = getSeries(db, req.uid);
        if (!s) throw new ApiFailure('not-found', `no series ${req.uid}`, 'uid');
        return s;
      },
      async getSeriesSlice(req: ApiRequest<'getSeriesSlice'>): Promise<Pixels> {
        const p = getSeriesSlice(db, req.uid, req.index);
        if (!p) throw new ApiFailure('not-found', `no slice ${req.index} in series ${req.uid}`, 'index');
        return p;
      },
      /** Answers at once with an id; progress and the summary arrive as import events. */
      async importPaths(req: ApiRequest<'importPaths'>): Promise<{ importId: string }> {
        return { importId: trackImport((onFile, _id, signal) => importNow(req.paths, onFile, { signal })) };
      },
      async cancelImport(req: ApiRequest<'cancelImport'>): Promise<{ cancelled: boolean }> {
        const abort = running.get(req.importId);
        abort?.abort();
        return { cancelled: !!abort };
      },
      /** The bundled sample as a library study and as a dataset. */
      async importSample(): Promise<ImportSummary> {
        const importId = randomUUID();
        const path = ctx.engine.sampleDataPath();
        const files = await importNow([path]);
        const { dataset, created } = datasets.sampleDataset();
        files.push({
          path,
          status: created ? 'imported' : 'skipped',
          message: created
            ? `dataset ${dataset.id} "${dataset.name}" created`
            : `dataset ${dataset.id} already in the library`,
        });
        return summaryOf(importId, files);
      },
    },
  };
}
