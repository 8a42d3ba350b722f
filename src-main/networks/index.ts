/**
 * The networks of the method: DC-CNN (reconstruction, method spec §1, §8, §9) and VDSR (restoration, §6).
 *
 * Conventions: tensors NHWC with C = 1 for images; conv weights HWIO [3,3,cin,cout]; every conv is 3×3,
 * stride 1, zero 'same' padding, with bias. k-space is unshifted and orthonormal.
 *
 * Parameter names are PyTorch's ('cascade1.conv1.weight', …; 'conv1.weight', … for VDSR). tfjs variable
 * names must be unique in the engine and a teacher and a student share these names, so each tf.Variable is
 * named `kdmri<N>/<pytorch name>` (N unique per network instance); `Network.names` holds the PyTorch
 * names in variable order and namedWeights/setNamedWeights speak PyTorch names only.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NetworkSpecSchema, type DcCnnSpec, type NetworkSpec, type VdsrSpec } from '../contract/domain.js';
import { Rng } from '../util/random.js';
import { registerKdmriKernels } from '../compute/kernels/index.js';
import { convStack, convStackEnergy, convStackWithEnergy } from './conv.js';
import { dataConsistency } from './data-consistency.js';

export { dataConsistency } from './data-consistency.js';
export { encodeNetwork, decodeNetwork } from './serialize.js';

export interface NetInputs {
  /** degraded image [B,H,W,1]: zero-filled magnitude (recon) or low-res image (SR) */
  input: tf.Tensor4D;
  /** recon only: acquired k-space [B,H,W] (masked, unshifted, ortho) and mask [H,W] */
  kspace?: { re: tf.Tensor3D; im: tf.Tensor3D; mask: tf.Tensor2D };
  /**
   * false when the caller does not read `attention` (training on the reconstruction alone, inference):
   * no attention maps are computed, and a backward pass does not join their (zero) gradients into
   * every cascade's. Default true.
   */
  attention?: boolean;
}

export interface NetOutputs {
  /** reconstruction [B,H,W,1] */
  out: tf.Tensor4D;
  /**
   * Un-normalised attention maps for attention transfer, Σ_c a_c² (p = 2) [B,H,W] of the post-ReLU
   * activations a [B,H,W,nf] of the spec.atLayer-th conv of every cascade (DC-CNN, nc maps) or of the
   * atLayer-th conv (VDSR, one map). If atLayer is the last conv (which has no ReLU) its linear output
   * is used. Computed inside the conv stack (conv.ts convStackWithEnergy), so the activations never
   * cross the gradient tape. Empty when the inputs said attention: false.
   */
  attention: tf.Tensor3D[];
}

export interface Network {
  readonly spec: NetworkSpec;
  /** trainable, in a fixed order: for each conv (cascade by cascade), weight then bias. */
  readonly variables: tf.Variable[];
  /** PyTorch names of `variables`, same order. */
  readonly names: readonly string[];
  /** differentiable w.r.t. variables (usable inside optimizer.minimize / tf.variableGrads) */
  apply(x: NetInputs): NetOutputs;
  /**
   * `apply(x).attention` alone, for a caller that reads nothing else (the attention step): the last
   * cascade (VDSR: the network) stops at its attention layer, so the layers past it, the last data
   * consistency and their backward with a zero gradient do not run. Differentiable like apply.
   */
  attentionMaps(x: NetInputs): tf.Tensor3D[];
  paramCount(): number;
  dispose(): void;
}

/** One conv of a network, in variable order. */
export interface ConvPlan {
  /** PyTorch module name, e.g. 'cascade2.conv3' or 'conv7' */
  name: string;
  cin: number;
  cout: number;
  /** ReLU after it (all but the last conv of a cascade / of VDSR) */
  relu: boolean;
}

/** The convs of a spec in their fixed order. */
export function convPlan(spec: NetworkSpec): ConvPlan[] {
  const layers: ConvPlan[] = [];
  const chain = (prefix: string, n: number, nf: number) => {
    for (let k = 1; k <= n; k++) {
      layers.push({ name: `${prefix}conv${k}`, cin: k === 1 ? 1 : nf, cout: k === n ? 1 : nf, relu: k < n });
    }
  };
  if (spec.arch === 'dccnn') for (let c = 1; c <= spec.nc; c++) chain(`cascade${c}.`, spec.nd, spec.nf);
  else chain('', spec.depth, spec.nf);
  return layers;
}

