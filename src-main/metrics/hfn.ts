/**
 * HFN, the high-frequency error norm the reference evaluation reports (method spec §5): per slice,
 * clip the prediction to [0, 1] (targets are normalised per slice to [0, 1], spec §4.2), take the
 * 3×3 Laplacian [[0,−1,0],[−1,4,−1],[0,−1,0]] of target and prediction, and
 * HFN = Σ(L·gt − L·pred)² / Σ(L·gt)²; the volume value is the mean over slices.
 *
 * Laplacian borders follow scikit-image's `filters.laplace`: scipy 'reflect' padding (the edge pixel
 * repeats: d c b a | a b c d). scikit-image 0.14, which the reference ran, then set the one-pixel
 * border of the result to 0; 0.19+ no longer does. `zeroBorder` (default true) reproduces 0.14.
 */
import type { Volume } from '../contract/domain.js';

/** 5-point Laplacian of an H×W slice with reflected borders, optionally zeroing the outer ring. */
function laplacian(x: ArrayLike<number>, h: number, w: number, zeroBorder: boolean): Float64Array {
  const out = new Float64Array(h * w);
  for (let r = 0; r < h; r++) {
    const up = r > 0 ? r - 1 : 0;
    const down = r < h - 1 ? r + 1 : h - 1;
    for (let c = 0; c < w; c++) {
      const left = c > 0 ? c - 1 : 0;
      const right = c < w - 1 ? c + 1 : w - 1;
      out[r * w + c] =
        4 * x[r * w + c] - x[up * w + c] - x[down * w + c] - x[r * w + left] - x[r * w + right];
    }
  }
  if (zeroBorder) {
    for (let c = 0; c < w; c++) out[c] = out[(h - 1) * w + c] = 0;
    for (let r = 0; r < h; r++) out[r * w] = out[r * w + w - 1] = 0;
  }
  return out;
}

/** HFN of one H×W slice (prediction clipped to [0, 1] first). */
export function hfnSlice(
  gt: ArrayLike<number>,
  pred: ArrayLike<number>,
  h: number,
  w: number,
  zeroBorder = true,
): number {
  if (gt.length !== h * w || pred.length !== h * w)
    throw new Error(`hfn: expected ${h}×${w} = ${h * w} values, got ${gt.length} and ${pred.length}`);
  const clipped = Float64Array.from(pred, (v) => Math.min(1, Math.max(0, v)));
  const lg = laplacian(gt, h, w, zeroBorder);
  const lp = laplacian(clipped, h, w, zeroBorder);
  let num = 0;
  let den = 0;
  for (let i = 0; i < h * w; i++) {
    num += (lg[i] - lp[i]) ** 2;
    den += lg[i] * lg[i];
  }
  return num / den;
}

/** Mean over slices of the per-slice HFN. */
export function hfn(gt: Volume, pred: Volume, zeroBorder = true): number {
  if (gt.slices !== pred.slices || gt.h !== pred.h || gt.w !== pred.w) {
    throw new Error(
      `hfn: target is ${gt.slices}×${gt.h}×${gt.w} but prediction is ${pred.slices}×${pred.h}×${pred.w} (slices×rows×columns)`,
    );
  }
  const hw = gt.h * gt.w;
  let s = 0;
  for (let z = 0; z < gt.slices; z++) {
    s += hfnSlice(
      gt.data.subarray(z * hw, (z + 1) * hw),
      pred.data.subarray(z * hw, (z + 1) * hw),
      gt.h,
      gt.w,
      zeroBorder,
    );
  }
  return s / gt.slices;
}
