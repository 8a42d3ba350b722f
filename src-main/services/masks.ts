/** Mask previews: the lines a mask samples (indices along its axis) and its true acceleration. */
import { resolve } from 'node:path';
import { ApiFailure, type MaskPreview } from '../contract/api.js';
import type { MaskSpec } from '../contract/domain.js';
import { readMaskFile } from '../kspace/mask-file.js';
import type { Mask } from '../kspace/masks.js';

export function maskPreview(mask: Mask): MaskPreview {
  const lines: number[] = [];
  mask.lines.forEach((v, i) => {
    if (v > 0) lines.push(i);
  });
  return { lines, axis: mask.axis, h: mask.h, w: mask.w, acceleration: mask.acceleration };
}

/** A mask file (PNG or .npy) as a MaskSpec of kind 'file'; a bad file is a bad request naming it. */
export function readMaskFileSpec(path: string): MaskSpec {
  try {
    return readMaskFile(resolve(path));
  } catch (e) {
    throw new ApiFailure('bad-request', (e as Error).message, 'path');
  }
}
