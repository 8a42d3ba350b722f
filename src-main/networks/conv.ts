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
import { KDMRI_FILTER_BIAS_GRAD, KDMRI_RELU_CONV_GRADS } from '../compute/kernels/conv-backprop.js';

const ATTRS = { strides: [1, 1] as [number, number], pad: 'same' as const, dataFormat: 'NHWC' as const };

/** [dx, dW, db] of one layer y = act(conv(x, w) + b), given dy; y is passed for ReLU layers only. */
function layerGrads(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  y: tf.Tensor4D | undefined,
): tf.Tensor[] {
  return tf.tidy(() => {
    if (y && tf.getKernel(KDMRI_RELU_CONV_GRADS, tf.getBackend())) {
      const attrs = { ...ATTRS, filterShape: w.shape, inputShape: x.shape };
      return tf.engine().runKernel(KDMRI_RELU_CONV_GRADS, { x, dy, filter: w, y }, attrs) as tf.Tensor[];
    }
    const g = y ? tf.mul(dy, tf.step(y)) : dy;
    const dx = tf
      .engine()
      .runKernel(
        tf.Conv2DBackpropInput,
        { dy: g, filter: w },
        { ...ATTRS, inputShape: x.shape },
      ) as tf.Tensor;
    const attrs = { ...ATTRS, filterShape: w.shape };
    if (tf.getKernel(KDMRI_FILTER_BIAS_GRAD, tf.getBackend())) {
      const [dw, db] = tf.engine().runKernel(KDMRI_FILTER_BIAS_GRAD, { x, dy: g }, attrs) as tf.Tensor[];
      return [dx, dw, db];
    }
    const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: g }, attrs) as tf.Tensor;
    return [dx, dw, tf.sum(g, [0, 1, 2])];
  });
}

const stacks = new Map<string, (...inputs: tf.Tensor[]) => tf.Tensor>();

/** The differentiable op for a stack with these activations (ReLU or not per layer), built once. */
function stackOp(relu: readonly boolean[]): (...inputs: tf.Tensor[]) => tf.Tensor {
  const key = relu.map((r) => (r ? 'r' : 'l')).join('');
  const cached = stacks.get(key);
  if (cached) return cached;
  const n = relu.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = args[0] as tf.Tensor4D;
    const ws = args.slice(1, 1 + n) as tf.Tensor4D[];
    const bs = args.slice(1 + n, 1 + 2 * n) as tf.Tensor1D[];
    const ys: tf.Tensor4D[] = [];
    let h = x;
    for (let k = 0; k < n; k++) {
      h = tf
        .engine()
        .runKernel(
          tf.FusedConv2D,
          { x: h, filter: ws[k], bias: bs[k] },
          { ...ATTRS, dilations: [1, 1], activation: relu[k] ? 'relu' : 'linear' },
        ) as tf.Tensor4D;
      ys.push(h);
    }
    save([x, ...ws, ...ys]);
    return {
      value: h,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const sx = saved[0] as tf.Tensor4D;
        const sw = saved.slice(1, 1 + n) as tf.Tensor4D[];
        const sy = saved.slice(1 + n) as tf.Tensor4D[];
        const dws: tf.Tensor[] = new Array<tf.Tensor>(n);
        const dbs: tf.Tensor[] = new Array<tf.Tensor>(n);
        let g = dy;
        for (let k = n - 1; k >= 0; k--) {
          const [dx, dw, db] = layerGrads(g, k > 0 ? sy[k - 1] : sx, sw[k], relu[k] ? sy[k] : undefined);
          // the layer's own dy is no longer needed (the stack's dy belongs to the tape)
          if (g !== dy) g.dispose();
          dws[k] = dw;
          dbs[k] = db;
          g = dx as tf.Tensor4D;
        }
        return [g, ...dws, ...dbs];
      },
    };
  });
  const f = (...inputs: tf.Tensor[]) => op(...inputs);
  stacks.set(key, f);
  return f;
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
  return stackOp(relu)(x, ...ws, ...bs) as tf.Tensor4D;
}

/** y = act(conv3x3_same(x, w) + b), act = ReLU or identity. x [B,H,W,cin], w [3,3,cin,cout], b [cout]. */
export function conv3x3(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, relu: boolean): tf.Tensor4D {
  return convStack(x, [w], [b], [relu]);
}