/** Forward multiply-adds × 2 of all convs for one H×W slice (biases, ReLU and DC not counted). */
export function convFlopsPerSlice(spec: NetworkSpec, h: number, w: number): number {
  return convPlan(spec).reduce((s, l) => s + 2 * 9 * l.cin * l.cout * h * w, 0);
}

function validSpec(spec: NetworkSpec): NetworkSpec {
  const parsed = NetworkSpecSchema.safeParse(spec);
  if (!parsed.success) throw new Error(`invalid network spec: ${parsed.error.message}`);
  const s = parsed.data;
  const convs = s.arch === 'dccnn' ? s.nd : s.depth;
  if (s.atLayer > convs)
    throw new Error(`invalid network spec: atLayer ${s.atLayer} > number of convs ${convs}`);
  return s;
}

let instances = 0;

/**
 * A network with PyTorch's default Conv2d initialisation: weights and biases ~ U(−1/√fan_in, +1/√fan_in),
 * fan_in = cin·9. Draw order, from one Rng(seed): conv by conv in variable order; for each conv first its
 * weight in HWIO memory order ([kh][kw][cin][cout], cout fastest), then its bias.
 */
export function createNetwork(spec: NetworkSpec, seed: number): Network {
  registerKdmriKernels();
  const s = validSpec(spec);
  const plan = convPlan(s);
  const rng = new Rng(seed);
  const id = ++instances;
  const names: string[] = [];
  const variables: tf.Variable[] = [];
  const weights: tf.Variable<tf.Rank.R4>[] = [];
  const biases: tf.Variable<tf.Rank.R1>[] = [];
  for (const l of plan) {
    const bound = 1 / Math.sqrt(l.cin * 9);
    const wv = new Float32Array(9 * l.cin * l.cout);
    for (let i = 0; i < wv.length; i++) wv[i] = rng.uniform(-bound, bound);
    const bv = new Float32Array(l.cout);
    for (let i = 0; i < bv.length; i++) bv[i] = rng.uniform(-bound, bound);
    // tidy: the initial-value tensors go, the variables (never tracked by tidy) stay
    const w = tf.tidy(() =>
      tf.variable(tf.tensor4d(wv, [3, 3, l.cin, l.cout]), true, `kdmri${id}/${l.name}.weight`),
    );
    const b = tf.tidy(() => tf.variable(tf.tensor1d(bv), true, `kdmri${id}/${l.name}.bias`));
    weights.push(w);
    biases.push(b);
    variables.push(w, b);
    names.push(`${l.name}.weight`, `${l.name}.bias`);
  }
  const apply =
    s.arch === 'dccnn' ? dccnnApply(s, plan, weights, biases) : vdsrApply(s, plan, weights, biases);
  let disposed = false;
  const checkInput = (fn: string, x: NetInputs) => {
    if (disposed) throw new Error(`network: ${fn}() after dispose()`);
    const shape = x.input.shape;
    if (x.input.rank !== 4 || shape[3] !== 1)
      throw new Error(`network: input must be [B,H,W,1], got [${shape}]`);
  };
  return {
    spec: s,
    variables,
    names,
    apply(x: NetInputs): NetOutputs {
      checkInput('apply', x);
      const o = apply(x, false);
      return { out: o.out!, attention: o.attention };
    },
    attentionMaps(x: NetInputs): tf.Tensor3D[] {
      checkInput('attentionMaps', x);
      return apply({ ...x, attention: true }, true).attention;
    },
    paramCount: () => variables.reduce((n, v) => n + v.size, 0),
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const v of variables) v.dispose();
    },
  };
}

/** With mapsOnly, `out` is null and the last block stops at its attention layer. */
type ApplyFn = (x: NetInputs, mapsOnly: boolean) => { out: tf.Tensor4D | null; attention: tf.Tensor3D[] };

/**
 * Layers [first, first+count) as one conv stack (see conv.ts: gradients inside a stack are freed
 * early); with the attention layer `atLayer` (1-based within the block) in range, the stack also
 * yields that layer's attention energy, pushed to `attention`.
 */
