/**
 * Where the services run heavy work: a pool of worker threads, or this thread.
 *
 * `createWorkerPool` keeps up to `size` general threads (import, retrieve, convert, export) and one
 * Compare thread (its loaded models and reconstruction cache live there, so Compare tasks always go
 * to it), each started on first use. Tasks queue per lane; each thread runs one task at a time. A
 * thread that dies fails its task with an internal error and is replaced on the next task.
 *
 * `inlineRunner` runs the same task functions in this thread with the services' own connection and
 * engine: the CLI (a terminal has no event loop to keep free) and tests that give engine doubles.
 */
import type { Worker } from 'node:worker_threads';
import { ApiFailure } from '../contract/api.js';
import type { Db } from '../store/db.js';
import { createCompare } from '../services/compare.js';
import type { Engine } from '../services/engine.js';
import type {
  FromWorker,
  TaskInput,
  TaskName,
  TaskOutput,
  TaskProgress,
  ToWorker,
  WireError,
} from './protocol.js';
import { spawnModuleWorker } from './spawn.js';
import { runTask, type TaskEnv } from './tasks.js';

export interface RunOptions<K extends TaskName> {
  onProgress?: (p: TaskProgress<K>) => void;
  /** Aborting sets the task's cancel flag; the task stops at its next step. */
  signal?: AbortSignal;
}

export interface WorkRunner {
  readonly kind: 'threads' | 'inline';
  run<K extends TaskName>(task: K, input: TaskInput<K>, opts?: RunOptions<K>): Promise<TaskOutput<K>>;
  /**
   * Start every thread now and resolve when each has loaded its modules (the app calls this at
   * start, so that the first import or Compare does not pay for it).
   */
  warm(): Promise<void>;
  /** Stop the threads (tasks still queued fail; not waiting for them); in-thread: nothing to stop. */
  close(): Promise<void>;
}

const ENGINE_ERRORS: Record<string, new (message: string) => Error> = {
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  EvalError,
  URIError,
};

