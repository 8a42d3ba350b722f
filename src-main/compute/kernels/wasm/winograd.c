/*
 * Winograd F(4x4, 3x3) and F(6x6, 3x3) convolution, stride 1, for the wide layers (C % 4 = 0, O % 8 = 0:
 * the 32->32 layers that hold almost all of a DC-CNN's work). Each 4x4 output tile costs 36 products
 * per (c, o) pair instead of 144, a quarter of the multiply-adds of the direct form; each 6x6 tile 64
 * instead of 324, a fifth (Lavin & Gray 2016; F(6x6) with the points 0, +-1, +-2, +-1/2 as in NNPACK):
 *
 *   Y = AT [ (G g GT) (.) (BT d B) ] A      per (m+2)x(m+2) input tile d, 3x3 filter g, m = 4 or 6
 *
 * F(6x6) is about 18 % faster on a 256x256 layer (its products, 80 % of F(4x4)'s, are most of the time)
 * and about 1.5x less accurate in float32 (measured: max error 6e-6 of the largest output against 4e-6,
 * 32 -> 32); wasm-kernels.ts picks it where its tiles waste no more than F(4x4)'s (winogradTile).
 *
 * The filter transform U = G g GT is done once per call, by winograd_filter_transform_rows (end of this
 * file; WasmKernels.winogradFilter is its TypeScript twin), U[p][c][o] for the (m+2)^2 positions p = (m+2)a + b. This file transforms input tiles (V[p][t][c] = BT d B), multiplies
 * per position (M[p] = V[p] U[p], a [tiles x C] x [C x O] product, the bias added at one position)
 * and transforms back, fusing ReLU into the output transform:
 *
 *   y[n][i][j][o] = act(bias[o] + sum_{a,b,c} x[n][i+a-pt][j+b-pl][c] * w[a][b][c][o])
 *
 * Conventions: NHWC, float32; x is [B][H][W][C] unpadded (taps outside it read zero); y is [B][oH][oW][O];
 * bias may be 0 (none); act is ReLU when relu != 0. Rows of work are tile rows r = n * ceil(oH/4) + ti;
 * this call writes output rows of tile rows [r0, r1) (r = n * ceil(oH/m) + ti for winograd6_rows). Every output tile is computed by the same sequence
 * of operations whichever call (thread) computes it, so results do not depend on the thread count.
 * mask, when not 0, has x's shape and zeroes x where mask <= 0 (the input gradient of a ReLU layer:
 * x = dy, mask = the layer's output y). `scratch` is this call's own (P (WINO_PS(C) + WINO_PS(O)) + 4 P floats, P = (m+2)^2); like the other kernels here it uses no
 * shadow stack (the module shares TensorFlow.js' memory).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define UNROLL _Pragma("clang loop unroll(full)")
/* tiles per block: V and M of a block (36 KB each for C = O = 32) stay in L2, one position's in L1 */
#define WINO_TB 8
/*
 * Floats from one position's block to the next in V and M: 16 more than the block, so that the 36
 * stores of a tile's transform do not all fall in one L1 set (a 4 KB stride aliases: measured 2x slower)
 */
#define WINO_PS(k) (WINO_TB * (k) + 16)

typedef v128_t v4;

static inline v4 add(v4 a, v4 b) { return wasm_f32x4_add(a, b); }
static inline v4 sub(v4 a, v4 b) { return wasm_f32x4_sub(a, b); }
static inline v4 mulk(v4 a, float k) { return wasm_f32x4_mul(a, wasm_f32x4_splat(k)); }

/* o = BT d over 6 values with stride s (in, out arrays of v4; indices constant after unrolling). */
#define BT6(d, di, s, o, oi, os)                                                                         \
  do {                                                                                                   \
    const v4 d0 = d[(di)], d1 = d[(di) + (s)], d2 = d[(di) + 2 * (s)], d3 = d[(di) + 3 * (s)];         \
    const v4 d4 = d[(di) + 4 * (s)], d5 = d[(di) + 5 * (s)];                                           \
    const v4 t1 = sub(d4, mulk(d2, 4.0f)), t2 = sub(d3, mulk(d1, 4.0f));                               \
    const v4 t3 = sub(d4, d2), t4 = mulk(sub(d3, d1), 2.0f);                                            \
    o[(oi)] = add(sub(mulk(d0, 4.0f), mulk(d2, 5.0f)), d4);                                             \
    o[(oi) + (os)] = add(t1, t2);                                                                        \
    o[(oi) + 2 * (os)] = sub(t1, t2);                                                                    \
    o[(oi) + 3 * (os)] = add(t3, t4);                                                                    \
    o[(oi) + 4 * (os)] = sub(t3, t4);                                                                    \
    o[(oi) + 5 * (os)] = add(sub(mulk(d1, 4.0f), mulk(d3, 5.0f)), d5);                                  \
  } while (0)

