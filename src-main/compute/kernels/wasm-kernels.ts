/**
 * Our own WebAssembly SIMD kernels (wasm/*.c) for the wasm backend, run in place on TensorFlow.js'
 * memory and on all of the backend's threads:
 *  - filter_bias_grad_rows: dW and db of a stride-1 conv. XNNPACK has no kernel for this reduction
 *    over every pixel (as GEMMs it needs an im2col copy and runs K-unblocked); measured at 4×256×256,
 *    32→32 on 2 threads: 114 ms, against 505 ms as im2col GEMMs and 116 ms for the forward conv;
 *  - conv_thin_rows: the forward conv of the thin layers (1→32 and 32→1, and so their input
 *    gradients), which XNNPACK runs at a few GFLOP/s;
 *  - filter_bias_grad_thin_rows: dW and db of those thin layers, x read unpadded in place and, for a
 *    ReLU layer, dy masked by its output on the fly (filter_bias_grad_rows' sums, in its order);
 *  - relu_thin_grads_rows: dx, dW and db of a 1→O ReLU layer in one pass over dy and its output;
 *  - winograd_rows, winograd6_rows: Winograd F(4×4, 3×3) and F(6×6, 3×3) for the wide 3×3 layers
 *    (32→32) and their input gradients, a quarter and a fifth of the direct form's multiply-adds
 *    (F(4×4) measured single-threaded at 4×256×256, 32→32: 57 ms of CPU, about 85 GFLOP/s counted as
 *    direct-form FLOPs; F(6×6) about 18 % faster at 256×256);
 *  - dc_fft: the data-consistency layer's float64 FFTs (see data-consistency.ts);
 *  - energy_rows, energy_grad_rows: the attention energy Σ_c a_c² of an activation and its gradient
 *    (see channel-energy.ts), where tfjs-wasm runs single-threaded elementwise kernels.
 *
 * How: the kernel module imports TensorFlow.js' own wasm memory, so it reads and writes tensors by
 * address. Work is split by output-grid rows into PARTS fixed parts; the filter gradient sums each
 * part on its own and adds the parts in order in float64, so no result depends on how many threads
 * ran. With the threaded build (shared memory) the parts are shared between the calling thread and
 * `threads − 1` worker threads that instantiate the same module on the same memory; they wait on an
 * Atomics word, so a call is synchronous, as tfjs kernels must be.
 *
 * Parts are claimed, not assigned: every thread takes the next unclaimed part until none is left, and
 * the calling thread waits only for parts another thread has claimed. So a worker that has not
 * started yet, is descheduled by a busy machine, or died at start-up never holds a call up (with
 * fixed assignment the caller waited for it — for ever, had it died). Which thread ran a part does
 * not change its result, so results stay bit-identical for any thread count.
 */
import { Worker } from 'node:worker_threads';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { KDMRI_WASM } from './wasm/kernels.generated.js';

/** Fixed split of the rows; ≥ the thread count of any workstation we expect, and a multiple of 2, 4, 8. */
const PARTS = 16;
/**
 * A claimed part not finished in this long means its worker died mid-part (one part is at most about a
 * second of work): an error is better than a wedged process.
 */
const PART_TIMEOUT_MS = 120_000;

