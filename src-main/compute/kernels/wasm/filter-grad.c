/*
 * Filter and bias gradients of a stride-1 3x3 (any kh x kw) convolution, for rows of the output grid.
 * Compiled to WebAssembly SIMD (scripts/build-wasm-kernels.sh) and run on TensorFlow.js' own wasm
 * memory, so it reads tensors in place by address.
 *
 *   dW[a][b][c][o] = sum_{n,i,j} xp[n][i+a][j+b][c] * dy[n][i][j][o]
 *   db[o]          = sum_{n,i,j} dy[n][i][j][o]
 *
 * Conventions: NHWC, float32. xp is x already zero-padded by the conv padding, [B][Hp][Wp][C];
 * dy is [B][oH][oW][O]; acc is [kh][kw][C][O] followed by [O] for the bias. Rows are (n, i) pairs,
 * r = n*oH + i; this call covers rows [r0, r1) and overwrites acc with their sums.
 *
 * Register tiles, each swept along one output row: 4 input x 8 output channels (8 v128 accumulators)
 * when C % 4 = 0 and O % 8 = 0 (the 32->32 layers), so each loaded dy vector serves 4 channels and each
 * x value 8 outputs; 1 x 8 when only O % 8 = 0 (a 1->32 first layer); 4 x 1 when only C % 4 = 0 (a
 * 32->1 last layer); scalars otherwise. No function here touches the shadow stack: the module shares
 * TensorFlow.js' memory and must write nothing but acc.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* acc[c][o] (row stride O) += sum_j x[j*C + c] * g[j*O + o] over one output row, all c and o. */
static void row_tile_4x8(const float *x, const float *g, float *acc, int oW, int C, int O) {
  for (int cb = 0; cb < C; cb += 4) {
    for (int ob = 0; ob < O; ob += 8) {
      float *t = acc + cb * O + ob;
      v128_t a00 = wasm_v128_load(t), a01 = wasm_v128_load(t + 4);
      v128_t a10 = wasm_v128_load(t + O), a11 = wasm_v128_load(t + O + 4);
      v128_t a20 = wasm_v128_load(t + 2 * O), a21 = wasm_v128_load(t + 2 * O + 4);
      v128_t a30 = wasm_v128_load(t + 3 * O), a31 = wasm_v128_load(t + 3 * O + 4);
      const float *xj = x + cb;
      const float *gj = g + ob;
      for (int j = 0; j < oW; j++) {
        const v128_t g0 = wasm_v128_load(gj);
        const v128_t g1 = wasm_v128_load(gj + 4);
        const v128_t xv = wasm_v128_load(xj);
        const v128_t x0 = wasm_i32x4_shuffle(xv, xv, 0, 0, 0, 0);
        const v128_t x1 = wasm_i32x4_shuffle(xv, xv, 1, 1, 1, 1);
        const v128_t x2 = wasm_i32x4_shuffle(xv, xv, 2, 2, 2, 2);
        const v128_t x3 = wasm_i32x4_shuffle(xv, xv, 3, 3, 3, 3);
        a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, g0));
        a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, g1));
        a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, g0));
        a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, g1));
        a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, g0));
        a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, g1));
        a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, g0));
        a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, g1));
        xj += C;
        gj += O;
      }
      wasm_v128_store(t, a00);
      wasm_v128_store(t + 4, a01);
      wasm_v128_store(t + O, a10);
      wasm_v128_store(t + O + 4, a11);
      wasm_v128_store(t + 2 * O, a20);
      wasm_v128_store(t + 2 * O + 4, a21);
      wasm_v128_store(t + 3 * O, a30);
      wasm_v128_store(t + 3 * O + 4, a31);
    }
  }
}

static void row_tile_1x8(const float *x, const float *g, float *acc, int oW, int C, int O) {
  for (int c = 0; c < C; c++) {
    for (int ob = 0; ob < O; ob += 8) {
      float *t = acc + c * O + ob;
      v128_t a0 = wasm_v128_load(t), a1 = wasm_v128_load(t + 4);
      const float *xj = x + c;
      const float *gj = g + ob;
      for (int j = 0; j < oW; j++) {
        const v128_t xv = wasm_f32x4_splat(*xj);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xv, wasm_v128_load(gj)));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xv, wasm_v128_load(gj + 4)));
        xj += C;
        gj += O;
      }
      wasm_v128_store(t, a0);
      wasm_v128_store(t + 4, a1);
    }
  }
}