/* o = AT m over 6 values with stride s, 4 results with stride os. */
#define AT6(m, mi, s, o, oi, os)                                                                         \
  do {                                                                                                   \
    const v4 m0 = m[(mi)], m1 = m[(mi) + (s)], m2 = m[(mi) + 2 * (s)], m3 = m[(mi) + 3 * (s)];         \
    const v4 m4 = m[(mi) + 4 * (s)], m5 = m[(mi) + 5 * (s)];                                           \
    const v4 s12 = add(m1, m2), d12 = sub(m1, m2), s34 = add(m3, m4), d34 = sub(m3, m4);               \
    o[(oi)] = add(add(m0, s12), s34);                                                                    \
    o[(oi) + (os)] = add(d12, mulk(d34, 2.0f));                                                          \
    o[(oi) + 2 * (os)] = add(s12, mulk(s34, 4.0f));                                                      \
    o[(oi) + 3 * (os)] = add(add(d12, mulk(d34, 8.0f)), m5);                                             \
  } while (0)

/* o = BT d over 8 values (F(6x6, 3x3), points 0, +-1, +-2, +-1/2), in and out arrays of v4 with strides s, os. */
#define BT8(d, di, s, o, oi, os)                                                                         \
  do {                                                                                                   \
    const v4 d0 = d[(di)], d1 = d[(di) + (s)], d2 = d[(di) + 2 * (s)], d3 = d[(di) + 3 * (s)];         \
    const v4 d4 = d[(di) + 4 * (s)], d5 = d[(di) + 5 * (s)], d6 = d[(di) + 6 * (s)], d7 = d[(di) + 7 * (s)]; \
    const v4 a1 = sub(add(d2, d6), mulk(d4, 4.25f)), b1 = sub(add(d1, d5), mulk(d3, 4.25f));           \
    const v4 a3 = sub(add(mulk(d2, 0.25f), d6), mulk(d4, 1.25f));                                      \
    const v4 b3 = add(sub(mulk(d1, 0.5f), mulk(d3, 2.5f)), mulk(d5, 2.0f));                            \
    const v4 a5 = add(sub(mulk(d2, 4.0f), mulk(d4, 5.0f)), d6);                                        \
    const v4 b5 = add(sub(mulk(d1, 2.0f), mulk(d3, 2.5f)), mulk(d5, 0.5f));                            \
    o[(oi)] = add(sub(d0, d6), mulk(sub(d4, d2), 5.25f));                                               \
    o[(oi) + (os)] = add(a1, b1);                                                                        \
    o[(oi) + 2 * (os)] = sub(a1, b1);                                                                    \
    o[(oi) + 3 * (os)] = add(a3, b3);                                                                    \
    o[(oi) + 4 * (os)] = sub(a3, b3);                                                                    \
    o[(oi) + 5 * (os)] = add(a5, b5);                                                                    \
    o[(oi) + 6 * (os)] = sub(a5, b5);                                                                    \
    o[(oi) + 7 * (os)] = add(sub(d7, d1), mulk(sub(d3, d5), 5.25f));                                    \
  } while (0)

/* o = AT m over 8 values with stride s, 6 results with stride os. */
#define AT8(m, mi, s, o, oi, os)                                                                         \
  do {                                                                                                   \
    const v4 m0 = m[(mi)], m1 = m[(mi) + (s)], m2 = m[(mi) + 2 * (s)], m3 = m[(mi) + 3 * (s)];         \
    const v4 m4 = m[(mi) + 4 * (s)], m5 = m[(mi) + 5 * (s)], m6 = m[(mi) + 6 * (s)], m7 = m[(mi) + 7 * (s)]; \
    const v4 s12 = add(m1, m2), d12 = sub(m1, m2), s34 = add(m3, m4), d34 = sub(m3, m4);               \
    const v4 s56 = add(m5, m6), d56 = sub(m5, m6);                                                     \
    o[(oi)] = add(add(m0, s12), add(s34, s56));                                                          \
    o[(oi) + (os)] = add(add(d12, mulk(d34, 2.0f)), mulk(d56, 0.5f));                                    \
    o[(oi) + 2 * (os)] = add(add(s12, mulk(s34, 4.0f)), mulk(s56, 0.25f));                               \
    o[(oi) + 3 * (os)] = add(add(d12, mulk(d34, 8.0f)), mulk(d56, 0.125f));                              \
    o[(oi) + 4 * (os)] = add(add(s12, mulk(s34, 16.0f)), mulk(s56, 0.0625f));                            \
    o[(oi) + 5 * (os)] = add(add(add(d12, mulk(d34, 32.0f)), mulk(d56, 0.03125f)), m7);                  \
  } while (0)

