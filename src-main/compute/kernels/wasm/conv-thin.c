/*
 * Forward stride-1 convolution for the thin layers XNNPACK runs slowly (measured at 4x256x256 on 2
 * threads: 40-45 ms for 1->32 and 32->1, a tenth of the FLOPs of a 32->32 layer that takes 116 ms):
 * one input channel (C = 1, O % 8 = 0) or one output channel (O = 1, C % 4 = 0). The input gradient
 * of one is a forward conv of the other, with the filter flipped and transposed.
 *
 *   y[n][i][j][o] = act(bias[o] + sum_{a,b,c} x[n][i+a-pt][j+b-pl][c] * w[a][b][c][o])
 *
 * Conventions: NHWC, HWIO, float32; x is [B][H][W][C] unpadded (taps outside it read zero); y is
 * [B][oH][oW][O]; bias may be 0 (none); act is ReLU when relu != 0. This call writes output rows
 * (n, i) = r in [r0, r1), r = n*oH + i. Like filter-grad.c, it uses no shadow stack.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* C = 1, O % 8 = 0: the input value splatted once per tap, 32 outputs (8 vectors) per pass, then 8. */
static void row_c1(const float *x, const float *w, const float *bias, float *y, int n, int i, int H, int W,
                   int oW, int O, int kh, int kw, int pt, int pl, int relu) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int j = 0; j < oW; j++) {
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

static float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/* O = 1, C % 4 = 0, one output pixel (any position; taps outside x read zero). */
static float pixel_o1(const float *x, const float *w, int n, int i, int j, int H, int W, int C, int kh, int kw,
                      int pt, int pl) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (int a = 0; a < kh; a++) {
    const int ii = i + a - pt;
    if (ii < 0 || ii >= H) continue;
    for (int b = 0; b < kw; b++) {
      const int jj = j + b - pl;
      if (jj < 0 || jj >= W) continue;
      const float *xq = x + (((long)n * H + ii) * W + jj) * C;
      const float *wt = w + (a * kw + b) * C;
      for (int cb = 0; cb < C; cb += 4)
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(xq + cb), wasm_v128_load(wt + cb)));
    }
  }
  return hsum(acc);
}

/* O = 1, C % 4 = 0: 4 input channels per vector, 4 output pixels per pass sharing each filter load. */
static void row_o1(const float *x, const float *w, const float *bias, float *y, int n, int i, int H, int W,
                   int oW, int C, int kh, int kw, int pt, int pl, int relu) {
  const float b0 = bias ? bias[0] : 0.0f;
  for (int j = 0; j < oW; j += 4) {
    float s0, s1, s2, s3;
    if (j + 3 < oW && j - pl >= 0 && j + 3 + kw - 1 - pl < W) {
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      for (int a = 0; a < kh; a++) {
        const int ii = i + a - pt;
        if (ii < 0 || ii >= H) continue;
        const float *xr = x + (((long)n * H + ii) * W) * C;
        for (int b = 0; b < kw; b++) {
          const float *wt = w + (a * kw + b) * C;
          const float *x0 = xr + (long)(j + b - pl) * C;
          for (int cb = 0; cb < C; cb += 4) {
            const v128_t wv = wasm_v128_load(wt + cb);
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(x0 + cb), wv));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(x0 + C + cb), wv));
            a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(x0 + 2 * C + cb), wv));
            a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(x0 + 3 * C + cb), wv));
          }
        }
      }
      s0 = hsum(a0);
      s1 = hsum(a1);
      s2 = hsum(a2);
      s3 = hsum(a3);
    } else {
      s0 = pixel_o1(x, w, n, i, j, H, W, C, kh, kw, pt, pl);
      s1 = j + 1 < oW ? pixel_o1(x, w, n, i, j + 1, H, W, C, kh, kw, pt, pl) : 0.0f;
      s2 = j + 2 < oW ? pixel_o1(x, w, n, i, j + 2, H, W, C, kh, kw, pt, pl) : 0.0f;
      s3 = j + 3 < oW ? pixel_o1(x, w, n, i, j + 3, H, W, C, kh, kw, pt, pl) : 0.0f;
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

EXPORT("conv_thin_rows")
void conv_thin_rows(const float *x, const float *w, const float *bias, float *y, int r0, int r1, int H, int W,
                    int oH, int oW, int C, int O, int kh, int kw, int pt, int pl, int relu) {
  for (int r = r0; r < r1; r++) {
    const int n = r / oH;
    const int i = r - n * oH;
    float *yr = y + (long)r * oW * O;
    if (C == 1) row_c1(x, w, bias, yr, n, i, H, W, oW, O, kh, kw, pt, pl, relu);
    else row_o1(x, w, bias, yr, n, i, H, W, oW, C, kh, kw, pt, pl, relu);
  }
}
