/**
 * Reconstruction quality per volume, as the reference evaluation computes it (method spec §5):
 * PSNR and SSIM with the target volume's maximum as data range, NMSE over the volume; summarised
 * across volumes as mean ± 2·std with the sample standard deviation.
 */
import type { Summary, Volume, VolumeMetrics } from '../contract/domain.js';
import { maxOf, psnr } from './psnr.js';
import { nmse } from './nmse.js';
import { ssim2d, ssimVolume } from './ssim.js';

export { psnr, maxOf, mseOf } from './psnr.js';
export { nmse } from './nmse.js';
export { ssim2d, ssimVolume } from './ssim.js';
export { hfn, hfnSlice } from './hfn.js';

function checkShapes(gt: Volume, pred: Volume): void {
  if (gt.slices !== pred.slices || gt.h !== pred.h || gt.w !== pred.w) {
    throw new Error(
      `metrics: target is ${gt.slices}×${gt.h}×${gt.w} but prediction is ${pred.slices}×${pred.h}×${pred.w} (slices×rows×columns)`,
    );
  }
}

export function volumeMetrics(gt: Volume, pred: Volume): VolumeMetrics {
  checkShapes(gt, pred);
  const r = maxOf(gt.data);
  return { psnr: psnr(gt.data, pred.data, r), ssim: ssimVolume(gt, pred, r), nmse: nmse(gt.data, pred.data) };
}

/** The same conventions slice by slice (R stays the volume maximum), for overlays in the viewer. */
export function perSliceMetrics(gt: Volume, pred: Volume): VolumeMetrics[] {
  checkShapes(gt, pred);
  const r = maxOf(gt.data);
  const hw = gt.h * gt.w;
  return Array.from({ length: gt.slices }, (_, z) => {
    const a = gt.data.subarray(z * hw, (z + 1) * hw);
    const b = pred.data.subarray(z * hw, (z + 1) * hw);
    return { psnr: psnr(a, b, r), ssim: ssim2d(a, b, gt.h, gt.w, r), nmse: nmse(a, b) };
  });
}

/**
 * mean ± 2·std (sample std, ddof 1), the reference report format. The spread of a single value is
 * unknown: NaN (shown as "n = 1"), not 0, which would read as certainty.
 */
export function summarize(values: number[]): Summary {
  const n = values.length;
  if (n === 0) return { mean: NaN, twoStd: NaN, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, twoStd: NaN, n };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, twoStd: 2 * Math.sqrt(variance), n };
}
