/*
 * Forward stride-1 convolution for the thin layers XNNPACK runs slowly (measured at 4x256x256 on 2
 * threads: 40-45 ms for 1->32 and 32->1, a tenth of the FLOPs of a 32->32 layer that takes 116 ms):
 * one input channel (C = 1, O % 8 = 0) or one output channel (O = 1, C % 4 = 0). The input gradient
 * of one is a forward conv of the other, with the filter flipped and transposed.
 *
 *   y[n][i][j][o] = act(bias[o] + sum_{a,b,c} x[n][i+a-pt][j+b-pl][c] * w[a][b][c][o])
 *
 * Conventions: NHWC, HWIO, float32; x is [B][H][W][C] unpadded (taps outside it read zero); y is
 * [B][oH][oW][O]; bias may be 0 (none); act is ReLU when relu != 0. mask, when not 0 (O = 1 only), has
 * x's shape and zeroes x where mask <= 0 (the input gradient of a 1 -> O ReLU layer: x = dy, mask = the
 * layer's output y; 0 + (+-0) * w is the same bits as 0 + 0 * w, so this is dy (.) (y > 0) materialised). This call writes output rows
 * (n, i) = r in [r0, r1), r = n*oH + i. Like filter-grad.c, it uses no shadow stack.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

static inline v128_t relu_if(int relu, v128_t v) { return relu ? wasm_f32x4_max(v, wasm_f32x4_splat(0.0f)) : v; }

/*
 * C = 1, 3x3, O % 8 = 0, output columns [j0, j1) of a row whose 3x3 taps all fall inside x: taps
 * unrolled, no bounds checks, and 4 pixels per pass share each weight load (15-18 % less time than
 * row_c1 at 256x256, 1 -> 32). The same sums in the same order as row_c1, so the same bits.
 */
static void row_c1_33(const float *x, const float *w, const float *bias, float *y, int n, int i, int H, int W,
                      int O, int pt, int pl, int j0, int j1, int relu) {
  const float *xr0 = x + ((long)n * H + i - pt) * W - pl;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  int j = j0;
  for (; j + 4 <= j1; j += 4) {
    for (int ob = 0; ob < O; ob += 8) {
      v128_t b0 = bias ? wasm_v128_load(bias + ob) : zero, b1 = bias ? wasm_v128_load(bias + ob + 4) : zero;
      v128_t a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
#pragma clang loop unroll(full)
      for (int t = 0; t < 9; t++) {
        const float *xp = xr0 + (t / 3) * W + j + t % 3;
        const float *wt = w + t * O + ob;
        const v128_t w0 = wasm_v128_load(wt), w1 = wasm_v128_load(wt + 4);
        const v128_t x0 = wasm_v128_load32_splat(xp), x1 = wasm_v128_load32_splat(xp + 1);
        const v128_t x2 = wasm_v128_load32_splat(xp + 2), x3 = wasm_v128_load32_splat(xp + 3);
        a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, w0));
        a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, w1));
        a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, w0));
        a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, w1));
        a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, w0));
        a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, w1));
        a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, w0));
        a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, w1));
      }
      float *yj = y + (long)j * O + ob;
      wasm_v128_store(yj, relu_if(relu, a00));
      wasm_v128_store(yj + 4, relu_if(relu, a01));
      wasm_v128_store(yj + O, relu_if(relu, a10));
      wasm_v128_store(yj + O + 4, relu_if(relu, a11));
      wasm_v128_store(yj + 2 * O, relu_if(relu, a20));
      wasm_v128_store(yj + 2 * O + 4, relu_if(relu, a21));
      wasm_v128_store(yj + 3 * O, relu_if(relu, a30));
      wasm_v128_store(yj + 3 * O + 4, relu_if(relu, a31));
    }
  }
  for (; j < j1; j++) {
    for (int ob = 0; ob < O; ob += 8) {
      v128_t a0 = bias ? wasm_v128_load(bias + ob) : zero, a1 = bias ? wasm_v128_load(bias + ob + 4) : zero;
#pragma clang loop unroll(full)
      for (int t = 0; t < 9; t++) {
        const v128_t xv = wasm_v128_load32_splat(xr0 + (t / 3) * W + j + t % 3);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xv, wasm_v128_load(w + t * O + ob)));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xv, wasm_v128_load(w + t * O + ob + 4)));
      }
      wasm_v128_store(y + (long)j * O + ob, relu_if(relu, a0));
      wasm_v128_store(y + (long)j * O + ob + 4, relu_if(relu, a1));
    }
  }
}

