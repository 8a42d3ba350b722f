/**
 * DC-CNN and VDSR: parameter counts of the method's networks, FLOPs, initialisation, DC with a fully
 * sampled mask, wasm (KD-MRI kernels) against cpu for the forward pass and for one Adam step, the
 * attention outputs, and the named-weights API.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { PRESET_NETWORKS, type NetworkSpec } from '../../src-main/contract/domain.js';
import {
  convFlopsPerSlice,
  createNetwork,
  dataConsistency,
  namedWeights,
  setNamedWeights,
  type NetInputs,
} from '../../src-main/networks/index.js';
import { fft2Real, ifft2 } from '../../src-main/kspace/fft.js';
import { Rng } from '../../src-main/util/random.js';

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

const tiny: NetworkSpec = { arch: 'dccnn', nc: 2, nd: 3, nf: 4, residual: false, dcLambda: null, atLayer: 2 };

async function onBackend<T>(name: string, f: () => T): Promise<T> {
  await tf.setBackend(name);
  await tf.ready();
  return f();
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Slices {
  b: number;
  h: number;
  w: number;
  target: Float32Array;
  zf: Float32Array;
  re: Float32Array;
  im: Float32Array;
  mask: Float32Array;
}

/** Smooth random targets in [0,1], a row mask (or all ones), k0 = M⊙F(target), zero-filled magnitude. */
function slices(b: number, h: number, w: number, seed: number, full = false): Slices {
  const r = new Rng(seed);
  const n = h * w;
  const target = new Float32Array(b * n);
  for (let i = 0; i < b; i++) {
    const fx = 1 + r.int(3);
    const fy = 1 + r.int(3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        target[i * n + y * w + x] =
          0.5 + 0.4 * Math.sin((2 * Math.PI * fx * x) / w) * Math.cos((2 * Math.PI * fy * y) / h);
      }
    }
  }
  const mask = new Float32Array(n);
  for (let y = 0; y < h; y++) {
    const on = full || y < 2 || y >= h - 2 || r.next() < 0.25;
    for (let x = 0; x < w; x++) mask[y * w + x] = on ? 1 : 0;
  }
  const re = new Float32Array(b * n);
  const im = new Float32Array(b * n);
  const zf = new Float32Array(b * n);
  for (let i = 0; i < b; i++) {
    const k = fft2Real(target.subarray(i * n, (i + 1) * n), h, w);
    for (let p = 0; p < n; p++) {
      k.re[p] *= mask[p];
      k.im[p] *= mask[p];
      re[i * n + p] = k.re[p];
      im[i * n + p] = k.im[p];
    }
    // zero-filled magnitude |F⁻¹(k0)|
    const z = ifft2(k);
    for (let p = 0; p < n; p++) zf[i * n + p] = Math.hypot(z.re[p], z.im[p]);
  }
  return { b, h, w, target, zf, re, im, mask };
}

function inputs(s: Slices): NetInputs {
  return {
    input: tf.tensor4d(s.zf, [s.b, s.h, s.w, 1]),
    kspace: {
      re: tf.tensor3d(s.re, [s.b, s.h, s.w]),
      im: tf.tensor3d(s.im, [s.b, s.h, s.w]),
      mask: tf.tensor2d(s.mask, [s.h, s.w]),
    },
  };
}

test('parameter counts of the method networks', () => {
  const expect: [NetworkSpec, number][] = [
    [PRESET_NETWORKS.dccnnTeacher, 141_765],
    [PRESET_NETWORKS.dccnnStudent, 49_285],
    [PRESET_NETWORKS.vdsrTeacher, 333_569],
    [PRESET_NETWORKS.vdsrStudent, 185_857],
  ];
  for (const [spec, n] of expect) {
    const net = createNetwork(spec, 42);
    assert.equal(net.paramCount(), n, `${JSON.stringify(spec)}`);
    net.dispose();
  }
});

test('names follow PyTorch and weights are HWIO', () => {
  const net = createNetwork(PRESET_NETWORKS.dccnnStudent, 1);
  assert.deepEqual(net.names.slice(0, 4), [
    'cascade1.conv1.weight',
    'cascade1.conv1.bias',
    'cascade1.conv2.weight',
    'cascade1.conv2.bias',
  ]);
  assert.equal(net.names.at(-1), 'cascade5.conv3.bias');
  assert.deepEqual(net.variables[0].shape, [3, 3, 1, 32]);
  assert.deepEqual(net.variables[4].shape, [3, 3, 32, 1]);
  net.dispose();
  const v = createNetwork(PRESET_NETWORKS.vdsrStudent, 1);
  assert.deepEqual(v.names.slice(-2), ['conv7.weight', 'conv7.bias']);
  v.dispose();
});

