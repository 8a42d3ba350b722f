/**
 * A stack of 3×3, stride-1, 'same' convs with bias and optional ReLU, as one differentiable op.
 *
 * Why one op for several layers: tfjs-core keeps every gradient it computes until the whole backward
 * pass ends (tape.ts backpropagateGradients never frees a node's dy). With one taped op per layer that
 * is one activation-sized gradient per layer (33.5 MB at 4×256×256×32, 25 layers in the teacher) on
 * top of the saved activations. Inside a stack the layer gradients are freed as soon as the layer
 * below has used them, so only the stack's input gradient is kept. The networks cut a cascade into two
 * stacks at the attention layer, whose output is the attention map the distillation loss reads.
 *
 * Why not tf.fused.conv2d: while a gradient is being recorded, tfjs-core un-fuses it (conv2d, add, relu as
 * three taped ops), which keeps three activation-sized tensors per layer alive until the backward pass
 * and makes three passes over memory. Here the forward pass is the backend's single FusedConv2D kernel
 * per layer and only the layer outputs y are kept; the backward pass of a layer is
 *   g  = dy ⊙ step(y)                 (ReLU; y > 0 ⇔ pre-activation > 0)
 *   dx = Conv2DBackpropInput(g, W),  dW = Conv2DBackpropFilter(x, g),  db = Σ_{B,H,W} g
 * with dW and db from one kernel where src-main/compute/kernels registers KDMRI_FILTER_BIAS_GRAD (and all
 * three, g never formed, where it registers KDMRI_RELU_CONV_GRADS), and on
 * wasm the kernels of src-main/compute/kernels (forward convs and GEMMs underneath).
 *
 * Layout NHWC, filters HWIO [3,3,cin,cout], float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KDMRI_CHANNEL_ENERGY, KDMRI_CHANNEL_ENERGY_GRAD } from '../compute/kernels/channel-energy.js';
import { KDMRI_FILTER_BIAS_GRAD, KDMRI_RELU_CONV_GRADS } from '../compute/kernels/conv-backprop.js';

const ATTRS = { strides: [1, 1] as [number, number], pad: 'same' as const, dataFormat: 'NHWC' as const };

/**
 * [dx, dW, db] of one layer y = act(conv(x, w) + b), given dy; y is passed for ReLU layers only.
 * Without `inputGrad`, [dW, db] only (the layer's input is data).
 */
function layerGrads(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  y: tf.Tensor4D | undefined,
  inputGrad = true,
): tf.Tensor[] {
  return tf.tidy(() => {
    if (y && tf.getKernel(KDMRI_RELU_CONV_GRADS, tf.getBackend())) {
      const attrs = { ...ATTRS, filterShape: w.shape, inputShape: x.shape, inputGrad };
      const r = tf.engine().runKernel(KDMRI_RELU_CONV_GRADS, { x, dy, filter: w, y }, attrs) as tf.Tensor[];
      // without inputGrad [dW, db]; a kernel that computed dx anyway still gives dW, db last
      return inputGrad ? r : r.slice(-2);
    }
    const g = y ? tf.mul(dy, tf.step(y)) : dy;
    const dx = inputGrad
      ? [
          tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropInput,
              { dy: g, filter: w },
              { ...ATTRS, inputShape: x.shape },
            ) as tf.Tensor,
        ]
      : [];
    const attrs = { ...ATTRS, filterShape: w.shape };
    if (tf.getKernel(KDMRI_FILTER_BIAS_GRAD, tf.getBackend())) {
      const [dw, db] = tf.engine().runKernel(KDMRI_FILTER_BIAS_GRAD, { x, dy: g }, attrs) as tf.Tensor[];
      return [...dx, dw, db];
    }
    const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: g }, attrs) as tf.Tensor;
    return [...dx, dw, tf.sum(g, [0, 1, 2])];
  });
}

/** The layer outputs y_1..y_n of a stack run forward. */
function forwardLayers(
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  bs: readonly tf.Tensor1D[],
  relu: readonly boolean[],
): tf.Tensor4D[] {
  const ys: tf.Tensor4D[] = [];
  let h = x;
  for (let k = 0; k < relu.length; k++) {
    h = tf
      .engine()
      .runKernel(
        tf.FusedConv2D,
        { x: h, filter: ws[k], bias: bs[k] },
        { ...ATTRS, dilations: [1, 1], activation: relu[k] ? 'relu' : 'linear' },
      ) as tf.Tensor4D;
    ys.push(h);
  }
  return ys;
}

/**
 * dx and [dW_1..dW_n], [db_1..db_n] of a stack given the gradient dy of its output; with `energy`,
 * also the gradient dE of E = Σ_c y_at,c² (1-based layer `at`), which joins the layer's output
 * gradient as y_at · 2dE (dE broadcast over channels) on its way down. Without `inputGrad` the first
 * layer's kernel computes its dW and db only, and dx is a function that computes it if called (from
 * that layer's dy, kept until then; the caller's scope frees it).
 */
