/**
 * Measurements in the Compare viewer, as pure functions of an image's pixels (no DOM, no cornerstone),
 * so that a test can check them against numpy on the same pixels.
 *
 * Conventions: pixel (row r, column c) is data[r·w + c]; image coordinates are continuous, pixel
 * (r, c) covering x ∈ [c, c+1), y ∈ [r, r+1) (cornerstone's pageToPixel convention), so its centre
 * is (c + 0.5, r + 0.5).
 */
import type { Pixels } from '../../../src-main/contract/api.js';

export interface Point {
  x: number;
  y: number;
}

/** A rectangular region as whole pixels: rows r0 ≤ r < r1, columns c0 ≤ c < c1 (numpy's img[r0:r1, c0:c1]). */
export interface PixelRect {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

export interface RoiStats {
  /** Pixels inside the region. */
  n: number;
  mean: number;
  /** Population standard deviation (ddof 0, numpy's default). */
  std: number;
  min: number;
  max: number;
  /** n × pixel area: mm² when the pixel spacing is known, else pixels. */
  area: number;
}

/**
 * The whole pixels a rectangle dragged from `a` to `b` (image coordinates) covers, clipped to the
 * image: every pixel the rectangle touches; null when nothing of it lies on the image.
 */
export function rectFromDrag(a: Point, b: Point, h: number, w: number): PixelRect | null {
  const c0 = Math.max(0, Math.floor(Math.min(a.x, b.x)));
  const c1 = Math.min(w, Math.ceil(Math.max(a.x, b.x)));
  const r0 = Math.max(0, Math.floor(Math.min(a.y, b.y)));
  const r1 = Math.min(h, Math.ceil(Math.max(a.y, b.y)));
  if (c1 <= c0 || r1 <= r0) return null;
  return { r0, r1, c0, c1 };
}

/**
 * Mean, standard deviation, extremes and area of the pixels in `rect`, in double precision with a
 * two-pass variance (no cancellation for images with a large offset). `pixelArea`: mm² per pixel.
 */
export function roiStats(px: Pixels, rect: PixelRect, pixelArea = 1): RoiStats {
  const { r0, r1, c0, c1 } = rect;
  if (r0 < 0 || c0 < 0 || r1 > px.h || c1 > px.w || r1 <= r0 || c1 <= c0) {
    throw new RangeError(
      `region rows ${r0}..${r1}, columns ${c0}..${c1} is not inside a ${px.h}×${px.w} image`,
    );
  }
  const n = (r1 - r0) * (c1 - c0);
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let r = r0; r < r1; r++)
    for (let c = c0; c < c1; c++) {
      const v = px.data[r * px.w + c];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  const mean = sum / n;
  let ss = 0;
  for (let r = r0; r < r1; r++)
    for (let c = c0; c < c1; c++) {
      const d = px.data[r * px.w + c] - mean;
      ss += d * d;
    }
  return { n, mean, std: Math.sqrt(ss / n), min, max, area: n * pixelArea };
}

/** Bilinear value at continuous image coordinates (x, y), pixel centres at half-integers, edges clamped. */
export function sampleBilinear(px: Pixels, x: number, y: number): number {
  const fx = Math.min(px.w - 1, Math.max(0, x - 0.5));
  const fy = Math.min(px.h - 1, Math.max(0, y - 0.5));
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const x1 = Math.min(px.w - 1, x0 + 1);
  const y1 = Math.min(px.h - 1, y0 + 1);
  const tx = fx - x0;
  const ty = fy - y0;
  const at = (r: number, c: number) => px.data[r * px.w + c];
  return (
    (1 - ty) * ((1 - tx) * at(y0, x0) + tx * at(y0, x1)) + ty * ((1 - tx) * at(y1, x0) + tx * at(y1, x1))
  );
}

export interface Profile {
  /** Distance from the start of the line, in pixels (one sample per pixel of length, both ends included). */
  distance: number[];
  value: number[];
}

/** Intensities along the segment a → b, bilinearly interpolated, one sample per pixel of length. */
export function lineProfile(px: Pixels, a: Point, b: Point): Profile {
  const len = Math.hypot(b.x - a.x, b.y - a.y);
  const steps = Math.max(1, Math.ceil(len));
  const distance: number[] = [];
  const value: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    distance.push(t * len);
    value.push(sampleBilinear(px, a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)));
  }
  return { distance, value };
}