/* acc is [c][o]; the 4 x 1 tile accumulates 4 channels of one output in a vector, stored strided. */
static void row_tile_4x1(const float *x, const float *g, float *acc, int oW, int C, int O) {
  for (int o = 0; o < O; o++) {
    for (int cb = 0; cb < C; cb += 4) {
      v128_t a = wasm_f32x4_make(acc[cb * O + o], acc[(cb + 1) * O + o], acc[(cb + 2) * O + o],
                                 acc[(cb + 3) * O + o]);
      const float *xj = x + cb;
      const float *gj = g + o;
      for (int j = 0; j < oW; j++) {
        a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(xj), wasm_f32x4_splat(*gj)));
        xj += C;
        gj += O;
      }
      acc[cb * O + o] = wasm_f32x4_extract_lane(a, 0);
      acc[(cb + 1) * O + o] = wasm_f32x4_extract_lane(a, 1);
      acc[(cb + 2) * O + o] = wasm_f32x4_extract_lane(a, 2);
      acc[(cb + 3) * O + o] = wasm_f32x4_extract_lane(a, 3);
    }
  }
}

static void row_tile_scalar(const float *x, const float *g, float *acc, int oW, int C, int O) {
  for (int c = 0; c < C; c++) {
    for (int o = 0; o < O; o++) {
      float a = acc[c * O + o];
      for (int j = 0; j < oW; j++) a += x[j * C + c] * g[j * O + o];
      acc[c * O + o] = a;
    }
  }
}

EXPORT("filter_bias_grad_rows")
void filter_bias_grad_rows(const float *xp, const float *dy, float *acc, int r0, int r1, int Hp, int Wp,
                           int oH, int oW, int C, int O, int kh, int kw) {
  const int n_acc = kh * kw * C * O + O;
  for (int k = 0; k < n_acc; k++) acc[k] = 0.0f;
  float *accb = acc + kh * kw * C * O;
  const int c4 = C % 4 == 0, o8 = O % 8 == 0;
  for (int r = r0; r < r1; r++) {
    const int n = r / oH;
    const int i = r - n * oH;
    const float *g = dy + (long)r * oW * O;
    for (int o = 0; o < O; o++) {
      float s = 0.0f;
      for (int j = 0; j < oW; j++) s += g[j * O + o];
      accb[o] += s;
    }
    for (int a = 0; a < kh; a++) {
      const float *xrow = xp + ((long)(n * Hp + i + a) * Wp) * C;
      for (int b = 0; b < kw; b++) {
        const float *x = xrow + b * C;
        float *acc_ab = acc + (a * kw + b) * C * O;
        if (c4 && o8) row_tile_4x8(x, g, acc_ab, oW, C, O);
        else if (o8) row_tile_1x8(x, g, acc_ab, oW, C, O);
        else if (c4) row_tile_4x1(x, g, acc_ab, oW, C, O);
        else row_tile_scalar(x, g, acc_ab, oW, C, O);
      }
    }
  }
}

/*
 * Filter and bias gradients of the thin layers (C = 1, O % 4 = 0: a 1->32 first layer; O = 1,
 * C % 4 = 0: a 32->1 last layer), with x read unpadded in place (taps outside it are skipped) and dy
 * optionally masked on the fly: where mask (dy's shape, a ReLU layer's output y) is <= 0, dy reads as 0,
 * so a ReLU layer's g = dy (.) (y > 0) is never formed.
 *
 *   dW[a][b][c][o] = sum_{n,i,j} x[n][i+a-pt][j+b-pl][c] * g[n][i][j][o]
 *   db[o]          = sum_{n,i,j} g[n][i][j][o]
 *
 * acc as filter_bias_grad_rows' ([kh][kw][C][O] then [O], overwritten with the sums of rows [r0, r1)).
 * Each sum is added in the order filter_bias_grad_rows adds it (rows, then columns, one after another),
 * and a skipped tap is one whose padded x is +0: its product is +-0 and adding +-0 to a sum that began
 * at +0 leaves it unchanged, so with finite values the results are the same bits as filter_bias_grad_rows
 * on zero-padded x and g. Unlike it, the loops keep several independent sums in flight (taps for C = 1,
 * channel blocks for O = 1), so no add waits on the one before it.
 */

/* g[j*O + o..o+3], 0 where mask <= 0 (0 + g * 0 and 0 + 0 are the same bits: see above). */
static inline v128_t grad4(const float *g, const float *m, long at) {
  const v128_t v = wasm_v128_load(g + at);
  return m ? wasm_v128_and(v, wasm_f32x4_gt(wasm_v128_load(m + at), wasm_f32x4_splat(0.0f))) : v;
}

