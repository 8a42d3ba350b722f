/**
 * Start a worker thread from a module next to the caller. Compiled: the .js file. From source (tests,
 * `node --import tsx`): the .ts file through tsx's ESM API, because Node 20 does not carry the
 * parent's module hooks into worker threads; h5wasm is then loaded before tsx's hooks, as through them
 * its multi-megabyte Emscripten bundle costs ~600 MB of resident memory and seconds per thread.
 *
 * `background`: the thread runs at a lower CPU priority from its first instruction (module loading
 * included), so that under contention the thread answering the user keeps the CPU. On Linux a nice
 * value belongs to a thread (setpriority on pid 0 changes only the caller); elsewhere it would lower
 * the whole process, so it is Linux only.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function spawnModuleWorker(
  base: string,
  name: string,
  opts: Pick<WorkerOptions, 'workerData' | 'resourceLimits'> & { background?: boolean } = {},
): Worker {
  const { background, ...options } = opts;
  const fromSource = base.endsWith('.ts');
  const url = new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, base).href;
  const nice =
    background && process.platform === 'linux'
      ? `try { require('node:os').setPriority(require('node:os').constants.priority.PRIORITY_BELOW_NORMAL); } catch {}\n`
      : '';
  if (!fromSource && !nice) return new Worker(new URL(url), options);
  const load = fromSource
    ? `import('h5wasm/node').then((m) => m.default.ready)` +
      `.then(() => import('tsx/esm/api')).then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`
    : `import(${JSON.stringify(url)})`;
  return new Worker(nice + load, { ...options, eval: true });
}
