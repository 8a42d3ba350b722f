/**
 * Studies operations: browse the library, read series pixels, import files, and turn series into
 * datasets. The library itself belongs to src-main/studies (DICOM / NIfTI import and index); this
 * adapter calls it and answers 'unavailable' for what it does not provide yet.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import {
  ApiFailure,
  type ApiEvent,
  type ApiRequest,
  type DatasetInfo,
  type ImportFileResult,
  type ImportSummary,
  type PatientSummary,
  type Pixels,
  type SeriesDetail,
} from '../contract/api.js';
import type { DbPort, Engine } from './engine.js';
import { datasetInfo } from './rows.js';

interface Deps {
  engine: Engine;
  db(): Promise<DbPort>;
  dataDir: string;
  emit(e: ApiEvent): void;
}

const STUDIES = 'src-main/studies';

export function createStudies({ engine, db, emit }: Deps) {
  async function fn<T extends (...args: never[]) => unknown>(name: string): Promise<T> {
    const m = await engine.need('studies');
    const f = m[name];
    if (typeof f !== 'function')
      throw new ApiFailure('unavailable', `${STUDIES} has no ${name}() yet`, STUDIES);
    return f as T;
  }

  /** Make (or find) the dataset built from the bundled sample, with its real shape and split. */
  async function sampleDataset(): Promise<{ dataset: DatasetInfo; created: boolean }> {
    const d = await db();
    const found = d.datasets.list().find((x) => x.source === 'sample' && x.task === 'recon');
    if (found) return { dataset: datasetInfo(found), created: false };
    const { loadDataSplit } = await engine.need('dataSource');
    const split = loadDataSplit(undefined);
    const h = split.train[0].h;
    const w = split.train[0].w;
    const row = d.datasets.create({
      name: `Bundled sample (Colin27 T1) ${h}×${w}`,
      source: 'sample',
      task: 'recon',
      h,
      w,
      trainSlices: split.train.reduce((n, v) => n + v.slices, 0),
      valSlices: split.val.reduce((n, v) => n + v.slices, 0),
      meta: { size: null, description: split.description },
    });
    return { dataset: datasetInfo(row), created: true };
  }

  /** Fallback import without the studies library: each NIfTI file (or folder of them) → a dataset. */
  async function importNiftiAsDatasets(
    d: DbPort,
    paths: string[],
    onFile: (done: number, total: number, file: ImportFileResult) => void,
  ): Promise<ImportFileResult[]> {
    const { loadDataSplit } = await engine.need('dataSource');
    const out: ImportFileResult[] = [];
    for (const [i, path] of paths.entries()) {
      let r: ImportFileResult;
      if (!existsSync(path)) {
        r = { path, status: 'failed', message: 'no such file or folder' };
      } else {
        try {
          const abs = resolve(path);
          const split = loadDataSplit(abs);
          const { h, w } = split.train[0];
          const found = d.datasets
            .list()
            .find((x) => x.source === abs && x.h === h && x.w === w && x.task === 'recon');
          if (found) r = { path, status: 'skipped', message: `already dataset ${found.id} "${found.name}"` };
          else {
            const row = d.datasets.create({
              name: `${basename(abs).replace(/\.nii(\.gz)?$/i, '')} ${h}×${w}`,
              source: abs,
              task: 'recon',
              h,
              w,
              trainSlices: split.train.reduce((n, v) => n + v.slices, 0),
              valSlices: split.val.reduce((n, v) => n + v.slices, 0),
              meta: { size: null, description: split.description },
            });
            r = { path, status: 'imported', message: `dataset ${row.id} "${row.name}" created` };
            emit({ channel: 'library', what: 'datasets' });
          }
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          r = {
            path,
            status: 'failed',
            message: /unsupported data/.test(msg)
              ? `${msg} — DICOM and HDF5 need the studies library (not in this build)`
              : msg,
          };
        }
      }
      out.push(r);
      onFile(i + 1, paths.length, r);
    }
    return out;
  }

  return {
    async listStudies(req: ApiRequest<'listStudies'>): Promise<PatientSummary[]> {
      const list = await fn<(db: DbPort, search?: string) => PatientSummary[]>('listStudies');
      return list(await db(), req.search);
    },
    async getSeries(req: ApiRequest<'getSeries'>): Promise<SeriesDetail> {
      const get = await fn<(db: DbPort, uid: string) => SeriesDetail | null>('getSeries');
      const s = get(await db(), req.uid);
      if (!s) throw new ApiFailure('not-found', `no series ${req.uid}`, 'uid');
      return s;
    },
    async getSeriesSlice(req: ApiRequest<'getSeriesSlice'>): Promise<Pixels> {
      const read = await fn<(db: DbPort, uid: string, index: number) => Pixels | null>('getSeriesSlice');
      const p = read(await db(), req.uid, req.index);
      if (!p) throw new ApiFailure('not-found', `no slice ${req.index} in series ${req.uid}`, 'index');
      return p;
    },
    async importPaths(req: ApiRequest<'importPaths'>): Promise<{ importId: string }> {
      type Importer = (
        db: DbPort,
        paths: string[],
        onFile: (done: number, total: number, file: ImportFileResult) => void,
      ) => Promise<ImportFileResult[]>;
      let run: Importer;
      try {
        run = await fn<Importer>('importPaths');
      } catch (e) {
        if (!(e instanceof ApiFailure && e.code === 'unavailable')) throw e;
        // no studies library in this build: NIfTI volumes still become datasets directly
        run = (d, paths, onFile) => importNiftiAsDatasets(d, paths, onFile);
      }
      const d = await db();
      const importId = randomUUID();
      // answer first, then stream progress: the caller subscribes by importId
      setImmediate(() => {
        run(d, req.paths, (done, total, file) =>
          emit({ channel: 'import', importId, event: { type: 'progress', done, total, file } }),
        )
          .then((files) => {
            const summary: ImportSummary = {
              importId,
              files,
              series: [...new Set(files.flatMap((f) => (f.seriesUid ? [f.seriesUid] : [])))],
            };
            emit({ channel: 'import', importId, event: { type: 'end', summary } });
            emit({ channel: 'library', what: 'studies' });
          })
          .catch((err: unknown) =>
            emit({
              channel: 'import',
              importId,
              event: {
                type: 'error',
                error: { code: 'internal', message: err instanceof Error ? err.message : String(err) },
              },
            }),
          );
      });
      return { importId };
    },
    async importSample(): Promise<ImportSummary> {
      const importId = randomUUID();
      const { sampleDataPath } = await engine.need('sample');
      const path = sampleDataPath();
      const files: ImportFileResult[] = [];
      const series: string[] = [];
      // the library entry (when the studies module can import NIfTI)
      try {
        const run =
          await fn<(db: DbPort, paths: string[], onFile: () => void) => Promise<ImportFileResult[]>>(
            'importPaths',
          );
        const res = await run(await db(), [path], () => undefined);
        files.push(...res);
        for (const f of res) if (f.seriesUid) series.push(f.seriesUid);
        emit({ channel: 'library', what: 'studies' });
      } catch (e) {
        if (!(e instanceof ApiFailure && e.code === 'unavailable')) throw e;
      }
      const { dataset, created } = await sampleDataset();
      files.push({
        path,
        status: created ? 'imported' : 'skipped',
        message: created
          ? `dataset ${dataset.id} "${dataset.name}" created`
          : `dataset ${dataset.id} already in the library`,
      });
      emit({ channel: 'library', what: 'datasets' });
      return { importId, files, series };
    },
    async createDatasetFromSeries(req: ApiRequest<'createDatasetFromSeries'>): Promise<DatasetInfo> {
      const make =
        await fn<
          (
            db: DbPort,
            seriesUids: string[],
            opts: { name?: string; size?: number },
          ) => DatasetInfo | { id: number }
        >('createDatasetFromSeries');
      const d = await db();
      const r = make(d, req.seriesUids, { name: req.name, size: req.size });
      const row = d.datasets.get(r.id);
      if (!row) throw new ApiFailure('internal', 'dataset was not stored', STUDIES);
      return datasetInfo(row);
    },
    sampleDataset,
  };
}