function stacksWithAttention(
  x: tf.Tensor4D,
  first: number,
  count: number,
  atLayer: number,
  plan: ConvPlan[],
  ws: tf.Variable<tf.Rank.R4>[],
  bs: tf.Variable<tf.Rank.R1>[],
  attention: tf.Tensor3D[],
): tf.Tensor4D {
  const w = ws.slice(first, first + count);
  const b = bs.slice(first, first + count);
  const relu = plan.slice(first, first + count).map((l) => l.relu);
  if (atLayer < 1 || atLayer > count) return convStack(x, w, b, relu);
  const { out, energy } = convStackWithEnergy(x, w, b, relu, atLayer);
  attention.push(energy);
  return out;
}

/** The attention energy of layers [first, first+atLayer) and nothing past them (Network.attentionMaps). */
function blockEnergy(
  x: tf.Tensor4D,
  first: number,
  atLayer: number,
  plan: ConvPlan[],
  ws: tf.Variable<tf.Rank.R4>[],
  bs: tf.Variable<tf.Rank.R1>[],
): tf.Tensor3D {
  const to = first + atLayer;
  return convStackEnergy(
    x,
    ws.slice(first, to),
    bs.slice(first, to),
    plan.slice(first, to).map((l) => l.relu),
  );
}

function dccnnApply(
  spec: DcCnnSpec,
  plan: ConvPlan[],
  ws: tf.Variable<tf.Rank.R4>[],
  bs: tf.Variable<tf.Rank.R1>[],
): ApplyFn {
  return ({ input, kspace, attention: wanted = true }, mapsOnly) => {
    if (!kspace) throw new Error('DC-CNN: apply() needs kspace {re, im, mask} for data consistency');
    const attention: tf.Tensor3D[] = [];
    const at = wanted ? spec.atLayer : 0;
    let x = input;
    for (let c = 0; c < spec.nc; c++) {
      if (mapsOnly && c === spec.nc - 1) {
        attention.push(blockEnergy(x, c * spec.nd, spec.atLayer, plan, ws, bs));
        return { out: null, attention };
      }
      const h = stacksWithAttention(x, c * spec.nd, spec.nd, at, plan, ws, bs, attention);
      x = dataConsistency(spec.residual ? tf.add(h, x) : h, kspace.re, kspace.im, kspace.mask, spec.dcLambda);
    }
    return { out: x, attention };
  };
}

function vdsrApply(
  spec: VdsrSpec,
  plan: ConvPlan[],
  ws: tf.Variable<tf.Rank.R4>[],
  bs: tf.Variable<tf.Rank.R1>[],
): ApplyFn {
  return ({ input, attention: wanted = true }, mapsOnly) => {
    if (mapsOnly) return { out: null, attention: [blockEnergy(input, 0, spec.atLayer, plan, ws, bs)] };
    const attention: tf.Tensor3D[] = [];
    const h = stacksWithAttention(input, 0, spec.depth, wanted ? spec.atLayer : 0, plan, ws, bs, attention);
    // global residual: out = input + last conv
    return { out: tf.add(input, h) as tf.Tensor4D, attention };
  };
}

/** Copies of every parameter, by PyTorch name, in variable order. */
export function namedWeights(net: Network): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  net.variables.forEach((v, i) => m.set(net.names[i], Float32Array.from(v.dataSync() as Float32Array)));
  return m;
}

/** Set every parameter from PyTorch-named values; the map must hold exactly the network's parameters. */
export function setNamedWeights(net: Network, weights: Map<string, Float32Array>): void {
  const known = new Set(net.names);
  for (const name of weights.keys()) {
    if (!known.has(name))
      throw new Error(`setNamedWeights: '${name}' is not a parameter of this ${net.spec.arch} network`);
  }
  // check everything before changing anything
  net.variables.forEach((v, i) => {
    const name = net.names[i];
    const data = weights.get(name);
    if (!data) throw new Error(`setNamedWeights: parameter '${name}' is missing`);
    if (data.length !== v.size) {
      throw new Error(
        `setNamedWeights: parameter '${name}' has ${data.length} values, expected ${v.size} (shape [${v.shape}])`,
      );
    }
  });
  net.variables.forEach((v, i) => {
    const t = tf.tensor(weights.get(net.names[i])!, v.shape, 'float32');
    v.assign(t);
    t.dispose();
  });
}
