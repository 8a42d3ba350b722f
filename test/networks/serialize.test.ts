/**
 * Networks in the TensorFlow.js weights format: encode → decode gives identical outputs; corrupt or
 * mismatched files fail with errors that say what is wrong.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { PRESET_NETWORKS, type NetworkSpec } from '../../src-main/contract/domain.js';
import { createNetwork, decodeNetwork, encodeNetwork, namedWeights } from '../../src-main/networks/index.js';
import { Rng } from '../../src-main/util/random.js';

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

const tiny: NetworkSpec = { arch: 'dccnn', nc: 2, nd: 3, nf: 4, residual: true, dcLambda: 0.5, atLayer: 2 };

function rand(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.next());
}

test('encode → decode round trip: same spec, card, weights and outputs', async () => {
  for (const spec of [tiny, PRESET_NETWORKS.vdsrStudent] as NetworkSpec[]) {
    const net = createNetwork(spec, 3);
    const card = { name: 'm', note: 'x' };
    const { modelJson, weightData } = await encodeNetwork(net, card);
    const json = JSON.parse(JSON.stringify(modelJson)) as Record<string, unknown>;
    assert.equal(json.format, 'kdmri-network');
    assert.deepEqual(json.card, card);
    assert.equal(weightData.byteLength, 4 * net.paramCount());
    const back = decodeNetwork(json, weightData);
    assert.deepEqual(back.spec, net.spec);
    assert.deepEqual(namedWeights(back), namedWeights(net));
    const h = 8;
    const run = (n: typeof net) =>
      tf.tidy(() => {
        const input = tf.tensor4d(rand(2 * h * h, 1), [2, h, h, 1]);
        const kspace = {
          re: tf.tensor3d(rand(2 * h * h, 2), [2, h, h]),
          im: tf.tensor3d(rand(2 * h * h, 3), [2, h, h]),
          mask: tf.tensor2d(
            rand(h * h, 4).map((v) => (v < 0.4 ? 1 : 0)),
            [h, h],
          ),
        };
        return n
          .apply({ input, kspace: spec.arch === 'dccnn' ? kspace : undefined })
          .out.dataSync() as Float32Array;
      });
    assert.deepEqual(run(back), run(net));
    net.dispose();
    back.dispose();
  }
});

test('decode rejects corrupt or mismatched files with clear errors', async () => {
  const net = createNetwork(tiny, 3);
  const { modelJson, weightData } = await encodeNetwork(net, {});
  type ModelJson = {
    format: string;
    spec: Record<string, unknown>;
    weightsManifest: { weights: { name: string; shape: number[]; dtype: string }[] }[];
  };
  const json = () => JSON.parse(JSON.stringify(modelJson)) as ModelJson;
  net.dispose();

  assert.throws(() => decodeNetwork(null, weightData), /not a KD-MRI network model\.json/);
  assert.throws(() => decodeNetwork({ ...json(), format: 'other' }, weightData), /format/);
  assert.throws(() => decodeNetwork({ ...json(), spec: { arch: 'dccnn', nc: 0 } }, weightData), /spec/);
  assert.throws(() => decodeNetwork({ ...json(), weightsManifest: 'x' }, weightData), /weightsManifest/);

  assert.throws(
    () => decodeNetwork(json(), weightData.slice(0, weightData.byteLength - 4)),
    /weights\.bin has \d+ bytes but the manifest describes/,
  );

  const renamed = json();
  renamed.weightsManifest[0].weights[0].name = 'cascade1.convX.weight';
  assert.throws(() => decodeNetwork(renamed, weightData), /'cascade1\.convX\.weight' is not a parameter/);

  const reshaped = json();
  reshaped.weightsManifest[0].weights[0].shape = [3, 3, 4, 1];
  assert.throws(
    () => decodeNetwork(reshaped, weightData),
    /'cascade1\.conv1\.weight' has shape \[3,3,4,1\], the network expects \[3,3,1,4\]/,
  );

  const quantized = json();
  quantized.weightsManifest[0].weights[0].dtype = 'int32';
  assert.throws(() => decodeNetwork(quantized, weightData), /dtype/);

  const otherSpec = json();
  otherSpec.spec = { ...otherSpec.spec, nf: 8 };
  assert.throws(() => decodeNetwork(otherSpec, weightData), /shape|bytes/);
});
