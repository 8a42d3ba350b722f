/**
 * The restoration degradation (method spec §6): a low-resolution acquisition simulated by keeping
 * only the centre of k-space. F = fft2(x, ortho); in fftshifted coordinates keep the centred block of
 * round(keep·H) × round(keep·W) (for 256 and keep 0.25: rows and columns 96..159); LR = |F⁻¹|. Input
 * and output have the same size (VDSR style: no upsampling layer).
 */
import type { Volume } from '../contract/domain.js';
import { fft2Real } from './fft.js';
import { zeroFilled } from './undersample.js';

/** Which unshifted indices of an n-long axis fall in the kept centred block. */
function keptAxis(n: number, keep: number): Uint8Array {
  const k = Math.max(1, Math.round(keep * n));
  const start = Math.floor((n - k) / 2);
  const kept = new Uint8Array(n);
  // fftshift places unshifted index u at shifted index (u + ⌊n/2⌋) mod n.
  for (let u = 0; u < n; u++) {
    const j = (u + Math.floor(n / 2)) % n;
    if (j >= start && j < start + k) kept[u] = 1;
  }
  return kept;
}

export function lowResSlice(x: Float32Array, h: number, w: number, keep: number): Float32Array {
  if (!(keep > 0 && keep <= 1)) throw new Error(`the kept k-space fraction must be in (0, 1], got ${keep}`);
  const k = fft2Real(x, h, w);
  const rows = keptAxis(h, keep);
  const cols = keptAxis(w, keep);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      if (!(rows[r] && cols[c])) {
        k.re[r * w + c] = 0;
        k.im[r * w + c] = 0;
      }
    }
  }
  return zeroFilled(k.re, k.im, h, w);
}

export function lowResVolume(vol: Volume, keep: number): Volume {
  const hw = vol.h * vol.w;
  const out = new Float32Array(vol.slices * hw);
  for (let s = 0; s < vol.slices; s++)
    out.set(lowResSlice(vol.data.subarray(s * hw, (s + 1) * hw), vol.h, vol.w, keep), s * hw);
  return { data: out, slices: vol.slices, h: vol.h, w: vol.w, spacing: vol.spacing };
}
