/**
 * The engine modules the services call, loaded lazily and looked at through small structural "ports".
 *
 * The engine, store and studies modules are written in parallel with the services; a module that is
 * not present (or fails to load) makes only the operations that need it answer
 * ApiError {code: 'unavailable', where: <module>}: nothing is faked. Tests inject their own modules.
 */
import type {
  Degradation,
  DistillConfig,
  MaskSpec,
  ModelCard,
  ProgressEvent,
  Task,
  Volume,
  VolumeMetrics,
} from '../contract/domain.js';
import { ApiFailure } from '../contract/api.js';
import type { Db, EvaluationRepo, ExperimentRepo } from '../store/db.js';

/** Compile-time proof that the real store satisfies the port (type-only: no runtime import). */
export type StoreFitsPort = Db extends DbPort ? true : never;
const _storeFits: StoreFitsPort = true;
void _storeFits;

// ---------------------------------------------------------------------------------------------------
// Ports: what the services need from each module (a subset of the module's real signature).

export interface DatasetRow {
  id: number;
  name: string;
  source: string;
  task: Task;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  createdAt?: number | string | null;
  meta?: Record<string, unknown> | null;
}

export interface JobRow {
  id: string;
  datasetId: number;
  config: DistillConfig;
  status: string;
  backend?: string | null;
  createdAt?: number | null;
  startedAt?: number | null;
  endedAt?: number | null;
  error?: string | null;
}

export interface RunRow {
  id: number;
  jobId: string;
  kind: string;
  status: string;
  config?: unknown;
  backend?: string | null;
  epochsPlanned?: number;
  epochsDone?: number;
  bestEpoch?: number | null;
  bestValLoss?: number | null;
  startedAt?: number | null;
  endedAt?: number | null;
  wallSeconds?: number | null;
}

export interface EpochRowPort {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  seconds?: number | null;
}

export interface ModelRow {
  id: number;
  runId: number | null;
  kind: string;
  name: string;
  dir: string;
  paramCount?: number;
  params?: number;
  card?: ModelCard;
  createdAt?: number | null;
  deletedAt?: number | null;
}

export interface EvaluationRow {
  modelId: number | null;
  runKind: string;
  datasetId: number;
  jobId?: string | null;
  degradation: string;
  acceleration?: number | null;
  psnr: number;
  ssim: number;
  nmse: number;
  psnrStd2: number;
  ssimStd2: number;
  nmseStd2: number;
  volumes: number;
  createdAt?: number | null;
}

/** Repository methods are optional in the port: a missing one answers 'unavailable' for its operation. */
export interface DbPort {
  datasets: {
    list(): DatasetRow[];
    get(id: number): DatasetRow | undefined | null;
    create(d: Omit<DatasetRow, 'id' | 'createdAt'>): DatasetRow;
  };
  jobs: {
    get(id: string): JobRow | undefined | null;
    list(filter?: Record<string, unknown>): JobRow[];
    create(j: { id: string; datasetId: number; config: DistillConfig; status: 'queued' }): JobRow;
    update(
      id: string,
      patch: { status?: 'cancelled' | 'failed'; error?: string | null; endedAt?: number | null },
    ): JobRow;
  };
  runs: {
    list(filter?: Record<string, unknown>): RunRow[];
    get?(id: number): RunRow | undefined | null;
    /** Runs left 'running' by a process that is gone → failed ('interrupted'), so they can be resumed. */
    markInterrupted?(): number[];
  };
  epochs: { forRun(runId: number): EpochRowPort[] };
  models: {
    list(filter?: Record<string, unknown>): ModelRow[];
    get(id: number): ModelRow | undefined | null;
    softDelete(id: number): unknown;
  };
  evaluations: {
    list(filter?: { datasetId?: number }): EvaluationRow[];
    /** A job's own validation evaluations, for its results table. */
    tableRows: EvaluationRepo['tableRows'];
  };
  experiments: Pick<ExperimentRepo, 'get' | 'jobs' | 'list' | 'ofJob'>;
  close(): void;
}

export interface StoreModule {
  openDatabase(file: string): DbPort;
}

export interface JobHandlePort {
  jobId: string;
  cancel(): void;
  done: Promise<{ status: string; error?: string }>;
}
export interface DistillServiceModule {
  startJob(
    request: {
      config: DistillConfig;
      data: { kind: 'dataset'; datasetId: number; size?: number };
      modelsRoot: string;
      dbPath: string;
      jobId?: string;
    },
    onEvent: (e: ProgressEvent) => void,
  ): JobHandlePort;
}

export interface NetworkPort {
  spec: { arch: string };
}
export interface InferModule {
  loadModelDir(dir: string): { net: NetworkPort; card: ModelCard; dir: string };
  reconstructVolume(
    net: NetworkPort,
    vol: Volume,
    degradation: Degradation,
  ): { input: Volume; target: Volume; output: Volume };
}

export interface SliceBankModule {
  buildSliceBank(
    vols: Volume[],
    degradation: Degradation,
  ): { input: Float32Array; target: Float32Array; h: number; w: number; count: number; maskInfo?: unknown };
}

export interface DataSourceModule {
  loadDataSplit(
    path: string | undefined,
    size?: number,
  ): { train: Volume[]; val: Volume[]; source: string; description: string };
}