/* C = 1, O % 8 = 0: the input value splatted once per tap, 32 outputs (8 vectors) per pass, then 8. */
static void row_c1(const float *x, const float *w, const float *bias, float *y, int n, int i, int H, int W,
                   int oW, int O, int kh, int kw, int pt, int pl, int relu, int j0, int j1) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int j = j0; j < j1; j++) {
    float *yj = y + (long)j * O;
    int ob = 0;
    for (; ob + 32 <= O; ob += 32) {
      v128_t a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
      if (bias) {
        a0 = wasm_v128_load(bias + ob), a1 = wasm_v128_load(bias + ob + 4);
        a2 = wasm_v128_load(bias + ob + 8), a3 = wasm_v128_load(bias + ob + 12);
        a4 = wasm_v128_load(bias + ob + 16), a5 = wasm_v128_load(bias + ob + 20);
        a6 = wasm_v128_load(bias + ob + 24), a7 = wasm_v128_load(bias + ob + 28);
      }
      for (int a = 0; a < kh; a++) {
        const int ii = i + a - pt;
        if (ii < 0 || ii >= H) continue;
        const float *xr = x + ((long)n * H + ii) * W;
        for (int b = 0; b < kw; b++) {
          const int jj = j + b - pl;
          if (jj < 0 || jj >= W) continue;
          const v128_t xv = wasm_f32x4_splat(xr[jj]);
          const float *wt = w + (a * kw + b) * O + ob;
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xv, wasm_v128_load(wt)));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xv, wasm_v128_load(wt + 4)));
          a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(xv, wasm_v128_load(wt + 8)));
          a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(xv, wasm_v128_load(wt + 12)));
          a4 = wasm_f32x4_add(a4, wasm_f32x4_mul(xv, wasm_v128_load(wt + 16)));
          a5 = wasm_f32x4_add(a5, wasm_f32x4_mul(xv, wasm_v128_load(wt + 20)));
          a6 = wasm_f32x4_add(a6, wasm_f32x4_mul(xv, wasm_v128_load(wt + 24)));
          a7 = wasm_f32x4_add(a7, wasm_f32x4_mul(xv, wasm_v128_load(wt + 28)));
        }
      }
      if (relu) {
        a0 = wasm_f32x4_max(a0, zero), a1 = wasm_f32x4_max(a1, zero);
        a2 = wasm_f32x4_max(a2, zero), a3 = wasm_f32x4_max(a3, zero);
        a4 = wasm_f32x4_max(a4, zero), a5 = wasm_f32x4_max(a5, zero);
        a6 = wasm_f32x4_max(a6, zero), a7 = wasm_f32x4_max(a7, zero);
      }
      wasm_v128_store(yj + ob, a0);
      wasm_v128_store(yj + ob + 4, a1);
      wasm_v128_store(yj + ob + 8, a2);
      wasm_v128_store(yj + ob + 12, a3);
      wasm_v128_store(yj + ob + 16, a4);
      wasm_v128_store(yj + ob + 20, a5);
      wasm_v128_store(yj + ob + 24, a6);
      wasm_v128_store(yj + ob + 28, a7);
    }
    for (; ob < O; ob += 8) {
      v128_t a0 = bias ? wasm_v128_load(bias + ob) : zero;
      v128_t a1 = bias ? wasm_v128_load(bias + ob + 4) : zero;
      for (int a = 0; a < kh; a++) {
        const int ii = i + a - pt;
        if (ii < 0 || ii >= H) continue;
        const float *xr = x + ((long)n * H + ii) * W;
        for (int b = 0; b < kw; b++) {
          const int jj = j + b - pl;
          if (jj < 0 || jj >= W) continue;
          const v128_t xv = wasm_f32x4_splat(xr[jj]);
          const float *wt = w + (a * kw + b) * O + ob;
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xv, wasm_v128_load(wt)));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xv, wasm_v128_load(wt + 4)));
        }
      }
      if (relu) {
        a0 = wasm_f32x4_max(a0, zero);
        a1 = wasm_f32x4_max(a1, zero);
      }
      wasm_v128_store(yj + ob, a0);
      wasm_v128_store(yj + ob + 4, a1);
    }
  }
}