/** Byte addresses in the wasm memory, and the geometry (NHWC, HWIO, stride 1). */
export interface FilterGradProblem {
  /** x zero-padded by the conv padding, [batch][Hp][Wp][C]. */
  xp: number;
  /** [batch][oH][oW][O]. */
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

/** The geometry of a stride-1 conv on unpadded NHWC input: sizes, channels and top/left padding. */
export interface ConvGeometry {
  batch: number;
  H: number;
  W: number;
  oH: number;
  oW: number;
  C: number;
  O: number;
  padTop: number;
  padLeft: number;
}

export interface ThinConvProblem extends ConvGeometry {
  /** [batch][H][W][C], unpadded. */
  x: number;
  /** [kh][kw][C][O]. */
  w: number;
  /** [O], or 0 for none. */
  bias: number;
  /** [batch][oH][oW][O]. */
  y: number;
  kh: number;
  kw: number;
  relu: boolean;
  /** x's shape, x read as 0 where mask ≤ 0 (O = 1 only: a 1→O ReLU layer's input gradient), or 0 / absent. */
  mask?: number;
}

/** A thin layer's filter-gradient problem for filter_bias_grad_thin_rows: x unpadded, dy optionally masked. */
export interface ThinFilterGradProblem extends ConvGeometry {
  /** [batch][H][W][C], unpadded. */
  x: number;
  /** [batch][oH][oW][O]. */
  dy: number;
  /** dy's shape, dy read as 0 where mask ≤ 0 (a ReLU layer's output), or 0 for none. */
  mask: number;
  /** WasmKernels.scratchFloats({C, O, kh, kw}) float32 of scratch. */
  scratch: number;
  kh: number;
  kw: number;
}

export interface WinogradProblem extends ConvGeometry {
  /** [batch][H][W][C], unpadded. */
  x: number;
  /** x's shape, x read as 0 where mask ≤ 0 (a ReLU layer's output, for its input gradient), or 0 for none. */
  mask: number;
  /** Output tile size m of F(m×m, 3×3): 4 or 6 (WasmKernels.winogradTile). */
  tile: WinogradTile;
  /** The transformed filter, [(m+2)²][C][O] (WasmKernels.winogradFilter). */
  u: number;
  /** [O], or 0 for none. */
  bias: number;
  /** [batch][oH][oW][O]. */
  y: number;
  /** WasmKernels.winogradScratchFloats(C, O, tile) float32 of scratch. */
  scratch: number;
  relu: boolean;
}

/** The output tile size m of a Winograd F(m×m, 3×3) forward kernel. */
export type WinogradTile = 4 | 6;

/** A filter-gradient problem for winograd_filter_rows: x unpadded, the conv's top/left padding. */
export interface WinogradFilterProblem extends ConvGeometry {
  /** [batch][H][W][C], unpadded. */
  x: number;
  /** [batch][oH][oW][O]. */
  dy: number;
  /** dy's shape, dy read as 0 where mask ≤ 0 (a ReLU layer's output), or 0 for none. */
  mask: number;
  /** WasmKernels.winogradFilterScratchFloats(C, O) float32 of scratch. */
  scratch: number;
}

/** A 1→O ReLU layer's gradients for relu_thin_grads_rows (3×3, 'same': oH = H, oW = W, pad 1). */
export interface ReluThinGradsProblem {
  /** [batch][H][W], the layer's input. */
  x: number;
  /** [batch][H][W][O], the gradient at the layer's output. */
  dy: number;
  /** [batch][H][W][O], the layer's output y (dy counts where y > 0). */
  mask: number;
  /** [3][3][O], the filter flipped in space (dx = a 'same' O→1 conv of g with it). */
  wf: number;
  /** [batch][H][W], written. */
  dx: number;
  /** WasmKernels.reluThinGradsScratchFloats(W, O) float32 of scratch. */
  scratch: number;
  batch: number;
  H: number;
  W: number;
  O: number;
}

/** Tiles per block in winograd.c's filter gradient (WGF_TB). */
const WGF_TB = 32;

/** Floats of each part's staging area for one F(4×4) tile's transform in winograd.c (36 v128). */
const WINO_STAGE = 144;
/** Floats added to each position's block in winograd.c's scratch (WINO_PS, WGF_PS): no 4 KB aliasing. */
const WINO_SKEW = 16;

/** Tiles per block in winograd.c (WINO_TB): its scratch is 36 · WINO_TB · (C + O) floats per part. */
const WINO_TB = 8;

/** Lavin & Gray's G of F(4×4, 3×3): U = G g Gᵀ. */
const WINO_G = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
] as const;

