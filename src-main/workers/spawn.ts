/**
 * Start a worker thread from a module next to the caller. Compiled: the .js file directly. From source
 * (tests, `node --import tsx`): the .ts file through tsx's ESM API, because Node 20 does not carry the
 * parent's module hooks into worker threads. h5wasm is loaded before tsx's hooks in that case: through
 * them its multi-megabyte Emscripten bundle costs ~600 MB of resident memory and seconds per thread.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function spawnModuleWorker(
  base: string,
  name: string,
  opts: Pick<WorkerOptions, 'workerData' | 'resourceLimits'> = {},
): Worker {
  if (!base.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, base), opts);
  const url = new URL(`./${name}.ts`, base).href;
  const boot =
    `import('h5wasm/node').then((m) => m.default.ready)` +
    `.then(() => import('tsx/esm/api')).then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(boot, { ...opts, eval: true });
}
