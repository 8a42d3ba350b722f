/**
 * Retrospective undersampling (method spec §4.2): a real magnitude slice x becomes
 * k = F(x) (orthonormal, unshifted), k_us = k ⊙ M, and the zero-filled image |F⁻¹(k_us)|.
 * `+ 0` after masking turns −0 into +0, as fastMRI does, so that no sign of a zero leaks.
 */
import type { Volume } from '../contract/domain.js';
import { fft2, fft2Real } from './fft.js';

/** |F⁻¹(k)| of an H×W complex k-space (row-major parts). */
export function zeroFilled(
  kre: ArrayLike<number>,
  kim: ArrayLike<number>,
  h: number,
  w: number,
): Float32Array {
  const re = Float64Array.from(kre);
  const im = Float64Array.from(kim);
  fft2(re, im, h, w, true);
  const out = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) out[i] = Math.hypot(re[i], im[i]);
  return out;
}

export function undersampleSlice(
  x: Float32Array,
  h: number,
  w: number,
  plane: Float32Array,
): { kre: Float64Array; kim: Float64Array; zf: Float32Array } {
  if (x.length !== h * w || plane.length !== h * w) {
    throw new Error(
      `undersampleSlice: expected ${h}×${w} image and mask, got ${x.length} and ${plane.length} values`,
    );
  }
  const k = fft2Real(x, h, w);
  for (let i = 0; i < h * w; i++) {
    k.re[i] = k.re[i] * plane[i] + 0;
    k.im[i] = k.im[i] * plane[i] + 0;
  }
  return { kre: k.re, kim: k.im, zf: zeroFilled(k.re, k.im, h, w) };
}

/**
 * Undersample every slice. A raw-data volume (with acquired `kspace`) is not re-simulated: its own
 * k-space is masked by `plane` (where it is fully sampled) and zero-filled.
 */
export function undersampleVolume(
  vol: Volume,
  plane: Float32Array,
): { kre: Float32Array; kim: Float32Array; zf: Volume } {
  const hw = vol.h * vol.w;
  const kre = new Float32Array(vol.slices * hw);
  const kim = new Float32Array(vol.slices * hw);
  const zf = new Float32Array(vol.slices * hw);
  for (let s = 0; s < vol.slices; s++) {
    const o = s * hw;
    if (vol.kspace) {
      const re = new Float64Array(hw);
      const im = new Float64Array(hw);
      for (let i = 0; i < hw; i++) {
        const m = vol.kspace.mask[i] * plane[i];
        re[i] = vol.kspace.re[o + i] * m + 0;
        im[i] = vol.kspace.im[o + i] * m + 0;
      }
      kre.set(re, o);
      kim.set(im, o);
      zf.set(zeroFilled(re, im, vol.h, vol.w), o);
    } else {
      const u = undersampleSlice(vol.data.subarray(o, o + hw), vol.h, vol.w, plane);
      kre.set(u.kre, o);
      kim.set(u.kim, o);
      zf.set(u.zf, o);
    }
  }
  return { kre, kim, zf: { data: zf, slices: vol.slices, h: vol.h, w: vol.w, spacing: vol.spacing } };
}
