/**
 * Messages between a training worker and the thread that started it (CLI, Electron main, web server).
 * Progress events pass through unchanged; cancellation is a shared flag so that it is seen between
 * two batches even while the worker's event loop is busy.
 */
import type { BackendName, DistillConfig, MetricRow, ProgressEvent, RunKind } from '../contract/domain.js';

/** Where the job's data comes from: a path (or the bundled sample when omitted), or a library dataset. */
export type DataRef =
  | { kind: 'path'; path?: string; size?: number; slab?: number }
  | { kind: 'dataset'; datasetId: number; size?: number; slab?: number };

export interface JobRequest {
  config: DistillConfig;
  data: DataRef;
  /** Folder that receives model folders and checkpoints. */
  modelsRoot: string;
  dbPath: string;
  backend?: BackendName;
  /** The job's id (a fresh UUID when omitted). */
  jobId?: string;
  /** Continue the stored job `jobId` (its config and data are the stored ones); an error when it does not exist. */
  resume?: boolean;
  /** What the process running the job is, for lease messages ("kdmri serve", "kdmri distill"). */
  holder?: string;
}

export interface JobResult {
  jobId: string;
  status: 'finished' | 'cancelled' | 'failed';
  backend: BackendName;
  params: { teacher: number; student: number };
  rows: MetricRow[];
  models: Partial<Record<RunKind, { id: number; dir: string }>>;
  seconds: number;
  error?: string;
}

export interface WorkerInit {
  request: JobRequest;
  jobId: string;
  /** Int32Array(1) over this buffer: 1 = cancel requested. */
  cancelFlag: SharedArrayBuffer;
}

export type WorkerMessage = { type: 'event'; event: ProgressEvent } | { type: 'done'; result: JobResult };

/** A duration measurement (distill/estimate.ts) of a job's networks on a dataset at a size. */
export interface MeasureInit {
  dbPath: string;
  datasetId: number;
  size?: number;
  config: DistillConfig;
  backend?: BackendName;
  /** Int32Array(2) over this buffer: word 0 = 1: stop (checked between timed calls); word 1 = 1: the worker has closed the library. */
  cancelFlag: SharedArrayBuffer;
}

/** Costs in ms; see distill/estimate.ts. */
export interface MeasureTiming {
  trainMs: number;
  inferMs: number;
  warmupMs: number;
  latencyMs: number;
}

export interface MeasureResult {
  backend: BackendName;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  dataMs: number;
  teacher: MeasureTiming;
  student: MeasureTiming;
  csMsPerSlice: number | null;
  /** What this run measured (the rest came from the library's timings). */
  measured: string[];
  /** The new timings, for the caller to keep in the library (store/repos/timings.ts). */
  fresh: (MeasureTiming & { what: string; h: number; w: number; batch: number; backend: string })[];
}

export type MeasureMessage =
  | { type: 'ready'; backend: BackendName }
  | { type: 'done'; result: MeasureResult }
  | { type: 'error'; message: string };
