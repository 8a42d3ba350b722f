/**
 * The attention-energy kernels (src-main/compute/kernels/channel-energy.ts) on the wasm backend against
 * the tf ops networks/conv.ts runs elsewhere: tf.sum(tf.square(a), 3) and g + a · expandDims(2 dE, 3).
 * Bitwise equal to the same ops on wasm (the same float32 operations in the same order), by our
 * WebAssembly kernel and by the fallback through the backend's own kernels; against the cpu backend
 * the gradient step is bitwise too (float32 products and sums, correctly rounded) and the energy within
 * float32 rounding (cpu's Sum adds in float64). The thread counts are covered in wasm-kernels.test.ts
 * (the kernels alone, 1 to 3 threads) and wasm-threads.test.ts (training on 2 threads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerKdmriKernels } from '../../src-main/compute/kernels/index.js';
import {
  KDMRI_CHANNEL_ENERGY,
  KDMRI_CHANNEL_ENERGY_GRAD,
  useChannelEnergyKernels,
} from '../../src-main/compute/kernels/channel-energy.js';
import { Rng } from '../../src-main/util/random.js';

registerKdmriKernels();

const [B, H, W] = [2, 9, 11];

function inputs(C: number) {
  const rng = new Rng(3 + C);
  return {
    // post-ReLU: a quarter zero, the rest over six orders of magnitude (summation order shows)
    a: Float32Array.from({ length: B * H * W * C }, () =>
      rng.uniform(0, 1) < 0.25 ? 0 : rng.uniform(0.5, 1) * 10 ** rng.uniform(-4, 2),
    ),
    dE: Float32Array.from({ length: B * H * W }, () => rng.uniform(-1, 1)),
    g: Float32Array.from({ length: B * H * W * C }, () => rng.uniform(-1, 1)),
  };
}

type Values = ReturnType<typeof inputs>;

/** [energy, g + a·2dE, a·2dE] by our kernels or by the tf ops. */
function run(v: Values, C: number, ours: boolean): Float32Array[] {
  return tf.tidy(() => {
    const a = tf.tensor4d(v.a, [B, H, W, C]);
    const dE = tf.tensor3d(v.dE, [B, H, W]);
    const g = tf.tensor4d(v.g, [B, H, W, C]);
    const outs = ours
      ? [
          tf.engine().runKernel(KDMRI_CHANNEL_ENERGY, { x: a }) as tf.Tensor,
          tf.engine().runKernel(KDMRI_CHANNEL_ENERGY_GRAD, { a, dE, g }) as tf.Tensor,
          tf.engine().runKernel(KDMRI_CHANNEL_ENERGY_GRAD, { a, dE }) as tf.Tensor,
        ]
      : [
          tf.sum(tf.square(a), 3),
          tf.add(g, tf.mul(a, tf.expandDims(tf.mul(dE, 2), 3))),
          tf.mul(a, tf.expandDims(tf.mul(dE, 2), 3)),
        ];
    return outs.map((t) => t.dataSync() as Float32Array);
  });
}

async function on<T>(backend: string, f: () => T): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  return f();
}

const names = ['energy', 'g + a·2dE', 'a·2dE'];

for (const C of [32, 6]) {
  test(`attention-energy kernels on wasm: the tf ops' bits (C = ${C}), by our kernel and by the fallback`, async () => {
    const v = inputs(C);
    const want = await on('wasm', () => run(v, C, false));
    for (const kernels of [true, false]) {
      useChannelEnergyKernels(kernels);
      try {
        const got = await on('wasm', () => run(v, C, true));
        for (let k = 0; k < 3; k++)
          assert.deepEqual(got[k], want[k], `${names[k]} (${kernels ? 'our kernel' : 'fallback'})`);
      } finally {
        useChannelEnergyKernels(true);
      }
    }
    const cpu = await on('cpu', () => run(v, C, false));
    const got = await on('wasm', () => run(v, C, true));
    assert.deepEqual(got[1], cpu[1], 'g + a·2dE against cpu');
    assert.deepEqual(got[2], cpu[2], 'a·2dE against cpu');
    let worst = 0;
    for (let p = 0; p < got[0].length; p++)
      worst = Math.max(worst, Math.abs(got[0][p] - cpu[0][p]) / Math.max(cpu[0][p], 1e-30));
    assert.ok(worst < C * 2 ** -24, `energy against cpu: relative error ${worst}`);
  });
}

test('attention-energy kernels refuse mismatched shapes', async () => {
  await on('wasm', () => {
    tf.tidy(() => {
      const a = tf.zeros([1, 2, 3, 4]);
      assert.throws(
        () => tf.engine().runKernel(KDMRI_CHANNEL_ENERGY_GRAD, { a, dE: tf.zeros([1, 3, 2]) }),
        /dE is float32 \[1,3,2\], expected float32 \[1,2,3\]/,
      );
      assert.throws(
        () =>
          tf
            .engine()
            .runKernel(KDMRI_CHANNEL_ENERGY_GRAD, { a, dE: tf.zeros([1, 2, 3]), g: tf.zeros([1, 2, 3, 5]) }),
        /g is float32 \[1,2,3,5\]/,
      );
      assert.throws(
        () => tf.engine().runKernel(KDMRI_CHANNEL_ENERGY, { x: tf.zeros([2, 3, 4]) }),
        /\[B,H,W,C\]/,
      );
    });
  });
});