/** A thread's error as the services see it: the contract's ApiFailure, or the original error class. */
export function fromWire(e: WireError): Error {
  if (e.code) return new ApiFailure(e.code, e.message, e.where);
  const Cls = ENGINE_ERRORS[e.name];
  if (Cls) return new Cls(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** How long a cancelled task may take to reach its next step before its thread is stopped. */
export const CANCEL_GRACE_MS = 5000;

const COMPARE_TASKS: ReadonlySet<TaskName> = new Set<TaskName>(['compare', 'locate', 'forgetModel']);

interface Pending {
  id: number;
  message: ToWorker;
  onProgress?: (p: unknown) => void;
  resolve(v: unknown): void;
  reject(e: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Thread {
  worker: Worker;
  busy: Pending | null;
  ready: Promise<void>;
  loaded: boolean;
}

interface Lane {
  max: number;
  threads: Thread[];
  queue: Pending[];
}

export function createWorkerPool(size = 2): WorkRunner {
  let nextId = 1;
  let closed = false;
  const general: Lane = { max: Math.max(1, size), threads: [], queue: [] };
  const compare: Lane = { max: 1, threads: [], queue: [] };

  const startThread = (lane: Lane) => {
    // background priority: the main / server thread keeps the CPU it needs to answer
    const worker = spawnModuleWorker(import.meta.url, 'worker', { background: true });
    let onReady!: () => void;
    const t: Thread = {
      worker,
      busy: null,
      ready: new Promise<void>((res) => (onReady = res)),
      loaded: false,
    };
    const fail = (message: string) => {
      const p = t.busy;
      t.busy = null;
      lane.threads = lane.threads.filter((x) => x !== t);
      onReady();
      if (p) settle(p, () => p.reject(new ApiFailure('internal', message)));
      pump(lane);
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') {
        t.loaded = true;
        if (!t.busy) worker.unref();
        return onReady();
      }
      const p = t.busy;
      if (!p || m.id !== p.id) return;
      if (m.type === 'progress') {
        p.onProgress?.(m.progress);
        return;
      }
      t.busy = null;
      if (m.type === 'done') settle(p, () => p.resolve(m.output));
      else settle(p, () => p.reject(fromWire(m.error)));
      pump(lane);
    });
    worker.on('error', (e) => fail(`work thread failed: ${e.message}`));
    worker.on('exit', (code) => fail(`work thread exited with code ${code}`));
    lane.threads.push(t);
    return t;
  };

  const settle = (p: Pending, f: () => void) => {
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
    f();
  };

  function pump(lane: Lane): void {
    while (lane.queue.length && !closed) {
      let t = lane.threads.find((x) => !x.busy);
      if (!t && lane.threads.length < lane.max) t = startThread(lane);
      if (!t) return;
      const p = lane.queue.shift() as Pending;
      t.busy = p;
      t.worker.ref();
      t.worker.postMessage(p.message);
    }
    // an idle thread does not keep the process alive (one still loading does: warm() waits for it)
    for (const t of lane.threads) if (!t.busy && t.loaded) t.worker.unref();
  }

  return {
    kind: 'threads',
    run<K extends TaskName>(task: K, input: TaskInput<K>, opts: RunOptions<K> = {}) {
      if (closed) return Promise.reject(new ApiFailure('unavailable', 'the work threads are closed'));
      const cancel = new SharedArrayBuffer(4);
      if (opts.signal?.aborted) return Promise.reject(new ApiFailure('conflict', `${task} cancelled`));
      return new Promise<TaskOutput<K>>((resolve, reject) => {
        const id = nextId++;
        const p: Pending = {
          id,
          message: { type: 'run', id, task, input, cancel } as ToWorker,
          onProgress: opts.onProgress as ((p: unknown) => void) | undefined,
          resolve: resolve as (v: unknown) => void,
          reject,
          signal: opts.signal,
        };
        const lane = COMPARE_TASKS.has(task) ? compare : general;
        if (opts.signal) {
          p.onAbort = () => {
            Atomics.store(new Int32Array(cancel), 0, 1);
            // not started yet: leave the queue now
            const i = lane.queue.indexOf(p);
            if (i >= 0) {
              lane.queue.splice(i, 1);
              settle(p, () => reject(new ApiFailure('conflict', `${task} cancelled`)));
              return;
            }
            // running: a task inside one long synchronous call (h5wasm looping on a corrupt file)
            // never sees the flag, so its thread is stopped after a grace period
            setTimeout(() => {
              const t = lane.threads.find((x) => x.busy === p);
              if (!t) return;
              t.busy = null;
              lane.threads = lane.threads.filter((x) => x !== t);
              void t.worker.terminate();
              settle(p, () =>
                reject(
                  new ApiFailure(
                    'conflict',
                    `${task} cancelled; its work thread did not stop within ${CANCEL_GRACE_MS / 1000} s and was stopped`,
                  ),
                ),
              );
              pump(lane);
            }, CANCEL_GRACE_MS).unref();
          };
          opts.signal.addEventListener('abort', p.onAbort, { once: true });
        }
        lane.queue.push(p);
        pump(lane);
      });
    },
    async warm() {
      for (const lane of [general, compare])
        while (lane.threads.length < lane.max && !closed) startThread(lane);
      await Promise.all([...general.threads, ...compare.threads].map((t) => t.ready));
    },
    async close() {
      closed = true;
      for (const lane of [general, compare]) {
        for (const p of lane.queue.splice(0))
          settle(p, () => p.reject(new ApiFailure('unavailable', 'the work threads are closed')));
        // not awaited: a thread still loading its modules takes a while to stop, and closing (the
        // app quitting) must not wait for it; a stopped thread's open transaction is rolled back
        for (const t of lane.threads) void t.worker.terminate();
        lane.threads = [];
      }
    },
  };
}

/** The same tasks in this thread, on the services' library connection and engine. */
export function inlineRunner(ctx: { db: Db; engine: Engine }): WorkRunner {
  let compare: ReturnType<typeof createCompare> | null = null;
  const env: TaskEnv = {
    db: () => ctx.db,
    engine: ctx.engine,
    compare: () => (compare ??= createCompare(ctx)),
  };
  return {
    kind: 'inline',
    run<K extends TaskName>(task: K, input: TaskInput<K>, opts: RunOptions<K> = {}) {
      return runTask(env, task, input, {
        progress: (p) => opts.onProgress?.(p),
        cancelled: () => opts.signal?.aborted === true,
      });
    },
    async warm() {},
    async close() {},
  };
}