/* x[at + off] as read by input_tile: 0 outside the image, masked where mask <= 0. */
static inline v4 tap(const float *x, const float *mask, long at, int ii, int jj, int H, int W, int C, int inside) {
  const v4 zero = wasm_f32x4_splat(0.0f);
  if (!inside && (ii < 0 || ii >= H || jj < 0 || jj >= W)) return zero;
  const long off = at + ((long)ii * W + jj) * C;
  v4 v = wasm_v128_load(x + off);
  if (mask) v = wasm_v128_and(v, wasm_f32x4_gt(wasm_v128_load(mask + off), zero));
  return v;
}

/*
 * V[p][t][c..c+3] (position stride ps floats) = BT d B for the 6x6 patch of x at input rows i0..,
 * columns j0.. (of image n), 4 channels from c. Columns first, staged through `stage` (36 v128): a
 * whole 6x6 patch of v128 values live at once would not fit the registers.
 */
static inline void input_tile(const float *x, const float *mask, float *V, float *stage, int ps, int t, int c,
                              int n, int i0, int j0, int H, int W, int C) {
  v4 d[6], o[6];
  const long at = (long)n * H * W * C + c;
  const int inside = i0 >= 0 && i0 + 6 <= H && j0 >= 0 && j0 + 6 <= W;
  if (inside && !mask) {
    const float *xp = x + at + ((long)i0 * W + j0) * C;
    const long rs = (long)W * C;
    UNROLL for (int b = 0; b < 6; b++) {
      UNROLL for (int a = 0; a < 6; a++) d[a] = wasm_v128_load(xp + a * rs + b * C);
      BT6(d, 0, 1, o, 0, 1);
      UNROLL for (int a = 0; a < 6; a++) wasm_v128_store(stage + 4 * (a * 6 + b), o[a]);
    }
  } else {
    UNROLL for (int b = 0; b < 6; b++) {
      UNROLL for (int a = 0; a < 6; a++) d[a] = tap(x, mask, at, i0 + a, j0 + b, H, W, C, inside);
      BT6(d, 0, 1, o, 0, 1);
      UNROLL for (int a = 0; a < 6; a++) wasm_v128_store(stage + 4 * (a * 6 + b), o[a]);
    }
  }
  float *vt = V + t * C + c;
  UNROLL for (int a = 0; a < 6; a++) {
    UNROLL for (int b = 0; b < 6; b++) d[b] = wasm_v128_load(stage + 4 * (a * 6 + b));
    BT6(d, 0, 1, o, 0, 1);
    UNROLL for (int b = 0; b < 6; b++) wasm_v128_store(vt + (a * 6 + b) * ps, o[b]);
  }
}

/* input_tile for F(6x6, 3x3): the 8x8 patch at (i0, j0), staged through 64 v128. */
static inline void input_tile8(const float *x, const float *mask, float *V, float *stage, int ps, int t, int c,
                               int n, int i0, int j0, int H, int W, int C) {
  v4 d[8], o[8];
  const long at = (long)n * H * W * C + c;
  const int inside = i0 >= 0 && i0 + 8 <= H && j0 >= 0 && j0 + 8 <= W;
  if (inside && !mask) {
    const float *xp = x + at + ((long)i0 * W + j0) * C;
    const long rs = (long)W * C;
    UNROLL for (int b = 0; b < 8; b++) {
      UNROLL for (int a = 0; a < 8; a++) d[a] = wasm_v128_load(xp + a * rs + b * C);
      BT8(d, 0, 1, o, 0, 1);
      UNROLL for (int a = 0; a < 8; a++) wasm_v128_store(stage + 4 * (a * 8 + b), o[a]);
    }
  } else {
    UNROLL for (int b = 0; b < 8; b++) {
      UNROLL for (int a = 0; a < 8; a++) d[a] = tap(x, mask, at, i0 + a, j0 + b, H, W, C, inside);
      BT8(d, 0, 1, o, 0, 1);
      UNROLL for (int a = 0; a < 8; a++) wasm_v128_store(stage + 4 * (a * 8 + b), o[a]);
    }
  }
  float *vt = V + t * C + c;
  UNROLL for (int a = 0; a < 8; a++) {
    UNROLL for (int b = 0; b < 8; b++) d[b] = wasm_v128_load(stage + 4 * (a * 8 + b));
    BT8(d, 0, 1, o, 0, 1);
    UNROLL for (int b = 0; b < 8; b++) wasm_v128_store(vt + (a * 8 + b) * ps, o[b]);
  }
}