function backwardLayers(
  dy: tf.Tensor4D | null,
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  ys: readonly tf.Tensor4D[],
  relu: readonly boolean[],
  energy: { at: number; dE: tf.Tensor3D } | null,
  inputGrad: boolean,
): { dx: tf.Tensor | (() => tf.Tensor); dws: tf.Tensor[]; dbs: tf.Tensor[] } {
  const n = relu.length;
  const dws: tf.Tensor[] = new Array<tf.Tensor>(n);
  const dbs: tf.Tensor[] = new Array<tf.Tensor>(n);
  let g = dy;
  for (let k = n - 1; k >= 0; k--) {
    if (energy && k === energy.at - 1) {
      const a = ys[k];
      const { dE } = energy;
      const joined = tf.getKernel(KDMRI_CHANNEL_ENERGY_GRAD, tf.getBackend())
        ? (tf.engine().runKernel(KDMRI_CHANNEL_ENERGY_GRAD, g ? { a, dE, g } : { a, dE }) as tf.Tensor4D)
        : (tf.tidy(() => {
            const fromEnergy = tf.mul(a, tf.expandDims(tf.mul(dE, 2), 3));
            return g ? tf.add(g, fromEnergy) : fromEnergy;
          }) as tf.Tensor4D);
      if (g && g !== dy) g.dispose();
      g = joined;
    }
    if (!g) throw new Error('conv stack backward: no gradient reaches its last layer');
    const y = relu[k] ? ys[k] : undefined;
    if (k === 0 && !inputGrad) {
      [dws[0], dbs[0]] = layerGrads(g, x, ws[0], y, false);
      const g0 = g;
      return { dx: () => layerGrads(g0, x, ws[0], y)[0], dws, dbs };
    }
    const [dx, dw, db] = layerGrads(g, k > 0 ? ys[k - 1] : x, ws[k], y);
    // the layer's own dy is no longer needed (the stack's dy belongs to the tape)
    if (g !== dy) g.dispose();
    dws[k] = dw;
    dbs[k] = db;
    g = dx as tf.Tensor4D;
  }
  return { dx: g as tf.Tensor4D, dws, dbs };
}

/**
 * The parts of tfjs-core's engine used here: runKernelFunc runs an op with several outputs and its
 * own gradient functions, one per input, called only for the inputs tfjs needs a gradient of
 * (tf.customGrad allows one output and computes every input's gradient up front); activeTape is the
 * tape being recorded. Internal in tfjs-core's typings, stable since tfjs 2.
 */
interface StackEngine {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: tf.GradSaveFunc) => tf.Tensor[];
    backwardsFunc: (dys: tf.Tensor[], saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor[];
  /** null or absent when no gradient is being recorded */
  state: { activeTape?: { outputs: tf.Tensor[] }[] | null };
}

/**
 * Whether a gradient can reach x from the variables: x is a trainable variable or an output of an op
 * on the tape being recorded. Otherwise x is data (a network's input), and tfjs asks for its gradient
 * only when x itself is differentiated against (tape.ts calls the gradient functions of the inputs
 * on a path from the xs only); the stack then computes its first layer's dx only if asked.
 */
function fromTape(engine: StackEngine, x: tf.Tensor): boolean {
  if (x instanceof tf.Variable) return x.trainable;
  const tape = engine.state.activeTape;
  return !!tape && tape.some((node) => node.outputs.some((o) => o.id === x.id));
}

/**
 * A stack as one differentiable op. Outputs: [h_n] without energy; with it [h_n, E_at] (withOut) or
 * [E_at] (see convStackWithEnergy, convStackEnergy).
 */