/* x[at..at+3], 0 where mask <= 0 (mask: x's shape, or 0 for none). */
static inline v128_t load_masked(const float *x, const float *mask, long at) {
  const v128_t v = wasm_v128_load(x + at);
  return mask ? wasm_v128_and(v, wasm_f32x4_gt(wasm_v128_load(mask + at), wasm_f32x4_splat(0.0f))) : v;
}

static float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/*
 * Where the O = 1 path reads input row ii of image n (len = W C floats) and its mask row: in x, or, when
 * ring is not 0, in a ring of three staged rows (row ii in slot ii % 3, unmasked; kh <= 3). Plain
 * arguments, not a struct: a struct passed by value would go through the shadow stack.
 */
#define ROWS_O1 const float *x, const float *mask, const float *ring, int n, int H, long len
#define ROWS_O1_ARGS x, mask, ring, n, H, len
static inline const float *row_at(ROWS_O1, int ii) {
  return ring ? ring + (ii % 3) * len : x + ((long)n * H + ii) * len;
}
static inline const float *mask_at(ROWS_O1, int ii) {
  return ring || !mask ? 0 : mask + ((long)n * H + ii) * len;
}

/* O = 1, C % 4 = 0, one output pixel (any position; taps outside x read zero). */
static float pixel_o1(ROWS_O1, const float *w, int i, int j, int W, int C, int kh, int kw, int pt, int pl) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (int a = 0; a < kh; a++) {
    const int ii = i + a - pt;
    if (ii < 0 || ii >= H) continue;
    const float *xr = row_at(ROWS_O1_ARGS, ii), *mr = mask_at(ROWS_O1_ARGS, ii);
    for (int b = 0; b < kw; b++) {
      const int jj = j + b - pl;
      if (jj < 0 || jj >= W) continue;
      const long xq = (long)jj * C;
      const float *wt = w + (a * kw + b) * C;
      for (int cb = 0; cb < C; cb += 4)
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(load_masked(xr, mr, xq + cb), wasm_v128_load(wt + cb)));
    }
  }
  return hsum(acc);
}

/*
 * O = 1, C % 4 = 0: 4 input channels per vector, 4 output pixels per pass sharing each filter load.
 * Inlined into row_o1 once per source (x, x masked, the ring) with the others constant 0, so each loop
 * tests neither a mask per load nor the source per row (those tests cost about 10 % here).
 */
