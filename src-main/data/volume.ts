/**
 * Pure operations on slice stacks (slice-major S×H×W float32), and SliceStack: a volume read one
 * slice at a time, for conversions and exports whose memory must not grow with the slice count.
 */
import type { Volume } from '../contract/domain.js';

/**
 * A volume as its slices in order (slice k = Volume.data[k·h·w, (k+1)·h·w)), read on demand: a file
 * or library series behind it is read afresh on every `read()`, so a writer that needs a statistic of
 * the whole volume first (a global intensity range) makes two passes instead of holding the volume.
 * A reader's error (a truncated file) is thrown from the iteration, mid-write: writers go through the
 * atomic writes, so nothing partial is left.
 */
export interface SliceStack {
  slices: number;
  h: number;
  w: number;
  spacing?: [number, number, number];
  /** The slices, each h·w values; the caller must not keep one past the next (it may be reused). */
  read(): Iterable<Float32Array>;
}

/** A volume already in memory as a SliceStack (views into its data, no copy). */
export function stackOfVolume(vol: Volume): SliceStack {
  const hw = vol.h * vol.w;
  if (vol.data.length !== vol.slices * hw)
    throw new Error(`volume data has ${vol.data.length} values, expected ${vol.slices}×${vol.h}×${vol.w}`);
  return {
    slices: vol.slices,
    h: vol.h,
    w: vol.w,
    spacing: vol.spacing,
    *read() {
      for (let s = 0; s < vol.slices; s++) yield vol.data.subarray(s * hw, (s + 1) * hw);
    },
  };
}

/** A volume in memory or a SliceStack, as a SliceStack. */
export function asStack(v: Volume | SliceStack): SliceStack {
  return 'read' in v ? v : stackOfVolume(v);
}

/** A SliceStack read whole into a Volume (one allocation, checked slice sizes). */
export function volumeOfStack(stack: SliceStack): Volume {
  const hw = stack.h * stack.w;
  const data = new Float32Array(stack.slices * hw);
  let s = 0;
  for (const slice of stack.read()) {
    if (s >= stack.slices || slice.length !== hw)
      throw new Error(
        `slice ${s} of ${stack.slices} has ${slice.length} values, expected ${stack.h}×${stack.w}`,
      );
    data.set(slice, s * hw);
    s++;
  }
  if (s !== stack.slices) throw new Error(`volume ends after ${s} of ${stack.slices} slices`);
  return { data, slices: stack.slices, h: stack.h, w: stack.w, spacing: stack.spacing };
}

/**
 * The finite [min, max] over every slice (a first pass), [Infinity, -Infinity] when there is no
 * finite value. Non-finite values are left out, as every writer's quantisation does.
 */
export function finiteRange(stack: SliceStack): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const slice of stack.read()) {
    for (const v of slice) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

/** Divide each slice by its own maximum (method spec §4.2); an all-zero slice stays zero. */
export function normalizeSlices(vol: Volume): Volume {
  const hw = vol.h * vol.w;
  const data = new Float32Array(vol.data.length);
  for (let s = 0; s < vol.slices; s++) {
    const src = vol.data.subarray(s * hw, (s + 1) * hw);
    let max = 0;
    for (let i = 0; i < hw; i++) if (src[i] > max) max = src[i];
    const k = max > 0 ? 1 / max : 0;
    for (let i = 0; i < hw; i++) data[s * hw + i] = src[i] * k;
  }
  return { ...vol, data, kspace: undefined };
}

/**
 * Resampling weights along one axis, n → m samples, pixel centres aligned ((i + ½)·n/m − ½). A
 * triangle (linear) kernel, widened by n/m when shrinking so that every input pixel contributes
 * (antialiased, like PIL's bilinear resize); plain linear interpolation when enlarging.
 */
function axisWeights(n: number, m: number): { idx: Int32Array[]; wt: Float64Array[] } {
  const scale = n / m;
  const support = Math.max(1, scale);
  const idx: Int32Array[] = [];
  const wt: Float64Array[] = [];
  for (let i = 0; i < m; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const lo = Math.ceil(centre - support);
    const hi = Math.floor(centre + support);
    const is: number[] = [];
    const ws: number[] = [];
    for (let j = lo; j <= hi; j++) {
      const w = 1 - Math.abs(j - centre) / support;
      if (w <= 0) continue;
      is.push(Math.min(n - 1, Math.max(0, j)));
      ws.push(w);
    }
    const sum = ws.reduce((a, b) => a + b, 0);
    idx.push(Int32Array.from(is));
    wt.push(Float64Array.from(ws.map((w) => w / sum)));
  }
  return { idx, wt };
}

/**
 * Resample every slice to size×size (separable, see axisWeights). Non-square slices are stretched to
 * a square: the KD-MRI networks train on square crops, and the user chooses --size knowingly.
 */
export function resampleSlices(vol: Volume, size: number): Volume {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`resample size must be a positive integer, got ${size}`);
  const rows = axisWeights(vol.h, size);
  const cols = axisWeights(vol.w, size);
  const out = new Float32Array(vol.slices * size * size);
  const tmp = new Float64Array(vol.h * size);
  for (let s = 0; s < vol.slices; s++) {
    const src = vol.data.subarray(s * vol.h * vol.w, (s + 1) * vol.h * vol.w);
    for (let r = 0; r < vol.h; r++) {
      for (let c = 0; c < size; c++) {
        let v = 0;
        const is = cols.idx[c];
        const ws = cols.wt[c];
        for (let k = 0; k < is.length; k++) v += src[r * vol.w + is[k]] * ws[k];
        tmp[r * size + c] = v;
      }
    }
    for (let r = 0; r < size; r++) {
      const is = rows.idx[r];
      const ws = rows.wt[r];
      for (let c = 0; c < size; c++) {
        let v = 0;
        for (let k = 0; k < is.length; k++) v += tmp[is[k] * size + c] * ws[k];
        out[s * size * size + r * size + c] = v;
      }
    }
  }
  const spacing = vol.spacing
    ? ([(vol.spacing[0] * vol.w) / size, (vol.spacing[1] * vol.h) / size, vol.spacing[2]] as [
        number,
        number,
        number,
      ])
    : undefined;
  return { data: out, slices: vol.slices, h: size, w: size, spacing };
}

/** Slices [from, to) as a new volume (acquired k-space included). */
export function selectSlices(vol: Volume, from: number, to: number): Volume {
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to <= vol.slices && from < to)) {
    throw new Error(`slice range ${from}–${to} is outside the volume's ${vol.slices} slices`);
  }
  const hw = vol.h * vol.w;
  const cut = (a: Float32Array) => a.slice(from * hw, to * hw);
  return {
    data: cut(vol.data),
    slices: to - from,
    h: vol.h,
    w: vol.w,
    spacing: vol.spacing,
    kspace: vol.kspace
      ? { re: cut(vol.kspace.re), im: cut(vol.kspace.im), mask: vol.kspace.mask }
      : undefined,
  };
}

export function volumeFromSlices(slices: Float32Array[], h: number, w: number): Volume {
  const data = new Float32Array(slices.length * h * w);
  slices.forEach((s, i) => {
    if (s.length !== h * w) throw new Error(`slice ${i} has ${s.length} values, expected ${h}×${w}`);
    data.set(s, i * h * w);
  });
  return { data, slices: slices.length, h, w };
}
