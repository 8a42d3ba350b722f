/**
 * Our WebAssembly filter-gradient, Winograd, data-consistency and attention-energy kernels (src-main/compute/kernels/wasm/*.c) on their own,
 * without TensorFlow.js: against a float64 reference on a shared and on a plain memory, with the same
 * bits whatever the number of threads; and the committed binary against a rebuild from the C source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  WasmKernels,
  type FilterGradProblem,
  type ReluThinGradsProblem,
  type ThinFilterGradProblem,
  type WinogradFilterProblem,
  type WinogradProblem,
  type WinogradTile,
} from '../../src-main/compute/kernels/wasm-kernels.js';
import { applyDiagonalDc } from '../../src-main/compute/kernels/data-consistency.js';
import { radix2Twiddles } from '../../src-main/kspace/fft.js';
import { Rng } from '../../src-main/util/random.js';

const root = new URL('../..', import.meta.url).pathname;

function problem(shared: boolean, B: number, H: number, W: number, C: number, O: number, pad: number) {
  const memory = new WebAssembly.Memory({
    initial: 256,
    maximum: 65536,
    shared,
  } as WebAssembly.MemoryDescriptor);
  const f32 = () => new Float32Array(memory.buffer);
  const Hp = H + 2 * pad;
  const Wp = W + 2 * pad;
  const oH = Hp - 2;
  const oW = Wp - 2;
  const rng = new Rng(7);
  // x padded with zeros, then dy, then the scratch, 64-byte aligned
  const xpAt = 64;
  const dyAt = xpAt + 4 * B * Hp * Wp * C + 64;
  const scratchAt = dyAt + 4 * B * oH * oW * O + 64;
  const xp = new Float64Array(B * Hp * Wp * C);
  for (let n = 0; n < B; n++)
    for (let i = pad; i < pad + H; i++)
      for (let j = pad; j < pad + W; j++)
        for (let c = 0; c < C; c++) xp[((n * Hp + i) * Wp + j) * C + c] = rng.uniform(-1, 1);
  const dy = Float64Array.from({ length: B * oH * oW * O }, () => rng.uniform(-1, 1));
  f32().set(xp, xpAt / 4);
  f32().set(dy, dyAt / 4);
  const p: FilterGradProblem = {
    xp: xpAt,
    dy: dyAt,
    scratch: scratchAt,
    batch: B,
    Hp,
    Wp,
    oH,
    oW,
    C,
    O,
    kh: 3,
    kw: 3,
  };
  // float64 reference, from the same float32 values
  const xr = new Float32Array(xp);
  const gr = new Float32Array(dy);
  const dw = new Float64Array(9 * C * O);
  const db = new Float64Array(O);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < oH; i++)
      for (let j = 0; j < oW; j++) {
        const g = ((n * oH + i) * oW + j) * O;
        for (let o = 0; o < O; o++) db[o] += gr[g + o];
        for (let a = 0; a < 3; a++)
          for (let b = 0; b < 3; b++)
            for (let c = 0; c < C; c++) {
              const xv = xr[((n * Hp + i + a) * Wp + j + b) * C + c];
              for (let o = 0; o < O; o++) dw[((a * 3 + b) * C + c) * O + o] += xv * gr[g + o];
            }
      }
  const read = () => new Float32Array(memory.buffer, scratchAt, WasmKernels.scratchFloats(p));
  return { memory, p, read, dw, db };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

test('filter-gradient kernel matches a float64 reference, with the same bits on 1, 2 or 3 threads', () => {
  const { memory, p, read, dw, db } = problem(true, 2, 13, 9, 8, 16, 1);
  const results = [1, 2, 3].map((threads) => {
    const k = new WasmKernels(memory, threads);
    try {
      assert.equal(k.threads, threads);
      return k.filterBiasGrad(p, read);
    } finally {
      k.dispose();
    }
  });
  assert.ok(maxRel(results[0][0], dw) < 1e-5, `dW: ${maxRel(results[0][0], dw)}`);
  assert.ok(maxRel(results[0][1], db) < 1e-5, `db: ${maxRel(results[0][1], db)}`);
  for (const r of results.slice(1)) {
    assert.deepEqual(r[0], results[0][0]);
    assert.deepEqual(r[1], results[0][1]);
  }
});

test('a worker thread that is gone never holds a call up: the caller runs its parts, same bits', async () => {
  const { memory, p, read } = problem(true, 2, 13, 9, 8, 16, 1);
  const one = new WasmKernels(memory, 1);
  const expected = one.filterBiasGrad(p, read);
  one.dispose();
  const k = new WasmKernels(memory, 3);
  try {
    // a worker that died at start-up (or is descheduled for good): with parts assigned to threads
    // the call waited for it until a 10-minute timeout; parts are claimed, so it goes on without it
    const { workers } = k as unknown as { workers: import('node:worker_threads').Worker[] };
    await workers[0].terminate();
    const t0 = performance.now();
    const got = k.filterBiasGrad(p, read);
    assert.ok(performance.now() - t0 < 5000, 'no wait for the missing worker');
    assert.deepEqual(got[0], expected[0]);
    assert.deepEqual(got[1], expected[1]);
  } finally {
    k.dispose();
  }
});

for (const [C, O, tile] of [
  [1, 16, '1×8'],
  [8, 1, '4×1'],
  [3, 5, 'scalar'],
] as const) {
  test(`filter-gradient kernel, ${tile} tile (C=${C}, O=${O}), on a plain (unshared) memory: one thread, matches`, () => {
    const { memory, p, read, dw, db } = problem(false, 2, 7, 11, C, O, 1);
    const k = new WasmKernels(memory, 4);
    assert.equal(k.threads, 1);
    const [gw, gb] = k.filterBiasGrad(p, read);
    assert.ok(maxRel(gw, dw) < 1e-5, `dW: ${maxRel(gw, dw)}`);
    assert.ok(maxRel(gb, db) < 1e-5, `db: ${maxRel(gb, db)}`);
    k.dispose();
  });
}

/** The filter-gradient problem with x unpadded (as winograd_filter_rows reads it), after the scratch. */
function winogradFilterProblem(
  shared: boolean,
  B: number,
  H: number,
  W: number,
  C: number,
  O: number,
  pad: number,
) {
  const base = problem(shared, B, H, W, C, O, pad);
  const { p } = base;
  const f32 = new Float32Array(base.memory.buffer);
  const xAt = p.scratch + 4 * WasmKernels.scratchFloats(p) + 64;
  const scratchAt = xAt + 4 * B * H * W * C + 64;
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let c = 0; c < C; c++)
          f32[xAt / 4 + ((n * H + i) * W + j) * C + c] =
            f32[p.xp / 4 + ((n * p.Hp + i + pad) * p.Wp + j + pad) * C + c];
  const wp: WinogradFilterProblem = {
    x: xAt,
    dy: p.dy,
    mask: 0,
    scratch: scratchAt,
    batch: B,
    H,
    W,
    oH: p.oH,
    oW: p.oW,
    C,
    O,
    padTop: pad,
    padLeft: pad,
  };
  const read = () =>
    new Float32Array(base.memory.buffer, scratchAt, WasmKernels.winogradFilterScratchFloats(C, O));
  return { memory: base.memory, p: wp, read, dw: base.dw, db: base.db };
}

