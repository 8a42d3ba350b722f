/** Mask previews: the lines a mask samples (indices along its axis) and its true acceleration. */
import type { MaskPreview } from '../contract/api.js';
import type { Mask } from '../kspace/masks.js';

export function maskPreview(mask: Mask): MaskPreview {
  const lines: number[] = [];
  mask.lines.forEach((v, i) => {
    if (v > 0) lines.push(i);
  });
  return { lines, axis: mask.axis, h: mask.h, w: mask.w, acceleration: mask.acceleration };
}
