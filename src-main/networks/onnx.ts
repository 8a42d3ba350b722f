/**
 * A network as an ONNX model (opset 17, IR version 8), the exchange format labs deploy with: DC-CNN with
 * its data-consistency layers inside the graph (ONNX `DFT`), VDSR with its global residual.
 *
 * The protobuf is written by `onnx-proto` (protobufjs code generated from the official onnx.proto);
 * this module only decides the graph. Conventions of the exported graph (also in its doc strings):
 *
 *  DC-CNN (task recon)
 *   inputs   kspace  float32 [N,H,W,2]  acquired k-space, already multiplied by the mask; last axis
 *                                       (real, imaginary); orthonormal 2-D DFT (numpy norm='ortho'),
 *                                       unshifted (DC at [0,0]); of an image slice scaled so that its
 *                                       maximum is 1 (the networks were trained on such slices).
 *            mask    float32 [H,W]      1 = sampled, 0 = not.
 *   outputs  output       float32 [N,1,H,W]  the reconstruction.
 *            zero_filled  float32 [N,1,H,W]  |F⁻¹(kspace)|, the network's input.
 *  VDSR (task sr)
 *   inputs   input   float32 [N,1,H,W]  the low-resolution image (same size as the output).
 *   outputs  output  float32 [N,1,H,W]  the restoration.
 *  N, H and W are free (named dimensions), so one file serves every batch and image size.
 *
 * How the DFT maps onto ONNX: `DFT` (opset 17) transforms one axis, unnormalised forward
 * (X[k] = Σ x[n]·e^{−2πikn/N}) and with 1/N on the inverse. With F_o the orthonormal 2-D transform and
 * F_u = √(HW)·F_o the unnormalised one, the data-consistency step of method spec §1.2 is
 *     out = Re F_o⁻¹(D⊙F_o(x) + E⊙k0) = Re IDFT₂(D⊙F_u(x) + E⊙(√(HW)·k0))
 * (IDFT₂ = ONNX's inverse on both axes), with hard DC D = 1−M, E = M and soft DC
 * D = 1 − M·λ/(1+λ), E = M·λ/(1+λ). So the graph scales k0 by √(HW) once (from the input's shape) and
 * uses plain `DFT` nodes afterwards; the zero-filled input is |IDFT₂(√(HW)·k0)|.
 *
 * Weights: ours are HWIO [3,3,cin,cout] (TensorFlow.js), ONNX `Conv` wants OIHW [cout,cin,3,3]; both
 * are cross-correlations with zero 'same' padding, so only the layout changes.
 */
import onnxProto from 'onnx-proto';
import type { NetworkSpec } from '../contract/domain.js';
import { convPlan } from './index.js';

const { onnx } = onnxProto;

export const ONNX_OPSET = 17;
/** IR version 8 is what ONNX 1.12 (the release that introduced opset 17) writes. */
export const ONNX_IR_VERSION = 8;

export const ONNX_RECON_INPUTS = ['kspace', 'mask'] as const;
export const ONNX_SR_INPUTS = ['input'] as const;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const A = onnx.AttributeProto.AttributeType;

export interface OnnxExportOptions {
  /** Graph name (the model's name). */
  name: string;
  /** Producer version written in the file (the app's version). */
  producerVersion: string;
  /** Free text for the model's doc string. */
  description?: string;
  /** Key → value pairs stored as ModelProto.metadata_props (e.g. the model card as JSON). */
  metadata?: Record<string, string>;
}

type Dim = number | string;

/** A small graph builder: unique value names, nodes in topological order, initializers. */
class Graph {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private n = 0;

  fresh(hint: string): string {
    return `${hint}_${++this.n}`;
  }

  node(
    opType: string,
    inputs: string[],
    attrs: onnxProto.onnx.IAttributeProto[] = [],
    hint = opType.toLowerCase(),
  ): string {
    const out = this.fresh(hint);
    this.nodes.push({ opType, input: inputs, output: [out], name: out, attribute: attrs });
    return out;
  }

  /** Like node(), but writing into a given output name (graph outputs). */
  nodeInto(opType: string, inputs: string[], output: string, attrs: onnxProto.onnx.IAttributeProto[] = []) {
    this.nodes.push({ opType, input: inputs, output: [output], name: output, attribute: attrs });
    return output;
  }