test('convFlopsPerSlice counts 2·9·cin·cout·H·W per conv', () => {
  // student: per cascade 1→32, 32→32, 32→1 = 32 + 1024 + 32 = 1088 cin·cout products
  assert.equal(convFlopsPerSlice(PRESET_NETWORKS.dccnnStudent, 10, 20), 5 * 2 * 9 * 1088 * 200);
  assert.equal(convFlopsPerSlice(PRESET_NETWORKS.vdsrStudent, 4, 4), 2 * 9 * (64 + 5 * 4096 + 64) * 16);
});

test('initialisation: U(±1/√(9·cin)), deterministic in the seed', () => {
  const a = createNetwork(PRESET_NETWORKS.dccnnTeacher, 42);
  const b = createNetwork(PRESET_NETWORKS.dccnnTeacher, 42);
  const c = createNetwork(PRESET_NETWORKS.dccnnTeacher, 43);
  const wa = namedWeights(a);
  const wb = namedWeights(b);
  const wc = namedWeights(c);
  for (const [name, v] of wa) {
    const cin = name.endsWith('conv1.weight') || name.endsWith('conv1.bias') ? 1 : 32;
    const bound = 1 / Math.sqrt(9 * cin);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let sq = 0;
    for (const x of v) {
      min = Math.min(min, x);
      max = Math.max(max, x);
      sum += x;
      sq += x * x;
    }
    assert.ok(min >= -bound && max <= bound, `${name} within ±${bound}`);
    if (v.length >= 9216) {
      const mean = sum / v.length;
      const std = Math.sqrt(sq / v.length - mean * mean);
      assert.ok(Math.abs(mean) < 0.05 * bound, `${name} mean ${mean}`);
      assert.ok(
        Math.abs(std - bound / Math.sqrt(3)) < 0.03 * bound,
        `${name} std ${std} vs ${bound / Math.sqrt(3)}`,
      );
    }
    assert.deepEqual(wb.get(name), v);
  }
  assert.notDeepEqual(wc.get('cascade1.conv2.weight'), wa.get('cascade1.conv2.weight'));
  [a, b, c].forEach((n) => n.dispose());
});

for (const spec of [
  tiny,
  { ...tiny, residual: true },
  { ...tiny, dcLambda: 3 },
  PRESET_NETWORKS.dccnnStudent,
] as NetworkSpec[]) {
  test(`a fully sampled mask gives back the target through DC-CNN ${JSON.stringify(spec)}`, async () => {
    await onBackend('wasm', () => {
      const s = slices(2, 16, 16, 3, true);
      const net = createNetwork(spec, 7);
      const out = tf.tidy(() => net.apply(inputs(s)).out.dataSync() as Float32Array);
      let mse = 0;
      for (let i = 0; i < out.length; i++) mse += (out[i] - s.target[i]) ** 2;
      mse /= out.length;
      const psnr = 10 * Math.log10(1 / Math.max(mse, 1e-30));
      // soft DC keeps part of the CNN output at sampled frequencies: only the hard DC is exact
      if (spec.arch === 'dccnn' && spec.dcLambda === null) assert.ok(psnr > 80, `PSNR ${psnr}`);
      else assert.ok(Number.isFinite(psnr));
      net.dispose();
    });
  });
}

test('attention outputs: Σ_c a_c² of the atLayer-th conv per cascade (DC-CNN), one for VDSR', async () => {
  await onBackend('wasm', () => {
    const s = slices(2, 8, 8, 4);
    const net = createNetwork(tiny, 1);
    tf.tidy(() => {
      const x = inputs(s);
      const o = net.apply(x);
      assert.equal(o.attention.length, 2);
      assert.deepEqual(o.out.shape, [2, 8, 8, 1]);
      // reference: plain tfjs ops on the network's variables, conv by conv, DC from the network
      const v = net.variables;
      const conv = (h: tf.Tensor4D, l: number, relu: boolean) => {
        const y = tf.add(tf.conv2d(h, v[2 * l] as tf.Tensor4D, 1, 'same'), v[2 * l + 1]) as tf.Tensor4D;
        return relu ? tf.relu(y) : y;
      };
      let h = x.input;
      for (let c = 0; c < 2; c++) {
        const a = conv(conv(h, 3 * c, true), 3 * c + 1, true);
        const e = o.attention[c];
        assert.deepEqual(e.shape, [2, 8, 8]);
        assert.ok(relErr(e.dataSync(), tf.sum(tf.square(a), 3).dataSync()) < 1e-5);
        const k = x.kspace!;
        h = dataConsistency(conv(a, 3 * c + 2, false), k.re, k.im, k.mask, null);
      }
    });
    net.dispose();
    const v = createNetwork({ arch: 'vdsr', depth: 4, nf: 6, atLayer: 2 }, 1);
    tf.tidy(() => {
      const o = v.apply({ input: tf.zeros([1, 8, 8, 1]) as tf.Tensor4D });
      assert.equal(o.attention.length, 1);
      assert.deepEqual(o.attention[0].shape, [1, 8, 8]);
    });
    v.dispose();
  });
});