test('Winograd F(3×3,4×4) filter gradient matches a float64 reference (edge tiles), same bits on 1, 2 or 3 threads', () => {
  const { memory, p, read, dw, db } = winogradFilterProblem(true, 3, 13, 10, 8, 16, 1);
  const results = [1, 2, 3].map((threads) => {
    const k = new WasmKernels(memory, threads);
    try {
      return k.filterBiasGradWinograd(p, read);
    } finally {
      k.dispose();
    }
  });
  assert.ok(maxRel(results[0][0], dw) < 1e-5, `dW: ${maxRel(results[0][0], dw)}`);
  assert.ok(maxRel(results[0][1], db) < 1e-5, `db: ${maxRel(results[0][1], db)}`);
  for (const r of results.slice(1)) {
    assert.deepEqual(r[0], results[0][0]);
    assert.deepEqual(r[1], results[0][1]);
  }
});

/** Gᵀ of F(4×4, 3×3) as in wasm-kernels.ts. */
const G4 = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];

test('Winograd filter gradient: the parts added and transformed by winograd_filter_finish_rows, the same bits as in float64 TypeScript', () => {
  const C = 8,
    O = 16,
    parts = 16;
  const { memory, p, read } = winogradFilterProblem(true, 2, 14, 11, C, O, 1);
  const k = new WasmKernels(memory, 2);
  let dw: Float32Array;
  try {
    [dw] = k.filterBiasGradWinograd(p, read);
  } finally {
    k.dispose();
  }
  // the parts' Wt are still in the scratch: the sums the TypeScript did before, in its order
  const s = read();
  const stride = WasmKernels.winogradFilterPartFloats(C, O);
  assert.equal(s.length, parts * stride + 9 * C * O);
  const CO = C * O;
  const wt = new Float64Array(36 * CO);
  for (let part = 0; part < parts; part++) for (let i = 0; i < 36 * CO; i++) wt[i] += s[part * stride + i];
  const ref = new Float32Array(9 * CO);
  for (let q = 0; q < CO; q++) {
    const t = new Float64Array(18);
    for (let pa = 0; pa < 6; pa++)
      for (let pb = 0; pb < 6; pb++)
        for (let a = 0; a < 3; a++) t[a * 6 + pb] += G4[pa][a] * wt[(pa * 6 + pb) * CO + q];
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++) {
        let v = 0;
        for (let pb = 0; pb < 6; pb++) v += t[a * 6 + pb] * G4[pb][b];
        ref[(a * 3 + b) * CO + q] = v;
      }
  }
  assert.deepEqual(dw, ref);
});