/*
 * M[p][t][o] = sum_c V[p][t][c] U[p][c][o] for tiles [0, nt) (nt % 4 = 0), positions [0, np), plus
 * bias[o] at position pb = (m+2) + 1 when bias is not 0: column 1 of AT is all ones for both tile
 * sizes, so AT (bias at (1, 1)) A adds the bias to every output of the tile, at one add per tile
 * position instead of one per output (the sums then start from the bias instead of 0).
 */
static void multiply(const float *V, const float *U, const float *bias, float *M, int nt, int C, int O, int np, int pb) {
  for (int p = 0; p < np; p++) {
    const float *Vp = V + p * WINO_PS(C);
    const float *Up = U + (long)p * C * O;
    float *Mp = M + p * WINO_PS(O);
    for (int t = 0; t < nt; t += 4) {
      const float *v0 = Vp + t * C, *v1 = v0 + C, *v2 = v1 + C, *v3 = v2 + C;
      for (int ob = 0; ob < O; ob += 8) {
        v4 a00 = wasm_f32x4_splat(0.0f), a01 = a00;
        if (bias && p == pb) a00 = wasm_v128_load(bias + ob), a01 = wasm_v128_load(bias + ob + 4);
        v4 a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01;
        const float *u = Up + ob;
        for (int c = 0; c < C; c++) {
          const v4 u0 = wasm_v128_load(u), u1 = wasm_v128_load(u + 4);
          const v4 x0 = wasm_v128_load32_splat(v0 + c), x1 = wasm_v128_load32_splat(v1 + c);
          const v4 x2 = wasm_v128_load32_splat(v2 + c), x3 = wasm_v128_load32_splat(v3 + c);
          a00 = add(a00, wasm_f32x4_mul(x0, u0));
          a01 = add(a01, wasm_f32x4_mul(x0, u1));
          a10 = add(a10, wasm_f32x4_mul(x1, u0));
          a11 = add(a11, wasm_f32x4_mul(x1, u1));
          a20 = add(a20, wasm_f32x4_mul(x2, u0));
          a21 = add(a21, wasm_f32x4_mul(x2, u1));
          a30 = add(a30, wasm_f32x4_mul(x3, u0));
          a31 = add(a31, wasm_f32x4_mul(x3, u1));
          u += O;
        }
        float *m = Mp + t * O + ob;
        wasm_v128_store(m, a00);
        wasm_v128_store(m + 4, a01);
        wasm_v128_store(m + O, a10);
        wasm_v128_store(m + O + 4, a11);
        wasm_v128_store(m + 2 * O, a20);
        wasm_v128_store(m + 2 * O + 4, a21);
        wasm_v128_store(m + 3 * O, a30);
        wasm_v128_store(m + 3 * O + 4, a31);
      }
    }
  }
}

/* y for the 4x4 output tile at (i0, j0) of image n, channels o..o+3, from M[.][t][o..]; staged as input_tile. */
static inline void output_tile(const float *M, float *y, float *stage, int t, int o, int n, int i0,
                               int j0, int oH, int oW, int O, int relu) {
  v4 m[6], r[4];
  const float *mt = M + t * O + o;
  const int ps = WINO_PS(O);
  UNROLL for (int b = 0; b < 6; b++) {
    UNROLL for (int a = 0; a < 6; a++) m[a] = wasm_v128_load(mt + (a * 6 + b) * ps);
    AT6(m, 0, 1, r, 0, 1);
    UNROLL for (int i = 0; i < 4; i++) wasm_v128_store(stage + 4 * (i * 6 + b), r[i]);
  }
  const v4 zero = wasm_f32x4_splat(0.0f);
  float *yn = y + (long)n * oH * oW * O + o;
  UNROLL for (int i = 0; i < 4; i++) {
    if (i0 + i >= oH) break;
    UNROLL for (int b = 0; b < 6; b++) m[b] = wasm_v128_load(stage + 4 * (i * 6 + b));
    AT6(m, 0, 1, r, 0, 1);
    float *yr = yn + ((long)(i0 + i) * oW + j0) * O;
    UNROLL for (int j = 0; j < 4; j++) {
      if (j0 + j < oW) {
        v4 val = r[j];
        if (relu) val = wasm_f32x4_max(val, zero);
        wasm_v128_store(yr + j * O, val);
      }
    }
  }
}