export interface MasksModule {
  buildMask(spec: MaskSpec, h: number, w: number): unknown;
  maskPlane?(spec: MaskSpec, h: number, w: number): unknown;
}

export interface MetricsModule {
  volumeMetrics(gt: Volume, pred: Volume): VolumeMetrics;
}

export interface VolumeModule {
  resampleSlices(vol: Volume, size: number): Volume;
}

export interface SampleModule {
  sampleDataPath(): string;
}

export interface BackendModule {
  initBackend(opts?: { prefer?: string }): Promise<{ name: string }>;
}

/** Studies library (DICOM / NIfTI import and browsing); every function optional until it lands. */
export interface StudiesModule {
  [fn: string]: unknown;
}

export interface EngineModules {
  store: StoreModule;
  distill: DistillServiceModule;
  infer: InferModule;
  sliceBank: SliceBankModule;
  dataSource: DataSourceModule;
  masks: MasksModule;
  metrics: MetricsModule;
  sample: SampleModule;
  volume: VolumeModule;
  backend: BackendModule;
  studies: StudiesModule;
}
export type ModuleName = keyof EngineModules;

/** Module name → path relative to this file, and the export that proves it is the right module. */
const MODULE_PATHS: Record<
  ModuleName,
  { path: string; needs: string; also?: { path: string; needs: string }[] }
> = {
  store: { path: '../store/db.js', needs: 'openDatabase' },
  distill: { path: '../distill/service.js', needs: 'startJob' },
  infer: { path: '../distill/infer.js', needs: 'reconstructVolume' },
  sliceBank: { path: '../distill/slice-bank.js', needs: 'buildSliceBank' },
  dataSource: { path: '../distill/data-source.js', needs: 'loadDataSplit' },
  masks: { path: '../kspace/masks.js', needs: 'buildMask' },
  metrics: { path: '../metrics/index.js', needs: 'volumeMetrics' },
  sample: { path: '../data/sample.js', needs: 'sampleDataPath' },
  volume: { path: '../data/volume.js', needs: 'resampleSlices' },
  backend: { path: '../compute/backend.js', needs: 'initBackend' },
  // the studies library: browsing in library.ts, importing in import.ts (their exports are merged)
  studies: {
    path: '../studies/library.js',
    needs: 'listStudies',
    also: [{ path: '../studies/import.js', needs: 'importPaths' }],
  },
};

const WHERE: Record<ModuleName, string> = {
  store: 'src-main/store/db.ts',
  distill: 'src-main/distill/service.ts',
  infer: 'src-main/distill/infer.ts',
  sliceBank: 'src-main/distill/slice-bank.ts',
  dataSource: 'src-main/distill/data-source.ts',
  masks: 'src-main/kspace/masks.ts',
  metrics: 'src-main/metrics/index.ts',
  sample: 'src-main/data/sample.ts',
  volume: 'src-main/data/volume.ts',
  backend: 'src-main/compute/backend.ts',
  studies: 'src-main/studies/library.ts',
};

export interface Engine {
  /** The module, or throws ApiFailure('unavailable') naming it and why it could not load. */
  need<K extends ModuleName>(name: K): Promise<EngineModules[K]>;
  /** Which modules load (for appInfo). */
  available(): Promise<Record<ModuleName, boolean>>;
}

/** `overrides`: modules given directly (tests); `null` marks a module as absent. */
export function createEngine(
  overrides: Partial<{ [K in ModuleName]: EngineModules[K] | null }> = {},
): Engine {
  const cache = new Map<ModuleName, Promise<{ mod: unknown } | { error: string }>>();

  function load(name: ModuleName): Promise<{ mod: unknown } | { error: string }> {
    let p = cache.get(name);
    if (!p) {
      if (name in overrides) {
        const o = overrides[name];
        p = Promise.resolve(o ? { mod: o } : { error: 'not present in this build' });
      } else {
        const { path, needs, also = [] } = MODULE_PATHS[name];
        const one = (
          spec: string,
          fn: string,
        ): Promise<{ mod: Record<string, unknown> } | { error: string }> =>
          import(/* @vite-ignore */ spec).then(
            (m: Record<string, unknown>) =>
              fn && typeof m[fn] !== 'function' ? { error: `${spec} does not export ${fn}()` } : { mod: m },
            (e: unknown) => ({ error: firstLine(e) }),
          );
        p = Promise.all([one(path, needs), ...also.map((a) => one(a.path, a.needs))]).then((parts) => {
          const bad = parts.find((x): x is { error: string } => 'error' in x);
          if (bad) return bad;
          return { mod: Object.assign({}, ...parts.map((x) => ('mod' in x ? x.mod : {}))) as unknown };
        });
      }
      cache.set(name, p);
    }
    return p;
  }

  return {
    async need<K extends ModuleName>(name: K): Promise<EngineModules[K]> {
      const r = await load(name);
      if ('error' in r) {
        throw new ApiFailure('unavailable', `${WHERE[name]} is not available yet (${r.error})`, WHERE[name]);
      }
      return r.mod as EngineModules[K];
    },
    async available() {
      const names = Object.keys(MODULE_PATHS) as ModuleName[];
      const out = {} as Record<ModuleName, boolean>;
      for (const n of names) out[n] = !('error' in (await load(n)));
      return out;
    },
  };
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0].slice(0, 300);
}
