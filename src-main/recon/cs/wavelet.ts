/**
 * Orthonormal 2-D discrete wavelet transform with periodic extension (Daubechies dbN filters), in
 * place on a row-major H×W float64 image.
 *
 * Conventions: the low-pass filter h (length L) is Daubechies' reconstruction low-pass (pywt's
 * `rec_lo`); the high-pass is g[j] = (−1)^j · h[L−1−j]. One analysis step on a line of even length n:
 *   a[k] = Σ_j h[j] · x[(2k + j) mod n],   d[k] = Σ_j g[j] · x[(2k + j) mod n],   k < n/2,
 * stored as [a | d]. The periodised filter bank is orthonormal for every even n, so synthesis is the
 * transpose of analysis and ‖Ψx‖ = ‖x‖: soft-thresholding the coefficients is then the exact proximal
 * map of λ‖Ψx‖₁ (what FISTA needs). Each level transforms every row, then every column, of the current
 * low-pass (LL) block, which starts as the whole image and halves per level; the number of levels is
 * limited so that both sides stay even and at least L long.
 */

/** Daubechies low-pass filters (reconstruction, orthonormal), by number of vanishing moments. */
export const DAUBECHIES: Record<string, readonly number[]> = {
  db1: [0.7071067811865476, 0.7071067811865476],
  db2: [0.48296291314453416, 0.8365163037378079, 0.2241438680420134, -0.12940952255126037],
  db3: [
    0.33267055295008263, 0.8068915093110925, 0.45987750211849154, -0.13501102001025458, -0.08544127388202666,
    0.03522629188570953,
  ],
  db4: [
    0.2303778133088965, 0.7148465705529157, 0.6308807679298589, -0.027983769416859854, -0.18703481171909309,
    0.030841381835560764, 0.0328830116668852, -0.010597401785069032,
  ],
  db6: [
    0.11154074335010947, 0.49462389039845306, 0.7511339080210954, 0.31525035170919763, -0.22626469396543983,
    -0.12976686756726194, 0.09750160558732304, 0.027522865530305727, -0.03158203931748603,
    0.0005538422011614961, 0.004777257510945511, -0.0010773010853084796,
  ],
  db8: [
    0.05441584224310401, 0.31287159091429995, 0.6756307362972898, 0.5853546836542067, -0.015829105256349306,
    -0.2840155429615469, 0.0004724845739132828, 0.12874742662047847, -0.017369301001807547,
    -0.044088253930794755, 0.013981027917398282, 0.008746094047405777, -0.004870352993451574,
    -0.00039174037337694705, 0.0006754494064505693, -0.00011747678412476953,
  ],
};

export interface WaveletPlan {
  h: number;
  w: number;
  levels: number;
  lo: Float64Array;
  hi: Float64Array;
  /** Scratch lines, max(H, W) + L long (room for the periodic wrap, so inner loops need no modulo). */
  line: Float64Array;
  out: Float64Array;
}

/** How many levels fit: both sides even and at least the filter length at every level. */
export function maxLevels(h: number, w: number, filterLength: number, wanted: number): number {
  let levels = 0;
  let rh = h;
  let rw = w;
  while (levels < wanted && rh % 2 === 0 && rw % 2 === 0 && rh >= filterLength && rw >= filterLength) {
    levels++;
    rh /= 2;
    rw /= 2;
  }
  return levels;
}

export function waveletPlan(h: number, w: number, wavelet: string, wantedLevels: number): WaveletPlan {
  const f = DAUBECHIES[wavelet];
  if (!f) throw new Error(`unknown wavelet '${wavelet}' (known: ${Object.keys(DAUBECHIES).join(', ')})`);
  const L = f.length;
  const lo = Float64Array.from(f);
  const hi = Float64Array.from(f, (_, j) => (j % 2 === 0 ? 1 : -1) * f[L - 1 - j]);
  const n = Math.max(h, w) + L;
  return {
    h,
    w,
    levels: maxLevels(h, w, L, wantedLevels),
    lo,
    hi,
    line: new Float64Array(n),
    out: new Float64Array(n),
  };
}

/** One analysis step on x[0..n) (copied into `line`), result [a | d] into `out`. */
function analyse(p: WaveletPlan, n: number): void {
  const { lo, hi, line: x, out } = p;
  const L = lo.length;
  const half = n >> 1;
  // periodic extension: x[n + j] = x[j mod n] (n ≥ L, so one copy suffices)
  for (let j = 0; j < L - 1; j++) x[n + j] = x[j % n];
  for (let k = 0; k < half; k++) {
    let a = 0;
    let d = 0;
    const base = 2 * k;
    for (let j = 0; j < L; j++) {
      const v = x[base + j];
      a += lo[j] * v;
      d += hi[j] * v;
    }
    out[k] = a;
    out[half + k] = d;
  }
}

/** One synthesis step (the transpose of analyse): [a | d] in `line` → x into `out`. */
function synthesise(p: WaveletPlan, n: number): void {
  const { lo, hi, line: c, out } = p;
  const L = lo.length;
  const half = n >> 1;
  out.fill(0, 0, n + L - 1);
  for (let k = 0; k < half; k++) {
    const a = c[k];
    const d = c[half + k];
    const base = 2 * k;
    for (let j = 0; j < L; j++) out[base + j] += lo[j] * a + hi[j] * d;
  }
  // fold the periodic tail back
  for (let j = 0; j < L - 1; j++) out[j % n] += out[n + j];
}

/** Apply `step` to every row, then every column, of the top-left rh×rw block of `img` (row stride w). */
function separable(
  p: WaveletPlan,
  img: Float64Array,
  rh: number,
  rw: number,
  step: typeof analyse,
  rowsFirst: boolean,
): void {
  const { w, line, out } = p;
  const rows = () => {
    for (let r = 0; r < rh; r++) {
      const o = r * w;
      for (let c = 0; c < rw; c++) line[c] = img[o + c];
      step(p, rw);
      for (let c = 0; c < rw; c++) img[o + c] = out[c];
    }
  };
  const cols = () => {
    for (let c = 0; c < rw; c++) {
      for (let r = 0; r < rh; r++) line[r] = img[r * w + c];
      step(p, rh);
      for (let r = 0; r < rh; r++) img[r * w + c] = out[r];
    }
  };
  if (rowsFirst) {
    rows();
    cols();
  } else {
    cols();
    rows();
  }
}

/** Forward transform in place; the coarsest LL block ends in the top-left (H/2^levels)×(W/2^levels). */
export function forward2d(p: WaveletPlan, img: Float64Array): void {
  let rh = p.h;
  let rw = p.w;
  for (let l = 0; l < p.levels; l++) {
    separable(p, img, rh, rw, analyse, true);
    rh /= 2;
    rw /= 2;
  }
}

/** Inverse transform in place (the transpose of forward2d). */
export function inverse2d(p: WaveletPlan, img: Float64Array): void {
  for (let l = p.levels - 1; l >= 0; l--) {
    const rh = p.h >> l;
    const rw = p.w >> l;
    separable(p, img, rh, rw, synthesise, false);
  }
}