EXPORT("winograd_rows")
void winograd_rows(const float *x, const float *mask, const float *U, const float *bias, float *y, float *scratch, int r0, int r1,
                   int H, int W, int oH, int oW, int C, int O, int pt, int pl, int relu) {
  float *V = scratch;
  float *M = scratch + 36 * WINO_PS(C);
  float *stage = M + 36 * WINO_PS(O);
  const int tH = (oH + 3) / 4, tW = (oW + 3) / 4;
  for (int r = r0; r < r1; r++) {
    const int n = r / tH;
    const int i0 = (r - n * tH) * 4;
    for (int tb = 0; tb < tW; tb += WINO_TB) {
      const int nt = tW - tb < WINO_TB ? tW - tb : WINO_TB;
      const int nt4 = (nt + 3) & ~3;
      /* tiles past the row's end (up to a multiple of 4) read zeros or spare columns; never written */
      for (int t = 0; t < nt4; t++)
        for (int c = 0; c < C; c += 4) input_tile(x, mask, V, stage, WINO_PS(C), t, c, n, i0 - pt, (tb + t) * 4 - pl, H, W, C);
      multiply(V, U, bias, M, nt4, C, O, 36, 7);
      for (int t = 0; t < nt; t++)
        for (int o = 0; o < O; o += 4) output_tile(M, y, stage, t, o, n, i0, (tb + t) * 4, oH, oW, O, relu);
    }
  }
}

/* output_tile for F(6x6, 3x3): the 6x6 output tile at (i0, j0) from M's 64 positions. */
static inline void output_tile8(const float *M, float *y, float *stage, int t, int o, int n, int i0,
                                int j0, int oH, int oW, int O, int relu) {
  v4 m[8], r[6];
  const float *mt = M + t * O + o;
  const int ps = WINO_PS(O);
  UNROLL for (int b = 0; b < 8; b++) {
    UNROLL for (int a = 0; a < 8; a++) m[a] = wasm_v128_load(mt + (a * 8 + b) * ps);
    AT8(m, 0, 1, r, 0, 1);
    UNROLL for (int i = 0; i < 6; i++) wasm_v128_store(stage + 4 * (i * 8 + b), r[i]);
  }
  const v4 zero = wasm_f32x4_splat(0.0f);
  float *yn = y + (long)n * oH * oW * O + o;
  UNROLL for (int i = 0; i < 6; i++) {
    if (i0 + i >= oH) break;
    UNROLL for (int b = 0; b < 8; b++) m[b] = wasm_v128_load(stage + 4 * (i * 8 + b));
    AT8(m, 0, 1, r, 0, 1);
    float *yr = yn + ((long)(i0 + i) * oW + j0) * O;
    UNROLL for (int j = 0; j < 6; j++) {
      if (j0 + j < oW) {
        v4 val = r[j];
        if (relu) val = wasm_f32x4_max(val, zero);
        wasm_v128_store(yr + j * O, val);
      }
    }
  }
}

/* winograd_rows with F(6x6, 3x3): tile rows of 6 output rows. */
EXPORT("winograd6_rows")
void winograd6_rows(const float *x, const float *mask, const float *U, const float *bias, float *y, float *scratch, int r0,
                    int r1, int H, int W, int oH, int oW, int C, int O, int pt, int pl, int relu) {
  float *V = scratch;
  float *M = scratch + 64 * WINO_PS(C);
  float *stage = M + 64 * WINO_PS(O);
  const int tH = (oH + 5) / 6, tW = (oW + 5) / 6;
  for (int r = r0; r < r1; r++) {
    const int n = r / tH;
    const int i0 = (r - n * tH) * 6;
    for (int tb = 0; tb < tW; tb += WINO_TB) {
      const int nt = tW - tb < WINO_TB ? tW - tb : WINO_TB;
      const int nt4 = (nt + 3) & ~3;
      for (int t = 0; t < nt4; t++)
        for (int c = 0; c < C; c += 4) input_tile8(x, mask, V, stage, WINO_PS(C), t, c, n, i0 - pt, (tb + t) * 6 - pl, H, W, C);
      multiply(V, U, bias, M, nt4, C, O, 64, 9);
      for (int t = 0; t < nt; t++)
        for (int o = 0; o < O; o += 4) output_tile8(M, y, stage, t, o, n, i0, (tb + t) * 6, oH, oW, O, relu);
    }
  }
}