function stackKernel(
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  bs: readonly tf.Tensor1D[],
  relu: readonly boolean[],
  energy: { at: number; withOut: boolean } | null,
): tf.Tensor[] {
  const n = relu.length;
  const inputs: Record<string, tf.Tensor> = {};
  [x, ...ws, ...bs].forEach((t, i) => (inputs[i] = t));
  const engine = tf.engine() as unknown as StackEngine;
  const inputGrad = fromTape(engine, x);
  return engine.runKernelFunc({
    inputs,
    forwardFunc: (_backend, save) => {
      const ys = forwardLayers(x, ws, bs, relu);
      save([x, ...ws, ...ys]);
      if (!energy) return [ys[n - 1]];
      const a = ys[energy.at - 1];
      const e = tf.getKernel(KDMRI_CHANNEL_ENERGY, tf.getBackend())
        ? (tf.engine().runKernel(KDMRI_CHANNEL_ENERGY, { x: a }) as tf.Tensor3D)
        : tf.tidy(() => tf.sum(tf.square(a), 3));
      return energy.withOut ? [ys[n - 1], e] : [e];
    },
    backwardsFunc: (dys, saved) => {
      // the engine passes an op with one output its dy alone, not in a list
      const one = dys as unknown as tf.Tensor;
      const [dy, dE] = !energy ? [one, null] : energy.withOut ? dys : [null, one];
      const { dx, dws, dbs } = backwardLayers(
        dy as tf.Tensor4D | null,
        saved[0] as tf.Tensor4D,
        saved.slice(1, 1 + n) as tf.Tensor4D[],
        saved.slice(1 + n) as tf.Tensor4D[],
        relu,
        energy && { at: energy.at, dE: dE as tf.Tensor3D },
        inputGrad,
      );
      const map: Record<string, () => tf.Tensor> = { 0: typeof dx === 'function' ? dx : () => dx };
      [...dws, ...dbs].forEach((g, i) => (map[i + 1] = () => g));
      return map;
    },
  });
}

/**
 * A stack that also yields the attention energy E = Σ_c a_c² [B,H,W] of its layer `at`'s output a,
 * as one differentiable op with two outputs [h_n, E].
 *
 * Why not two stacks cut at a plus tf.sum(tf.square(a), 3): tfjs keeps every gradient and every
 * temporary of a backward pass until the pass ends, so the cut kept a's two incoming gradients and
 * their sum, and the autodiff of the energy four more activation-sized temporaries (dy tiled by a
 * multiply with ones, a cast of a, 2a, their product), per cascade: at 4×256×256×32 the student's
 * attention step peaked at 1.5 GB against 0.4 GB for a step on its output, and spent ~0.2 s per step
 * on those passes. Here the energy's gradient joins the layer gradient inside the stack and is freed
 * with it. Bitwise the autodiff result: it computes dy·(2a) + the upper layers' gradient, this
 * a·(2dE) + the same, and doubling is exact.
 * Where the backend registers KDMRI_CHANNEL_ENERGY(_GRAD) (wasm), the energy and the join
 * g + a·(2dE) are one threaded pass each instead of two or three single-threaded tfjs kernels, with
 * the same bits (compute/kernels/channel-energy.ts).
 */
export function convStackWithEnergy(
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  bs: readonly tf.Tensor1D[],
  relu: readonly boolean[],
  at: number,
): { out: tf.Tensor4D; energy: tf.Tensor3D } {
  const [out, energy] = energyStack(x, ws, bs, relu, at, true);
  return { out: out as tf.Tensor4D, energy: energy as tf.Tensor3D };
}

/**
 * Only the energy Σ_c h_n,c² [B,H,W] of a stack's last layer: for a caller that reads the attention
 * map but not what follows it (the last cascade of the attention step), so neither the layers above
 * nor their backward with a zero gradient run.
 */
export function convStackEnergy(
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  bs: readonly tf.Tensor1D[],
  relu: readonly boolean[],
): tf.Tensor3D {
  return energyStack(x, ws, bs, relu, relu.length, false)[0] as tf.Tensor3D;
}

/** [h_n, E_at] (withOut) or [E_at] (at = n) as one op; see convStackWithEnergy. */
function energyStack(
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  bs: readonly tf.Tensor1D[],
  relu: readonly boolean[],
  at: number,
  withOut: boolean,
): tf.Tensor[] {
  const n = relu.length;
  if (n === 0 || ws.length !== n || bs.length !== n || at < 1 || at > n) {
    throw new Error(
      `conv stack with energy: ${ws.length} filters, ${bs.length} biases, ${n} activations, energy at ${at}`,
    );
  }
  return stackKernel(x, ws, bs, relu, { at, withOut });
}

/**
 * h_n of h_k = act_k(conv3x3_same(h_{k−1}, w_k) + b_k), h_0 = x; act_k = ReLU where relu[k], else identity.
 * x [B,H,W,cin], w_k [3,3,c_{k−1},c_k], b_k [c_k].
 */
export function convStack(
  x: tf.Tensor4D,
  ws: readonly tf.Tensor4D[],
  bs: readonly tf.Tensor1D[],
  relu: readonly boolean[],
): tf.Tensor4D {
  if (ws.length === 0 || ws.length !== bs.length || ws.length !== relu.length) {
    throw new Error(`convStack: ${ws.length} filters, ${bs.length} biases, ${relu.length} activations`);
  }
  return stackKernel(x, ws, bs, relu, null)[0] as tf.Tensor4D;
}

/** y = act(conv3x3_same(x, w) + b), act = ReLU or identity. x [B,H,W,cin], w [3,3,cin,cout], b [cout]. */
export function conv3x3(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, relu: boolean): tf.Tensor4D {
  return convStack(x, [w], [b], [relu]);
}
