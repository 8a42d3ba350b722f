/**
 * Slices ready for training and evaluation: the one-way flow study → slices → k-space + mask →
 * degraded input, materialised once per job so that every epoch only slices typed arrays.
 *
 * Conventions: every slice is normalised to [0, 1] by its own maximum (spec §4.2) before the k-space is
 * simulated; k-space is unshifted and orthonormal; arrays are slice-major count×H×W float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Degradation, Volume } from '../contract/domain.js';
import { buildMask, maskPlane, type Mask } from '../kspace/masks.js';
import { undersampleSlice, zeroFilled } from '../kspace/undersample.js';
import { lowResSlice } from '../kspace/lowres.js';

export interface SliceBank {
  h: number;
  w: number;
  count: number;
  /** Degraded network input: zero-filled magnitude (recon) or low-resolution image (SR). */
  input: Float32Array;
  target: Float32Array;
  /** Recon only: the under-sampled k-space each slice was measured with, and the mask (H×W, 1 = kept). */
  kre?: Float32Array;
  kim?: Float32Array;
  mask?: Float32Array;
  /** The mask as built (lines, true acceleration); absent for SR and for acquired raw data. */
  maskInfo?: Mask;
  /** Volume index of each slice, for per-volume metrics. */
  volumeOf: Int32Array;
  volumes: number;
}

export interface Batch {
  input: tf.Tensor4D;
  target: tf.Tensor4D;
  kspace?: { re: tf.Tensor3D; im: tf.Tensor3D; mask: tf.Tensor2D };
  size: number;
}

function isAllOnes(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 1) return false;
  return true;
}

/**
 * Build the bank for a list of volumes (all H×W alike) under one degradation.
 *
 * Raw-data volumes (with `kspace`) keep their acquired sampling: if the acquisition is already
 * under-sampled its own mask is used; if it is fully sampled, the job's mask is applied on top. All
 * slices of a job must share one mask, as in the reference code.
 */
export function buildSliceBank(volumes: Volume[], degradation: Degradation): SliceBank {
  if (volumes.length === 0) throw new Error('no volumes to build slices from');
  const { h, w } = volumes[0];
  for (const [i, v] of volumes.entries()) {
    if (v.h !== h || v.w !== w) {
      throw new Error(
        `volume ${i + 1} is ${v.h}×${v.w} but volume 1 is ${h}×${w}; resample them to one size`,
      );
    }
  }
  const count = volumes.reduce((n, v) => n + v.slices, 0);
  const hw = h * w;
  const input = new Float32Array(count * hw);
  const target = new Float32Array(count * hw);
  const volumeOf = new Int32Array(count);
  const recon = degradation.kind === 'mask';
  const kre = recon ? new Float32Array(count * hw) : undefined;
  const kim = recon ? new Float32Array(count * hw) : undefined;

  let maskInfo: Mask | undefined;
  let plane: Float32Array | undefined;
  if (degradation.kind === 'mask') {
    maskInfo = buildMask(degradation.mask, h, w);
    plane = maskPlane(maskInfo);
  }

  let acquiredPlane: Float32Array | undefined;
  let s = 0;
  for (const [vi, vol] of volumes.entries()) {
    for (let z = 0; z < vol.slices; z++, s++) {
      volumeOf[s] = vi;
      const src = vol.data.subarray(z * hw, (z + 1) * hw);
      let max = 0;
      for (let i = 0; i < hw; i++) if (src[i] > max) max = src[i];
      const scale = max > 0 ? 1 / max : 0;
      const x = new Float32Array(hw);
      for (let i = 0; i < hw; i++) x[i] = src[i] * scale;
      target.set(x, s * hw);

      if (degradation.kind === 'lowres') {
        input.set(lowResSlice(x, h, w, degradation.keep), s * hw);
        continue;
      }
      if (vol.kspace) {
        // Acquired data: scale its k-space like the image (the DFT is linear).
        const own = vol.kspace.mask;
        if (!isAllOnes(own)) {
          if (acquiredPlane && !acquiredPlane.every((m, i) => m === own[i])) {
            throw new Error(
              'the raw-data volumes were acquired with different masks; distil them in separate jobs',
            );
          }
          acquiredPlane = own;
        }
        const m = isAllOnes(own) ? plane! : own;
        const re = new Float32Array(hw);
        const im = new Float32Array(hw);
        const o = z * hw;
        for (let i = 0; i < hw; i++) {
          re[i] = vol.kspace.re[o + i] * scale * m[i] + 0;
          im[i] = vol.kspace.im[o + i] * scale * m[i] + 0;
        }
        kre!.set(re, s * hw);
        kim!.set(im, s * hw);
        input.set(zeroFilled(re, im, h, w), s * hw);
      } else {
        const u = undersampleSlice(x, h, w, plane!);
        kre!.set(u.kre, s * hw);
        kim!.set(u.kim, s * hw);
        input.set(u.zf, s * hw);
      }
    }
  }
  if (acquiredPlane && volumes.some((v) => !v.kspace)) {
    throw new Error(
      'cannot mix raw k-space volumes acquired with their own mask and image volumes in one job',
    );
  }
  return {
    h,
    w,
    count,
    input,
    target,
    kre,
    kim,
    mask: recon ? (acquiredPlane ?? plane) : undefined,
    maskInfo: acquiredPlane ? undefined : maskInfo,
    volumeOf,
    volumes: volumes.length,
  };
}

/** Gather the given slice indices into tensors (caller disposes, or runs inside tf.tidy). */
export function makeBatch(bank: SliceBank, indices: number[]): Batch {
  const hw = bank.h * bank.w;
  const b = indices.length;
  const gather = (src: Float32Array) => {
    const out = new Float32Array(b * hw);
    indices.forEach((idx, j) => out.set(src.subarray(idx * hw, (idx + 1) * hw), j * hw));
    return out;
  };
  const batch: Batch = {
    input: tf.tensor4d(gather(bank.input), [b, bank.h, bank.w, 1]),
    target: tf.tensor4d(gather(bank.target), [b, bank.h, bank.w, 1]),
    size: b,
  };
  if (bank.kre && bank.kim && bank.mask) {
    batch.kspace = {
      re: tf.tensor3d(gather(bank.kre), [b, bank.h, bank.w]),
      im: tf.tensor3d(gather(bank.kim), [b, bank.h, bank.w]),
      mask: tf.tensor2d(bank.mask, [bank.h, bank.w]),
    };
  }
  return batch;
}

export function disposeBatch(b: Batch): void {
  tf.dispose([b.input, b.target]);
  if (b.kspace) tf.dispose([b.kspace.re, b.kspace.im, b.kspace.mask]);
}

/** Consecutive batches of `size` over `order` (the last one may be smaller: drop_last = False). */
export function batchesOf(order: number[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
  return out;
}
