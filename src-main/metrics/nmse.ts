/** NMSE = ‖gt − pred‖² / ‖gt‖² over all given values (method spec §5). */
export function nmse(gt: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (gt.length !== pred.length)
    throw new Error(`metrics: target has ${gt.length} values, prediction ${pred.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < gt.length; i++) {
    const d = gt[i] - pred[i];
    num += d * d;
    den += gt[i] * gt[i];
  }
  return num / den;
}