test('Winograd filter gradient, valid padding, 32→32 on a plain memory: matches', () => {
  const { memory, p, read, dw, db } = winogradFilterProblem(false, 2, 11, 18, 32, 32, 0);
  const k = new WasmKernels(memory, 2);
  const [gw, gb] = k.filterBiasGradWinograd(p, read);
  assert.ok(maxRel(gw, dw) < 1e-5, `dW: ${maxRel(gw, dw)}`);
  assert.ok(maxRel(gb, db) < 1e-5, `db: ${maxRel(gb, db)}`);
  k.dispose();
});

/**
 * A Winograd conv problem on a fresh memory: x [B][H][W][C] unpadded, 3×3 filter, 'same' (pad 1) or
 * 'valid' (pad 0), bias and ReLU; with the float64 direct reference from the same float32 values.
 */
function winogradProblem(
  shared: boolean,
  B: number,
  H: number,
  W: number,
  C: number,
  O: number,
  pad: number,
  tile: WinogradTile,
) {
  const memory = new WebAssembly.Memory({
    initial: 256,
    maximum: 65536,
    shared,
  } as WebAssembly.MemoryDescriptor);
  const f32 = () => new Float32Array(memory.buffer);
  const oH = H + 2 * pad - 2;
  const oW = W + 2 * pad - 2;
  const rng = new Rng(11);
  const x = Float32Array.from({ length: B * H * W * C }, () => rng.uniform(-1, 1));
  const w = Float32Array.from({ length: 9 * C * O }, () => rng.uniform(-0.3, 0.3));
  const bias = Float32Array.from({ length: O }, () => rng.uniform(-0.1, 0.1));
  const u = WasmKernels.winogradFilter(w, C, O, tile);
  const xAt = 64;
  const uAt = xAt + 4 * x.length + 64;
  const biasAt = uAt + 4 * u.length + 64;
  const yAt = biasAt + 4 * O + 64;
  const scratchAt = yAt + 4 * B * oH * oW * O + 64;
  f32().set(x, xAt / 4);
  f32().set(u, uAt / 4);
  f32().set(bias, biasAt / 4);
  const p: WinogradProblem = {
    x: xAt,
    mask: 0,
    tile,
    u: uAt,
    bias: biasAt,
    y: yAt,
    scratch: scratchAt,
    batch: B,
    H,
    W,
    oH,
    oW,
    C,
    O,
    padTop: pad,
    padLeft: pad,
    relu: true,
  };
  const ref = new Float64Array(B * oH * oW * O);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < oH; i++)
      for (let j = 0; j < oW; j++)
        for (let o = 0; o < O; o++) {
          let s = bias[o];
          for (let a = 0; a < 3; a++)
            for (let b = 0; b < 3; b++) {
              const ii = i + a - pad;
              const jj = j + b - pad;
              if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
              for (let c = 0; c < C; c++)
                s += x[((n * H + ii) * W + jj) * C + c] * w[((a * 3 + b) * C + c) * O + o];
            }
          ref[((n * oH + i) * oW + j) * O + o] = Math.max(s, 0);
        }
  const read = () => new Float32Array(memory.buffer, yAt, B * oH * oW * O).slice();
  return { memory, p, read, ref };
}

