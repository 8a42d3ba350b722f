/**
 * convStackWithEnergy (networks/conv.ts): a conv stack that also yields Σ_c a_c² of one layer's output
 * as a second output with its own gradient. Checked against plain tfjs ops with tfjs autodiff on the
 * cpu backend (tf.conv2d, add, relu, sum(square)): both outputs and the gradients of a loss that reads
 * both (and one that reads the energy only, as the last cascade of the attention step does) with
 * respect to the input, every filter and every bias; on cpu and on wasm (KD-MRI kernels). Likewise
 * convStackEnergy, the stack cut after that layer with the energy as its only output. And a stack
 * whose input is data computes its first layer's input gradient only when tfjs asks for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerKdmriKernels } from '../../src-main/compute/kernels/index.js';
import { convStack, convStackEnergy, convStackWithEnergy } from '../../src-main/networks/conv.js';
import { Rng } from '../../src-main/util/random.js';

registerKdmriKernels();

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

interface Case {
  chans: number[];
  relu: boolean[];
  at: number;
  readOut: boolean;
}

const B = 2;
const H = 6;
const W = 7;

/** Deterministic inputs as plain arrays, so both backends get the same values. */
function values(c: Case, seed: number) {
  const rng = new Rng(seed);
  const arr = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));
  const n = c.relu.length;
  return {
    x: arr(B * H * W * c.chans[0], 0, 1),
    ws: Array.from({ length: n }, (_, k) => arr(9 * c.chans[k] * c.chans[k + 1], -0.5, 0.5)),
    bs: Array.from({ length: n }, (_, k) => arr(c.chans[k + 1], -0.1, 0.2)),
    rOut: arr(B * H * W * c.chans[n]),
    rE: arr(B * H * W),
  };
}

type Mode = 'reference' | 'ours' | 'energy-only';

/**
 * [energy, loss, d/dx, d/dW_k…, d/db_k…, out] with autodiff of plain ops ('reference'), our two-output
 * op ('ours') or our energy-only op on the stack cut after layer `at` ('energy-only', no out).
 */
function run(c: Case, v: ReturnType<typeof values>, mode: Mode): Float32Array[] {
  return tf.tidy(() => {
    const n = c.relu.length;
    const x = tf.tensor4d(v.x, [B, H, W, c.chans[0]]);
    const ws = v.ws.map((w, k) => tf.tensor4d(w, [3, 3, c.chans[k], c.chans[k + 1]]));
    const bs = v.bs.map((b) => tf.tensor1d(b));
    const rOut = tf.tensor4d(v.rOut, [B, H, W, c.chans[n]]);
    const rE = tf.tensor3d(v.rE, [B, H, W]);
    const forward = (xx: tf.Tensor4D, ww: tf.Tensor4D[], bb: tf.Tensor1D[]) => {
      if (mode === 'energy-only') {
        const at = c.at;
        return {
          out: null,
          energy: convStackEnergy(xx, ww.slice(0, at), bb.slice(0, at), c.relu.slice(0, at)),
        };
      }
      if (mode === 'ours') return convStackWithEnergy(xx, ww, bb, c.relu, c.at);
      let h = xx;
      let energy: tf.Tensor3D | null = null;
      for (let k = 0; k < n; k++) {
        const y = tf.add(tf.conv2d(h, ww[k], 1, 'same'), bb[k]) as tf.Tensor4D;
        h = c.relu[k] ? tf.relu(y) : y;
        if (k === c.at - 1) energy = tf.sum(tf.square(h), 3) as tf.Tensor3D;
      }
      return { out: h, energy: energy! };
    };
    // with the output not read, the layers above `at` do not affect the loss (tfjs refuses their gradient)
    const m = c.readOut ? n : c.at;
    const loss = (...args: tf.Tensor[]) => {
      const ww = [...(args.slice(1, 1 + m) as tf.Tensor4D[]), ...ws.slice(m)];
      const bb = [...(args.slice(1 + m) as tf.Tensor1D[]), ...bs.slice(m)];
      const o = forward(args[0] as tf.Tensor4D, ww, bb);
      const e = tf.sum(tf.mul(o.energy, rE));
      return (c.readOut ? tf.add(e, tf.sum(tf.mul(o.out!, rOut))) : e) as tf.Scalar;
    };
    const o = forward(x, ws, bs);
    const { value, grads } = tf.valueAndGrads(loss)([x, ...ws.slice(0, m), ...bs.slice(0, m)]);
    const all = [o.energy, value, ...grads, ...(o.out ? [o.out] : [])];
    return all.map((t) => t.dataSync() as Float32Array);
  });
}

async function on<T>(backend: string, f: () => T): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  return f();
}

const cases: Case[] = [
  // a student cascade: 1 → 5 → 5 → 1, energy after the second conv, both outputs read
  { chans: [1, 5, 5, 1], relu: [true, true, false], at: 2, readOut: true },
  // the last cascade of the attention step: its output is not read
  { chans: [1, 5, 5, 1], relu: [true, true, false], at: 2, readOut: false },
  // energy at the stack's last, linear layer (the op's two outputs come from one tensor)
  { chans: [3, 4, 6], relu: [true, false], at: 2, readOut: true },
  // energy at the first layer
  { chans: [2, 4, 4, 3], relu: [true, true, true], at: 1, readOut: true },
];