/* Columns [j0, j1) of tap (a, b): those whose x column j + b - pl falls inside [0, W). */
static inline int col_lo(int b, int pl) { return pl - b > 0 ? pl - b : 0; }
static inline int col_hi(int b, int pl, int W, int oW) { return W + pl - b < oW ? W + pl - b : oW; }

/*
 * C = 1, 3x3, O % 4 = 0, one output row whose three x rows are all inside x (xr0: the first, shifted by
 * -pl): per 4 outputs, the 9 taps' sums and the bias sum stay in registers for the whole row. Columns
 * where every tap is inside run without checks; the edge columns check each tap.
 */
#define C1_TAP(t, jj, gv)                                                                               \
  s##t = wasm_f32x4_add(s##t, wasm_f32x4_mul(wasm_v128_load32_splat(xr0 + ((t) / 3) * W + (jj)), gv))
#define C1_EDGE_TAP(t, j, gv)                                                                           \
  do {                                                                                                  \
    const int jj_ = (j) + (t) % 3;                                                                      \
    if (jj_ - pl >= 0 && jj_ - pl < W) C1_TAP(t, jj_, gv);                                              \
  } while (0)
#define C1_TAPS(M, j, gv)                                                                               \
  do {                                                                                                  \
    M(0, j, gv); M(1, j, gv); M(2, j, gv); M(3, j, gv); M(4, j, gv);                                    \
    M(5, j, gv); M(6, j, gv); M(7, j, gv); M(8, j, gv);                                                 \
  } while (0)
#define C1_IN_TAP(t, j, gv) C1_TAP(t, (j) + (t) % 3, gv)

static inline __attribute__((always_inline)) void thin_c1_33_row_as(const float *xr0, const float *g, const float *m,
                                                                    float *acc, float *accb, int oW, int O, int W,
                                                                    int pl, const int masked) {
  /* the interior columns: j - pl >= 0 and j + 2 - pl < W */
  int ja = pl, jb = W - 2 + pl;
  if (jb > oW) jb = oW;
  if (ja > jb) ja = jb;
  for (int ob = 0; ob < O; ob += 4) {
    float *t = acc + ob;
    v128_t s0 = wasm_v128_load(t), s1 = wasm_v128_load(t + O), s2 = wasm_v128_load(t + 2 * O);
    v128_t s3 = wasm_v128_load(t + 3 * O), s4 = wasm_v128_load(t + 4 * O), s5 = wasm_v128_load(t + 5 * O);
    v128_t s6 = wasm_v128_load(t + 6 * O), s7 = wasm_v128_load(t + 7 * O), s8 = wasm_v128_load(t + 8 * O);
    v128_t sb = wasm_f32x4_splat(0.0f);
    int j = 0;
    for (; j < ja; j++) {
      const v128_t gv = grad4(g, masked ? m : 0, (long)j * O + ob);
      sb = wasm_f32x4_add(sb, gv);
      C1_TAPS(C1_EDGE_TAP, j, gv);
    }
    for (; j < jb; j++) {
      const v128_t gv = grad4(g, masked ? m : 0, (long)j * O + ob);
      sb = wasm_f32x4_add(sb, gv);
      C1_TAPS(C1_IN_TAP, j, gv);
    }
    for (; j < oW; j++) {
      const v128_t gv = grad4(g, masked ? m : 0, (long)j * O + ob);
      sb = wasm_f32x4_add(sb, gv);
      C1_TAPS(C1_EDGE_TAP, j, gv);
    }
    wasm_v128_store(t, s0);
    wasm_v128_store(t + O, s1);
    wasm_v128_store(t + 2 * O, s2);
    wasm_v128_store(t + 3 * O, s3);
    wasm_v128_store(t + 4 * O, s4);
    wasm_v128_store(t + 5 * O, s5);
    wasm_v128_store(t + 6 * O, s6);
    wasm_v128_store(t + 7 * O, s7);
    wasm_v128_store(t + 8 * O, s8);
    wasm_v128_store(accb + ob, wasm_f32x4_add(wasm_v128_load(accb + ob), sb));
  }
}

/* thin_c1_33_row_as inlined for dy masked and not: no mask test per load in the loop */
static void thin_c1_33_row(const float *xr0, const float *g, const float *m, float *acc, float *accb, int oW, int O,
                           int W, int pl) {
  if (m) thin_c1_33_row_as(xr0, g, m, acc, accb, oW, O, W, pl, 1);
  else thin_c1_33_row_as(xr0, g, 0, acc, accb, oW, O, W, pl, 0);
}

