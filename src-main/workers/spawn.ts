/**
 * Start a worker thread from a module next to the caller. Compiled: the .js file. From source (tests,
 * `node --import tsx`): the compiled twin of that file in build/main when the build is newer than
 * every source file (as after `npm ci`, whose `prepare` builds), else the .ts file through tsx's ESM
 * API, because Node 20 does not carry the parent's module hooks into worker threads; h5wasm is then
 * loaded before tsx's hooks, as through them its multi-megabyte Emscripten bundle costs ~600 MB of
 * resident memory and seconds per thread.
 *
 * Why the twin first: on Node 20, `register()` from tsx/esm/api in worker threads (one registration
 * per worker, many workers per process) was seen to leave a worker idle for good before its module
 * ran — a job that never started, a sweep that never finished (tsx#806 describes registrations that
 * stop settling on Node < 24.11). Compiled workers register nothing.
 *
 * `background`: the thread runs at a lower CPU priority from its first instruction (module loading
 * included), so that under contention the thread answering the user keeps the CPU. On Linux a nice
 * value belongs to a thread (setpriority on pid 0 changes only the caller); elsewhere it would lower
 * the whole process, so it is Linux only.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Newest modification time (ms) of the .ts files under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let sourceMtime: number | null = null;

/** build/main/<path>.js for src-main/<path>.ts, when it exists and no source file is newer. */
export function compiledTwin(tsUrl: string): string | null {
  const file = fileURLToPath(tsUrl);
  const marker = `${sep}src-main${sep}`;
  const at = file.lastIndexOf(marker);
  if (at < 0) return null;
  const root = file.slice(0, at);
  const twin = join(root, 'build', 'main', relative(join(root, 'src-main'), file)).replace(/\.ts$/, '.js');
  if (!existsSync(twin)) return null;
  sourceMtime ??= newestSource(join(root, 'src-main'));
  return statSync(twin).mtimeMs >= sourceMtime ? pathToFileURL(twin).href : null;
}

export function spawnModuleWorker(
  base: string,
  name: string,
  opts: Pick<WorkerOptions, 'workerData' | 'resourceLimits'> & { background?: boolean } = {},
): Worker {
  const { background, ...options } = opts;
  const sourceUrl = new URL(`./${name}.ts`, base).href;
  const twin = base.endsWith('.ts') ? compiledTwin(sourceUrl) : null;
  const fromSource = base.endsWith('.ts') && twin === null;
  const url = twin ?? new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, base).href;
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