for (const tile of [4, 6] as const) {
  test(`Winograd F(${tile}×${tile},3×3) kernel matches a float64 direct conv (bias, ReLU, edge tiles), same bits on 1, 2 or 3 threads`, () => {
    // 13×11: the last tile row and column are partial (for 4 and 6); 3 images: parts cross image boundaries
    const { memory, p, read, ref } = winogradProblem(true, 3, 13, 11, 8, 16, 1, tile);
    const results = [1, 2, 3].map((threads) => {
      new Float32Array(memory.buffer, p.y, ref.length).fill(NaN);
      const k = new WasmKernels(memory, threads);
      try {
        assert.equal(k.threads, threads);
        k.convWinograd(p);
        return read();
      } finally {
        k.dispose();
      }
    });
    assert.ok(maxRel(results[0], ref) < 1e-5, `y: ${maxRel(results[0], ref)}`);
    for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
  });

  test(`Winograd F(${tile}×${tile}) kernel, valid padding on a plain (unshared) memory, 32→32: one thread, matches`, () => {
    const { memory, p, read, ref } = winogradProblem(false, 2, 10, 19, 32, 32, 0, tile);
    const k = new WasmKernels(memory, 4);
    assert.equal(k.threads, 1);
    k.convWinograd(p);
    assert.ok(maxRel(read(), ref) < 1e-5, `y: ${maxRel(read(), ref)}`);
    k.dispose();
  });
}

for (const tile of [4, 6] as const) {
  test(`Winograd F(${tile}×${tile}) filter transform in wasm: the same bits as winogradFilter in TypeScript, flipped or not, on 1, 2 or 3 threads`, () => {
    const C = 8,
      O = 16;
    const memory = new WebAssembly.Memory({
      initial: 64,
      maximum: 65536,
      shared: true,
    } as WebAssembly.MemoryDescriptor);
    const rng = new Rng(17);
    // w [3][3][C][O] of this conv; f [3][3][O][C], the filter this conv is the input gradient of
    const w = Float32Array.from({ length: 9 * C * O }, () => rng.uniform(-0.5, 0.5));
    const f = new Float32Array(9 * C * O);
    for (let k = 0; k < 9; k++)
      for (let c = 0; c < C; c++)
        for (let o = 0; o < O; o++) f[(8 - k) * C * O + o * C + c] = w[k * C * O + c * O + o];
    const n = (tile + 2) ** 2 * C * O;
    const [wAt, fAt, uAt] = [64, 64 + 4 * w.length, 64 + 8 * w.length];
    const f32 = new Float32Array(memory.buffer);
    f32.set(w, wAt / 4);
    f32.set(f, fAt / 4);
    const ref = WasmKernels.winogradFilter(w, C, O, tile);
    for (const threads of [1, 2, 3]) {
      const k = new WasmKernels(memory, threads);
      try {
        for (const flip of [false, true]) {
          f32.fill(NaN, uAt / 4, uAt / 4 + n);
          k.winogradFilterInPlace(flip ? fAt : wAt, uAt, C, O, tile, flip);
          assert.deepEqual(f32.slice(uAt / 4, uAt / 4 + n), ref, `${threads} threads, flip ${flip}`);
        }
      } finally {
        k.dispose();
      }
    }
  });
}

test('Winograd tile choice: F(6×6) where its tiles cover less, F(4×4) for small or badly divided sizes', () => {
  assert.equal(WasmKernels.winogradTile(256, 256), 6);
  assert.equal(WasmKernels.winogradTile(240, 368), 6);
  assert.equal(WasmKernels.winogradTile(16, 16), 4); // 9 tiles of 64 = 16 of 36: a tie goes to F(4×4)
  assert.equal(WasmKernels.winogradTile(8, 8), 4);
});