/* C = 1, any kh x kw, O % 4 = 0, one output row: tap by tap, 4 outputs at a time. */
static void thin_c1_row(const float *x, int n, int i, int H, const float *g, const float *m, float *acc, float *accb,
                        int oW, int O, int W, int kh, int kw, int pt, int pl) {
  for (int ob = 0; ob < O; ob += 4) {
    v128_t sb = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < oW; j++) sb = wasm_f32x4_add(sb, grad4(g, m, (long)j * O + ob));
    wasm_v128_store(accb + ob, wasm_f32x4_add(wasm_v128_load(accb + ob), sb));
  }
  for (int a = 0; a < kh; a++) {
    const int ii = i + a - pt;
    if (ii < 0 || ii >= H) continue;
    const float *xr = x + ((long)n * H + ii) * W - pl;
    for (int b = 0; b < kw; b++) {
      const int j0 = col_lo(b, pl), j1 = col_hi(b, pl, W, oW);
      for (int ob = 0; ob < O; ob += 4) {
        float *t = acc + (a * kw + b) * O + ob;
        v128_t s = wasm_v128_load(t);
        for (int j = j0; j < j1; j++)
          s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load32_splat(xr + j + b), grad4(g, m, (long)j * O + ob)));
        wasm_v128_store(t, s);
      }
    }
  }
}

/* O = 1, C % 4 = 0, one output row: tap by tap, 8 channel vectors (32 channels) at a time, then 1. */
static void thin_o1_row(const float *x, int n, int i, int H, const float *g, const float *m, float *acc, float *accb,
                        int oW, int C, int W, int kh, int kw, int pt, int pl) {
  float sb = 0.0f;
  for (int j = 0; j < oW; j++) sb += m && !(m[j] > 0.0f) ? 0.0f : g[j];
  accb[0] += sb;
  for (int a = 0; a < kh; a++) {
    const int ii = i + a - pt;
    if (ii < 0 || ii >= H) continue;
    const float *xr = x + ((long)n * H + ii) * W * C;
    for (int b = 0; b < kw; b++) {
      const int j0 = col_lo(b, pl), j1 = col_hi(b, pl, W, oW);
      float *t = acc + (a * kw + b) * C;
      const float *xb = xr + (long)(b - pl) * C;
      int cb = 0;
      for (; cb + 32 <= C; cb += 32) {
        v128_t s0 = wasm_v128_load(t + cb), s1 = wasm_v128_load(t + cb + 4);
        v128_t s2 = wasm_v128_load(t + cb + 8), s3 = wasm_v128_load(t + cb + 12);
        v128_t s4 = wasm_v128_load(t + cb + 16), s5 = wasm_v128_load(t + cb + 20);
        v128_t s6 = wasm_v128_load(t + cb + 24), s7 = wasm_v128_load(t + cb + 28);
        for (int j = j0; j < j1; j++) {
          const v128_t gv = wasm_f32x4_splat(m && !(m[j] > 0.0f) ? 0.0f : g[j]);
          const float *xj = xb + (long)j * C + cb;
          s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(xj), gv));
          s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(xj + 4), gv));
          s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(xj + 8), gv));
          s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(xj + 12), gv));
          s4 = wasm_f32x4_add(s4, wasm_f32x4_mul(wasm_v128_load(xj + 16), gv));
          s5 = wasm_f32x4_add(s5, wasm_f32x4_mul(wasm_v128_load(xj + 20), gv));
          s6 = wasm_f32x4_add(s6, wasm_f32x4_mul(wasm_v128_load(xj + 24), gv));
          s7 = wasm_f32x4_add(s7, wasm_f32x4_mul(wasm_v128_load(xj + 28), gv));
        }
        wasm_v128_store(t + cb, s0);
        wasm_v128_store(t + cb + 4, s1);
        wasm_v128_store(t + cb + 8, s2);
        wasm_v128_store(t + cb + 12, s3);
        wasm_v128_store(t + cb + 16, s4);
        wasm_v128_store(t + cb + 20, s5);
        wasm_v128_store(t + cb + 24, s6);
        wasm_v128_store(t + cb + 28, s7);
      }
      for (; cb < C; cb += 4) {
        v128_t s = wasm_v128_load(t + cb);
        for (int j = j0; j < j1; j++) {
          const v128_t gv = wasm_f32x4_splat(m && !(m[j] > 0.0f) ? 0.0f : g[j]);
          s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(xb + (long)j * C + cb), gv));
        }
        wasm_v128_store(t + cb, s);
      }
    }
  }
}

