/**
 * 1-D Cartesian undersampling masks: whole rows (axis 0) or whole columns (axis 1) of k-space are
 * kept or dropped. Every mask is seeded and reproducible, and stored **unshifted** (DC at index 0),
 * like the KD-MRI masks: generators work in centred coordinates and finish with an ifftshift.
 *
 * Generators:
 *  - `cartesian`: the reference code's variable-density mask (Schlemper's `cartesian_mask` with
 *    `centred=False`): `centerLines` fully sampled centre lines (default 10) plus floor(N/acc) − centre
 *    lines drawn without replacement from a Gaussian density (sensitivity 0.5/(N/10)²) plus a uniform
 *    floor of N/(2·acc)/N.
 *  - `random`: fastMRI's RandomMaskFunc: round(N·cf) centre lines, each other line kept with
 *    probability (N/acc − centre)/(N − centre).
 *  - `equispaced`: fastMRI's EquiSpacedMaskFunc: centre lines plus every round(acc)-th line from a
 *    seeded offset.
 *  - `preset`: the exact KD-MRI masks (cardiac 150², brain 240², knee 640×368).
 */
import type { MaskSpec } from '../contract/domain.js';
import { hashArrays } from '../util/hash.js';
import { Rng } from '../util/random.js';
import { PRESETS } from './mask-presets.js';

export interface Mask {
  h: number;
  w: number;
  /** 'rows': whole rows sampled (constant along columns); 'cols': whole columns sampled. */
  axis: 'rows' | 'cols';
  /** 1 = sampled, one entry per line along the sampled axis, unshifted (DC at index 0). */
  lines: Uint8Array;
  /** True acceleration: lines.length / number of sampled lines. */
  acceleration: number;
  spec: MaskSpec;
}

/** numpy.fft.ifftshift for 1-D: out[i] = x[(i + ⌊N/2⌋) mod N]. */
export function ifftshift1<T extends Uint8Array | Float64Array>(x: T): T {
  const n = x.length;
  const out = new (x.constructor as new (n: number) => T)(n);
  const s = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = x[(i + s) % n];
  return out;
}

/** Start of the centred block of `k` lines in centred coordinates, as fastMRI places it. */
function centreStart(n: number, k: number): number {
  return Math.floor((n - k + 1) / 2);
}

function cartesianLines(n: number, acc: number, centre: number, rng: Rng): Uint8Array {
  const pdf = new Float64Array(n);
  const sens = 0.5 / (n / 10) ** 2;
  for (let i = 0; i < n; i++) pdf[i] = Math.exp(-sens * (i - n / 2) ** 2) + n / (2 * acc) / n;
  const lo = Math.floor(n / 2) - Math.floor(centre / 2);
  const hi = Math.floor(n / 2) + Math.floor(centre / 2);
  for (let i = lo; i < hi; i++) pdf[i] = 0;
  let toDraw = Math.floor(n / acc) - (hi - lo);
  const lines = new Uint8Array(n);
  // Weighted draws without replacement (numpy's choice(replace=False, p=pdf) draws sequentially
  // from the renormalised remaining density).
  while (toDraw > 0) {
    let total = 0;
    for (let i = 0; i < n; i++) if (!lines[i]) total += pdf[i];
    if (total <= 0) break;
    let r = rng.next() * total;
    let pick = -1;
    for (let i = 0; i < n; i++) {
      if (lines[i] || pdf[i] === 0) continue;
      pick = i;
      r -= pdf[i];
      if (r < 0) break;
    }
    if (pick < 0) break;
    lines[pick] = 1;
    toDraw--;
  }
  for (let i = lo; i < hi; i++) lines[i] = 1;
  return ifftshift1(lines);
}

function defaultCentreFraction(acc: number): number {
  return acc >= 8 ? 0.04 : 0.08;
}

function randomLines(n: number, acc: number, cf: number, rng: Rng): Uint8Array {
  const numLow = Math.round(n * cf);
  const prob = (n / acc - numLow) / (n - numLow);
  const lines = new Uint8Array(n);
  for (let i = 0; i < n; i++) lines[i] = rng.next() < prob ? 1 : 0;
  const pad = centreStart(n, numLow);
  for (let i = pad; i < pad + numLow; i++) lines[i] = 1;
  return ifftshift1(lines);
}

