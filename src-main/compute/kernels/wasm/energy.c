/*
 * The attention energy of an activation and its gradient (networks/conv.ts energyStack), each one pass
 * over the activation on all threads, where TensorFlow.js' wasm backend ran two or three
 * single-threaded kernels (Square + Sum forward; Multiply with broadcast + Add backward):
 *
 *   energy_rows:      e[p] = sum_c a[p][c]^2                  (c = 0 .. C-1 in order, float32)
 *   energy_grad_rows: out[p][c] = g[p][c] + a[p][c] * (2 de[p])   (g may be 0: out = a (2 de))
 *
 * Same float32 operations in the same order as those kernels (tfjs-backend-wasm's Sum.cc adds x[0],
 * x[1], ... to a float32 sum that starts at 0; Square rounds each square to float32 first), so the
 * results are bitwise theirs: the SIMD lanes here are 4 pixels, each lane adding its own pixel's
 * channels in order (4x4 transposes), never a tree over channels. 2 de is exact in float32.
 *
 * Conventions: NHWC, float32; a, g, out are [pixels][C], e and de [pixels]. Rows of work are rows of
 * W pixels; this call does pixel rows [r0, r1). No shadow stack (the module shares TensorFlow.js'
 * memory).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

typedef v128_t v4;

EXPORT("energy_rows")
void energy_rows(const float *a, float *e, int r0, int r1, int W, int C) {
  const long p0 = (long)r0 * W, p1 = (long)r1 * W;
  long p = p0;
  if (C % 4 == 0) {
    for (; p + 4 <= p1; p += 4) {
      const float *x = a + p * C;
      v4 s = wasm_f32x4_splat(0.0f);
      for (int c = 0; c < C; c += 4) {
        v4 v0 = wasm_v128_load(x + c), v1 = wasm_v128_load(x + C + c);
        v4 v2 = wasm_v128_load(x + 2 * C + c), v3 = wasm_v128_load(x + 3 * C + c);
        v0 = wasm_f32x4_mul(v0, v0);
        v1 = wasm_f32x4_mul(v1, v1);
        v2 = wasm_f32x4_mul(v2, v2);
        v3 = wasm_f32x4_mul(v3, v3);
        /* lanes = pixels: q_k holds channel c + k of the 4 pixels */
        const v4 t0 = wasm_i32x4_shuffle(v0, v1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(v0, v1, 2, 6, 3, 7);
        const v4 t2 = wasm_i32x4_shuffle(v2, v3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(v2, v3, 2, 6, 3, 7);
        s = wasm_f32x4_add(s, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
        s = wasm_f32x4_add(s, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
        s = wasm_f32x4_add(s, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
        s = wasm_f32x4_add(s, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
      }
      wasm_v128_store(e + p, s);
    }
  }
  for (; p < p1; p++) {
    const float *x = a + p * C;
    float s = 0.0f;
    for (int c = 0; c < C; c++) {
      const float q = x[c] * x[c];
      s += q;
    }
    e[p] = s;
  }
}

EXPORT("energy_grad_rows")
void energy_grad_rows(const float *a, const float *de, const float *g, float *out, int r0, int r1, int W, int C) {
  const long p0 = (long)r0 * W, p1 = (long)r1 * W;
  for (long p = p0; p < p1; p++) {
    const float k = de[p] * 2.0f;
    const float *x = a + p * C;
    float *o = out + p * C;
    int c = 0;
    if (g) {
      const float *gp = g + p * C;
      for (; c + 4 <= C; c += 4)
        wasm_v128_store(o + c, wasm_f32x4_add(wasm_v128_load(gp + c),
                                              wasm_f32x4_mul(wasm_v128_load(x + c), wasm_f32x4_splat(k))));
      for (; c < C; c++) {
        const float m = x[c] * k;
        o[c] = gp[c] + m;
      }
    } else {
      for (; c + 4 <= C; c += 4) wasm_v128_store(o + c, wasm_f32x4_mul(wasm_v128_load(x + c), wasm_f32x4_splat(k)));
      for (; c < C; c++) o[c] = x[c] * k;
    }
  }
}