static inline __attribute__((always_inline)) void row_o1_as(ROWS_O1, const float *w, const float *bias, float *y,
                                                            int i, int W, int oW, int C, int kh, int kw, int pt,
                                                            int pl, int relu, const int masked) {
  const float b0 = bias ? bias[0] : 0.0f;
  for (int j = 0; j < oW; j += 4) {
    float s0, s1, s2, s3;
    if (j + 3 < oW && j - pl >= 0 && j + 3 + kw - 1 - pl < W) {
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      for (int a = 0; a < kh; a++) {
        const int ii = i + a - pt;
        if (ii < 0 || ii >= H) continue;
        const float *xr = row_at(ROWS_O1_ARGS, ii), *mr = masked ? mask_at(ROWS_O1_ARGS, ii) : 0;
        for (int b = 0; b < kw; b++) {
          const float *wt = w + (a * kw + b) * C;
          const long x0 = (long)(j + b - pl) * C;
          for (int cb = 0; cb < C; cb += 4) {
            const v128_t wv = wasm_v128_load(wt + cb);
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(load_masked(xr, mr, x0 + cb), wv));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(load_masked(xr, mr, x0 + C + cb), wv));
            a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(load_masked(xr, mr, x0 + 2 * C + cb), wv));
            a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(load_masked(xr, mr, x0 + 3 * C + cb), wv));
          }
        }
      }
      s0 = hsum(a0);
      s1 = hsum(a1);
      s2 = hsum(a2);
      s3 = hsum(a3);
    } else {
      s0 = pixel_o1(ROWS_O1_ARGS, w, i, j, W, C, kh, kw, pt, pl);
      s1 = j + 1 < oW ? pixel_o1(ROWS_O1_ARGS, w, i, j + 1, W, C, kh, kw, pt, pl) : 0.0f;
      s2 = j + 2 < oW ? pixel_o1(ROWS_O1_ARGS, w, i, j + 2, W, C, kh, kw, pt, pl) : 0.0f;
      s3 = j + 3 < oW ? pixel_o1(ROWS_O1_ARGS, w, i, j + 3, W, C, kh, kw, pt, pl) : 0.0f;
    }
    s0 += b0;
    s1 += b0;
    s2 += b0;
    s3 += b0;
    if (relu) {
      s0 = s0 < 0.0f ? 0.0f : s0;
      s1 = s1 < 0.0f ? 0.0f : s1;
      s2 = s2 < 0.0f ? 0.0f : s2;
      s3 = s3 < 0.0f ? 0.0f : s3;
    }
    y[j] = s0;
    if (j + 1 < oW) y[j + 1] = s1;
    if (j + 2 < oW) y[j + 2] = s2;
    if (j + 3 < oW) y[j + 3] = s3;
  }
}

static void row_o1(ROWS_O1, const float *w, const float *bias, float *y, int i, int W, int oW, int C, int kh, int kw,
                   int pt, int pl, int relu) {
  if (ring) row_o1_as(0, 0, ring, 0, H, len, w, bias, y, i, W, oW, C, kh, kw, pt, pl, relu, 0);
  else if (mask) row_o1_as(x, mask, 0, n, H, len, w, bias, y, i, W, oW, C, kh, kw, pt, pl, relu, 1);
  else row_o1_as(x, 0, 0, n, H, len, w, bias, y, i, W, oW, C, kh, kw, pt, pl, relu, 0);
}

/*
 * Output row i (of H) of a 3x3 'same' O = 1 conv, no bias, no ReLU, reading its input rows from a ring
 * of three (see ROWS_O1): filter-grad.c's relu_thin_grads_rows, the same operations as conv_thin_rows.
 */
void conv_thin_o1_ring_row(const float *ring, const float *w, float *y, int i, int H, int W, int C) {
  row_o1(0, 0, ring, 0, H, (long)W * C, w, 0, y, i, W, W, C, 3, 3, 1, 1, 0);
}

EXPORT("conv_thin_rows")
void conv_thin_rows(const float *x, const float *mask, const float *w, const float *bias, float *y, int r0, int r1, int H, int W,
                    int oH, int oW, int C, int O, int kh, int kw, int pt, int pl, int relu) {
  for (int r = r0; r < r1; r++) {
    const int n = r / oH;
    const int i = r - n * oH;
    float *yr = y + (long)r * oW * O;
    if (C == 1 && kh == 3 && kw == 3 && i - pt >= 0 && i - pt + 2 < H) {
      /* interior columns j - pl in [0, W - 2) by the unrolled path, the edges by the general one */
      int j0 = pl, j1 = W - 2 + pl;
      if (j1 > oW) j1 = oW;
      if (j0 > j1) j0 = j1;
      row_c1(x, w, bias, yr, n, i, H, W, oW, O, kh, kw, pt, pl, relu, 0, j0);
      row_c1_33(x, w, bias, yr, n, i, H, W, O, pt, pl, j0, j1, relu);
      row_c1(x, w, bias, yr, n, i, H, W, oW, O, kh, kw, pt, pl, relu, j1, oW);
    } else if (C == 1) row_c1(x, w, bias, yr, n, i, H, W, oW, O, kh, kw, pt, pl, relu, 0, oW);
    else row_o1(x, mask, 0, n, H, (long)W * C, w, bias, yr, i, W, oW, C, kh, kw, pt, pl, relu);
  }
}