/** G of F(6×6, 3×3) for the points 0, ±1, ±2, ±1/2 (NNPACK's): U = G g Gᵀ. */
const WINO_G6 = [
  [1, 0, 0],
  [-2 / 9, -2 / 9, -2 / 9],
  [-2 / 9, 2 / 9, -2 / 9],
  [1 / 90, 1 / 45, 2 / 45],
  [1 / 90, -1 / 45, 2 / 45],
  [32 / 45, 16 / 45, 8 / 45],
  [32 / 45, -16 / 45, 8 / 45],
  [0, 0, 1],
] as const;

type KernelFn = (...args: number[]) => void;
const KERNELS = [
  'filter_bias_grad_rows',
  'conv_thin_rows',
  'winograd_rows',
  'winograd_filter_rows',
  'dc_fft',
  'dc_fft_scratch_doubles',
  'winograd6_rows',
  'energy_rows',
  'energy_grad_rows',
  'filter_bias_grad_thin_rows',
  'relu_thin_grads_rows',
  'winograd_filter_finish_rows',
  'winograd_filter_transform_rows',
] as const;

// One ctl block shared by all threads. Words: 0 sequence (−1 = stop); 1 the next part to claim, as
// tag·64 + part, where tag is the sequence mod 2^24, so a thread still looking for work of an earlier
// call can never claim a part of this one; 2 parts finished; 3 error flag; 4 kernel; 5 floats per part
// of the output (0 when parts write disjoint rows of one output); 6 output address; 7 rows; 8 and 9
// how many arguments go before and after (output, first row, end row); then those arguments
const CTL_WORDS = 40;
const [SEQ, NEXT, DONE, ERROR] = [0, 1, 2, 3];
const ARGS = 4;

/**
 * Claim and run parts of call `seq` until none is left; `run(part)` runs one. Shared by the calling
 * thread and the workers (which get this function's source), so both claim the same way.
 */