for (const [i, c] of cases.entries()) {
  const modes: Mode[] = c.readOut ? ['ours'] : ['ours', 'energy-only'];
  const ops = c.readOut ? 'convStackWithEnergy' : 'convStackWithEnergy and convStackEnergy';
  test(`${ops} equal autodiff of plain ops (values and gradients): case ${i + 1}`, async () => {
    const v = values(c, 11 + i);
    const ref = await on('cpu', () => run(c, v, 'reference'));
    const m = c.readOut ? c.relu.length : c.at;
    const layers = Array.from({ length: m }, (_, k) => k + 1);
    const names = [
      'energy',
      'loss',
      'dx',
      ...layers.map((k) => `dW${k}`),
      ...layers.map((k) => `db${k}`),
      'out',
    ];
    for (const mode of modes) {
      for (const backend of ['cpu', 'wasm']) {
        const got = await on(backend, () => run(c, v, mode));
        assert.equal(got.length, mode === 'energy-only' ? ref.length - 1 : ref.length);
        // cpu: the same arithmetic up to summation order; wasm: other conv kernels (Winograd, GEMM)
        const tol = backend === 'cpu' ? 1e-5 : 1e-4;
        for (let k = 0; k < got.length; k++) {
          const err = relErr(got[k], ref[k]);
          assert.ok(err < tol, `${mode} on ${backend}, ${names[k]}: relative error ${err}`);
        }
      }
    }
  });
}

test('convStackWithEnergy refuses an energy layer outside the stack', () => {
  const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  const w = tf.zeros([3, 3, 1, 2]) as tf.Tensor4D;
  const b = tf.zeros([2]) as tf.Tensor1D;
  assert.throws(() => convStackWithEnergy(x, [w], [b], [true], 2), /energy at 2/);
  assert.throws(() => convStackWithEnergy(x, [w], [b], [true], 0), /energy at 0/);
  tf.dispose([x, w, b]);
});

/**
 * Kernels of one backward pass that compute a layer's input gradient: Conv2DBackpropInput, and the
 * ReLU layers' KdmriReluConv2DGrads when it gives three outputs [dx, dW, db] (two without dx).
 */
function inputGradKernels(p: Awaited<ReturnType<typeof tf.profile>>): number {
  return p.kernels.filter(
    (k) =>
      k.name === tf.Conv2DBackpropInput || (k.name === 'KdmriReluConv2DGrads' && k.outputShapes.length === 3),
  ).length;
}

for (const stack of ['convStack', 'convStackWithEnergy', 'convStackEnergy'] as const) {
  test(`${stack}: the first layer's input gradient only when tfjs asks for it; the same gradients`, async () => {
    const c: Case = { chans: [1, 4, 4, 1], relu: [true, true, false], at: 2, readOut: true };
    const v = values(c, 5);
    const n = stack === 'convStackEnergy' ? c.at : c.relu.length;
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      await tf.ready();
      const x = tf.tensor4d(v.x, [B, H, W, 1]);
      const ws = v.ws
        .slice(0, n)
        .map((w, k) => tf.variable(tf.tensor4d(w, [3, 3, c.chans[k], c.chans[k + 1]])));
      const bs = v.bs.slice(0, n).map((b) => tf.variable(tf.tensor1d(b)));
      const xVar = tf.variable(x);
      const rE = tf.tensor3d(v.rE, [B, H, W]);
      const loss = (input: tf.Tensor4D) => () => {
        const r =
          stack === 'convStack'
            ? convStack(input, ws, bs, c.relu)
            : stack === 'convStackEnergy'
              ? convStackEnergy(input, ws, bs, c.relu.slice(0, n))
              : convStackWithEnergy(input, ws, bs, c.relu, c.at).energy;
        return tf.sum(r.rank === 3 ? tf.mul(r, rE) : r) as tf.Scalar;
      };
      const vars = [...ws, ...bs];
      const before = tf.memory().numTensors;
      // x data: the variables' gradients, no dx of the first layer
      let gData: tf.Tensor[] = [];
      const pData = await tf.profile(() => {
        const r = tf.variableGrads(loss(x), vars);
        r.value.dispose();
        gData = vars.map((w) => r.grads[w.name]);
      });
      assert.equal(inputGradKernels(pData), n - 1, `${backend}: input gradients with x data`);
      // x a variable: every layer's dx, and the same bits for the others
      let gVar: tf.Tensor[] = [];
      let dxEager: tf.Tensor | null = null;
      const pVar = await tf.profile(() => {
        const r = tf.variableGrads(loss(xVar), [xVar, ...vars]);
        r.value.dispose();
        dxEager = r.grads[xVar.name];
        gVar = vars.map((w) => r.grads[w.name]);
      });
      assert.equal(inputGradKernels(pVar), n, `${backend}: input gradients with x a variable`);
      for (let k = 0; k < vars.length; k++)
        assert.deepEqual(gData[k].dataSync(), gVar[k].dataSync(), `${backend}: ${vars[k].name}`);
      // x data differentiated against: dx computed when asked, the same as with x a variable
      const dxLazy = tf.tidy(() => tf.grad((xx: tf.Tensor) => loss(xx as tf.Tensor4D)())(x));
      assert.deepEqual(dxLazy.dataSync(), dxEager!.dataSync(), `${backend}: dx asked for`);
      tf.dispose([...gData, ...gVar, dxEager!, dxLazy]);
      assert.equal(tf.memory().numTensors, before, `${backend}: tensors left behind`);
      tf.dispose([x, xVar, rE, ...vars]);
    }
  });
}