/*
 * Filter and bias gradients by Winograd F(3x3, 4x4), the transpose (dual) of the forward F(4x4, 3x3):
 * for each 4x4 tile e of dy and the 6x6 patch d of x under it,
 *
 *   dW[a][b] += (GT [ (A e AT) (.) (BT d B) ] G)[a][b]
 *
 * and the sum over tiles commutes with GT . G, so this kernel only sums, per position p,
 * Wt[p][c][o] = sum_t (BT d B)[p][t][c] (A e AT)[p][t][o]; the caller adds the parts and applies GT . G
 * (36 C O values). db[o] = sum of dy. mask, when not 0, has dy's shape and zeroes dy where mask <= 0
 * (a ReLU layer's output y: y > 0 where the pre-activation is). x is unpadded [B][H][W][C] (taps outside read zero) with the
 * conv's top/left padding pt, pl; dy is [B][oH][oW][O]. `acc` is this call's part: Wt (36 C O floats),
 * db (O), then scratch for one block of tiles (36 (WGF_PS(C) + WGF_PS(O)) + 144 floats). Rows are tile rows of dy, as in winograd_rows.
 */
#define WGF_TB 32
#define WGF_PS(k) (WGF_TB * (k) + 16)

/*
 * E[p][t][o..o+3] (position stride ps) = A e AT for the 4x4 tile of dy at (i0, j0), 0 outside dy (and
 * where mask <= 0); returns the tile's sum (for db). Columns first, staged through `stage`.
 */
static inline v4 grad_tile(const float *dy, const float *mask, float *E, float *stage, int ps, int t, int o, int n,
                           int i0, int j0, int oH, int oW, int O) {
  v4 e[4], q[6];
  const v4 zero = wasm_f32x4_splat(0.0f);
  v4 s = zero;
  const long at = (long)n * oH * oW * O + o;
  const int inside = i0 + 4 <= oH && j0 + 4 <= oW;
  /* A = the transpose of the forward AT: 4 values -> 6 */
#define A4(in, out)                                                                                      \
  do {                                                                                                   \
    const v4 s02 = add(in[0], in[2]), s13 = add(in[1], in[3]);                                         \
    const v4 qq = add(in[0], mulk(in[2], 4.0f)), rr = mulk(add(in[1], mulk(in[3], 4.0f)), 2.0f);       \
    out[0] = in[0];                                                                                      \
    out[1] = add(s02, s13);                                                                              \
    out[2] = sub(s02, s13);                                                                              \
    out[3] = add(qq, rr);                                                                                \
    out[4] = sub(qq, rr);                                                                                \
    out[5] = in[3];                                                                                      \
  } while (0)
  UNROLL for (int j = 0; j < 4; j++) {
    UNROLL for (int i = 0; i < 4; i++) e[i] = tap(dy, mask, at, i0 + i, j0 + j, oH, oW, O, inside);
    s = add(s, add(add(e[0], e[1]), add(e[2], e[3])));
    A4(e, q);
    UNROLL for (int a = 0; a < 6; a++) wasm_v128_store(stage + 4 * (a * 4 + j), q[a]);
  }
  float *et = E + t * O + o;
  UNROLL for (int a = 0; a < 6; a++) {
    UNROLL for (int j = 0; j < 4; j++) e[j] = wasm_v128_load(stage + 4 * (a * 4 + j));
    A4(e, q);
    UNROLL for (int b = 0; b < 6; b++) wasm_v128_store(et + (a * 6 + b) * ps, q[b]);
  }
#undef A4
  return s;
}

