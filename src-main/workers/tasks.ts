/**
 * What each task does, written once: a worker thread (worker.ts) runs these with its own database
 * connections and the real engine; the in-thread runner (pool.ts, `inlineRunner`) runs the very same
 * functions with the services' connection and engine (the CLI, and tests giving engine doubles).
 *
 * A task sees `cancelled()` and checks it between two steps (series, files); a cancelled task ends
 * with an ApiFailure('conflict', '… cancelled').
 */
import { ApiFailure } from '../contract/api.js';
import type { Db } from '../store/db.js';
import { importPaths } from '../studies/import.js';
import { retrieveSeriesInto } from '../studies/dicomweb.js';
import { Deidentifier } from '../studies/deidentify.js';
import { convertFile } from '../services/convert.js';
import { createCompare } from '../services/compare.js';
import type { Engine } from '../services/engine.js';
import { exportSeriesFiles } from '../services/exports.js';
import type { TaskInput, TaskName, TaskOutput, TaskProgress } from './protocol.js';

/** The library connections, engine and Compare state a thread's tasks share. */
export interface TaskEnv {
  db(dbPath: string): Db;
  engine: Engine;
  compare(dbPath: string): ReturnType<typeof createCompare>;
}

export interface TaskContext<K extends TaskName> {
  progress(p: TaskProgress<K>): void;
  cancelled(): boolean;
}

type Impl<K extends TaskName> = (
  env: TaskEnv,
  input: TaskInput<K>,
  ctx: TaskContext<K>,
) => Promise<TaskOutput<K>> | TaskOutput<K>;

const stopIfCancelled = (ctx: { cancelled(): boolean }, what: string) => {
  if (ctx.cancelled()) throw new ApiFailure('conflict', `${what} cancelled`);
};

export const TASKS: { [K in TaskName]: Impl<K> } = {
  async import(env, { dbPath, paths, origin }, ctx) {
    return importPaths(env.db(dbPath), paths, (done, total, file) => ctx.progress({ done, total, file }), {
      origin,
      cancelled: () => ctx.cancelled(),
    });
  },
  async retrieve(env, { dbPath, settings, studyUid, seriesUid, storeDir }, ctx) {
    stopIfCancelled(ctx, 'retrieve');
    return retrieveSeriesInto(env.db(dbPath), settings, studyUid, seriesUid, storeDir, (done, total, file) =>
      ctx.progress({ done, total, file }),
    );
  },
  convert(_env, { input, out, index }) {
    return convertFile(input, out, index);
  },
  exportSeries(env, { dbPath, uid, format, out, window, deidentify }) {
    const db = env.db(dbPath);
    return exportSeriesFiles(db, uid, format, out, {
      window,
      deidentify: deidentify ? new Deidentifier(db.pseudonyms) : null,
    });
  },
  async compare(env, { dbPath, request }) {
    const c = env.compare(dbPath);
    const result = await c.compare(request);
    return { result, backend: c.backend() };
  },
  locate(env, { dbPath, request }) {
    return env.compare(dbPath).locate(request);
  },
  forgetModel(env, { dbPath, dir }) {
    env.compare(dbPath).forget(dir);
    return null;
  },
};

/** Run task `task` in this thread. */
export function runTask<K extends TaskName>(
  env: TaskEnv,
  task: K,
  input: TaskInput<K>,
  ctx: TaskContext<K>,
): Promise<TaskOutput<K>> {
  const impl = TASKS[task] as Impl<K>;
  return Promise.resolve().then(() => impl(env, input, ctx));
}
