/**
 * Networks on disk in the TensorFlow.js weights format: model.json + weights.bin.
 *
 * model.json = { format: 'kdmri-network', generatedBy, spec, card,
 *                weightsManifest: [{ paths: ['weights.bin'], weights: [{ name, shape, dtype: 'float32' }] }] }
 * weights.bin = the parameters' float32 values, little-endian, concatenated in manifest order (what
 * tf.io.encodeWeights writes). Names are PyTorch's ('cascade1.conv1.weight', …), shapes HWIO.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { NetworkSpecSchema, type NetworkSpec } from '../contract/domain.js';
import { convPlan, createNetwork, setNamedWeights, type Network } from './index.js';

export const NETWORK_FORMAT = 'kdmri-network';
const GENERATED_BY = 'KD-MRI Workstation (TensorFlow.js 4.22)';

export async function encodeNetwork(
  net: Network,
  card: object,
): Promise<{ modelJson: object; weightData: ArrayBuffer }> {
  const named = net.variables.map((v, i) => ({ name: net.names[i], tensor: v as tf.Tensor }));
  const { data, specs } = await tf.io.encodeWeights(named);
  const modelJson = {
    format: NETWORK_FORMAT,
    generatedBy: GENERATED_BY,
    spec: net.spec,
    card,
    weightsManifest: [{ paths: ['weights.bin'], weights: specs }],
  };
  return { modelJson, weightData: data };
}

const WeightEntrySchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.literal('float32'),
  quantization: z.undefined({ message: 'quantized weights are not supported' }).optional(),
});
const ModelJsonSchema = z.object({
  format: z.literal(NETWORK_FORMAT),
  spec: NetworkSpecSchema,
  weightsManifest: z
    .array(z.object({ paths: z.array(z.string()), weights: z.array(WeightEntrySchema) }))
    .min(1),
});

/**
 * The spec and parameters (PyTorch names → float32 values, HWIO for convs) of model.json (parsed) and
 * the bytes of weights.bin, checked against the architecture; no TensorFlow.js needed.
 */
export function decodeWeights(
  modelJson: unknown,
  weightData: ArrayBuffer,
): { spec: NetworkSpec; weights: Map<string, Float32Array> } {
  const parsed = ModelJsonSchema.safeParse(modelJson);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`not a KD-MRI network model.json (${issues})`);
  }
  const { spec, weightsManifest } = parsed.data;
  const entries = weightsManifest.flatMap((g) => g.weights);
  const expectedBytes = entries.reduce((n, e) => n + 4 * e.shape.reduce((a, b) => a * b, 1), 0);
  if (weightData.byteLength !== expectedBytes) {
    throw new Error(
      `weights.bin has ${weightData.byteLength} bytes but the manifest describes ${expectedBytes} (truncated or mismatched file)`,
    );
  }
  const shapes = new Map<string, number[]>();
  for (const l of convPlan(spec)) {
    shapes.set(`${l.name}.weight`, [3, 3, l.cin, l.cout]);
    shapes.set(`${l.name}.bias`, [l.cout]);
  }
  const weights = new Map<string, Float32Array>();
  let offset = 0;
  for (const e of entries) {
    const want = shapes.get(e.name);
    if (!want)
      throw new Error(
        `weights.bin: '${e.name}' is not a parameter of the ${spec.arch} network in model.json`,
      );
    if (want.length !== e.shape.length || want.some((d, i) => d !== e.shape[i])) {
      throw new Error(`weights.bin: '${e.name}' has shape [${e.shape}], the network expects [${want}]`);
    }
    if (weights.has(e.name)) throw new Error(`weights.bin: '${e.name}' appears twice in the manifest`);
    const n = e.shape.reduce((a, b) => a * b, 1);
    weights.set(e.name, new Float32Array(weightData.slice(offset, offset + 4 * n)));
    offset += 4 * n;
  }
  for (const name of shapes.keys())
    if (!weights.has(name)) throw new Error(`weights.bin: parameter '${name}' is missing`);
  return { spec, weights };
}

/** Rebuild a network from model.json (parsed) and the bytes of weights.bin. */
export function decodeNetwork(modelJson: unknown, weightData: ArrayBuffer): Network {
  const { spec, weights } = decodeWeights(modelJson, weightData);
  const net = createNetwork(spec, 0);
  try {
    setNamedWeights(net, weights);
    return net;
  } catch (err) {
    net.dispose();
    throw err;
  }
}