/* Wt[p][c][o] += sum_{t < nt} X[p][t][c] E[p][t][o], all positions. */
static void accumulate(const float *X, const float *E, float *Wt, int nt, int C, int O) {
  for (int p = 0; p < 36; p++) {
    const float *Xp = X + p * WGF_PS(C);
    const float *Ep = E + p * WGF_PS(O);
    float *Wp = Wt + (long)p * C * O;
    for (int cb = 0; cb < C; cb += 4) {
      for (int ob = 0; ob < O; ob += 8) {
        float *w = Wp + cb * O + ob;
        v4 a00 = wasm_v128_load(w), a01 = wasm_v128_load(w + 4);
        v4 a10 = wasm_v128_load(w + O), a11 = wasm_v128_load(w + O + 4);
        v4 a20 = wasm_v128_load(w + 2 * O), a21 = wasm_v128_load(w + 2 * O + 4);
        v4 a30 = wasm_v128_load(w + 3 * O), a31 = wasm_v128_load(w + 3 * O + 4);
        const float *xt = Xp + cb;
        const float *et = Ep + ob;
        for (int t = 0; t < nt; t++) {
          const v4 g0 = wasm_v128_load(et), g1 = wasm_v128_load(et + 4);
          const v4 x0 = wasm_v128_load32_splat(xt), x1 = wasm_v128_load32_splat(xt + 1);
          const v4 x2 = wasm_v128_load32_splat(xt + 2), x3 = wasm_v128_load32_splat(xt + 3);
          a00 = add(a00, wasm_f32x4_mul(x0, g0));
          a01 = add(a01, wasm_f32x4_mul(x0, g1));
          a10 = add(a10, wasm_f32x4_mul(x1, g0));
          a11 = add(a11, wasm_f32x4_mul(x1, g1));
          a20 = add(a20, wasm_f32x4_mul(x2, g0));
          a21 = add(a21, wasm_f32x4_mul(x2, g1));
          a30 = add(a30, wasm_f32x4_mul(x3, g0));
          a31 = add(a31, wasm_f32x4_mul(x3, g1));
          xt += C;
          et += O;
        }
        wasm_v128_store(w, a00);
        wasm_v128_store(w + 4, a01);
        wasm_v128_store(w + O, a10);
        wasm_v128_store(w + O + 4, a11);
        wasm_v128_store(w + 2 * O, a20);
        wasm_v128_store(w + 2 * O + 4, a21);
        wasm_v128_store(w + 3 * O, a30);
        wasm_v128_store(w + 3 * O + 4, a31);
      }
    }
  }
}

EXPORT("winograd_filter_rows")
void winograd_filter_rows(const float *x, const float *dy, const float *mask, float *acc, int r0, int r1, int H, int W, int oH, int oW,
                          int C, int O, int pt, int pl) {
  const int nw = 36 * C * O;
  float *db = acc + nw;
  float *X = db + O;
  float *E = X + 36 * WGF_PS(C);
  float *stage = E + 36 * WGF_PS(O);
  for (int k = 0; k < nw + O; k++) acc[k] = 0.0f;
  const int tH = (oH + 3) / 4, tW = (oW + 3) / 4;
  for (int r = r0; r < r1; r++) {
    const int n = r / tH;
    const int i0 = (r - n * tH) * 4;
    for (int tb = 0; tb < tW; tb += WGF_TB) {
      const int nt = tW - tb < WGF_TB ? tW - tb : WGF_TB;
      for (int t = 0; t < nt; t++) {
        const int j0 = (tb + t) * 4;
        for (int c = 0; c < C; c += 4) input_tile(x, 0, X, stage, WGF_PS(C), t, c, n, i0 - pt, j0 - pl, H, W, C);
        for (int o = 0; o < O; o += 4) {
          const v4 s = grad_tile(dy, mask, E, stage, WGF_PS(O), t, o, n, i0, j0, oH, oW, O);
          wasm_v128_store(db + o, add(wasm_v128_load(db + o), s));
        }
      }
      accumulate(X, E, acc, nt, C, O);
    }
  }
}

/*
 * winograd_filter_rows' last step, for the (c, o) pairs q in [q0, q1) of CO = C O: the parts' Wt
 * (`parts` of them, `stride` floats apart from s) added in part order in float64, then
 * dW[a][b][q] = (GT Wt G)[a][b] in float64, rounded once to float32, into dw [3][3][CO]. The same
 * float64 operations in the same order as the TypeScript it replaced (wasm-kernels.ts), so the same
 * bits, on any thread count (each q is one call's). G (F(4x4, 3x3)'s) is spelt out as constants: a
 * table would be data placed in the shared memory.
 */
#define G4(p, a)                                                                                         \
  ((p) == 0   ? ((a) == 0 ? 1.0 / 4 : 0.0)                                                               \
   : (p) == 1 ? -1.0 / 6                                                                                 \
   : (p) == 2 ? ((a) == 1 ? 1.0 / 6 : -1.0 / 6)                                                          \
   : (p) == 3 ? ((a) == 0 ? 1.0 / 24 : (a) == 1 ? 1.0 / 12 : 1.0 / 6)                                    \
   : (p) == 4 ? ((a) == 0 ? 1.0 / 24 : (a) == 1 ? -1.0 / 12 : 1.0 / 6)                                   \
              : ((a) == 2 ? 1.0 : 0.0))

