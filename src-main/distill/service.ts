/**
 * The distillation service: start, cancel and resume jobs, each in its own worker thread, with
 * progress events delivered to the caller. The CLI, the Electron main process and the web server
 * all use this one entry point.
 */
import type { Worker } from 'node:worker_threads';
import { spawnModuleWorker } from '../workers/spawn.js';
import { randomUUID } from 'node:crypto';
import type { BackendName, ProgressEvent } from '../contract/domain.js';
import type { JobRequest, JobResult, WorkerInit, WorkerMessage } from './protocol.js';

export type { JobRequest, JobResult, DataRef } from './protocol.js';

export interface JobHandle {
  jobId: string;
  cancel(): void;
  done: Promise<JobResult>;
}

/** The training worker (worker.ts next to this file). */
function spawnWorker(init: WorkerInit): Worker {
  return spawnModuleWorker(import.meta.url, 'worker', { workerData: init });
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
  const cancelFlag = new SharedArrayBuffer(4);
  const init: WorkerInit = { request, jobId, cancelFlag };
  const worker = spawnWorker(init);
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