test('attentionMaps: the same maps and weight gradients as apply().attention, nothing past the last map', async () => {
  await onBackend('wasm', () => {
    const s = slices(2, 12, 12, 6);
    for (const spec of [
      { ...tiny, nf: 16 },
      { arch: 'vdsr', depth: 4, nf: 6, atLayer: 2 },
    ] as NetworkSpec[]) {
      const net = createNetwork(spec, 4);
      const r = tf.tidy(() => {
        const x = inputs(s);
        const weights = tf.randomUniform([2, 12, 12], 0, 1, 'float32', 9);
        const lossOf = (maps: tf.Tensor3D[]) =>
          tf.addN(maps.map((m) => tf.sum(tf.mul(tf.sqrt(m), weights)))) as tf.Scalar;
        const run = (f: () => tf.Tensor3D[]) => {
          const { value, grads } = tf.variableGrads(() => lossOf(f()), net.variables);
          return [value, ...f(), ...net.variables.map((v) => grads[v.name] ?? tf.zeros(v.shape))].map(
            (t) => t.dataSync() as Float32Array,
          );
        };
        // the convs past the last attention layer get no gradient from the maps (tfjs leaves them out): zeros
        return {
          whole: run(() => net.apply(x).attention),
          maps: run(() => net.attentionMaps(x)),
        };
      });
      assert.equal(r.maps.length, r.whole.length);
      for (let i = 0; i < r.whole.length; i++)
        assert.ok(
          maxAbs(r.maps[i], r.whole[i]) === 0,
          `${spec.arch} tensor ${i}: ${maxAbs(r.maps[i], r.whole[i])}`,
        );
      net.dispose();
    }
  });
});

test('attention: false (stacks not cut) gives the same output and weight gradients, and no attention maps', async () => {
  await onBackend('wasm', () => {
    const s = slices(2, 12, 12, 5);
    // nf 16: the wide layers run the Winograd kernels
    const net = createNetwork({ ...tiny, nf: 16 }, 3);
    const target = tf.tensor4d(s.target, [s.b, s.h, s.w, 1]);
    const run = (attention: boolean) =>
      tf.tidy(() => {
        const x = inputs(s);
        const o = net.apply({ ...x, attention });
        assert.equal(o.attention.length, attention ? 2 : 0);
        const { grads } = tf.variableGrads(
          () => tf.mean(tf.abs(tf.sub(net.apply({ ...x, attention }).out, target))) as tf.Scalar,
          net.variables,
        );
        return [
          o.out.dataSync() as Float32Array,
          ...net.variables.map((v) => grads[v.name].dataSync() as Float32Array),
        ];
      });
    const cut = run(true);
    const whole = run(false);
    for (let i = 0; i < cut.length; i++)
      assert.ok(relErr(whole[i], cut[i]) < 1e-6, `tensor ${i}: ${relErr(whole[i], cut[i])}`);
    target.dispose();
    net.dispose();
  });
});

test('DC-CNN without kspace is a clear error', () => {
  const net = createNetwork(tiny, 1);
  assert.throws(() => net.apply({ input: tf.zeros([1, 8, 8, 1]) as tf.Tensor4D }), /needs kspace/);
  net.dispose();
});

function forwardOn(spec: NetworkSpec, s: Slices): Float32Array[] {
  const net = createNetwork(spec, 5);
  const r = tf.tidy(() => {
    const o = net.apply(inputs(s));
    return [o.out, ...o.attention].map((t) => t.dataSync() as Float32Array);
  });
  net.dispose();
  return r;
}

