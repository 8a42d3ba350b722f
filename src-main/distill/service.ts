/**
 * The distillation service: start, cancel and resume jobs, each in its own worker thread, with
 * progress events delivered to the caller. The CLI, the Electron main process and the web server
 * all use this one entry point.
 */
import type { Worker } from 'node:worker_threads';
import { spawnModuleWorker } from '../workers/spawn.js';
import { randomUUID } from 'node:crypto';
import type { BackendName, ProgressEvent } from '../contract/domain.js';
import type {
  JobRequest,
  JobResult,
  MeasureInit,
  MeasureMessage,
  MeasureResult,
  WorkerInit,
  WorkerMessage,
} from './protocol.js';

export type { JobRequest, JobResult, DataRef, MeasureInit, MeasureResult } from './protocol.js';

export interface JobHandle {
  jobId: string;
  cancel(): void;
  done: Promise<JobResult>;
}

/** A worker thread running `name` (worker: a training job; measure-worker: a duration measurement). */
export function spawnWorker(name: 'worker' | 'measure-worker', workerData: unknown): Worker {
  return spawnModuleWorker(import.meta.url, name, { workerData });
}

/** The result of a job that ended without training anything (failed to start, cancelled in a queue). */
export function endedResult(
  jobId: string,
  status: JobResult['status'],
  backend: BackendName = 'cpu',
  error?: string,
): JobResult {
  return {
    jobId,
    status,
    backend,
    params: { teacher: 0, student: 0 },
    rows: [],
    models: {},
    seconds: 0,
    ...(error !== undefined ? { error } : {}),
  };
}

export function startJob(request: JobRequest, onEvent: (e: ProgressEvent) => void): JobHandle {
  const jobId = request.jobId ?? randomUUID();
  // word 0: stop, set by us; word 1: the worker has closed the library
  const cancelFlag = new SharedArrayBuffer(8);
  const init: WorkerInit = { request, jobId, cancelFlag };
  const worker = spawnWorker('worker', init);
  let settled = false;
  const done = new Promise<JobResult>((resolve) => {
    const fail = (message: string) => endedResult(jobId, 'failed', request.backend, message);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'event') onEvent(m.event);
      else {
        settled = true;
        resolve(m.result);
      }
    });
    worker.on('error', (err) => {
      if (settled) return;
      settled = true;
      onEvent({ type: 'job-end', status: 'failed', error: err.message });
      resolve(fail(err.message));
    });
    worker.on('exit', (code) => {
      if (settled) return;
      settled = true;
      const msg = `training worker exited with code ${code}`;
      onEvent({ type: 'job-end', status: 'failed', error: msg });
      resolve(fail(msg));
    });
  });
  return {
    jobId,
    cancel: () => Atomics.store(new Int32Array(cancelFlag), 0, 1),
    done: done.finally(() => void worker.terminate()),
  };
}

/**
 * Measure what a job's networks cost here (distill/estimate.ts) in a worker thread, as a job would
 * run; `startupMs` is the worker's start-up to a ready backend and library, as a job pays it. An
 * abort stops the worker at once when it has closed the library (it only reads it, and closes it
 * before measuring), else at its next check; the promise settles once the worker has stopped (so a
 * job started next is not measured along). A thread is never killed with the library open.
 */
export function measureJob(
  init: Omit<MeasureInit, 'cancelFlag'>,
  signal?: AbortSignal,
): Promise<MeasureResult & { startupMs: number }> {
  if (signal?.aborted) return Promise.reject(new Error('measurement cancelled'));
  const t0 = performance.now();
  // word 0: stop, set by us; word 1: the worker has closed the library
  const cancelFlag = new SharedArrayBuffer(8);
  const worker = spawnWorker('measure-worker', { ...init, cancelFlag } satisfies MeasureInit);
  let startupMs = 0;
  let onAbort = () => {};
  return new Promise<MeasureResult & { startupMs: number }>((resolve, reject) => {
    onAbort = () => {
      const words = new Int32Array(cancelFlag);
      Atomics.store(words, 0, 1);
      if (Atomics.load(words, 1) === 1) {
        void worker.terminate();
        reject(new Error('measurement cancelled'));
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: MeasureMessage) => {
      if (m.type === 'ready') startupMs = performance.now() - t0;
      else {
        // its last message: the worker has closed the library (a wasm thread pool would keep it alive)
        void worker.terminate();
        if (m.type === 'done') resolve({ ...m.result, startupMs });
        else reject(new Error(m.message));
      }
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`measurement worker exited with code ${code}`)));
  }).finally(() => signal?.removeEventListener('abort', onAbort));
}
