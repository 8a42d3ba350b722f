/**
 * SSIM exactly as scikit-image's `structural_similarity` with its defaults (method spec §5):
 * a 7×7 **uniform** window, K1 = 0.01, K2 = 0.03, C1 = (K1·R)², C2 = (K2·R)², sample covariance
 * (× 49/48), and the mean of the SSIM map cropped by 3 pixels on every border. Because of that crop,
 * only windows lying wholly inside the image count, so the filter's border mode never matters.
 *
 * Window sums come from summed-area tables in float64: O(H·W) per slice whatever the window.
 */
import type { Volume } from '../contract/domain.js';
import { maxOf } from './psnr.js';

const WIN = 7;
const K1 = 0.01;
const K2 = 0.03;

/**
 * Summed-area table of one product image, (H+1)×(W+1) with a zero first row and column, so that the
 * sum over rows [r0, r1) × columns [c0, c1) is t[r1,c1] − t[r0,c1] − t[r1,c0] + t[r0,c0].
 * `b` is the second factor (pass `a` itself for a plain sum of squares, `null` for a plain sum).
 */
function integral(a: Float64Array, b: Float64Array | null, h: number, w: number): Float64Array {
  const W1 = w + 1;
  const t = new Float64Array((h + 1) * W1);
  for (let r = 0; r < h; r++) {
    let row = 0;
    const src = r * w;
    const up = r * W1 + 1;
    const dst = up + W1;
    for (let c = 0; c < w; c++) {
      row += b ? a[src + c] * b[src + c] : a[src + c];
      t[dst + c] = t[up + c] + row;
    }
  }
  return t;
}

/** SSIM of one H×W slice (row-major) with the given data range. */
export function ssim2d(
  gt: ArrayLike<number>,
  pred: ArrayLike<number>,
  h: number,
  w: number,
  dataRange: number,
): number {
  if (gt.length !== h * w || pred.length !== h * w)
    throw new Error(`ssim2d: expected ${h}×${w} = ${h * w} values, got ${gt.length} and ${pred.length}`);
  if (h < WIN || w < WIN) throw new Error(`ssim2d: images must be at least ${WIN}×${WIN}, got ${h}×${w}`);
  // Copy to float64 once: monomorphic, fast loops below whatever array type the caller passed.
  const x = Float64Array.from(gt);
  const y = Float64Array.from(pred);
  const sx = integral(x, null, h, w);
  const sy = integral(y, null, h, w);
  const sxx = integral(x, x, h, w);
  const syy = integral(y, y, h, w);
  const sxy = integral(x, y, h, w);
  const np = WIN * WIN;
  const inv = 1 / np;
  const covNorm = np / (np - 1);
  const c1 = (K1 * dataRange) ** 2;
  const c2 = (K2 * dataRange) ** 2;
  const W1 = w + 1;
  const dr = WIN * W1;
  let total = 0;
  for (let r = 0; r + WIN <= h; r++) {
    for (let c = 0; c + WIN <= w; c++) {
      const a = r * W1 + c;
      const b = a + WIN;
      const d = a + dr;
      const e = d + WIN;
      const ux = (sx[e] - sx[b] - sx[d] + sx[a]) * inv;
      const uy = (sy[e] - sy[b] - sy[d] + sy[a]) * inv;
      const vx = covNorm * ((sxx[e] - sxx[b] - sxx[d] + sxx[a]) * inv - ux * ux);
      const vy = covNorm * ((syy[e] - syy[b] - syy[d] + syy[a]) * inv - uy * uy);
      const vxy = covNorm * ((sxy[e] - sxy[b] - sxy[d] + sxy[a]) * inv - ux * uy);
      total += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    }
  }
  return total / ((h - WIN + 1) * (w - WIN + 1));
}

/** Mean over slices of the per-slice SSIM, with R = the target volume's maximum. */
export function ssimVolume(gt: Volume, pred: Volume, dataRange?: number): number {
  const r = dataRange ?? maxOf(gt.data);
  const hw = gt.h * gt.w;
  let s = 0;
  for (let z = 0; z < gt.slices; z++) {
    s += ssim2d(
      gt.data.subarray(z * hw, (z + 1) * hw),
      pred.data.subarray(z * hw, (z + 1) * hw),
      gt.h,
      gt.w,
      r,
    );
  }
  return s / gt.slices;
}