EXPORT("filter_bias_grad_thin_rows")
void filter_bias_grad_thin_rows(const float *x, const float *dy, const float *mask, float *acc, int r0, int r1,
                                int H, int W, int oH, int oW, int C, int O, int kh, int kw, int pt, int pl) {
  const int n_acc = kh * kw * C * O + O;
  for (int k = 0; k < n_acc; k++) acc[k] = 0.0f;
  float *accb = acc + kh * kw * C * O;
  for (int r = r0; r < r1; r++) {
    const int n = r / oH;
    const int i = r - n * oH;
    const long at = (long)r * oW * O;
    const float *g = dy + at;
    const float *m = mask ? mask + at : 0;
    if (C == 1 && kh == 3 && kw == 3 && i - pt >= 0 && i - pt + 2 < H)
      thin_c1_33_row(x + ((long)n * H + i - pt) * W - pl, g, m, acc, accb, oW, O, W, pl);
    else if (C == 1) thin_c1_row(x, n, i, H, g, m, acc, accb, oW, O, W, kh, kw, pt, pl);
    else thin_o1_row(x, n, i, H, g, m, acc, accb, oW, C, W, kh, kw, pt, pl);
  }
}

/*
 * All three gradients of a 1 -> O ReLU layer (3x3, 'same': pt = pl = 1, oH = H, oW = W; O % 4 = 0) in one
 * pass over dy and y: g = dy (.) (y > 0) is staged row by row in a ring of three rows in this part's
 * scratch (read from memory once, then reused from cache by both gradients), then
 *
 *   dx[n][i][j]  = sum_{a,b,o} g[n][i+a-1][j+b-1][o] * wf[a][b][o]   (wf: the filter flipped, [3][3][O])
 *   dW, db       as filter_bias_grad_thin_rows with C = 1
 *
 * Output rows r = n*H + i in [r0, r1) of dx (disjoint between parts), and this part's sums of dW and db
 * over g rows [r0, r1). Each value is computed by the same operations in the same order as
 * conv_thin_rows (O = 1, no bias; the same function) and filter_bias_grad_thin_rows with a mask, so the
 * same bits.
 * acc: dW (9 O floats), db (O), then the ring (3 W O floats).
 */

/* conv-thin.c: output row i of the 'same' O = 1 conv of the rows staged in the ring */
void conv_thin_o1_ring_row(const float *ring, const float *w, float *y, int i, int H, int W, int C);

EXPORT("relu_thin_grads_rows")
void relu_thin_grads_rows(const float *x, const float *dy, const float *mask, const float *wf, float *dx, float *acc,
                          int r0, int r1, int H, int W, int O) {
  const int n_acc = 9 * O + O;
  for (int k = 0; k < n_acc; k++) acc[k] = 0.0f;
  float *accb = acc + 9 * O;
  float *ring = acc + n_acc;
  const long row = (long)W * O;
  int cur_n = -1, staged = 0; /* rows [.., staged) of image cur_n are in the ring (slot = row % 3) */
  for (int r = r0; r < r1; r++) {
    const int n = r / H;
    const int i = r - n * H;
    const int lo = i > 0 ? i - 1 : 0, hi = i + 2 < H ? i + 2 : H;
    if (n != cur_n || staged < lo) cur_n = n, staged = lo;
    for (; staged < hi; staged++) {
      const long at = ((long)n * H + staged) * row;
      float *gs = ring + (staged % 3) * row;
      const v128_t zero = wasm_f32x4_splat(0.0f);
      for (long k = 0; k < row; k += 4)
        wasm_v128_store(gs + k, wasm_v128_and(wasm_v128_load(dy + at + k),
                                              wasm_f32x4_gt(wasm_v128_load(mask + at + k), zero)));
    }
    const float *g1 = ring + (i % 3) * row;
    conv_thin_o1_ring_row(ring, wf, dx + (long)r * W, i, H, W, O);
    if (i >= 1 && i + 1 < H) thin_c1_33_row(x + ((long)n * H + i - 1) * W - 1, g1, 0, acc, accb, W, O, W, 1);
    else thin_c1_row(x, n, i, H, g1, 0, acc, accb, W, O, W, 3, 3, 1, 1);
  }
}
