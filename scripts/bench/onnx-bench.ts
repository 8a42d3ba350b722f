/**
 * The ONNX Runtime side of `npm run bench` (exports issue): the teacher and student exported to ONNX
 * (networks/onnx.ts: opset 17, data consistency as DFT nodes) and run by onnxruntime-node on the CPU
 * with 2 intra-op threads, at the bench's size and batch, so its inference time stands beside ours.
 *
 * Conventions as in bench.ts: slices/s from the median of warm batch runs; ms/slice from the median
 * of warm batch-1 runs. Inputs are random images' k-space with a 4x Cartesian mask (the timing of
 * these graphs does not depend on the values).
 */
import ort from 'onnxruntime-node';
import { PRESET_NETWORKS } from '../../src-main/contract/domain.js';
import { createNetwork, namedWeights } from '../../src-main/networks/index.js';
import { networkToOnnx } from '../../src-main/networks/onnx.js';
import { fft2Real } from '../../src-main/kspace/fft.js';
import { Rng } from '../../src-main/util/random.js';

export interface OnnxFigures {
  infer_slices_per_s: number;
  infer_ms_per_slice_warm: number;
  /** Session creation (graph optimisation) in ms. */
  session_ms: number;
  model_bytes: number;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function feeds(n: number, b: number): Record<string, ort.Tensor> {
  const rng = new Rng(7);
  const hw = n * n;
  const mask = new Float32Array(hw);
  for (let r = 0; r < n; r++) if (r % 4 === 0 || Math.abs(r - n / 2) < 5) mask.fill(1, r * n, (r + 1) * n);
  const k = new Float32Array(b * hw * 2);
  for (let s = 0; s < b; s++) {
    const img = Float32Array.from({ length: hw }, () => rng.next());
    const f = fft2Real(img, n, n);
    for (let i = 0; i < hw; i++) {
      k[2 * (s * hw + i)] = f.re[i] * mask[i];
      k[2 * (s * hw + i) + 1] = f.im[i] * mask[i];
    }
  }
  return {
    kspace: new ort.Tensor('float32', k, [b, n, n, 2]),
    mask: new ort.Tensor('float32', mask, [n, n]),
  };
}

/** ONNX Runtime figures for the teacher and the student (tfjs must already have a backend). */
export async function benchOnnx(
  size: number,
  batch: number,
  log: (s: string) => void,
): Promise<{ teacher: OnnxFigures; student: OnnxFigures; runtime: string }> {
  const out: Record<string, OnnxFigures> = {};
  for (const key of ['dccnnTeacher', 'dccnnStudent'] as const) {
    const net = createNetwork(PRESET_NETWORKS[key], 42);
    const bytes = networkToOnnx(net.spec, namedWeights(net), { name: key, producerVersion: 'bench' });
    net.dispose();
    let t = performance.now();
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: 2,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    const sessionMs = performance.now() - t;
    const time = async (f: Record<string, ort.Tensor>) => {
      t = performance.now();
      await session.run(f);
      return performance.now() - t;
    };
    const big = feeds(size, batch);
    const one = feeds(size, 1);
    await time(big);
    const batchMs = median([await time(big), await time(big), await time(big)]);
    await time(one);
    const oneMs = median([await time(one), await time(one), await time(one)]);
    await session.release();
    out[key] = {
      infer_slices_per_s: batch / (batchMs / 1000),
      infer_ms_per_slice_warm: oneMs,
      session_ms: sessionMs,
      model_bytes: bytes.byteLength,
    };
    log(`ONNX Runtime ${key}: batch ${batch} ${batchMs.toFixed(0)} ms, one slice ${oneMs.toFixed(0)} ms`);
  }
  return {
    teacher: out.dccnnTeacher,
    student: out.dccnnStudent,
    runtime: `onnxruntime-node ${ort.env.versions.node}`,
  };
}
