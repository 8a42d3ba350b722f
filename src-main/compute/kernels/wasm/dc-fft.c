/*
 * The data-consistency layer of one real image at a time, for power-of-two sizes (data-consistency.ts
 * calls it on the wasm backend; the cpu backend runs the same maths in JS, kspace/fft.ts):
 *
 *   out = Re F^-1 (D (.) F(x) + E (.) k0)      orthonormal, unshifted 2-D DFT, float64 inside
 *
 * with D = 1 - m, E = m (hard DC, lambda < 0) or D = 1 - m + m/(1+lambda), E = m lambda/(1+lambda) from
 * the mask m. It is the real-input path of fft.ts step for step (rfft2Half, the Hermitian part of
 * K_dc, irfft2Half: two real rows share one complex row FFT, only the W/2 + 1 columns of the half
 * spectrum are transformed), with the same radix-2 butterflies and twiddles in the same order, so its
 * float64 values are those of the JS code bit for bit. What differs is the layout: every 1-D FFT runs
 * on many sequences at once, one per 64-bit SIMD lane, with element k of every sequence in one
 * contiguous row (butterflies between whole rows). The row FFTs therefore run on a transposed copy,
 * T[c][r'] = x[2r'][c] + i x[2r'+1][c], and the column FFTs on the half spectrum as it is stored.
 *
 * Conventions: x, k0re, k0im, out are [B][H][W] float32 (k0 may be 0: zero); mask is [H][W] float32;
 * scratch holds dcFftScratchDoubles(H, W) float64 (8-byte aligned), twiddles included: cos and sin of
 * -2 pi k / W for k < W/2, then the same for H, written by the caller. s = 1/sqrt(H W). Single-threaded
 * (the whole layer is a few ms); no shadow stack (the module shares TensorFlow.js' memory).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

typedef v128_t v2;

/* columns per block of the transposes: one 64-byte line of float32 (measured: 8 and 16 alike, 32 slower) */
#define DC_CB 16