  floats(name: string, dims: number[], values: Float32Array): string {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: Uint8Array.from(bytes) });
    return name;
  }

  scalar(hint: string, v: number): string {
    return this.floats(this.fresh(hint), [], Float32Array.of(v));
  }

  int64s(hint: string, values: number[]): string {
    const name = this.fresh(hint);
    const a = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: INT64,
      rawData: new Uint8Array(a.buffer.slice(0)),
    });
    return name;
  }
}

const int = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, type: A.INT, i });
const ints = (name: string, v: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: A.INTS, ints: v });

function valueInfo(name: string, dims: Dim[], doc: string): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    docString: doc,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** HWIO [3,3,cin,cout] → OIHW [cout,cin,3,3]. */
export function hwioToOihw(w: Float32Array, cin: number, cout: number): Float32Array {
  if (w.length !== 9 * cin * cout)
    throw new Error(`conv weight has ${w.length} values, expected 3×3×${cin}×${cout}`);
  const out = new Float32Array(w.length);
  for (let kh = 0; kh < 3; kh++)
    for (let kw = 0; kw < 3; kw++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * 3 + kh) * 3 + kw] = w[((kh * 3 + kw) * cin + i) * cout + o];
  return out;
}

/**
 * The convs of `spec` from index `from` to `to` (plan order) applied to an NCHW value; weights from
 * `weights` (PyTorch names, HWIO), added as initializers under their PyTorch names.
 */
function convChain(
  g: Graph,
  x: string,
  spec: NetworkSpec,
  weights: Map<string, Float32Array>,
  from: number,
  to: number,
) {
  const plan = convPlan(spec);
  let h = x;
  for (let k = from; k < to; k++) {
    const l = plan[k];
    const w = weights.get(`${l.name}.weight`);
    const b = weights.get(`${l.name}.bias`);
    if (!w || !b) throw new Error(`ONNX export: parameter ${l.name} is missing`);
    if (b.length !== l.cout)
      throw new Error(`ONNX export: ${l.name}.bias has ${b.length} values, expected ${l.cout}`);
    const wName = g.floats(`${l.name}.weight`, [l.cout, l.cin, 3, 3], hwioToOihw(w, l.cin, l.cout));
    const bName = g.floats(`${l.name}.bias`, [l.cout], b);
    h = g.node(
      'Conv',
      [h, wName, bName],
      [
        ints('kernel_shape', [3, 3]),
        ints('pads', [1, 1, 1, 1]),
        ints('strides', [1, 1]),
        ints('dilations', [1, 1]),
        int('group', 1),
      ],
      l.name.replace(/\./g, '_'),
    );
    if (l.relu) h = g.node('Relu', [h]);
  }
  return h;
}

/** 2-D DFT over axes 1 and 2 of a [N,H,W,1|2] value: forward unnormalised, or inverse with 1/(HW). */
function dft2(g: Graph, x: string, inverse: boolean): string {
  const a = g.node('DFT', [x], [int('axis', 1), int('inverse', inverse ? 1 : 0), int('onesided', 0)]);
  return g.node('DFT', [a], [int('axis', 2), int('inverse', inverse ? 1 : 0), int('onesided', 0)]);
}

const RECON_DOC = {
  kspace:
    'Acquired k-space [N,H,W,2] (real, imaginary), already multiplied by the mask: orthonormal 2-D DFT (numpy norm="ortho"), unshifted (DC at [0,0]), of a slice scaled to maximum 1.',
  mask: 'Sampling mask [H,W]: 1 = sampled, 0 = not.',
  output: 'Reconstruction [N,1,H,W] (the last cascade, after data consistency).',
  zeroFilled: 'Zero-filled image |F^-1(kspace)| [N,1,H,W]: the network input.',
};
const SR_DOC = {
  input: 'Low-resolution image [N,1,H,W], same size as the output, scaled to maximum 1.',
  output: 'Restored image [N,1,H,W].',
};

