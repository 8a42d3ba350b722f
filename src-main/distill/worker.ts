/**
 * Training worker thread: runs one distillation job off the main thread so that the UI (Electron
 * window, web server, terminal progress bars) stays responsive. It opens its own database
 * connection; SQLite in WAL mode lets the parent read runs and epochs while the worker writes them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runJobRequest } from './job.js';
import type { WorkerInit, WorkerMessage } from './protocol.js';

const init = workerData as WorkerInit;
const cancel = new Int32Array(init.cancelFlag);
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

const result = await runJobRequest(init.request, init.jobId, {
  onEvent: (event) => post({ type: 'event', event }),
  shouldStop: () => Atomics.load(cancel, 0) === 1,
});
post({ type: 'done', result });
