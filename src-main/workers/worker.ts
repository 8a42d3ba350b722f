/**
 * A work thread: runs tasks (tasks.ts) posted by the pool, one at a time, with its own library
 * connections (SQLite in WAL mode lets the main thread read while this one writes) and the real
 * engine. Progress and the outcome go back as messages; a cancel flag is shared per task.
 */
import { parentPort } from 'node:worker_threads';
import { isApiError } from '../contract/api.js';
import { openDatabase, type Db } from '../store/db.js';
import { createCompare } from '../services/compare.js';
import { engine } from '../services/engine.js';
import type { FromWorker, ToWorker, WireError } from './protocol.js';
import { runTask, type TaskEnv } from './tasks.js';
// side effects: the HDF5 reader and the compressed-syntax codecs register themselves
import '../studies/hdf5/index.js';
import '../studies/dicom/codecs.js';

const port = parentPort;
if (!port) throw new Error('workers/worker.ts runs as a worker thread (see workers/pool.ts)');

const dbs = new Map<string, Db>();
const compares = new Map<string, ReturnType<typeof createCompare>>();
const env: TaskEnv = {
  db(dbPath) {
    let db = dbs.get(dbPath);
    if (!db) {
      db = openDatabase(dbPath);
      dbs.set(dbPath, db);
    }
    return db;
  },
  engine,
  compare(dbPath) {
    let c = compares.get(dbPath);
    if (!c) {
      c = createCompare({ engine, db: env.db(dbPath) });
      compares.set(dbPath, c);
    }
    return c;
  },
};

export function toWire(e: unknown): WireError {
  if (isApiError(e)) return { name: 'ApiFailure', code: e.code, message: e.message, where: e.where };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

const post = (m: FromWorker) => port.postMessage(m);

port.on('message', (m: ToWorker | { type: 'close' }) => {
  if (m.type === 'close') {
    for (const db of dbs.values()) db.close();
    dbs.clear();
    port.close();
    return;
  }
  const flag = new Int32Array(m.cancel);
  runTask(env, m.task, m.input as never, {
    progress: (progress) => post({ type: 'progress', id: m.id, progress }),
    cancelled: () => Atomics.load(flag, 0) === 1,
  }).then(
    // outputs are copied, not transferred: Compare's results share buffers with its cache
    (output) => post({ type: 'done', id: m.id, output }),
    (e: unknown) => post({ type: 'error', id: m.id, error: toWire(e) }),
  );
});
post({ type: 'ready' });
