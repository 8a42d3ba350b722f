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