static inline int rev_bits(int i, int bits) {
  int r = 0;
  for (int b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
  return r;
}

/*
 * Forward, unnormalised radix-2 DFT of length n (a power of two) along the first axis of re/im, whose
 * rows are L doubles long (L even): every column is one sequence. fft.ts radix2Plan's butterflies.
 */
static void fft_lanes(double *re, double *im, int n, int L, const double *cs, const double *sn) {
  int bits = 0;
  while ((1 << bits) < n) bits++;
  for (int i = 0; i < n; i++) {
    const int j = rev_bits(i, bits);
    if (j <= i) continue;
    double *ri = re + (long)i * L, *rj = re + (long)j * L, *ii = im + (long)i * L, *ij = im + (long)j * L;
    for (int l = 0; l < L; l += 2) {
      const v2 a = wasm_v128_load(ri + l), b = wasm_v128_load(rj + l);
      wasm_v128_store(ri + l, b);
      wasm_v128_store(rj + l, a);
      const v2 c = wasm_v128_load(ii + l), d = wasm_v128_load(ij + l);
      wasm_v128_store(ii + l, d);
      wasm_v128_store(ij + l, c);
    }
  }
  for (int size = 2; size <= n; size <<= 1) {
    const int half = size >> 1, step = n / size;
    for (int k = 0; k < half; k++) {
      const v2 wr = wasm_f64x2_splat(cs[k * step]), wi = wasm_f64x2_splat(sn[k * step]);
      for (int start = 0; start < n; start += size) {
        double *ar = re + (long)(start + k) * L, *ai = im + (long)(start + k) * L;
        double *br = ar + (long)half * L, *bi = ai + (long)half * L;
        for (int l = 0; l < L; l += 2) {
          const v2 xbr = wasm_v128_load(br + l), xbi = wasm_v128_load(bi + l);
          const v2 xr = wasm_f64x2_sub(wasm_f64x2_mul(xbr, wr), wasm_f64x2_mul(xbi, wi));
          const v2 xi = wasm_f64x2_add(wasm_f64x2_mul(xbr, wi), wasm_f64x2_mul(xbi, wr));
          const v2 xar = wasm_v128_load(ar + l), xai = wasm_v128_load(ai + l);
          wasm_v128_store(br + l, wasm_f64x2_sub(xar, xr));
          wasm_v128_store(bi + l, wasm_f64x2_sub(xai, xi));
          wasm_v128_store(ar + l, wasm_f64x2_add(xar, xr));
          wasm_v128_store(ai + l, wasm_f64x2_add(xai, xi));
        }
      }
    }
  }
}

/* Rows of the transposed pair layout (H/2 sequences) and of the half spectrum (W/2 + 1 columns), both even. */
static inline int lanes_t(int H) { return ((H >> 1) + 1) & ~1; }
static inline int lanes_k(int W) { return ((W >> 1) + 2) & ~1; }

EXPORT("dc_fft_scratch_doubles")
int dc_fft_scratch_doubles(int H, int W) { return 2 * W * lanes_t(H) + 2 * H * lanes_k(W) + W + H; }

static void one_image(const float *x, const float *k0re, const float *k0im, const float *mask, double lambda,
                      float *out, double *scratch, int H, int W, double s) {
  const int LT = lanes_t(H), LK = lanes_k(W), w2 = (W >> 1) + 1, h2 = H >> 1;
  double *tr = scratch, *ti = tr + (long)W * LT;
  double *kr = ti + (long)W * LT, *ki = kr + (long)H * LK;
  const double *csW = ki + (long)H * LK, *snW = csW + W / 2, *csH = snW + W / 2, *snH = csH + H / 2;

  /*
   * forward, rows: T[c][r'] = x[2r'][c] + i x[2r'+1][c], one complex FFT per pair of rows. The
   * transposes here and below go DC_CB columns at a time, so that their writes (or reads) of T stay
   * in DC_CB streams of consecutive addresses (column by column they cost as much as all the FFTs).
   */
  for (int c0 = 0; c0 < W; c0 += DC_CB)
    for (int r = 0; r < h2; r++)
      for (int c = c0; c < c0 + DC_CB && c < W; c++) {
        tr[(long)c * LT + r] = x[(long)(2 * r) * W + c];
        ti[(long)c * LT + r] = x[(long)(2 * r + 1) * W + c];
      }
  fft_lanes(tr, ti, W, LT, csW, snW);
  /* the spectra of rows 2r' and 2r'+1: A[c] = (Z[c] + conj Z[-c]) / 2, B[c] = (Z[c] - conj Z[-c]) / 2i */
  for (int c = 0; c < w2; c++) {
    const int q = c == 0 ? 0 : W - c;
    for (int r = 0; r < h2; r++) {
      const double pr = tr[(long)c * LT + r], pi = ti[(long)c * LT + r];
      const double qr = tr[(long)q * LT + r], qi = ti[(long)q * LT + r];
      kr[(long)(2 * r) * LK + c] = 0.5 * (pr + qr);
      ki[(long)(2 * r) * LK + c] = 0.5 * (pi - qi);
      kr[(long)(2 * r + 1) * LK + c] = 0.5 * (pi + qi);
      ki[(long)(2 * r + 1) * LK + c] = -0.5 * (pr - qr);
    }
  }
  fft_lanes(kr, ki, H, LK, csH, snH);

  /*
   * K_dc's Hermitian part at p = (r, c) from p and q = -p, conjugated for the inverse
   * (fft.ts: scale by s, then data-consistency.ts applyDiagonalDcOne, then irfft2Half's conj)
   */
  for (int r = 0; r < H; r++) {
    const int rr = r == 0 ? 0 : H - r;
    for (int c = 0; c < w2; c++) {
      const long p = (long)r * W + c, q = (long)rr * W + (c == 0 ? 0 : W - c), i = (long)r * LK + c;
      const double mp = mask[p], mq = mask[q];
      double dp, dq, ep, eq;
      if (lambda > 0) {
        dp = 1 - mp + mp / (1 + lambda);
        dq = 1 - mq + mq / (1 + lambda);
        ep = (mp * lambda) / (1 + lambda);
        eq = (mq * lambda) / (1 + lambda);
      } else {
        dp = 1 - mp;
        dq = 1 - mq;
        ep = mp;
        eq = mq;
      }
      const double dd = 0.5 * (dp + dq);
      double vr = dd * (kr[i] * s);
      double vi = dd * (ki[i] * s);
      if (k0re && k0im) {
        vr += 0.5 * (ep * (double)k0re[p] + eq * (double)k0re[q]);
        vi += 0.5 * (ep * (double)k0im[p] - eq * (double)k0im[q]);
      }
      kr[i] = vr;
      ki[i] = -vi;
    }
  }

  /* inverse, columns, then rows: z = conj(G_r + i G_{r+1}) with G[-c] = conj G[c] */
  fft_lanes(kr, ki, H, LK, csH, snH);
  for (int c0 = 0; c0 < W; c0 += DC_CB)
    for (int r = 0; r < h2; r++) {
      const double *gr = kr + (long)(2 * r) * LK, *gi = ki + (long)(2 * r) * LK;
      const double *hr = gr + LK, *hi = gi + LK;
      for (int c = c0; c < c0 + DC_CB && c < W; c++) {
        const int k = c < w2 ? c : W - c;
        /* fft.ts: gi = -im * sign, hi likewise, sign = -1 past the half spectrum */
        const double g_i = c < w2 ? -gi[k] : gi[k], h_i = c < w2 ? -hi[k] : hi[k];
        tr[(long)c * LT + r] = gr[k] - h_i;
        ti[(long)c * LT + r] = -(g_i + hr[k]);
      }
    }
  fft_lanes(tr, ti, W, LT, csW, snW);
  for (int c0 = 0; c0 < W; c0 += DC_CB)
    for (int r = 0; r < h2; r++)
      for (int c = c0; c < c0 + DC_CB && c < W; c++) {
        out[(long)(2 * r) * W + c] = (float)(tr[(long)c * LT + r] * s);
        out[(long)(2 * r + 1) * W + c] = (float)(-ti[(long)c * LT + r] * s);
      }
}

EXPORT("dc_fft")
void dc_fft(const float *x, const float *k0re, const float *k0im, const float *mask, double lambda, float *out,
            double *scratch, int B, int H, int W, double s) {
  const long n = (long)H * W;
  /* the padding lanes are never read back; zeros keep them finite (no slow NaN or denormal paths) */
  const int LT = lanes_t(H), LK = lanes_k(W);
  double *tr = scratch, *kr = scratch + 2 * (long)W * LT;
  for (long r = 0; r < 2 * (long)W; r++)
    for (int l = H >> 1; l < LT; l++) tr[r * LT + l] = 0.0;
  for (long r = 0; r < 2 * (long)H; r++)
    for (int l = (W >> 1) + 1; l < LK; l++) kr[r * LK + l] = 0.0;
  for (int b = 0; b < B; b++)
    one_image(x + b * n, k0re ? k0re + b * n : 0, k0im ? k0im + b * n : 0, mask, lambda, out + b * n, scratch, H, W,
              s);
}