for (const spec of [
  PRESET_NETWORKS.dccnnTeacher,
  { arch: 'vdsr', depth: 5, nf: 16, atLayer: 3 },
] as NetworkSpec[]) {
  test(`forward on wasm (KD-MRI kernels) equals forward on cpu: ${spec.arch}`, async () => {
    const s = slices(2, 16, 16, 9);
    const ref = await onBackend('cpu', () => forwardOn(spec, s));
    const got = await onBackend('wasm', () => forwardOn(spec, s));
    assert.equal(got.length, ref.length);
    for (let i = 0; i < ref.length; i++)
      assert.ok(relErr(got[i], ref[i]) < 1e-4, `output ${i}: ${relErr(got[i], ref[i])}`);
  });
}

/** One Adam step of L1(out, target): loss, gradients and updated weights, as plain arrays. */
function adamStep(spec: NetworkSpec, s: Slices) {
  const net = createNetwork(spec, 11);
  const opt = tf.train.adam(1e-3);
  const x = inputs(s);
  const target = tf.tensor4d(s.target, [s.b, s.h, s.w, 1]);
  const lossFn = () => tf.mean(tf.abs(tf.sub(net.apply(x).out, target))) as tf.Scalar;
  const { value, grads } = tf.variableGrads(lossFn, net.variables);
  const g = net.variables.map((v) => grads[v.name].dataSync() as Float32Array);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  opt.minimize(lossFn, false, net.variables);
  const after = net.variables.map((v) => v.dataSync() as Float32Array);
  tf.dispose([target, x.input, x.kspace!.re, x.kspace!.im, x.kspace!.mask]);
  opt.dispose();
  net.dispose();
  return { loss, g, after };
}

for (const spec of [
  tiny,
  { ...tiny, residual: true, dcLambda: 0.7 },
  { arch: 'vdsr', depth: 4, nf: 6, atLayer: 2 },
] as NetworkSpec[]) {
  test(`one Adam step on wasm matches cpu: ${JSON.stringify(spec)}`, async () => {
    const s = slices(4, 16, 16, 13);
    const ref = await onBackend('cpu', () => adamStep(spec, s));
    const got = await onBackend('wasm', () => adamStep(spec, s));
    assert.ok(
      Math.abs(got.loss - ref.loss) < 1e-5 * Math.max(1, ref.loss),
      `loss ${got.loss} vs ${ref.loss}`,
    );
    for (let i = 0; i < ref.g.length; i++) {
      // a gradient can be exactly 0 analytically (e.g. the last conv's bias before a hard DC whose mask
      // samples k = 0): then both are float32 noise, compared in absolute terms
      const ok = relErr(got.g[i], ref.g[i]) < 1e-3 || maxAbs(got.g[i], ref.g[i]) < 1e-6;
      assert.ok(
        ok,
        `gradient ${i}: relative ${relErr(got.g[i], ref.g[i])}, absolute ${maxAbs(got.g[i], ref.g[i])}`,
      );
      // Adam divides by √v: a zero gradient's float32 noise moves a weight by up to lr, so only
      // parameters with a real gradient are compared after the step
      if (maxAbs(ref.g[i], new Float32Array(ref.g[i].length)) > 1e-6) {
        assert.ok(relErr(got.after[i], ref.after[i]) < 1e-4, `weights ${i} after the step`);
      }
    }
  });
}

test('namedWeights / setNamedWeights round trip and errors name the parameter', () => {
  const a = createNetwork(tiny, 1);
  const b = createNetwork(tiny, 2);
  setNamedWeights(b, namedWeights(a));
  assert.deepEqual(namedWeights(b), namedWeights(a));
  const w = namedWeights(a);
  w.set('cascade1.conv2.weight', new Float32Array(3));
  assert.throws(() => setNamedWeights(b, w), /cascade1\.conv2\.weight.*3 values, expected 144/);
  const missing = namedWeights(a);
  missing.delete('cascade2.conv3.bias');
  assert.throws(() => setNamedWeights(b, missing), /'cascade2\.conv3\.bias' is missing/);
  const extra = namedWeights(a);
  extra.set('cascade9.conv1.weight', new Float32Array(36));
  assert.throws(() => setNamedWeights(b, extra), /'cascade9\.conv1\.weight' is not a parameter/);
  a.dispose();
  b.dispose();
});

test('teacher and student can coexist (unique variable names) and dispose frees their variables', () => {
  const before = tf.memory().numTensors;
  const t = createNetwork(PRESET_NETWORKS.dccnnTeacher, 42);
  const s = createNetwork(PRESET_NETWORKS.dccnnTeacher, 42);
  t.dispose();
  s.dispose();
  assert.equal(tf.memory().numTensors, before);
});
