/**
 * A 3×3, stride-1, 'same' conv with bias and optional ReLU as one differentiable op.
 *
 * Why not tf.fused.conv2d: while a gradient is being recorded, tfjs-core un-fuses it (conv2d, add, relu as
 * three taped ops), which keeps three activation-sized tensors per layer alive until the backward pass
 * (≈ 100 MB per layer at 4×256×256×32) and makes three passes over memory. Here the forward pass is the
 * backend's single FusedConv2D kernel and only the layer output y is kept; the backward pass is
 *   g  = dy ⊙ step(y)                 (ReLU; y > 0 ⇔ pre-activation > 0)
 *   dx = Conv2DBackpropInput(g, W),  dW = Conv2DBackpropFilter(x, g),  db = Σ_{B,H,W} g
 * which on wasm run the kernels of src-main/compute/kernels (forward convs underneath).
 *
 * Layout NHWC, filters HWIO [3,3,cin,cout], float32.
 */
import * as tf from '@tensorflow/tfjs-core';

const ATTRS = { strides: [1, 1] as [number, number], pad: 'same' as const, dataFormat: 'NHWC' as const };

function convOp(relu: boolean) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, b] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    const y = tf
      .engine()
      .runKernel(
        tf.FusedConv2D,
        { x, filter: w, bias: b },
        { ...ATTRS, dilations: [1, 1], activation: relu ? 'relu' : 'linear' },
      ) as tf.Tensor4D;
    save(relu ? [x, w, y] : [x, w]);
    return {
      value: y,
      // tidy: customGrad does not scope its gradient function, so g and step(y) would otherwise live
      // until the whole backward pass ends (two activation-sized tensors per layer)
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, sw, sy] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D | undefined];
          const g = sy ? tf.mul(dy, tf.step(sy)) : dy;
          const dx = tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropInput,
              { dy: g, filter: sw },
              { ...ATTRS, inputShape: sx.shape },
            ) as tf.Tensor;
          const dw = tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropFilter,
              { x: sx, dy: g },
              { ...ATTRS, filterShape: sw.shape },
            ) as tf.Tensor;
          const db = tf.sum(g, [0, 1, 2]);
          return [dx, dw, db];
        }),
    };
  });
}

const convRelu = convOp(true);
const convLinear = convOp(false);

/** y = act(conv3x3_same(x, w) + b), act = ReLU or identity. x [B,H,W,cin], w [3,3,cin,cout], b [cout]. */
export function conv3x3(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, relu: boolean): tf.Tensor4D {
  return (relu ? convRelu : convLinear)(x, w, b) as tf.Tensor4D;
}
