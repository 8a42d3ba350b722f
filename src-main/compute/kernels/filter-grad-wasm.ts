/**
 * The filter and bias gradients of a stride-1 conv on the wasm backend, by our own WebAssembly SIMD
 * kernel (wasm/filter-grad.c), run on all of the backend's threads.
 *
 * Why: XNNPACK has no kernel for this reduction over every pixel; as GEMMs it needs an im2col copy
 * and runs K-unblocked (measured at 4×256×256, 32→32 on 2 threads: 330 ms per layer, against 116 ms
 * for the forward conv). This kernel keeps a 4×8 tile of dW in registers while it sweeps an output row.
 *
 * How: the kernel module imports TensorFlow.js' own wasm memory, so it reads x (zero-padded) and dy
 * in place by address and writes partial sums into a scratch tensor. The grid's rows are split into
 * PARTS fixed parts, each summed on its own, and the parts are added in order in float64: the result
 * does not depend on how many threads ran the parts. With the threaded build (shared memory) the
 * parts are shared between the calling thread and `threads − 1` worker threads that instantiate the
 * same module on the same memory; they wait on an Atomics word, so a call is synchronous, as tfjs
 * kernels must be.
 */
import { Worker } from 'node:worker_threads';
import { FILTER_GRAD_WASM } from './wasm/kernels.generated.js';

/** Fixed split of the rows; ≥ the thread count of any workstation we expect, and a multiple of 2, 4, 8. */
const PARTS = 16;
/** A worker that has not answered in this long is taken as dead (a wedged process is worse than an error). */
const WORKER_TIMEOUT_MS = 600_000;

export interface FilterGradProblem {
  /** Byte addresses in the wasm memory. */
  xp: number;
  dy: number;
  /** PARTS × (kh·kw·C·O + O) float32 of scratch. */
  scratch: number;
  batch: number;
  Hp: number;
  Wp: number;
  oH: number;
  oW: number;
  C: number;
  O: number;
  kh: number;
  kw: number;
}

type KernelFn = (...args: number[]) => void;

// ctl words: 0 sequence (−1 = stop), 1 done sequence, 2 error flag, then the problem
const CTL_WORDS = 20;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctl, first, step, parts } = workerData;
const run = new WebAssembly.Instance(module, { env: { memory } }).exports.filter_bias_grad_rows;
const c = new Int32Array(ctl);
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  if (seen < 0) break;
  try {
    const [xp, dy, scratch, stride, R, Hp, Wp, oH, oW, C, O, kh, kw] = c.subarray(3, 16);
    for (let k = first; k < parts; k += step)
      run(xp, dy, scratch + 4 * k * stride, Math.floor((k * R) / parts), Math.floor(((k + 1) * R) / parts), Hp, Wp, oH, oW, C, O, kh, kw);
  } catch (e) {
    Atomics.store(c, 2, 1);
  }
  Atomics.store(c, 1, seen);
  Atomics.notify(c, 1);
}
`;

export class WasmFilterGrad {
  private readonly run: KernelFn;
  private readonly workers: { worker: Worker; ctl: Int32Array }[] = [];
  private seq = 0;

  constructor(memory: WebAssembly.Memory, threads: number) {
    const shared = memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(
      Buffer.from(shared ? FILTER_GRAD_WASM.shared : FILTER_GRAD_WASM.plain, 'base64'),
    );
    this.run = new WebAssembly.Instance(module, { env: { memory } }).exports
      .filter_bias_grad_rows as KernelFn;
    const n = shared ? Math.max(1, Math.min(threads, PARTS)) : 1;
    for (let w = 1; w < n; w++) {
      const ctl = new Int32Array(new SharedArrayBuffer(4 * CTL_WORDS));
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { module, memory, ctl: ctl.buffer, first: w, step: n, parts: PARTS },
      });
      worker.unref();
      this.workers.push({ worker, ctl });
    }
  }

  /** Threads that run the kernel (this one included). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Floats of scratch the problem needs. */
  static scratchFloats(p: Pick<FilterGradProblem, 'C' | 'O' | 'kh' | 'kw'>): number {
    return PARTS * (p.kh * p.kw * p.C * p.O + p.O);
  }

  /** Any C and O; the fast register tiles need C % 4 = 0 and/or O % 8 = 0 (see filter-grad.c). */
  static supports(C: number, O: number): boolean {
    return Number.isInteger(C) && Number.isInteger(O) && C >= 1 && O >= 1;
  }

  /**
   * Fill the scratch with each part's sums; `read` then gets the scratch as float32 and returns
   * [dW as kh·kw·C·O, db as O], the parts added in order in float64.
   */
  compute(p: FilterGradProblem, read: () => Float32Array): [Float32Array, Float32Array] {
    const stride = p.kh * p.kw * p.C * p.O + p.O;
    const R = p.batch * p.oH;
    const seq = ++this.seq;
    for (const { ctl } of this.workers) {
      ctl.set([p.xp, p.dy, p.scratch, stride, R, p.Hp, p.Wp, p.oH, p.oW, p.C, p.O, p.kh, p.kw], 3);
      Atomics.store(ctl, 2, 0);
      Atomics.store(ctl, 0, seq);
      Atomics.notify(ctl, 0);
    }
    const step = this.threads;
    for (let k = 0; k < PARTS; k += step) {
      this.run(
        p.xp,
        p.dy,
        p.scratch + 4 * k * stride,
        Math.floor((k * R) / PARTS),
        Math.floor(((k + 1) * R) / PARTS),
        p.Hp,
        p.Wp,
        p.oH,
        p.oW,
        p.C,
        p.O,
        p.kh,
        p.kw,
      );
    }
    for (const { ctl } of this.workers) {
      const deadline = Date.now() + WORKER_TIMEOUT_MS;
      let done: number;
      while ((done = Atomics.load(ctl, 1)) !== seq) {
        if (Date.now() > deadline) throw new Error('filter-grad kernel: a worker thread did not answer');
        Atomics.wait(ctl, 1, done, 1000);
      }
      if (Atomics.load(ctl, 2)) throw new Error('filter-grad kernel: a worker thread failed');
    }
    const s = read();
    const n = stride - p.O;
    const dw = new Float64Array(n);
    const db = new Float64Array(p.O);
    for (let k = 0; k < PARTS; k++) {
      const base = k * stride;
      for (let i = 0; i < n; i++) dw[i] += s[base + i];
      for (let o = 0; o < p.O; o++) db[o] += s[base + n + o];
    }
    return [Float32Array.from(dw), Float32Array.from(db)];
  }

  dispose(): void {
    for (const { worker, ctl } of this.workers) {
      Atomics.store(ctl, 0, -1);
      Atomics.notify(ctl, 0);
      void worker.terminate();
    }
    this.workers.length = 0;
  }
}