test('dc_fft: the wasm data-consistency layer gives the JS real-input path bit for bit (hard and soft, batch 3)', () => {
  const [B, H, W] = [3, 16, 32];
  const n = H * W;
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536 } as WebAssembly.MemoryDescriptor);
  const k = new WasmKernels(memory, 1);
  const rng = new Rng(5);
  const x = Float32Array.from({ length: B * n }, () => rng.uniform(-1, 1));
  const mask = Float32Array.from({ length: n }, () => (rng.uniform(0, 1) < 0.4 ? 1 : 0));
  const kre = Float32Array.from({ length: B * n }, (_, i) => rng.uniform(-1, 1) * mask[i % n]);
  const kim = Float32Array.from({ length: B * n }, (_, i) => rng.uniform(-1, 1) * mask[i % n]);
  const at = { x: 64, k0re: 64 + 4 * B * n, k0im: 64 + 8 * B * n, mask: 64 + 12 * B * n };
  const outAt = at.mask + 4 * n;
  const scratchAt = outAt + 4 * B * n + 64;
  const f32 = new Float32Array(memory.buffer);
  f32.set(x, at.x / 4);
  f32.set(kre, at.k0re / 4);
  f32.set(kim, at.k0im / 4);
  f32.set(mask, at.mask / 4);
  for (const lambda of [-1, 0.5]) {
    for (const zeroK0 of [false, true]) {
      k.dataConsistency(
        {
          ...at,
          ...(zeroK0 ? { k0re: 0, k0im: 0 } : {}),
          out: outAt,
          scratch: scratchAt,
          batch: B,
          H,
          W,
          lambda,
        },
        radix2Twiddles,
      );
      const got = new Float32Array(memory.buffer, outAt, B * n).slice();
      const d = new Float64Array(n);
      const e = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const m = mask[i];
        d[i] = lambda > 0 ? 1 - m + m / (1 + lambda) : 1 - m;
        e[i] = lambda > 0 ? (m * lambda) / (1 + lambda) : m;
      }
      for (let b = 0; b < B; b++) {
        // one image at a time: applyDiagonalDc's path for a batch of 1 (the half spectrum of a real image)
        const want = new Float32Array(n);
        const part = (a: Float32Array) => a.subarray(b * n, (b + 1) * n);
        applyDiagonalDc(part(x), zeroK0 ? null : part(kre), zeroK0 ? null : part(kim), 1, H, W, d, e, want);
        assert.deepEqual(got.subarray(b * n, (b + 1) * n), want, `lambda ${lambda}, image ${b}`);
      }
    }
  }
  assert.throws(
    () =>
      k.dataConsistency(
        { ...at, out: outAt, scratch: scratchAt, batch: 1, H: 12, W: 16, lambda: -1 },
        radix2Twiddles,
      ),
    /12×16 is not a power-of-two size/,
  );
  k.dispose();
});

/**
 * energy_rows and energy_grad_rows against the float32 operations of tfjs-wasm's Square + Sum and
 * Multiply + Add, replayed one by one with Math.fround: the same bits, on 1, 2 or 3 threads.
 * 3×5×7 pixels (not a multiple of 4: the scalar tail), C = 32 (the SIMD path) and C = 6 (scalar).
 */