function equispacedLines(n: number, acc: number, cf: number, rng: Rng): Uint8Array {
  const step = Math.max(1, Math.round(acc));
  const numLow = Math.round(n * cf);
  const lines = new Uint8Array(n);
  for (let i = rng.int(step); i < n; i += step) lines[i] = 1;
  const pad = centreStart(n, numLow);
  for (let i = pad; i < pad + numLow; i++) lines[i] = 1;
  return ifftshift1(lines);
}

/** A file mask's lines, checked against the image shape. */
function fileLines(spec: MaskSpec, n: number, h: number, w: number): Uint8Array {
  const name = spec.name ?? 'the mask file';
  if (!spec.lines || spec.lineCount === undefined)
    throw new Error(`${name}: a file mask needs its sampled lines and line count`);
  if (spec.fileShape && (spec.fileShape[0] !== h || spec.fileShape[1] !== w)) {
    throw new Error(
      `mask file ${name} is ${spec.fileShape[0]}×${spec.fileShape[1]} but the images are ${h}×${w}: the mask must match the image shape`,
    );
  }
  if (spec.lineCount !== n) {
    throw new Error(
      `${name} has ${spec.lineCount} ${spec.axis} but the images have ${n}: the mask must match the image shape`,
    );
  }
  const lines = new Uint8Array(n);
  for (const i of spec.lines) {
    if (i >= n) throw new Error(`${name}: sampled line ${i} is outside 0–${n - 1}`);
    lines[i] = 1;
  }
  return lines;
}

/** Build a mask for an H×W image; throws a clear Error for a shape a preset does not fit. */
export function buildMask(spec: MaskSpec, h: number, w: number): Mask {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 2 || w < 2) {
    throw new Error(`mask shape must be at least 2×2 whole pixels, got ${h}×${w}`);
  }
  let axis = spec.axis;
  let lines: Uint8Array;
  if (spec.kind === 'preset') {
    if (!spec.preset) throw new Error('a preset mask needs a preset name (cardiac, mrbrain or knee)');
    const p = PRESETS[spec.preset];
    if (p.h !== h || p.w !== w) {
      throw new Error(`the ${spec.preset} preset mask is ${p.h}×${p.w} but the images are ${h}×${w}`);
    }
    const acc = spec.acc as 4 | 5 | 8;
    if (!(acc in p.lines))
      throw new Error(`the ${spec.preset} preset has masks for 4x, 5x and 8x, not ${spec.acc}x`);
    axis = p.axis;
    lines = new Uint8Array(axis === 'rows' ? h : w);
    for (const i of p.lines[acc]) lines[i] = 1;
  } else if (spec.kind === 'file') {
    lines = fileLines(spec, axis === 'rows' ? h : w, h, w);
  } else {
    const n = axis === 'rows' ? h : w;
    const rng = new Rng(spec.seed);
    if (spec.kind === 'cartesian') {
      const centre = spec.centerLines ?? 10;
      if (centre >= n) throw new Error(`${centre} centre lines do not fit in ${n} lines`);
      lines = cartesianLines(n, spec.acc, centre, rng);
    } else {
      const cf = spec.centerFraction ?? defaultCentreFraction(spec.acc);
      lines =
        spec.kind === 'random' ? randomLines(n, spec.acc, cf, rng) : equispacedLines(n, spec.acc, cf, rng);
    }
  }
  const sampled = lines.reduce((a, b) => a + b, 0);
  if (sampled === 0) throw new Error('the mask samples no lines');
  return { h, w, axis, lines, acceleration: lines.length / sampled, spec: { ...spec, axis } };
}

/** The full H×W mask, row-major, 1 = sampled. */
export function maskPlane(mask: Mask): Float32Array {
  const { h, w, lines } = mask;
  const out = new Float32Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) out[r * w + c] = mask.axis === 'rows' ? lines[r] : lines[c];
  }
  return out;
}

/**
 * SHA-256 (hex) of a mask as applied: "mask H×W" and its H×W plane as bytes (1 = sampled),
 * row-major, unshifted. Two degradations with equal hashes sampled exactly the same k-space.
 */
export function maskHash(plane: Float32Array, h: number, w: number): string {
  const bytes = new Uint8Array(h * w);
  for (let i = 0; i < bytes.length; i++) bytes[i] = plane[i] !== 0 ? 1 : 0;
  return hashArrays(`mask ${h}x${w}`, bytes);
}