/** The ONNX ModelProto bytes of a network (`weights`: PyTorch names → HWIO float32 values). */
export function networkToOnnx(
  spec: NetworkSpec,
  weights: Map<string, Float32Array>,
  opts: OnnxExportOptions,
): Uint8Array {
  const g = new Graph();
  let inputs: onnxProto.onnx.IValueInfoProto[];
  let outputs: onnxProto.onnx.IValueInfoProto[];
  if (spec.arch === 'dccnn') {
    // √(HW) from the k-space's shape, so H and W stay free
    const shape = g.node('Shape', ['kspace']);
    const hw = g.node(
      'ReduceProd',
      [g.node('Gather', [shape, g.int64s('hw_axes', [1, 2])], [int('axis', 0)])],
      [int('keepdims', 0)],
    );
    const sqrtN = g.node('Sqrt', [g.node('Cast', [hw], [int('to', FLOAT)])]);
    const k0 = g.node('Mul', ['kspace', sqrtN], [], 'k0_unnormalised');
    const m = g.node('Unsqueeze', ['mask', g.int64s('mask_axes', [0, 3])], [], 'mask_nhwc');
    // D and E of the DC step (see the header), broadcast over N and (re, im)
    const lambda = spec.dcLambda;
    const share = lambda === null ? 1 : lambda / (1 + lambda);
    const e = share === 1 ? m : g.node('Mul', [m, g.scalar('dc_share', share)], [], 'dc_e');
    const d = g.node('Sub', [g.scalar('one', 1), e], [], 'dc_d');
    const ek0 = g.node('Mul', [k0, e], [], 'dc_e_k0');

    const zfComplex = dft2(g, k0, true);
    const zfNhwc = g.node('Sqrt', [
      g.node('ReduceSumSquare', [zfComplex], [ints('axes', [3]), int('keepdims', 1)]),
    ]);
    let x = g.nodeInto('Transpose', [zfNhwc], 'zero_filled', [ints('perm', [0, 3, 1, 2])]);
    for (let c = 0; c < spec.nc; c++) {
      let h = convChain(g, x, spec, weights, c * spec.nd, (c + 1) * spec.nd);
      if (spec.residual) h = g.node('Add', [h, x], [], 'residual');
      const k = dft2(g, g.node('Transpose', [h], [ints('perm', [0, 2, 3, 1])]), false);
      const kdc = g.node('Add', [g.node('Mul', [k, d]), ek0], [], `cascade${c + 1}_kdc`);
      const img = dft2(g, kdc, true);
      const re = g.node('Slice', [
        img,
        g.int64s('re_start', [0]),
        g.int64s('re_end', [1]),
        g.int64s('re_axis', [3]),
      ]);
      const last = c === spec.nc - 1;
      x = last
        ? g.nodeInto('Transpose', [re], 'output', [ints('perm', [0, 3, 1, 2])])
        : g.node('Transpose', [re], [ints('perm', [0, 3, 1, 2])], `cascade${c + 1}_dc`);
    }
    inputs = [
      valueInfo('kspace', ['N', 'H', 'W', 2], RECON_DOC.kspace),
      valueInfo('mask', ['H', 'W'], RECON_DOC.mask),
    ];
    outputs = [
      valueInfo('output', ['N', 1, 'H', 'W'], RECON_DOC.output),
      valueInfo('zero_filled', ['N', 1, 'H', 'W'], RECON_DOC.zeroFilled),
    ];
  } else {
    const h = convChain(g, 'input', spec, weights, 0, spec.depth);
    g.nodeInto('Add', ['input', h], 'output');
    inputs = [valueInfo('input', ['N', 1, 'H', 'W'], SR_DOC.input)];
    outputs = [valueInfo('output', ['N', 1, 'H', 'W'], SR_DOC.output)];
  }
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'KD-MRI Workstation',
    producerVersion: opts.producerVersion,
    domain: 'org.kdmri',
    modelVersion: 1,
    docString: opts.description ?? '',
    graph: {
      name: opts.name,
      node: g.nodes,
      initializer: g.initializers,
      input: inputs,
      output: outputs,
      docString:
        spec.arch === 'dccnn'
          ? `DC-CNN ${spec.nc}×${spec.nd} (${spec.nf} filters, ${spec.dcLambda === null ? 'hard' : `soft λ=${spec.dcLambda}`} data consistency${spec.residual ? ', residual' : ''}) with the data-consistency layers as ONNX DFT nodes.`
          : `VDSR, ${spec.depth} convolutions (${spec.nf} filters), global residual.`,
    },
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  const err = onnx.ModelProto.verify(model);
  if (err) throw new Error(`ONNX export: ${err}`);
  return onnx.ModelProto.encode(model).finish();
}