function claimParts(c: Int32Array, seq: number, parts: number, run: (part: number) => void): void {
  const tag = (seq & 0xffffff) * 64;
  for (;;) {
    const v = Atomics.load(c, 1);
    if (v - (v % 64) !== tag || v % 64 >= parts) return;
    if (Atomics.compareExchange(c, 1, v, v + 1) !== v) continue;
    try {
      run(v % 64);
    } catch {
      Atomics.store(c, 3, 1);
    }
    if (Atomics.add(c, 2, 1) + 1 === parts) Atomics.notify(c, 2);
  }
}

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctl, parts, names } = workerData;
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
const kernels = names.map((n) => exports[n]);
const c = new Int32Array(ctl);
const claimParts = ${claimParts.toString()};
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  if (seen < 0) break;
  const run = kernels[c[${ARGS}]];
  const [partFloats, out, rows, nb, na] = c.subarray(${ARGS + 1}, ${ARGS + 6});
  const before = Array.from(c.subarray(${ARGS + 6}, ${ARGS + 6} + nb));
  const after = Array.from(c.subarray(${ARGS + 6} + nb, ${ARGS + 6} + nb + na));
  claimParts(c, seen, parts, (k) =>
    run(...before, out + 4 * k * partFloats, Math.floor((k * rows) / parts), Math.floor(((k + 1) * rows) / parts), ...after),
  );
}
`;

/** Byte addresses of an activation a [rows][W][C] and its energy e [rows][W]: NHWC with rows = B·H. */
export interface ChannelEnergyProblem {
  a: number;
  e: number;
  rows: number;
  W: number;
  C: number;
}

/** The energy's gradient: a and g (0 for none) and out [rows][W][C], de [rows][W]. */
export interface ChannelEnergyGradProblem {
  a: number;
  de: number;
  g: number;
  out: number;
  rows: number;
  W: number;
  C: number;
}

/** A data-consistency problem for dc_fft (wasm/dc-fft.c): byte addresses, one real image after another. */
export interface DcFftProblem {
  /** [batch][H][W] float32: the CNN output (or dy, for the input gradient). */
  x: number;
  /** [batch][H][W] float32 each, or 0 for zero k-space (the input gradient). */
  k0re: number;
  k0im: number;
  /** [H][W] float32, 1 = sampled. */
  mask: number;
  /** [batch][H][W] float32. */
  out: number;
  /** WasmKernels.dcFftScratchDoubles(H, W) float64, 8-byte aligned. */
  scratch: number;
  batch: number;
  H: number;
  W: number;
  /** Soft DC's λ, or −1 for hard replacement. */
  lambda: number;
}

export class WasmKernels {
  private readonly fns: KernelFn[];
  private readonly memory: WebAssembly.Memory;
  private readonly workers: Worker[] = [];
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * CTL_WORDS));
  private seq = 0;

  constructor(memory: WebAssembly.Memory, threads: number) {
    const shared = memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(
      Buffer.from(shared ? KDMRI_WASM.shared : KDMRI_WASM.plain, 'base64'),
    );
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    this.fns = KERNELS.map((n) => exports[n] as KernelFn);
    this.memory = memory;
    const n = shared ? Math.max(1, Math.min(threads, PARTS)) : 1;
    for (let w = 1; w < n; w++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { module, memory, ctl: this.ctl.buffer, parts: PARTS, names: KERNELS },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Threads that run the kernels (this one included). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Floats of scratch a filter-gradient problem needs. */
  static scratchFloats(p: Pick<FilterGradProblem, 'C' | 'O' | 'kh' | 'kw'>): number {
    return PARTS * (p.kh * p.kw * p.C * p.O + p.O);
  }

  /** Whether conv_thin_rows has a fast tile for this layer (one input or one output channel). */
  static thin(C: number, O: number): boolean {
    return (C === 1 && O % 8 === 0) || (O === 1 && C % 4 === 0);
  }

  /**
   * Run kernel `k` over the grid's `rows` in PARTS parts. Its arguments are `before`, then (out
   * address + part × partFloats floats, first row, end row), then `after`.
   */
  private dispatch(
    k: number,
    before: number[],
    out: number,
    partFloats: number,
    rows: number,
    after: number[],
  ) {
    const c = this.ctl;
    const seq = (this.seq = (this.seq % 0xffffff) + 1);
    c.set([k, partFloats, out, rows, before.length, after.length, ...before, ...after], ARGS);
    Atomics.store(c, ERROR, 0);
    Atomics.store(c, DONE, 0);
    Atomics.store(c, NEXT, seq * 64);
    Atomics.store(c, SEQ, seq);
    if (this.workers.length) Atomics.notify(c, SEQ);
    const run = this.fns[k];
    claimParts(c, seq, PARTS, (part) =>
      run(
        ...before,
        out + 4 * part * partFloats,
        Math.floor((part * rows) / PARTS),
        Math.floor(((part + 1) * rows) / PARTS),
        ...after,
      ),
    );
    // every part is claimed: wait for the ones other threads are still running
    let last = Date.now();
    let done: number;
    let seen = Atomics.load(c, DONE);
    while ((done = Atomics.load(c, DONE)) < PARTS) {
      if (done !== seen) [seen, last] = [done, Date.now()];
      else if (Date.now() - last > PART_TIMEOUT_MS)
        throw new Error(`wasm kernel ${KERNELS[k]}: a worker thread died while running a part`);
      Atomics.wait(c, DONE, done, 1000);
    }
    if (Atomics.load(c, ERROR)) throw new Error(`wasm kernel ${KERNELS[k]}: a part failed`);
  }

  /**
   * dW as kh·kw·C·O and db as O: fills the scratch with each part's sums, then `read` returns the
   * scratch as float32 and the parts are added in order in float64.
   */
  filterBiasGrad(p: FilterGradProblem, read: () => Float32Array): [Float32Array, Float32Array] {
    const stride = p.kh * p.kw * p.C * p.O + p.O;
    this.dispatch(0, [p.xp, p.dy], p.scratch, stride, p.batch * p.oH, [
      p.Hp,
      p.Wp,
      p.oH,
      p.oW,
      p.C,
      p.O,
      p.kh,
      p.kw,
    ]);
    return WasmKernels.addParts(read(), stride, stride - p.O, p.O);
  }

  /** Whether filter_bias_grad_thin_rows runs this layer: C = 1 with O % 4 = 0, or O = 1 with C % 4 = 0. */
  static thinGrad(C: number, O: number): boolean {
    return (C === 1 && O % 4 === 0) || (O === 1 && C % 4 === 0);
  }

  /**
   * filterBiasGrad for a thin layer, x unpadded and dy optionally masked: the same part split and the
   * same sums in the same order, so (finite values) the same bits as filterBiasGrad on zero-padded x
   * and on dy ⊙ (mask > 0).
   */
  filterBiasGradThin(p: ThinFilterGradProblem, read: () => Float32Array): [Float32Array, Float32Array] {
    if (!WasmKernels.thinGrad(p.C, p.O))
      throw new Error(`wasm kernel filter_bias_grad_thin_rows: C=${p.C}, O=${p.O} is not thin`);
    const stride = p.kh * p.kw * p.C * p.O + p.O;
    this.dispatch(
      KERNELS.indexOf('filter_bias_grad_thin_rows'),
      [p.x, p.dy, p.mask],
      p.scratch,
      stride,
      p.batch * p.oH,
      [p.H, p.W, p.oH, p.oW, p.C, p.O, p.kh, p.kw, p.padTop, p.padLeft],
    );
    return WasmKernels.addParts(read(), stride, stride - p.O, p.O);
  }

  private static reluThinGradsPartFloats(W: number, O: number): number {
    return 10 * O + 3 * W * O;
  }

  static reluThinGradsScratchFloats(W: number, O: number): number {
    return PARTS * WasmKernels.reluThinGradsPartFloats(W, O);
  }

  /**
   * dx into p.dx, and [dW as 3·3·O, db as O] of a 1→O ReLU layer (O % 4 = 0), g = dy ⊙ (y > 0) read
   * once: the same bits as convThin (masked, O = 1 of the flipped filter) and filterBiasGradThin (masked).
   */
  reluThinGrads(p: ReluThinGradsProblem, read: () => Float32Array): [Float32Array, Float32Array] {
    if (p.O % 4 !== 0) throw new Error(`wasm kernel relu_thin_grads_rows: O=${p.O} is not a multiple of 4`);
    const stride = WasmKernels.reluThinGradsPartFloats(p.W, p.O);
    this.dispatch(
      KERNELS.indexOf('relu_thin_grads_rows'),
      [p.x, p.dy, p.mask, p.wf, p.dx],
      p.scratch,
      stride,
      p.batch * p.H,
      [p.H, p.W, p.O],
    );
    return WasmKernels.addParts(read(), stride, 9 * p.O, p.O);
  }

  /** Each part's dW (n floats) and db (O) sums, at `stride` floats apart, added in part order in float64. */
  private static addParts(
    s: Float32Array,
    stride: number,
    n: number,
    O: number,
  ): [Float32Array, Float32Array] {
    const dw = new Float64Array(n);
    const db = new Float64Array(O);
    for (let k = 0; k < PARTS; k++) {
      const base = k * stride;
      for (let i = 0; i < n; i++) dw[i] += s[base + i];
      for (let o = 0; o < O; o++) db[o] += s[base + n + o];
    }
    return [Float32Array.from(dw), Float32Array.from(db)];
  }

  /**
   * Whether winograd_rows runs this layer: 3×3, C % 4 = 0, O % 8 = 0 and C ≥ 8 (with fewer input
   * channels the per-tile transforms outweigh the saved products; thin layers have their own kernel).
   * Stride and dilation 1 are the caller's to check.
   */
  static winograd(kh: number, kw: number, C: number, O: number): boolean {
    return kh === 3 && kw === 3 && C % 4 === 0 && O % 8 === 0 && C >= 8;
  }

  /**
   * The tile size for an oH×oW output: F(6×6) where its tiles cover fewer input-tile positions than
   * F(4×4)'s ((m+2)² per tile, edge tiles counted whole; at 256×256: 118,336 against 147,456), F(4×4)
   * otherwise (small images, where 6 divides badly) and on ties, being the more accurate.
   */
  static winogradTile(oH: number, oW: number): WinogradTile {
    const work = (m: number) => Math.ceil(oH / m) * Math.ceil(oW / m) * (m + 2) ** 2;
    return work(6) < work(4) ? 6 : 4;
  }

  private static winogradPartFloats(C: number, O: number, tile: WinogradTile): number {
    const positions = (tile + 2) ** 2;
    return positions * (WINO_TB * (C + O) + 2 * WINO_SKEW) + 4 * positions;
  }

  static winogradScratchFloats(C: number, O: number, tile: WinogradTile = 4): number {
    return PARTS * WasmKernels.winogradPartFloats(C, O, tile);
  }

  /**
   * U[p][c][o] = (G g Gᵀ)[p] of every (c, o) filter g of a 3×3 HWIO filter, summed in float64:
   * (m+2)² positions p, G of F(m×m, 3×3).
   */
  static winogradFilter(w: ArrayLike<number>, C: number, O: number, tile: WinogradTile = 4): Float32Array {
    const Gm = tile === 4 ? WINO_G : WINO_G6;
    const a6 = tile + 2;
    const CO = C * O;
    const u = new Float32Array(a6 * a6 * CO);
    const g = new Float64Array(9);
    const t = new Float64Array(3 * a6); // t[k][b] = Σ_l g[k][l] G[b][l]
    for (let q = 0; q < CO; q++) {
      for (let k = 0; k < 9; k++) g[k] = w[k * CO + q];
      for (let k = 0; k < 3; k++)
        for (let b = 0; b < a6; b++) {
          const G = Gm[b];
          t[k * a6 + b] = g[k * 3] * G[0] + g[k * 3 + 1] * G[1] + g[k * 3 + 2] * G[2];
        }
      for (let a = 0; a < a6; a++) {
        const G = Gm[a];
        for (let b = 0; b < a6; b++)
          u[(a * a6 + b) * CO + q] = G[0] * t[b] + G[1] * t[a6 + b] + G[2] * t[2 * a6 + b];
      }
    }
    return u;
  }

  /**
   * winogradFilter on all threads (winograd_filter_transform_rows, the same bits), from the filter at
   * byte address `w` into `u` ((m+2)²·C·O float32). With `flip`, w is [3][3][O][C], the filter of the
   * conv whose input gradient this conv (C → O) is, used flipped in space with in/out swapped.
   */
  winogradFilterInPlace(w: number, u: number, C: number, O: number, tile: WinogradTile, flip: boolean): void {
    this.dispatch(KERNELS.indexOf('winograd_filter_transform_rows'), [w], u, 0, C * O, [
      C,
      O,
      tile,
      flip ? 1 : 0,
    ]);
  }

  /** y = act(conv(x, w) + bias) by Winograd F(m×m, 3×3), m = p.tile, for a layer where winograd(3, 3, C, O). */
  convWinograd(p: WinogradProblem): void {
    const name = p.tile === 4 ? 'winograd_rows' : 'winograd6_rows';
    if (!WasmKernels.winograd(3, 3, p.C, p.O))
      throw new Error(`wasm kernel ${name}: C=${p.C}, O=${p.O} is not supported`);
    this.dispatch(
      KERNELS.indexOf(name),
      [p.x, p.mask, p.u, p.bias, p.y],
      p.scratch,
      WasmKernels.winogradPartFloats(p.C, p.O, p.tile),
      p.batch * Math.ceil(p.oH / p.tile),
      [p.H, p.W, p.oH, p.oW, p.C, p.O, p.padTop, p.padLeft, p.relu ? 1 : 0],
    );
  }

  /** Floats of one part of winograd_filter_rows' scratch: its Wt (36·C·O), db (O), then its work space. */
  static winogradFilterPartFloats(C: number, O: number): number {
    return 36 * C * O + O + 36 * (WGF_TB * (C + O) + 2 * WINO_SKEW) + WINO_STAGE;
  }

  /** The parts' sums and scratch, then dW (9·C·O floats, written by winograd_filter_finish_rows). */
  static winogradFilterScratchFloats(C: number, O: number): number {
    return PARTS * WasmKernels.winogradFilterPartFloats(C, O) + 9 * C * O;
  }

  /**
   * dW as [3][3][C][O] and db as [O] of a 3×3 stride-1 conv by Winograd F(3×3, 4×4): each part's sums
   * Wt[p][c][o] are added in order in float64, then dW = Gᵀ Wt G per (c, o) (winograd_filter_finish_rows);
   * `read` gives the scratch as float32 (dW and the parts' db sums, added here in order in float64).
   */
  filterBiasGradWinograd(p: WinogradFilterProblem, read: () => Float32Array): [Float32Array, Float32Array] {
    if (!WasmKernels.winograd(3, 3, p.C, p.O))
      throw new Error(`wasm kernel winograd_filter_rows: C=${p.C}, O=${p.O} is not supported`);
    const stride = WasmKernels.winogradFilterPartFloats(p.C, p.O);
    const CO = p.C * p.O;
    this.dispatch(3, [p.x, p.dy, p.mask], p.scratch, stride, p.batch * Math.ceil(p.oH / 4), [
      p.H,
      p.W,
      p.oH,
      p.oW,
      p.C,
      p.O,
      p.padTop,
      p.padLeft,
    ]);
    // the parts' Wt added and transformed to dW by winograd_filter_finish_rows, on all threads: the
    // same float64 sums as in TypeScript here before, which took 2.3 ms on this thread alone (4×256×256,
    // 32→32, 2 threads; 1.4 ms less per call measured)
    const dwAt = p.scratch + 4 * PARTS * stride;
    this.dispatch(KERNELS.indexOf('winograd_filter_finish_rows'), [p.scratch], dwAt, 0, CO, [
      stride,
      PARTS,
      CO,
    ]);
    const s = read();
    const db = new Float64Array(p.O);
    for (let k = 0; k < PARTS; k++) {
      const base = k * stride + 36 * CO;
      for (let o = 0; o < p.O; o++) db[o] += s[base + o];
    }
    const dw = s.slice(PARTS * stride, PARTS * stride + 9 * CO);
    return [dw, Float32Array.from(db)];
  }

  /** Whether dc_fft runs images of this size: powers of two, H ≥ 2 (rows go in pairs), W ≥ 2. */
  static dcFft(H: number, W: number): boolean {
    const pow2 = (n: number) => n >= 2 && (n & (n - 1)) === 0;
    return pow2(H) && pow2(W);
  }

  /** Float64 scratch of dc_fft for an H×W image (its transposed rows, half spectrum and twiddles). */
  dcFftScratchDoubles(H: number, W: number): number {
    return (this.fns[5] as unknown as (h: number, w: number) => number)(H, W);
  }

  /**
   * out = Re F⁻¹(D ⊙ F(x) + E ⊙ k0) per image, in float64 on this thread (wasm/dc-fft.c: the same
   * butterflies as kspace/fft.ts's real-input path, so the same values). `twiddles(n)` gives fft.ts's
   * radix-2 tables of length n (cos and sin of −2πk/n, k < n/2), copied to the scratch's end.
   */
  dataConsistency(p: DcFftProblem, twiddles: (n: number) => { cos: Float64Array; sin: Float64Array }): void {
    if (!WasmKernels.dcFft(p.H, p.W))
      throw new Error(`wasm kernel dc_fft: ${p.H}×${p.W} is not a power-of-two size`);
    if (p.scratch % 8 !== 0) throw new Error('wasm kernel dc_fft: the scratch is not 8-byte aligned');
    const total = this.dcFftScratchDoubles(p.H, p.W);
    const tw = new Float64Array(this.memory.buffer, p.scratch + 8 * (total - p.W - p.H), p.W + p.H);
    const a = twiddles(p.W);
    const b = twiddles(p.H);
    tw.set(a.cos, 0);
    tw.set(a.sin, p.W / 2);
    tw.set(b.cos, p.W);
    tw.set(b.sin, p.W + p.H / 2);
    this.fns[4](
      p.x,
      p.k0re,
      p.k0im,
      p.mask,
      p.lambda,
      p.out,
      p.scratch,
      p.batch,
      p.H,
      p.W,
      1 / Math.sqrt(p.H * p.W),
    );
  }

  /** y = act(conv(x, w) + bias) into y, for a layer where thin(C, O). */
  convThin(p: ThinConvProblem): void {
    if (!WasmKernels.thin(p.C, p.O))
      throw new Error(`wasm kernel conv_thin_rows: C=${p.C}, O=${p.O} is not thin`);
    // parts write disjoint output rows: the "part size" offset is 0 and each call gets the whole y
    if (p.mask && p.O !== 1) throw new Error(`wasm kernel conv_thin_rows: a mask needs O = 1, got O=${p.O}`);
    this.dispatch(1, [p.x, p.mask ?? 0, p.w, p.bias], p.y, 0, p.batch * p.oH, [
      p.H,
      p.W,
      p.oH,
      p.oW,
      p.C,
      p.O,
      p.kh,
      p.kw,
      p.padTop,
      p.padLeft,
      p.relu ? 1 : 0,
    ]);
  }

  /** e[p] = Σ_c a[p][c]² over p < pixels (pixels = rows · W), c in order, float32 (wasm/energy.c). */
  channelEnergy(p: ChannelEnergyProblem): void {
    this.dispatch(KERNELS.indexOf('energy_rows'), [p.a], p.e, 0, p.rows, [p.W, p.C]);
  }

  /** out[p][c] = g[p][c] + a[p][c] · (2 de[p]), or a[p][c] · (2 de[p]) when g is 0 (wasm/energy.c). */
  channelEnergyGrad(p: ChannelEnergyGradProblem): void {
    this.dispatch(KERNELS.indexOf('energy_grad_rows'), [p.a, p.de, p.g], p.out, 0, p.rows, [p.W, p.C]);
  }

  dispose(): void {
    Atomics.store(this.ctl, SEQ, -1);
    Atomics.notify(this.ctl, SEQ);
    for (const worker of this.workers) void worker.terminate();
    this.workers.length = 0;
  }
}

/** The parts of tfjs-backend-wasm's BackendWasm used to run our kernels on its memory. */
export interface WasmBackendInternals {
  dataIdMap: { get(d: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  wasm: {
    tfjs: { getThreadsCount?(): number };
    /** The memory: Module.wasmMemory in the threaded build, the exported one otherwise. */
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
  };
}

export function isWasmBackend(b: KernelBackend): b is KernelBackend & WasmBackendInternals {
  const r = b as unknown as Partial<WasmBackendInternals>;
  return (
    typeof r.makeOutput === 'function' && typeof r.dataIdMap?.get === 'function' && r.wasm?.tfjs !== undefined
  );
}

const runners = new WeakMap<object, WasmKernels | null>();

/** The backend's kernel runner, made once; null when its memory cannot be reached. */
export function wasmKernelsFor(backend: KernelBackend & WasmBackendInternals): WasmKernels | null {
  let r = runners.get(backend);
  if (r === undefined) {
    const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
    r = memory ? new WasmKernels(memory, backend.wasm.tfjs.getThreadsCount?.() ?? 1) : null;
    runners.set(backend, r);
  }
  return r;
}

/** Byte address of a tensor's data in the wasm memory. */
export function addressOf(backend: WasmBackendInternals, t: TensorInfo): number {
  const d = backend.dataIdMap.get(t.dataId as object);
  if (!d) throw new Error('kdmri wasm kernels: tensor data not found on the wasm backend');
  return d.memoryOffset;
}