for (const C of [32, 6]) {
  test(`attention energy and its gradient step (C = ${C}): tfjs-wasm's float32 operations bit for bit, same bits on 1, 2 or 3 threads`, () => {
    const [B, H, W] = [3, 5, 7];
    const P = B * H * W;
    const memory = new WebAssembly.Memory({
      initial: 64,
      maximum: 65536,
      shared: true,
    } as WebAssembly.MemoryDescriptor);
    const rng = new Rng(9);
    // post-ReLU activations: a quarter zero, the rest spread over six orders of magnitude
    const a = Float32Array.from({ length: P * C }, () =>
      rng.uniform(0, 1) < 0.25 ? 0 : rng.uniform(0.5, 1) * 10 ** rng.uniform(-4, 2),
    );
    const de = Float32Array.from({ length: P }, () => rng.uniform(-1, 1));
    const g = Float32Array.from({ length: P * C }, () => rng.uniform(-1, 1));
    const at = { a: 64, de: 64 + 4 * P * C, g: 128 + 4 * P * (C + 1) };
    const eAt = at.g + 4 * P * C + 64;
    const outAt = eAt + 4 * P + 64;
    const f32 = new Float32Array(memory.buffer);
    f32.set(a, at.a / 4);
    f32.set(de, at.de / 4);
    f32.set(g, at.g / 4);
    const f = Math.fround;
    const wantE = new Float32Array(P);
    const wantG = new Float32Array(P * C);
    const wantNoG = new Float32Array(P * C);
    for (let p = 0; p < P; p++) {
      let s = 0;
      for (let c = 0; c < C; c++) s = f(s + f(a[p * C + c] * a[p * C + c]));
      wantE[p] = s;
      const k = f(de[p] * 2);
      for (let c = 0; c < C; c++) {
        const m = f(a[p * C + c] * k);
        wantNoG[p * C + c] = m;
        wantG[p * C + c] = f(g[p * C + c] + m);
      }
    }
    for (const threads of [1, 2, 3]) {
      const k = new WasmKernels(memory, threads);
      try {
        assert.equal(k.threads, threads);
        new Float32Array(memory.buffer, eAt, P).fill(NaN);
        k.channelEnergy({ a: at.a, e: eAt, rows: B * H, W, C });
        assert.deepEqual(
          new Float32Array(memory.buffer, eAt, P).slice(),
          wantE,
          `energy, ${threads} threads`,
        );
        for (const [gAt, want] of [
          [at.g, wantG],
          [0, wantNoG],
        ] as const) {
          new Float32Array(memory.buffer, outAt, P * C).fill(NaN);
          k.channelEnergyGrad({ a: at.a, de: at.de, g: gAt, out: outAt, rows: B * H, W, C });
          assert.deepEqual(
            new Float32Array(memory.buffer, outAt, P * C).slice(),
            want,
            `gradient ${gAt ? 'g + a·2dE' : 'a·2dE'}, ${threads} threads`,
          );
        }
      } finally {
        k.dispose();
      }
    }
  });
}

/**
 * A thin layer's gradient problem (C = 1 or O = 1, 3×3, pad 0 or 1) on a fresh memory: x unpadded and
 * zero-padded (for filter_bias_grad_rows), dy, a mask with about half its values ≤ 0 (some exactly 0),
 * g = dy · step(mask) as tfjs' Step and Multiply form it (−0 where dy < 0 is masked), the flipped
 * filter of the input gradient, outputs and scratch; and float64 references of dW, db and dx (dx only
 * for pad 1, the 'same' conv).
 */
