/**
 * The composition root: one place where the services are wired, from statically imported modules.
 *
 * createServices opens the library (database and folders), recovers what a crashed process left
 * behind, builds each service module on one context, and binds the contract's operations to them.
 * Both transports (Electron IPC, web-mode HTTP) call `services.call(op, body)`: the request is
 * validated with the contract's zod schema, the handler runs, and an ApiResult comes back (nothing
 * is thrown across the boundary). The CLI calls the same modules directly (`services.jobs.run`, …).
 * A module that cannot load, or a library that cannot open, fails createServices itself.
 */
import { join, resolve } from 'node:path';
import { version_core as tfjsVersion } from '@tensorflow/tfjs-core';
import {
  parseRequest,
  toApiError,
  type ApiEvent,
  type ApiHandlers,
  type ApiResult,
  type AppInfo,
  type OpName,
  type UploadLimits,
} from '../contract/api.js';
import { openDatabase } from '../store/db.js';
import { libraryHome, makePrivate, mkdirPrivate, PRIVATE_DIR_MODE } from '../store/home.js';
import { createCompareService } from './compare.js';
import { createEventBus, type ServiceContext } from './context.js';
import { createDatasets } from './datasets.js';
import { createDeletion } from './deletion.js';
import { engine as realEngine, type Engine } from './engine.js';
import { createEstimates } from './estimate.js';
import { createEvaluation } from './evaluate.js';
import { createExports, type SaveAs } from './exports.js';
import { createJobs } from './jobs.js';
import { maskPreview, readMaskFileSpec } from './masks.js';
import { createModels } from './models.js';
import { recoverLibrary } from './recovery.js';
import { createStudies } from './studies.js';
import { createWorkerPool, inlineRunner, type WorkRunner } from '../workers/pool.js';
import { createPacs } from './pacs.js';
import { fileSecretStore, SECRETS_FILE, type SecretStore } from './secrets.js';
import { createUploads } from './uploads.js';
import { createSweeps } from './sweeps.js';

export const APP_VERSION = '0.1.0';

/** What a process of each mode is called in a job lease ("job … is leased to process 42 (…)"). */
const HOLDER = { web: 'kdmri serve, web mode', electron: 'desktop app', cli: 'kdmri distill' } as const;

export interface ServicesOptions {
  dbPath: string;
  /** The library home: models/ and exports/ live here. */
  dataDir: string;
  mode?: 'web' | 'electron' | 'cli';
  version?: string;
  /** Jobs training at once (default 1; the rest wait in a queue). */
  concurrency?: number;
  /** Model folders and checkpoints of new jobs (default `<dataDir>/models`; the CLI's --out). */
  modelsRoot?: string;
  /** The engine functions (default: the real modules); tests pass typed doubles here. */
  engine?: Engine;
  /**
   * Where import, retrieve, convert, export and Compare run: 'threads' (a pool of worker threads, so
   * the main / server event loop stays free) or 'inline' (this thread). Default: 'inline' for the CLI
   * and when `engine` doubles are given (they cannot cross into a thread), else 'threads'.
   */
  workers?: 'threads' | 'inline';
  /** Electron's save dialog: downloadExport copies exports where the user chooses (web mode: a URL). */
  saveAs?: SaveAs;
  /** Where PACS passwords and tokens are kept (default: the environment, then an owner-only file in dataDir; Electron: safeStorage). */
  secrets?: SecretStore;
  /** Web-mode upload limits (default: the contract's UPLOAD_LIMITS). */
  uploadLimits?: Partial<UploadLimits>;
}

