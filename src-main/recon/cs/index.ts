/**
 * Compressed-sensing reconstruction, the classical baseline a scanner's CS option gives: ℓ1-wavelet
 * regularised least squares solved by FISTA (Beck & Teboulle 2009),
 *
 *     x̂ = argmin_x ½‖M ⊙ F x − y‖² + λ‖Ψ x‖₁,      output |x̂| after a final data-consistency step,
 *
 * with F the orthonormal unshifted 2-D DFT (kspace/fft.ts: DC at index 0, the method spec's
 * convention), M the binary sampling mask (H×W, row-major, 1 = sampled), y the acquired k-space
 * (already masked), and Ψ the orthonormal periodic Daubechies wavelet transform (./wavelet.ts),
 * applied to the real and imaginary parts, with complex soft-thresholding of the detail
 * coefficients (the coarsest approximation band is left free).
 *
 * Because F is unitary and M a projection, ‖∇‖'s Lipschitz constant is 1 and the gradient step of
 * size 1 is exactly the spec's hard data consistency: z − Fᴴ(M⊙Fz − y) = Fᴴ(y + (1 − M)⊙Fz). Each
 * iteration draws a cyclic shift of the image in [0, 2^levels)² before the wavelet prox (cycle
 * spinning, as BART's pics does), which removes the blocking of a fixed decimated grid; the shifts
 * come from a seeded generator, so results are reproducible. λ is given relative to the largest
 * zero-filled magnitude, so one value suits every intensity scale.
 */
import type { CsParams } from '../../contract/domain.js';
import { fft2 } from '../../kspace/fft.js';
import { Rng } from '../../util/random.js';
import { forward2d, inverse2d, waveletPlan } from './wavelet.js';

export interface CsOptions {
  /** Cycle spinning (a random cyclic shift per iteration); default true. */
  shift?: boolean;
  /** Seed of the shifts. */
  seed?: number;
}

/** x ← Fᴴ(y + (1 − M)⊙F x), in place on complex x (re, im). */
function dataConsistency(
  re: Float64Array,
  im: Float64Array,
  yre: Float64Array,
  yim: Float64Array,
  mask: ArrayLike<number>,
  h: number,
  w: number,
): void {
  fft2(re, im, h, w, false);
  for (let i = 0; i < h * w; i++) {
    if (mask[i] !== 0) {
      re[i] = yre[i];
      im[i] = yim[i];
    }
  }
  fft2(re, im, h, w, true);
}

/** Cyclic shift of a row-major H×W image by (dr, dc) into `out`. */
function roll(src: Float64Array, out: Float64Array, h: number, w: number, dr: number, dc: number): void {
  for (let r = 0; r < h; r++) {
    const rr = (r + dr) % h;
    for (let c = 0; c < w; c++) out[rr * w + ((c + dc) % w)] = src[r * w + c];
  }
}

/**
 * Reconstruct one slice from its under-sampled k-space. `kre`/`kim`: H×W, unshifted, orthonormal
 * (entries outside the mask are ignored); returns the magnitude image, H×W float32.
 */
export function csReconstruct(
  kre: ArrayLike<number>,
  kim: ArrayLike<number>,
  mask: ArrayLike<number>,
  h: number,
  w: number,
  params: CsParams,
  opts: CsOptions = {},
): Float32Array {
  const n = h * w;
  if (kre.length !== n || kim.length !== n || mask.length !== n)
    throw new Error(
      `cs: expected ${h}×${w} k-space and mask, got ${kre.length}, ${kim.length}, ${mask.length} values`,
    );
  const yre = new Float64Array(n);
  const yim = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (mask[i] !== 0) {
      yre[i] = kre[i];
      yim[i] = kim[i];
    }
  }
  // x0: the zero-filled image
  const xre = Float64Array.from(yre);
  const xim = Float64Array.from(yim);
  fft2(xre, xim, h, w, true);
  let peak = 0;
  for (let i = 0; i < n; i++) peak = Math.max(peak, Math.hypot(xre[i], xim[i]));
  if (peak === 0) return new Float32Array(n);
  const lambda = params.lambda * peak;
  const plan = waveletPlan(h, w, params.wavelet, params.levels);
  const coarseH = h >> plan.levels;
  const coarseW = w >> plan.levels;
  const span = 1 << plan.levels;
  const rng = new Rng(opts.seed ?? 1);
  const shift = opts.shift ?? true;

  const zre = Float64Array.from(xre);
  const zim = Float64Array.from(xim);
  const vre = new Float64Array(n);
  const vim = new Float64Array(n);
  const sre = new Float64Array(n);
  const sim = new Float64Array(n);
  let t = 1;
  for (let it = 0; it < params.iterations; it++) {
    // gradient step of size 1 = data consistency
    vre.set(zre);
    vim.set(zim);
    dataConsistency(vre, vim, yre, yim, mask, h, w);
    // proximal step: soft-threshold the wavelet detail coefficients of a shifted copy
    const dr = shift ? rng.int(span) : 0;
    const dc = shift ? rng.int(span) : 0;
    roll(vre, sre, h, w, dr, dc);
    roll(vim, sim, h, w, dr, dc);
    forward2d(plan, sre);
    forward2d(plan, sim);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        if (r < coarseH && c < coarseW) continue;
        const i = r * w + c;
        const mag = Math.hypot(sre[i], sim[i]);
        const k = mag > lambda ? 1 - lambda / mag : 0;
        sre[i] *= k;
        sim[i] *= k;
      }
    }
    inverse2d(plan, sre);
    inverse2d(plan, sim);
    roll(sre, vre, h, w, h - dr, w - dc);
    roll(sim, vim, h, w, h - dr, w - dc);
    // FISTA momentum
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    const beta = (t - 1) / tNext;
    for (let i = 0; i < n; i++) {
      zre[i] = vre[i] + beta * (vre[i] - xre[i]);
      zim[i] = vim[i] + beta * (vim[i] - xim[i]);
    }
    xre.set(vre);
    xim.set(vim);
    t = tNext;
  }
  dataConsistency(xre, xim, yre, yim, mask, h, w);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.hypot(xre[i], xim[i]);
  return out;
}

/** CS of every slice of a stack: k-space count×H×W (one mask for all), magnitudes count×H×W. */
export function csSlices(
  kre: Float32Array,
  kim: Float32Array,
  mask: Float32Array,
  count: number,
  h: number,
  w: number,
  params: CsParams,
): Float32Array {
  const hw = h * w;
  const out = new Float32Array(count * hw);
  for (let s = 0; s < count; s++) {
    const o = s * hw;
    out.set(
      csReconstruct(kre.subarray(o, o + hw), kim.subarray(o, o + hw), mask, h, w, params, { seed: s + 1 }),
      o,
    );
  }
  return out;
}