function thinProblem(shared: boolean, B: number, H: number, W: number, C: number, O: number, pad: number) {
  const memory = new WebAssembly.Memory({
    initial: 256,
    maximum: 65536,
    shared,
  } as WebAssembly.MemoryDescriptor);
  const oH = H + 2 * pad - 2;
  const oW = W + 2 * pad - 2;
  const Hp = H + 2 * pad;
  const Wp = W + 2 * pad;
  const rng = new Rng(23);
  const x = Float32Array.from({ length: B * H * W * C }, () => rng.uniform(-1, 1));
  const dy = Float32Array.from({ length: B * oH * oW * O }, () => rng.uniform(-1, 1));
  const mask = Float32Array.from({ length: dy.length }, () =>
    rng.uniform(0, 1) < 0.1 ? 0 : rng.uniform(-1, 1),
  );
  const g = dy.map((v, i) => v * (mask[i] > 0 ? 1 : 0));
  const w = Float32Array.from({ length: 9 * C * O }, () => rng.uniform(-0.3, 0.3));
  // wf[a][b][o][c] = w[2−a][2−b][c][o]: the input gradient's filter
  const wf = new Float32Array(9 * C * O);
  for (let t = 0; t < 9; t++)
    for (let c = 0; c < C; c++)
      for (let o = 0; o < O; o++) wf[(t * O + o) * C + c] = w[((8 - t) * C + c) * O + o];
  const xp = new Float32Array(B * Hp * Wp * C);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H; i++)
      xp.set(x.subarray((n * H + i) * W * C, (n * H + i + 1) * W * C), ((n * Hp + i + pad) * Wp + pad) * C);
  const at: Record<string, number> = {};
  let next = 64;
  const sizes = {
    x: x.length,
    xp: xp.length,
    dy: dy.length,
    mask: mask.length,
    g: g.length,
    wf: wf.length,
    dx: B * H * W * C,
    dx2: B * H * W * C,
    scratch: Math.max(
      WasmKernels.scratchFloats({ C, O, kh: 3, kw: 3 }),
      WasmKernels.reluThinGradsScratchFloats(W, O),
    ),
  };
  for (const [k, n] of Object.entries(sizes)) {
    at[k] = next;
    next += 4 * n + 64;
  }
  const f32 = new Float32Array(memory.buffer);
  for (const [k, v] of Object.entries({ x, xp, dy, mask, g, wf })) f32.set(v, at[k] / 4);
  const geo = { batch: B, H, W, oH, oW, C, O, padTop: pad, padLeft: pad };
  const thin = (masked: boolean): ThinFilterGradProblem => ({
    ...geo,
    x: at.x,
    dy: at.dy,
    mask: masked ? at.mask : 0,
    scratch: at.scratch,
    kh: 3,
    kw: 3,
  });
  const padded = (masked: boolean): FilterGradProblem => ({
    xp: at.xp,
    dy: masked ? at.g : at.dy,
    scratch: at.scratch,
    batch: B,
    Hp,
    Wp,
    oH,
    oW,
    C,
    O,
    kh: 3,
    kw: 3,
  });
  const relu: ReluThinGradsProblem = {
    x: at.x,
    dy: at.dy,
    mask: at.mask,
    wf: at.wf,
    dx: at.dx,
    scratch: at.scratch,
    batch: B,
    H,
    W,
    O,
  };
  const read = () => new Float32Array(memory.buffer, at.scratch, sizes.scratch);
  const readDx = (k: 'dx' | 'dx2') => new Float32Array(memory.buffer, at[k], sizes.dx).slice();
  // float64 references, from g (masked) or dy
  const ref = (masked: boolean) => {
    const gg = masked ? g : dy;
    const dw = new Float64Array(9 * C * O);
    const db = new Float64Array(O);
    const dx = new Float64Array(B * H * W * C);
    for (let n = 0; n < B; n++)
      for (let i = 0; i < oH; i++)
        for (let j = 0; j < oW; j++)
          for (let o = 0; o < O; o++) {
            const gv = gg[((n * oH + i) * oW + j) * O + o];
            db[o] += gv;
            for (let a = 0; a < 3; a++)
              for (let b = 0; b < 3; b++) {
                const ii = i + a - pad;
                const jj = j + b - pad;
                if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
                for (let c = 0; c < C; c++) {
                  const xi = ((n * H + ii) * W + jj) * C + c;
                  dw[((a * 3 + b) * C + c) * O + o] += x[xi] * gv;
                  dx[xi] += w[((a * 3 + b) * C + c) * O + o] * gv;
                }
              }
          }
    return { dw, db, dx };
  };
  return { memory, thin, padded, relu, read, readDx, ref, at, geo };
}

for (const [C, O, pad] of [
  [1, 16, 1],
  [1, 8, 0],
  [1, 12, 1],
  [32, 1, 1],
  [8, 1, 0],
  [12, 1, 1],
] as const) {
  for (const masked of [false, true]) {
    test(`thin filter gradient (C=${C}, O=${O}, pad ${pad}${masked ? ', dy masked' : ''}) matches a float64 reference, the same bits as the padded kernel${masked ? ' on g = dy ⊙ step(y)' : ''}, and on 1, 2 or 3 threads`, () => {
      // 3 images of 9×10 (9×13 for pad 0): parts cross image boundaries; odd widths leave edge columns
      const { memory, thin, padded, read, ref } = thinProblem(true, 3, 9, pad ? 10 : 13, C, O, pad);
      const { dw, db } = ref(masked);
      const results = [1, 2, 3].map((threads) => {
        const k = new WasmKernels(memory, threads);
        try {
          return k.filterBiasGradThin(thin(masked), read);
        } finally {
          k.dispose();
        }
      });
      assert.ok(maxRel(results[0][0], dw) < 1e-5, `dW: ${maxRel(results[0][0], dw)}`);
      assert.ok(maxRel(results[0][1], db) < 1e-5, `db: ${maxRel(results[0][1], db)}`);
      for (const r of results.slice(1)) {
        assert.deepEqual(r[0], results[0][0]);
        assert.deepEqual(r[1], results[0][1]);
      }
      const k = new WasmKernels(memory, 2);
      const old = k.filterBiasGrad(padded(masked), read);
      k.dispose();
      assert.deepEqual(results[0][0], old[0]);
      assert.deepEqual(results[0][1], old[1]);
    });
  }
}