EXPORT("winograd_filter_finish_rows")
void winograd_filter_finish_rows(const float *s, float *dw, int q0, int q1, int stride, int parts, int CO) {
  for (int q = q0; q < q1; q++) {
    double wt[36], t[18];
    UNROLL for (int p = 0; p < 36; p++) wt[p] = 0.0;
    for (int k = 0; k < parts; k++) {
      const float *sk = s + (long)k * stride + q;
      UNROLL for (int p = 0; p < 36; p++) wt[p] += (double)sk[(long)p * CO];
    }
    /* t[a][pb] = sum_pa G[pa][a] Wt[pa][pb], then dW[a][b] = sum_pb t[a][pb] G[pb][b] */
    UNROLL for (int i = 0; i < 18; i++) t[i] = 0.0;
    UNROLL for (int pa = 0; pa < 6; pa++)
      UNROLL for (int pb = 0; pb < 6; pb++)
        UNROLL for (int a = 0; a < 3; a++) t[a * 6 + pb] += G4(pa, a) * wt[pa * 6 + pb];
    UNROLL for (int a = 0; a < 3; a++)
      UNROLL for (int b = 0; b < 3; b++) {
        double v = 0.0;
        UNROLL for (int pb = 0; pb < 6; pb++) v += t[a * 6 + pb] * G4(pb, b);
        dw[(long)(a * 3 + b) * CO + q] = (float)v;
      }
  }
}

#define G6(p, a)                                                                                         \
  ((p) == 0   ? ((a) == 0 ? 1.0 : 0.0)                                                                   \
   : (p) == 1 ? -2.0 / 9                                                                                 \
   : (p) == 2 ? ((a) == 1 ? 2.0 / 9 : -2.0 / 9)                                                          \
   : (p) == 3 ? ((a) == 0 ? 1.0 / 90 : (a) == 1 ? 1.0 / 45 : 2.0 / 45)                                   \
   : (p) == 4 ? ((a) == 0 ? 1.0 / 90 : (a) == 1 ? -1.0 / 45 : 2.0 / 45)                                  \
   : (p) == 5 ? ((a) == 0 ? 32.0 / 45 : (a) == 1 ? 16.0 / 45 : 8.0 / 45)                                 \
   : (p) == 6 ? ((a) == 0 ? 32.0 / 45 : (a) == 1 ? -16.0 / 45 : 8.0 / 45)                                \
              : ((a) == 2 ? 1.0 : 0.0))

/* U[p][q] = (G g GT)[p] in float64 for the 3x3 filter g = g9[0..8] (row-major), (m+2)^2 positions p. */
#define FILTER_TRANSFORM(N, G)                                                                           \
  do {                                                                                                   \
    double t[3 * N];                                                                                     \
    UNROLL for (int k = 0; k < 3; k++)                                                                   \
      UNROLL for (int b = 0; b < N; b++)                                                                 \
        t[k * N + b] = g9[k * 3] * G(b, 0) + g9[k * 3 + 1] * G(b, 1) + g9[k * 3 + 2] * G(b, 2);          \
    UNROLL for (int a = 0; a < N; a++)                                                                   \
      UNROLL for (int b = 0; b < N; b++)                                                                 \
        u[(long)(a * N + b) * CO + q] = (float)(G(a, 0) * t[b] + G(a, 1) * t[N + b] + G(a, 2) * t[2 * N + b]); \
  } while (0)

/*
 * The Winograd filter transform U[p][c][o] = (G g GT)[p] of the conv's 3x3 filters g = w[.][.][c][o]
 * (w HWIO [3][3][C][O]), for q = c O + o in [q0, q1): the float64 operations, in order, of
 * WasmKernels.winogradFilter (wasm-kernels.ts), so the same bits. With flip, w is instead the filter
 * of the conv whose input gradient this conv is, [3][3][O][C], used flipped in space with in/out swapped:
 * g[k][l][c][o] = w[2-k][2-l][o][c].
 */
EXPORT("winograd_filter_transform_rows")
void winograd_filter_transform_rows(const float *w, float *u, int q0, int q1, int C, int O, int tile, int flip) {
  const int CO = C * O;
  for (int q = q0; q < q1; q++) {
    double g9[9];
    if (flip) {
      const int c = q / O, o = q - c * O;
      UNROLL for (int k = 0; k < 9; k++) g9[k] = w[(long)(8 - k) * CO + o * C + c];
    } else {
      UNROLL for (int k = 0; k < 9; k++) g9[k] = w[(long)k * CO + q];
    }
    if (tile == 4)
      FILTER_TRANSFORM(6, G4);
    else
      FILTER_TRANSFORM(8, G6);
  }
}
