/**
 * PSNR = 10·log10(R² / MSE) over all given values, R defaulting to the maximum of the target
 * (method spec §5: the volume maximum, as `compare_psnr(gt, pred, data_range=gt.max())`).
 */
export function maxOf(a: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

export function mseOf(gt: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (gt.length !== pred.length)
    throw new Error(`metrics: target has ${gt.length} values, prediction ${pred.length}`);
  let s = 0;
  for (let i = 0; i < gt.length; i++) {
    const d = gt[i] - pred[i];
    s += d * d;
  }
  return s / gt.length;
}

export function psnr(gt: ArrayLike<number>, pred: ArrayLike<number>, dataRange?: number): number {
  const r = dataRange ?? maxOf(gt);
  return 10 * Math.log10((r * r) / mseOf(gt, pred));
}
