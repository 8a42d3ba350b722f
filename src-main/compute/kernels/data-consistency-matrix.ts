/**
 * The data-consistency kernel for backends whose data cannot be read synchronously (webgpu in Node:
 * its readSync needs OffscreenCanvas), composed from the backend's own BatchMatMul and element-wise
 * kernels, with the 2-D DFT written as products with the orthonormal DFT matrices:
 *
 *     K = A·x·B            A = F_H (H×H), B = F_W (W×W), complex and symmetric, x real
 *     K_dc = D⊙K + E⊙k0    (D, E from the mask and λ, see data-consistency.ts)
 *     out = Re(Ā·K_dc·B̄) = Ur·Br + Ui·Bi   with U = Ā·K_dc
 *
 * 12 real matrix products per call (≈ 12·B·(H²W + HW²) multiply-adds: cheap on a GPU). The gradient parts
 * use the same maps: dx is the forward with k0 = 0, dk0 = E⊙Re/Im(A·g·B). float32 throughout (the FFT
 * path on cpu/wasm is float64).
 */
import { getKernel, type KernelBackend, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import { makeF32, release } from './backend-io.js';

/** Orthonormal DFT matrices per backend instance and size: [re, im], n×n, kept for the process life. */
const dftCache = new WeakMap<object, Map<number, [TensorInfo, TensorInfo]>>();

function dft(backend: KernelBackend, n: number): [TensorInfo, TensorInfo] {
  let m = dftCache.get(backend);
  if (!m) dftCache.set(backend, (m = new Map()));
  let d = m.get(n);
  if (!d) {
    const re = new Float32Array(n * n);
    const im = new Float32Array(n * n);
    const s = 1 / Math.sqrt(n);
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < n; k++) {
        const a = (-2 * Math.PI * ((j * k) % n)) / n;
        re[j * n + k] = Math.cos(a) * s;
        im[j * n + k] = Math.sin(a) * s;
      }
    }
    d = [makeF32(backend, [1, n, n], re), makeF32(backend, [1, n, n], im)];
    m.set(n, d);
  }
  return d;
}

/** Runs kernels of one backend and releases every intermediate it made except those kept. */
class Scope {
  private made: TensorInfo[] = [];
  constructor(
    private readonly backendName: string,
    private readonly backend: KernelBackend,
  ) {}
  run(name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo {
    const k = getKernel(name, this.backendName);
    if (!k) throw new Error(`KdmriDataConsistency (${this.backendName}): the backend has no ${name} kernel`);
    const out = k.kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo;
    this.made.push(out);
    return out;
  }
  scalar(v: number): TensorInfo {
    const t = makeF32(this.backend, [], new Float32Array([v]));
    this.made.push(t);
    return t;
  }
  mm(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }
  add(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Add', { a, b });
  }
  sub(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Sub', { a, b });
  }
  mul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Multiply', { a, b });
  }
  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }
  /** Release everything made here except `keep`. */
  close(keep: TensorInfo): TensorInfo {
    for (const t of this.made) if (t !== keep) release(this.backend, t);
    this.made = [];
    return keep;
  }
}

export type MatrixDcPart = 'forward' | 'x' | 'k0re' | 'k0im';

/**
 * forward: out [B,H,W,1] from x [B,H,W,1], k0re, k0im [B,H,W]; 'x': dx [B,H,W,1] from dy (passed as x);
 * 'k0re' / 'k0im': [B,H,W] from dy. mask [H,W]; lambda > 0 soft, else hard.
 */
export function dataConsistencyViaMatrices(
  backendName: string,
  backend: KernelBackend,
  part: MatrixDcPart,
  x: TensorInfo,
  mask: TensorInfo,
  lambda: number,
  k0re?: TensorInfo,
  k0im?: TensorInfo,
): TensorInfo {
  const [b, h, w] = x.shape;
  const s = new Scope(backendName, backend);
  try {
    const [ar, ai] = dft(backend, h);
    const [br, bi] = dft(backend, w);
    // D = 1 − M·c, E = M·c with c = 1 (hard) or λ/(1+λ) (soft)
    const c = lambda > 0 ? lambda / (1 + lambda) : 1;
    const e = c === 1 ? mask : s.mul(mask, s.scalar(c));
    const d = s.sub(s.scalar(1), e);

    const x3 = s.reshape(x, [b, h, w]);
    const tr = s.mm(x3, br);
    const ti = s.mm(x3, bi);
    const kr = s.sub(s.mm(ar, tr), s.mm(ai, ti));
    const ki = s.add(s.mm(ar, ti), s.mm(ai, tr));
    if (part === 'k0re') return s.close(s.mul(e, kr));
    if (part === 'k0im') return s.close(s.mul(e, ki));

    let dr = s.mul(d, kr);
    let di = s.mul(d, ki);
    if (part === 'forward') {
      if (!k0re || !k0im) throw new Error('KdmriDataConsistency: k0re and k0im are required');
      dr = s.add(dr, s.mul(e, k0re));
      di = s.add(di, s.mul(e, k0im));
    }
    const ur = s.add(s.mm(ar, dr), s.mm(ai, di));
    const ui = s.sub(s.mm(ar, di), s.mm(ai, dr));
    const out = s.add(s.mm(ur, br), s.mm(ui, bi));
    return s.close(s.reshape(out, [b, h, w, 1]));
  } catch (err) {
    s.close(null as unknown as TensorInfo);
    throw err;
  }
}
