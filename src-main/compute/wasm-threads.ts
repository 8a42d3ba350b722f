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
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { makeScratchDir } from '../util/scratch.js';

const require = createRequire(import.meta.url);
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';

/**
 * The knob, from the environment: KDMRI_WASM_THREADS=N (1–64) asks for N XNNPACK threads; the
 * default is the machine's cores, at most 8.
 *
 * (From b5da3e1 to the write-once fix below the default was one thread, because threaded starts
 * intermittently hung; the cause was the pool script being rewritten while a worker read it.)
 */
export function wantedWasmThreads(env: NodeJS.ProcessEnv = process.env): number {
  const cores = os.availableParallelism();
  const raw = env.KDMRI_WASM_THREADS;
  if (raw === undefined || raw === '') return Math.min(cores, 8);
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

/**
 * Write a pool script the first time only. The library builds the worker's Blob once per pool worker
 * (8 of them), each just before starting that worker; rewriting the file each time truncated it
 * while an earlier worker was still reading it, and that worker then ran an empty script and exited
 * (code 0) before its 'load' message, so the module waited for it for ever — the intermittent hang
 * of threaded runs on a busy machine (1 start in 5–30 with three backends starting at once). The
 * text is the same every time, so a file once written is never touched again.
 */
const written = new Map<string, string>();
function writeOnce(path: string, text: string): void {
  const before = written.get(path);
  if (before === text) return;
  if (before !== undefined)
    throw new Error(`wasm pool script ${path} would change while workers may read it`);
  writeFileSync(path, text);
  written.set(path, text);
}

let scriptDir: string | null = null;
function privateDir(): string {
  if (scriptDir) return scriptDir;
  const dir = makeScratchDir('kdmri-wasm-');
  scriptDir = dir;
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
        if (text.startsWith('var WasmBackendModuleThreadedSimd')) writeOnce(mainPath, imports + text);
      }
    }
  }
  const nativeCreateObjectURL = URL.createObjectURL.bind(URL);
  const createObjectURL = (blob: Blob): string => {
    const text = texts.get(blob);
    if (text === undefined || !text.includes('ENVIRONMENT_IS_PTHREAD')) return nativeCreateObjectURL(blob);
    writeOnce(workerPath, text + workerEpilogue);
    return workerPath;
  };
  // Emscripten waits for every pool worker's 'loaded' and never looks at a worker that exits first:
  // such an exit would wedge the initialisation for ever, so it fails it instead, with the reason.
  let failPool: (e: Error) => void = () => undefined;
  const poolFailed = new Promise<never>((_, reject) => {
    failPool = reject;
  });
  poolFailed.catch(() => undefined);
  class PoolWorker extends NodeWorker {
    constructor(filename: string | URL, options?: WorkerOptions) {
      // No inherited execArgv: the pool scripts are plain CommonJS, and flags such as --input-type or a
      // loader (--import tsx) would break or slow every worker
      super(filename, { ...options, execArgv: [] });
      this.unref();
      let loaded = false;
      this.on('message', (m: unknown) => {
        if ((m as { cmd?: unknown } | null)?.cmd === 'loaded') loaded = true;
      });
      this.once('exit', (code) => {
        if (!loaded)
          failPool(new Error(`a wasm pool thread exited (code ${code}) before it loaded the module`));
      });
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
    if (!(await Promise.race([tf.setBackend('wasm'), poolFailed])))
      throw new Error('the threaded wasm backend failed to initialise');
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