test('thin filter gradient on a plain (unshared) memory: one thread, matches', () => {
  const { memory, thin, read, ref } = thinProblem(false, 2, 7, 11, 1, 8, 1);
  const { dw, db } = ref(true);
  const k = new WasmKernels(memory, 4);
  assert.equal(k.threads, 1);
  const [gw, gb] = k.filterBiasGradThin(thin(true), read);
  assert.ok(maxRel(gw, dw) < 1e-5, `dW: ${maxRel(gw, dw)}`);
  assert.ok(maxRel(gb, db) < 1e-5, `db: ${maxRel(gb, db)}`);
  k.dispose();
});

test('thin conv with a mask: the input gradient of a 1→O ReLU layer, the same bits as on g = dy ⊙ step(y)', () => {
  const { memory, at, geo, readDx, ref } = thinProblem(true, 3, 9, 10, 1, 16, 1);
  const { dx } = ref(true);
  // dx = an O→1 'same' conv of g with wf
  const conv = { ...geo, C: 16, O: 1, w: at.wf, bias: 0, kh: 3, kw: 3, relu: false };
  const results = [1, 2, 3].map((threads) => {
    const k = new WasmKernels(memory, threads);
    try {
      k.convThin({ ...conv, x: at.dy, mask: at.mask, y: at.dx });
      return readDx('dx');
    } finally {
      k.dispose();
    }
  });
  assert.ok(maxRel(results[0], dx) < 1e-5, `dx: ${maxRel(results[0], dx)}`);
  for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
  const k = new WasmKernels(memory, 2);
  k.convThin({ ...conv, x: at.g, mask: 0, y: at.dx2 });
  k.dispose();
  assert.deepEqual(results[0], readDx('dx2'));
});

for (const [B, H, W, O] of [
  [3, 9, 10, 16],
  [2, 1, 6, 4],
  [1, 2, 3, 8],
  [4, 5, 4, 12],
] as const) {
  test(`1→O ReLU layer gradients in one pass (${B}×${H}×${W}, O=${O}): match float64 references, the same bits as the two masked kernels, on 1, 2 or 3 threads`, () => {
    const { memory, relu, thin, at, geo, read, readDx, ref } = thinProblem(true, B, H, W, 1, O, 1);
    const r = ref(true);
    const results = [1, 2, 3].map((threads) => {
      new Float32Array(memory.buffer, at.dx, B * H * W).fill(NaN);
      const k = new WasmKernels(memory, threads);
      try {
        const [dw, db] = k.reluThinGrads(relu, read);
        return [readDx('dx'), dw, db];
      } finally {
        k.dispose();
      }
    });
    for (const [i, what] of ['dx', 'dW', 'db'].entries()) {
      const ref64 = [r.dx, r.dw, r.db][i];
      assert.ok(maxRel(results[0][i], ref64) < 1e-5, `${what}: ${maxRel(results[0][i], ref64)}`);
      for (const other of results.slice(1)) assert.deepEqual(other[i], results[0][i]);
    }
    const k = new WasmKernels(memory, 2);
    k.convThin({
      ...geo,
      C: O,
      O: 1,
      x: at.dy,
      mask: at.mask,
      w: at.wf,
      bias: 0,
      y: at.dx2,
      kh: 3,
      kw: 3,
      relu: false,
    });
    const [dw, db] = k.filterBiasGradThin(thin(true), read);
    k.dispose();
    assert.deepEqual(results[0][0], readDx('dx2'));
    assert.deepEqual(results[0][1], dw);
    assert.deepEqual(results[0][2], db);
  });
}

test('the committed kernel binary is what scripts/build-wasm-kernels.sh makes from wasm/*.c', (t) => {
  if (!existsSync('/usr/bin/clang-14') || !existsSync('/usr/bin/wasm-ld-14')) {
    t.skip('clang-14 and lld-14 are not installed (.ci/run installs them)');
    return;
  }
  const out = join(mkdtempSync(join(tmpdir(), 'kdmri-wasm-build-')), 'kernels.ts');
  execFileSync(join(root, 'scripts/build-wasm-kernels.sh'), [out], { cwd: root, stdio: 'pipe' });
  assert.equal(
    readFileSync(out, 'utf8'),
    readFileSync(join(root, 'src-main/compute/kernels/wasm/kernels.generated.ts'), 'utf8'),
    'src-main/compute/kernels/wasm/kernels.generated.ts is stale: run scripts/build-wasm-kernels.sh',
  );
});
