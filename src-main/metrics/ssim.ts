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

function integral(src: ArrayLike<number>, h: number, w: number, f: (i: number) => number): Float64Array {
  const t = new Float64Array((h + 1) * (w + 1));
  for (let r = 0; r < h; r++) {
    let row = 0;
    for (let c = 0; c < w; c++) {
      row += f(r * w + c);
      t[(r + 1) * (w + 1) + c + 1] = t[r * (w + 1) + c + 1] + row;
    }
  }
  return t;
}

/** SSIM of one H×W slice with the given data range. */
export function ssim2d(
  gt: ArrayLike<number>,
  pred: ArrayLike<number>,
  h: number,
  w: number,
  dataRange: number,
): number {
  if (gt.length !== h * w || pred.length !== h * w) throw new Error(`ssim2d: expected ${h}×${w} values`);
  if (h < WIN || w < WIN) throw new Error(`ssim2d: images must be at least ${WIN}×${WIN}, got ${h}×${w}`);
  const sx = integral(gt, h, w, (i) => gt[i]);
  const sy = integral(pred, h, w, (i) => pred[i]);
  const sxx = integral(gt, h, w, (i) => gt[i] * gt[i]);
  const syy = integral(pred, h, w, (i) => pred[i] * pred[i]);
  const sxy = integral(gt, h, w, (i) => gt[i] * pred[i]);
  const np = WIN * WIN;
  const covNorm = np / (np - 1);
  const c1 = (K1 * dataRange) ** 2;
  const c2 = (K2 * dataRange) ** 2;
  const W1 = w + 1;
  let total = 0;
  for (let r = 0; r + WIN <= h; r++) {
    for (let c = 0; c + WIN <= w; c++) {
      const a = r * W1 + c;
      const b = r * W1 + c + WIN;
      const d = (r + WIN) * W1 + c;
      const e = (r + WIN) * W1 + c + WIN;
      const box = (t: Float64Array) => (t[e] - t[b] - t[d] + t[a]) / np;
      const ux = box(sx);
      const uy = box(sy);
      const vx = covNorm * (box(sxx) - ux * ux);
      const vy = covNorm * (box(syy) - uy * uy);
      const vxy = covNorm * (box(sxy) - ux * uy);
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
