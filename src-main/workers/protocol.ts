/**
 * The work that runs off the main / server event loop, as a typed task map, and the messages that
 * carry it between the services (src-main/services) and the worker threads (pool.ts, worker.ts).
 *
 * Each task has an input, progress events (or none) and an output, all structured-cloneable (typed
 * arrays travel transferred where the pool can). Cancellation is a shared Int32 flag per task, seen by
 * the task between two steps even while the worker's event loop is busy (as distill/protocol.ts does).
 * An error crosses as its name, message and, for the contract's ApiFailure, its code and field.
 */
import type { ApiError, CompareRequest, CompareResult, ImportFileResult } from '../contract/api.js';
import type { DisplayWindow } from '../studies/export.js';
import type { PacsSettings } from '../studies/dicomweb.js';
import type { ConvertSummary } from '../services/convert.js';
import type { SliceOrigin } from '../services/compare.js';
import type { ImportOrigin } from '../studies/import.js';

export interface ImportProgressEvent {
  done: number;
  total: number;
  file: ImportFileResult;
}

export interface TaskMap {
  /** Files, folders, DICOMDIR media into the library at dbPath. */
  import: {
    input: { dbPath: string; paths: string[]; origin?: ImportOrigin };
    progress: ImportProgressEvent;
    output: ImportFileResult[];
  };
  /** A series from a PACS (WADO-RS) into the library at dbPath; its files kept next to the database. */
  retrieve: {
    input: { dbPath: string; settings: PacsSettings; studyUid: string; seriesUid: string; storeDir?: string };
    progress: ImportProgressEvent;
    output: ImportFileResult[];
  };
  /** A file or folder to a float32 NIfTI (services/convert.ts). */
  convert: {
    input: { input: string; out: string; index?: number };
    progress: never;
    output: ConvertSummary;
  };
  /** A library series as DICOM, NIfTI or PNG files in `out` (services/exports.ts). */
  exportSeries: {
    input: {
      dbPath: string;
      uid: string;
      format: 'dicom' | 'nifti' | 'png';
      out: string;
      window?: DisplayWindow;
      deidentify: boolean;
    };
    progress: never;
    output: { paths: string[]; kind: 'file' | 'folder'; path: string; extra: Record<string, unknown> };
  };
  /** Compare's reconstructions of one slice (services/compare.ts), with the backend that made them. */
  compare: {
    input: { dbPath: string; request: CompareRequest };
    progress: never;
    output: { result: CompareResult; backend: string | null };
  };
  /** Where a compared slice comes from (services/compare.ts). */
  locate: {
    input: { dbPath: string; request: CompareRequest };
    progress: never;
    output: SliceOrigin;
  };
  /** Drop a model's loaded network (it was deleted). */
  forgetModel: {
    input: { dbPath: string; dir: string };
    progress: never;
    output: null;
  };
}

export type TaskName = keyof TaskMap;
export type TaskInput<K extends TaskName> = TaskMap[K]['input'];
export type TaskOutput<K extends TaskName> = TaskMap[K]['output'];
export type TaskProgress<K extends TaskName> = TaskMap[K]['progress'];

/** An error as it crosses a thread: the class name (TypeError stays a TypeError) and the contract's fields. */
export interface WireError extends Partial<ApiError> {
  name: string;
  message: string;
}

export type ToWorker = {
  [K in TaskName]: {
    type: 'run';
    id: number;
    task: K;
    input: TaskInput<K>;
    /** Int32Array(1) over this buffer: 1 = cancel requested. */
    cancel: SharedArrayBuffer;
  };
}[TaskName];

export type FromWorker =
  /** The thread has loaded its modules and takes tasks. */
  | { type: 'ready' }
  | { type: 'progress'; id: number; progress: unknown }
  | { type: 'done'; id: number; output: unknown }
  | { type: 'error'; id: number; error: WireError };