export function createServices(opts: ServicesOptions) {
  const dataDir = resolve(opts.dataDir);
  const dbPath = resolve(opts.dbPath);
  mkdirPrivate(dataDir);
  // the shared library home holds patient data: owner-only, also when an older version made it 0755
  if (dataDir === libraryHome()) makePrivate(dataDir, PRIVATE_DIR_MODE);
  const workers = opts.workers ?? (opts.engine || opts.mode === 'cli' ? 'inline' : 'threads');
  if (workers === 'threads' && opts.engine)
    throw new Error("createServices: engine doubles run in this thread; use workers: 'inline'");
  const db = openDatabase(dbPath);
  const bus = createEventBus();
  const engine = opts.engine ?? realEngine;
  const work: WorkRunner = workers === 'threads' ? createWorkerPool(2) : inlineRunner({ db, engine });
  const ctx: ServiceContext = {
    db,
    dataDir,
    dbPath,
    modelsRoot: resolve(opts.modelsRoot ?? join(dataDir, 'models')),
    engine,
    work,
    emit: bus.emit,
  };
  const recovered = recoverLibrary(ctx);

  const datasets = createDatasets(ctx);
  const studies = createStudies(ctx, datasets);
  const models = createModels(ctx);
  const compare = createCompareService(ctx);
  const exports = createExports({
    db: async () => db,
    dbPath,
    work,
    dataDir,
    version: opts.version ?? APP_VERSION,
    compare,
    saveAs: opts.saveAs,
  });
  const jobs = createJobs(ctx, datasets, {
    concurrency: opts.concurrency,
    holder: HOLDER[opts.mode ?? 'web'],
  });
  const evaluation = createEvaluation(ctx);
  const estimates = createEstimates(ctx);
  const sweeps = createSweeps(ctx, jobs);
  const deletion = createDeletion(ctx, { isActive: jobs.isActive, forgetModel: compare.forget });
  const pacs = createPacs(ctx, {
    secrets: opts.secrets ?? fileSecretStore(join(dataDir, SECRETS_FILE)),
    resolveExport: exports.resolve,
    trackImport: studies.trackImport,
  });
  const uploads = createUploads(ctx, { importNow: studies.importNow, limits: opts.uploadLimits });

  const handlers: ApiHandlers = {
    async appInfo(): Promise<AppInfo> {
      return {
        version: opts.version ?? APP_VERSION,
        mode: opts.mode === 'electron' ? 'electron' : 'web',
        dataDir,
        dbPath,
        versions: {
          node: process.versions.node,
          ...(process.versions.electron ? { electron: process.versions.electron } : {}),
          tfjs: tfjsVersion,
          sqlite: (db.sqlite.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v,
          schema: String(db.schemaVersion),
        },
        backend: compare.backend(),
      };
    },
    ...studies.handlers,
    ...datasets.handlers,
    async previewMask(req) {
      return maskPreview(ctx.engine.buildMask(req.mask, req.h, req.w));
    },
    async readMaskFile(req) {
      const mask = readMaskFileSpec(req.path);
      const [h, w] = mask.fileShape ?? [0, 0];
      return { mask, preview: maskPreview(ctx.engine.buildMask(mask, h, w)) };
    },
    ...jobs.handlers,
    async startDistillation(req) {
      // a measurement running beside the job would measure the job's load (and slow it down)
      await estimates.abort();
      return jobs.handlers.startDistillation(req);
    },
    async startStudy(req) {
      await estimates.abort();
      return jobs.handlers.startStudy(req);
    },
    ...estimates.handlers,
    ...models.handlers,
    ...sweeps.handlers,
    async deleteModel(req) {
      const r = await deletion.deleteItem({
        target: { kind: 'model', id: req.modelId },
        cascade: false,
        dryRun: false,
      });
      return { deleted: r.deleted };
    },
    deleteItem: (req) => deletion.deleteItem(req),
    exportModel: (req) => exports.exportModel(req),
    exportSeries: (req) => exports.exportSeries(req),
    downloadExport: (req) => exports.downloadExport(req),
    compare: (req) => compare.compare(req),
    exportComparison: (req) => exports.exportComparison(req),
    ...pacs.handlers,
    listExports: () => exports.listExports(),
    async beginUpload() {
      return uploads.begin();
    },
    async finishUpload(req) {
      const { files, bytes } = uploads.summary(req.uploadId);
      const importId = studies.trackImport((onFile) => uploads.finish(req.uploadId, onFile));
      return { importId, files, bytes };
    },
    async discardUpload(req) {
      return { discarded: uploads.discard(req.uploadId) };
    },
  };

  return {
    handlers,
    /** What start-up recovered from a crashed process (interrupted jobs, swept temporary folders). */
    recovered,
    paths: { dataDir, dbPath, modelsRoot: ctx.modelsRoot },
    db,
    jobs,
    studies,
    models,
    datasets,
    evaluation,
    sweeps,
    exports,
    deletion,
    pacs,
    /** Web mode's uploads: the server streams each file's bytes to `uploads.receive`. */
    uploads,
    /** The export a download ticket names (web mode's /api/download/<ticket>), or null. */
    openDownload: (ticket: string) => exports.openDownload(ticket),
    /** Validate `body` for `op`, run it, and wrap the outcome. */
    async call(op: string, body: unknown): Promise<ApiResult<unknown>> {
      if (!Object.prototype.hasOwnProperty.call(handlers, op)) {
        return { ok: false, error: { code: 'not-found', message: `no operation ${op}`, where: 'op' } };
      }
      const name = op as OpName;
      const parsed = parseRequest(name, body);
      if (!parsed.ok) return parsed;
      try {
        const fn = handlers[name] as (req: unknown) => Promise<unknown>;
        return { ok: true, value: await fn(parsed.value) };
      } catch (err) {
        return { ok: false, error: toApiError(err) };
      }
    },
    subscribe(listener: (e: ApiEvent) => void): () => void {
      return bus.subscribe(listener);
    },
    /** Start the work threads now (the app and `kdmri serve` at start-up; a no-op in-thread). */
    warmUp: (): Promise<void> => work.warm(),
    /** Cancel running jobs, wait for them, close the database. */
    async close(): Promise<void> {
      await estimates.abort();
      await jobs.close();
      await work.close();
      uploads.close();
      bus.clear();
      db.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
