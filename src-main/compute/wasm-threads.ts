/**
 * Multi-threaded XNNPACK for the wasm backend under Node and Electron's main process.
 *
 * Why: tfjs-backend-wasm 4.22 runs one thread in Node (tfjs#3830). Its threaded build starts its
 * pthread workers from Blob URLs, which Node's worker_threads cannot load, so the library reports
 * `WASM_HAS_MULTITHREAD_SUPPORT = false` under Node. It also caps the XNNPACK pool at logical cores / 2
 * (it assumes two hyper-threads per core), which is one thread on a 2-vCPU workstation.
 * Measured here (2 vCPUs): a 4×256×256 32→32 3×3 conv takes 320 ms on one thread, 195 ms on two.
 *
 * How, for the duration of the backend's initialisation only (everything is restored afterwards):
 *  - the two scripts the library would hand to workers as Blobs (the pthread worker and the
 *    Emscripten module factory) are captured as text when the library builds those Blobs and written
 *    to a private temporary folder as CommonJS files, so that Node starts the workers from files;
 *    the factory text refers to the bundle's CommonJS imports by their bundled names (`require$$0`…),
 *    which are re-declared from the bundle's own header;
 *  - the workers are created unreferenced, and stay so while they run a pthread, so that the pool
 *    never keeps a finished CLI command alive;
 *  - `os.cpus()` reports twice the real count while the wasm module's static constructors read it,
 *    so that the library's "/ 2" yields the real core count; the thread count is then `threads`.
 *
 * XNNPACK splits a convolution's output tiles across threads; each output element is still summed
 * in the same order, so results equal the single-threaded ones (test/compute/wasm-threads.test.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';

/**
 * The knob, from the environment: KDMRI_WASM_THREADS=N (1–64) asks for N XNNPACK threads.
 *
 * Default: one thread. The threaded path (this module's worker plumbing around Emscripten's pthreads)
 * was seen on Node 20 to leave a training worker blocked for good, intermittently and more often
 * under load (a job that never started, a sweep task that never ended, a CLI `eval` that hung for
 * 600 s in CI); we could not find the cause in time, and a run that hangs loses more than a run
 * that is ~1.6× slower. Single-threaded runs (dozens of reproduction jobs, all the CI jobs) never
 * hung. Ask for threads explicitly where the speed matters and a hang would be noticed.
 */
export function wantedWasmThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.KDMRI_WASM_THREADS;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new Error(`KDMRI_WASM_THREADS must be an integer from 1 to 64, got '${raw}'`);
  }
  return n;
}

interface WasmModule {
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

/** `var require$$0 = require('fs');` lines of the CommonJS bundle, which the factory text refers to. */
function bundleImports(): string {
  const bundle = readFileSync(require.resolve(WASM_PACKAGE), 'utf8');
  let out = 'var commonjsGlobal = globalThis;\n';
  for (const m of bundle.matchAll(/^var (require\$\$\d+) = require\('([\w:/-]+)'\);$/gm)) {
    out += `var ${m[1]} = require(${JSON.stringify(m[2])});\n`;
  }
  return out;
}

let scriptDir: string | null = null;
function privateDir(): string {
  if (scriptDir) return scriptDir;
  scriptDir = mkdtempSync(join(os.tmpdir(), 'kdmri-wasm-'));
  const dir = scriptDir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Initialise tfjs' wasm backend with `threads` XNNPACK threads (1 = the library's own Node path).
 * Resolves to the thread count in use; rejects if the backend cannot start.
 */
export async function setWasmBackend(threads: number): Promise<number> {
  const wasm = (await import(WASM_PACKAGE)) as unknown as WasmModule;
  if (threads <= 1) {
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
    return wasm.getThreadsCount();
  }

  const dir = privateDir();
  const mainPath = join(dir, 'module.cjs');
  const workerPath = join(dir, 'pthread-worker.cjs');
  // Worker side: a pthread worker is told to import the module factory from `urlOrBlob`, a Blob in the
  // library; point it at the file instead (Node's importScripts shim reads files only).
  const workerEpilogue =
    `\n;(function () { var handle = self.onmessage; self.onmessage = function (e) {` +
    ` if (e.data && e.data.cmd === 'load' && typeof e.data.urlOrBlob !== 'string') e.data.urlOrBlob = ${JSON.stringify(mainPath)};` +
    ` return handle(e); }; })();\n`;
  const imports = bundleImports();

  const texts = new WeakMap<Blob, string>();
  const NativeBlob = globalThis.Blob;
  class CapturingBlob extends NativeBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts && parts.every((p) => typeof p === 'string')) {
        const text = parts.join('');
        texts.set(this, text);
        if (text.startsWith('var WasmBackendModuleThreadedSimd')) writeFileSync(mainPath, imports + text);
      }
    }
  }
  const nativeCreateObjectURL = URL.createObjectURL.bind(URL);
  const createObjectURL = (blob: Blob): string => {
    const text = texts.get(blob);
    if (text === undefined || !text.includes('ENVIRONMENT_IS_PTHREAD')) return nativeCreateObjectURL(blob);
    writeFileSync(workerPath, text + workerEpilogue);
    return workerPath;
  };
  class PoolWorker extends NodeWorker {
    constructor(filename: string | URL, options?: WorkerOptions) {
      // No inherited execArgv: the pool scripts are plain CommonJS, and flags such as --input-type or a
      // loader (--import tsx) would break or slow every worker
      super(filename, { ...options, execArgv: [] });
      this.unref();
    }
    override ref(): void {
      // Emscripten refs a worker while it runs a pthread; XNNPACK's pool threads run for ever.
    }
  }
  const realCpus = os.cpus;
  const workerDescriptor = Object.getOwnPropertyDescriptor(globalThis, 'Worker');

  globalThis.Blob = CapturingBlob;
  URL.createObjectURL = createObjectURL;
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => PoolWorker, set: () => {} });
  os.cpus = () => {
    const c = realCpus();
    return [...c, ...c];
  };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  // The initialisation waits on the (unreferenced) pool workers' messages: with nothing else pending,
  // a worker thread or a CLI command would exit (code 0) mid-await. A referenced timer holds the
  // event loop open until the backend is ready.
  const hold = setInterval(() => undefined, 60_000);
  try {
    if (!(await tf.setBackend('wasm'))) throw new Error('the threaded wasm backend failed to initialise');
  } catch (e) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    wasm.setThreadsCount(1);
    throw e;
  } finally {
    clearInterval(hold);
    globalThis.Blob = NativeBlob;
    URL.createObjectURL = nativeCreateObjectURL;
    os.cpus = realCpus;
    if (workerDescriptor) Object.defineProperty(globalThis, 'Worker', workerDescriptor);
    else Reflect.deleteProperty(globalThis, 'Worker');
  }
  return wasm.getThreadsCount();
}
