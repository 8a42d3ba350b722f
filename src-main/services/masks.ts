/**
 * Read the sampled lines and the true acceleration out of whatever `buildMask` returns: a 1-D line
 * mask (length H or W), a full H×W plane, or an object carrying `lines` / `mask` / `acceleration`.
 */
import type { MaskSpec } from '../contract/domain.js';
import { ApiFailure, type MaskPreview } from '../contract/api.js';

type NumArray = ArrayLike<number>;
const isNumArray = (x: unknown): x is NumArray =>
  Array.isArray(x) || (ArrayBuffer.isView(x) && !(x instanceof DataView));

export function maskLines(
  result: unknown,
  spec: MaskSpec,
  h: number,
  w: number,
): Omit<MaskPreview, 'h' | 'w'> {
  const axis = spec.axis ?? 'rows';
  const n = axis === 'rows' ? h : w;
  let lines: number[] | null = null;
  let acceleration: number | null = null;
  const fromArray = (a: NumArray): number[] | null => {
    if (a.length === n) return Array.from({ length: n }, (_, i) => i).filter((i) => a[i] > 0);
    if (a.length === h * w) {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const v = axis === 'rows' ? a[i * w] : a[i];
        if (v > 0) out.push(i);
      }
      return out;
    }
    return null;
  };
  if (isNumArray(result)) lines = fromArray(result);
  else if (result && typeof result === 'object') {
    const o = result as Record<string, unknown>;
    if (typeof o.acceleration === 'number') acceleration = o.acceleration;
    else if (typeof o.trueAcceleration === 'number') acceleration = o.trueAcceleration;
    if (isNumArray(o.lines) && o.lines.length < n && Array.from(o.lines).every((v) => Number.isInteger(v))) {
      lines = Array.from(o.lines);
    }
    for (const key of ['lines', 'mask', 'line', 'data', 'plane']) {
      if (lines) break;
      const v = o[key];
      if (isNumArray(v)) lines = fromArray(v);
    }
  }
  if (!lines)
    throw new ApiFailure(
      'internal',
      'buildMask returned a mask of an unexpected shape',
      'src-main/kspace/masks.ts',
    );
  if (acceleration === null) acceleration = lines.length ? n / lines.length : Infinity;
  return { lines, axis, acceleration };
}
