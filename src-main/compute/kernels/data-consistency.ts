/**
 * The data-consistency (DC) layer of DC-CNN as a tfjs kernel with its own gradient (method spec §1.2, §8).
 *
 * Inputs: x [B,H,W,1] float32 (the CNN output, real), k0re, k0im [B,H,W] (acquired k-space, already
 * masked), mask [H,W] (1 = sampled). Attribute `lambda`: a positive number for Schlemper's noisy DC, or
 * −1 / absent for the hard replacement of the reference code.
 *
 *     K      = F(x)                                   orthonormal 2-D DFT, unshifted (DC at index 0)
 *     hard:  K_dc = M⊙k0 + (1−M)⊙K                    (= k0 + (1−M)⊙K since k0 is masked)
 *     soft:  K_dc = (1−M)⊙K + M⊙(K + λ·k0)/(1+λ)
 *     out    = Re(F⁻¹ K_dc)                            [B,H,W,1] float32
 *
 * Both are K_dc = D⊙K + E⊙k0 with real per-pixel D, E: hard D = 1−M, E = M; soft D = (1−M) + M/(1+λ),
 * E = M·λ/(1+λ). The maths runs in float64 (src-main/kspace/fft.ts), as in the reference code.
 *
 * Gradient (vector-Jacobian products; tf.real has no gradient in tfjs, issue 5668, hence this op):
 *  - x:    Re∘F⁻¹∘D∘F is self-adjoint on real images for real diagonal D, so dx = Re(F⁻¹(D ⊙ F(dy)));
 *  - k0re: E ⊙ Re(F(dy));   k0im: E ⊙ Im(F(dy))   (adjoints of v ↦ Re(F⁻¹(E⊙v)) and v ↦ Re(F⁻¹(i·E⊙v)));
 *  - mask: treated as a constant (zero gradient).
 *
 * On cpu and wasm the kernels read the data (readSync / the wasm heap) and use the float64 FFT below; on
 * webgpu (no synchronous reads in Node) they are composed from the backend's BatchMatMul with DFT
 * matrices (data-consistency-matrix.ts).
 *
 * Cost: two real images share one complex FFT (z = x_b + i·x_{b+1}; the two spectra are separated by
 * Hermitian symmetry), and the real part of the inverse is taken by Hermitian-symmetrising each K_dc so
 * that two outputs again share one inverse FFT. So a batch of B costs B complex 2-D FFTs, not 2B; an
 * odd batch's last image (the viewer's batch of 1) goes through the half spectrum of a real image
 * (two rows per complex row FFT, half the columns), the same half of the work.
 */
import {
  engine,
  getGradient,
  getKernel,
  zerosLike,
  type GradConfig,
  type KernelBackend,
  type KernelConfig,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { fft2, halfWidth, irfft2Half, radix2Twiddles, rfft2Half } from '../../kspace/fft.js';
import { makeF32, readF32, release } from './backend-io.js';
import { dataConsistencyViaMatrices } from './data-consistency-matrix.js';
import { WasmKernels, addressOf, isWasmBackend, wasmKernelsFor } from './wasm-kernels.js';

export const DC_KERNEL = 'KdmriDataConsistency';
export const DC_GRAD_KERNEL = 'KdmriDataConsistencyGrad';

/** Which vector-Jacobian product DC_GRAD_KERNEL computes. */
export type DcGradPart = 'x' | 'k0re' | 'k0im';

type KernelArgs = { inputs: Record<string, TensorInfo | undefined>; backend: unknown; attrs?: NamedAttrMap };

interface Coeffs {
  lambda: number;
  d: Float64Array;
  e: Float64Array;
}

/** D and E per mask tensor (dataIds are objects, so a WeakMap lets them go with the mask). */
const coeffCache = new WeakMap<object, Coeffs>();

/** `lambda` as given: a positive number is soft DC; −1, null, undefined, 0 or negative mean hard DC. */
function lambdaOf(attrs: NamedAttrMap | undefined): number {
  const l = attrs?.lambda;
  return typeof l === 'number' && Number.isFinite(l) && l > 0 ? l : -1;
}

function coeffsFor(backend: KernelBackend, mask: TensorInfo, lambda: number): Coeffs {
  const key = mask.dataId as object;
  const hit = coeffCache.get(key);
  if (hit && hit.lambda === lambda) return hit;
  const m = readF32(backend, mask);
  const n = m.length;
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const mi = m[i];
    if (lambda > 0) {
      d[i] = 1 - mi + mi / (1 + lambda);
      e[i] = (mi * lambda) / (1 + lambda);
    } else {
      d[i] = 1 - mi;
      e[i] = mi;
    }
  }
  const c = { lambda, d, e };
  coeffCache.set(key, c);
  return c;
}

/** Float64 scratch planes reused between calls of the same image size (the op runs on one thread). */
const scratch = new Map<string, Float64Array[]>();
function planes(h: number, w: number): Float64Array[] {
  const key = `${h}x${w}`;
  let s = scratch.get(key);
  if (!s) {
    const n = h * w;
    s = [
      new Float64Array(n),
      new Float64Array(n),
      new Float64Array(n),
      new Float64Array(n),
      new Float64Array(2 * w),
    ];
    scratch.clear(); // keep one size only: memory stays bounded
    scratch.set(key, s);
  }
  return s;
}

/**
 * out = Re F⁻¹(D ⊙ F(x) + E ⊙ k0) for ONE image at x[a0…] (an odd batch's last, which has no partner to
 * share a complex FFT with): through the half spectrum of the real image (fft.ts rfft2Half), half the
 * work of a complex 2-D FFT each way. K is Hermitian (K[q] = conj K[p], q = −p), so the Hermitian part
 * of K_dc at p is ((D_p + D_q)/2)·K_p + (E_p·k0_p + E_q·conj k0_q)/2, and its inverse is the real output.
 */
function applyDiagonalDcOne(
  x: Float32Array,
  k0re: Float32Array | null,
  k0im: Float32Array | null,
  a0: number,
  h: number,
  w: number,
  d: Float64Array,
  e: Float64Array,
  out: Float32Array,
): void {
  const [hr, hi, , , row] = planes(h, w);
  const w2 = halfWidth(w);
  rfft2Half(x, a0, h, w, hr, hi, row);
  for (let r = 0; r < h; r++) {
    const rr = r === 0 ? 0 : h - r;
    for (let c = 0; c < w2; c++) {
      const p = r * w + c;
      const q = rr * w + (c === 0 ? 0 : w - c);
      const i = r * w2 + c;
      const dd = 0.5 * (d[p] + d[q]);
      let kr = dd * hr[i];
      let ki = dd * hi[i];
      if (k0re && k0im) {
        kr += 0.5 * (e[p] * k0re[a0 + p] + e[q] * k0re[a0 + q]);
        ki += 0.5 * (e[p] * k0im[a0 + p] - e[q] * k0im[a0 + q]);
      }
      hr[i] = kr;
      hi[i] = ki;
    }
  }
  irfft2Half(hr, hi, h, w, out, a0, row);
}

/**
 * out_b = Re F⁻¹( D ⊙ F(x_b) + E ⊙ k0_b ) for b < batch, on row-major H×W planes; k0 null means zero.
 * x, k0re, k0im and out hold batch·H·W values.
 */
export function applyDiagonalDc(
  x: Float32Array,
  k0re: Float32Array | null,
  k0im: Float32Array | null,
  batch: number,
  h: number,
  w: number,
  d: Float64Array,
  e: Float64Array,
  out: Float32Array,
): void {
  const n = h * w;
  const [zr, zi, wr, wi] = planes(h, w);
  for (let b = 0; b < batch; b += 2) {
    const a0 = b * n;
    const two = b + 1 < batch;
    if (!two) {
      applyDiagonalDcOne(x, k0re, k0im, a0, h, w, d, e, out);
      break;
    }
    const b0 = two ? a0 + n : -1;
    for (let p = 0; p < n; p++) {
      zr[p] = x[a0 + p];
      zi[p] = two ? x[b0 + p] : 0;
    }
    fft2(zr, zi, h, w, false);
    for (let r = 0; r < h; r++) {
      const rr = r === 0 ? 0 : h - r;
      for (let c = 0; c < w; c++) {
        const p = r * w + c;
        const q = rr * w + (c === 0 ? 0 : w - c);
        const zpr = zr[p];
        const zpi = zi[p];
        const zqr = zr[q];
        const zqi = zi[q];
        // spectra of the two real images: A[p] = (Z[p] + conj Z[q])/2, Bs[p] = (Z[p] − conj Z[q])/(2i);
        // at q they are the conjugates (real images have Hermitian spectra).
        const apr = 0.5 * (zpr + zqr);
        const api = 0.5 * (zpi - zqi);
        const bpr = 0.5 * (zpi + zqi);
        const bpi = -0.5 * (zpr - zqr);
        const dp = d[p];
        const dq = d[q];
        // K = D·X + E·k0 at p and at q; then the Hermitian part H[p] = (K[p] + conj K[q]) / 2.
        let kapr = dp * apr;
        let kapi = dp * api;
        let kaqr = dq * apr;
        let kaqi = -dq * api;
        let kbpr = dp * bpr;
        let kbpi = dp * bpi;
        let kbqr = dq * bpr;
        let kbqi = -dq * bpi;
        if (k0re && k0im) {
          const ep = e[p];
          const eq = e[q];
          kapr += ep * k0re[a0 + p];
          kapi += ep * k0im[a0 + p];
          kaqr += eq * k0re[a0 + q];
          kaqi += eq * k0im[a0 + q];
          if (two) {
            kbpr += ep * k0re[b0 + p];
            kbpi += ep * k0im[b0 + p];
            kbqr += eq * k0re[b0 + q];
            kbqi += eq * k0im[b0 + q];
          }
        }
        const hapr = 0.5 * (kapr + kaqr);
        const hapi = 0.5 * (kapi - kaqi);
        const hbpr = 0.5 * (kbpr + kbqr);
        const hbpi = 0.5 * (kbpi - kbqi);
        // W = H_a + i·H_b, whose inverse is out_a + i·out_b.
        wr[p] = hapr - hbpi;
        wi[p] = hapi + hbpr;
      }
    }
    fft2(wr, wi, h, w, true);
    for (let p = 0; p < n; p++) out[a0 + p] = wr[p];
    if (two) for (let p = 0; p < n; p++) out[b0 + p] = wi[p];
  }
}

function dims(x: TensorInfo): [number, number, number] {
  const [b, h, w] = x.shape;
  return [b, h, w];
}

function checkShapes(x: TensorInfo, k0re: TensorInfo, k0im: TensorInfo, mask: TensorInfo): void {
  const [b, h, w] = dims(x);
  const bad = (what: string, t: TensorInfo, want: number[]) =>
    new Error(`${DC_KERNEL}: ${what} has shape [${t.shape}], expected [${want}]`);
  if (x.shape.length !== 4 || x.shape[3] !== 1) throw bad('x', x, [b, h, w, 1]);
  if (k0re.shape.length !== 3 || k0re.shape.some((v, i) => v !== [b, h, w][i]))
    throw bad('k0re', k0re, [b, h, w]);
  if (k0im.shape.length !== 3 || k0im.shape.some((v, i) => v !== [b, h, w][i]))
    throw bad('k0im', k0im, [b, h, w]);
  if (mask.shape.length !== 2 || mask.shape[0] !== h || mask.shape[1] !== w) throw bad('mask', mask, [h, w]);
}

let wasmDc = true;

/** Tests and the bench only: run the DC layer in JS on wasm too (false), as before dc_fft. */
export function useWasmDc(on: boolean): void {
  wasmDc = on;
}

/**
 * On wasm, for power-of-two sizes: every image through our WebAssembly kernel dc_fft (wasm/dc-fft.c),
 * the real-input path below (applyDiagonalDcOne) in float64 SIMD on the backend's memory, with no copy
 * of the data out of it; about a quarter of its time in JS. Null when it does not apply.
 */
function dcOnWasm(
  backend: KernelBackend,
  x: TensorInfo,
  k0: [TensorInfo, TensorInfo] | null,
  mask: TensorInfo,
  lambda: number,
): TensorInfo | null {
  const [b, h, w] = dims(x);
  if (!wasmDc || !isWasmBackend(backend) || !WasmKernels.dcFft(h, w)) return null;
  if ([x, mask, ...(k0 ?? [])].some((t) => t.dtype !== 'float32')) return null;
  const kernels = wasmKernelsFor(backend);
  if (!kernels) return null;
  const out = backend.makeOutput([b, h, w, 1], 'float32');
  // float32 elements: two per float64, one more so the start can be moved to an 8-byte boundary
  const scratch = backend.makeOutput([2 * kernels.dcFftScratchDoubles(h, w) + 1], 'float32');
  try {
    const at = addressOf(backend, scratch);
    kernels.dataConsistency(
      {
        x: addressOf(backend, x),
        k0re: k0 ? addressOf(backend, k0[0]) : 0,
        k0im: k0 ? addressOf(backend, k0[1]) : 0,
        mask: addressOf(backend, mask),
        out: addressOf(backend, out),
        scratch: at + (at % 8),
        batch: b,
        H: h,
        W: w,
        lambda,
      },
      radix2Twiddles,
    );
  } catch (e) {
    release(backend, out);
    throw e;
  } finally {
    release(backend, scratch);
  }
  return out;
}

function dcForward(args: KernelArgs): TensorInfo {
  const backend = args.backend as KernelBackend;
  const { x, k0re, k0im, mask } = args.inputs;
  if (!x || !k0re || !k0im || !mask) throw new Error(`${DC_KERNEL}: needs inputs x, k0re, k0im and mask`);
  checkShapes(x, k0re, k0im, mask);
  const onWasm = dcOnWasm(backend, x, [k0re, k0im], mask, lambdaOf(args.attrs));
  if (onWasm) return onWasm;
  const [b, h, w] = dims(x);
  const { d, e } = coeffsFor(backend, mask, lambdaOf(args.attrs));
  // On wasm these are views into the heap: read everything before allocating the output.
  const out = new Float32Array(b * h * w);
  applyDiagonalDc(readF32(backend, x), readF32(backend, k0re), readF32(backend, k0im), b, h, w, d, e, out);
  return makeF32(backend, [b, h, w, 1], out);
}

function dcGrad(args: KernelArgs): TensorInfo {
  const backend = args.backend as KernelBackend;
  const { dy, mask } = args.inputs;
  if (!dy || !mask) throw new Error(`${DC_GRAD_KERNEL}: needs inputs dy and mask`);
  const part = (args.attrs?.part ?? 'x') as DcGradPart;
  if (part === 'x') {
    const onWasm = dcOnWasm(backend, dy, null, mask, lambdaOf(args.attrs));
    if (onWasm) return onWasm;
  }
  const [b, h, w] = dims(dy);
  const { d, e } = coeffsFor(backend, mask, lambdaOf(args.attrs));
  const g = readF32(backend, dy);
  const n = h * w;
  const out = new Float32Array(b * n);
  if (part === 'x') {
    applyDiagonalDc(g, null, null, b, h, w, d, e, out);
    return makeF32(backend, [b, h, w, 1], out);
  }
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let i = 0; i < b; i++) {
    for (let p = 0; p < n; p++) re[p] = g[i * n + p];
    im.fill(0);
    fft2(re, im, h, w, false);
    const src = part === 'k0re' ? re : im;
    for (let p = 0; p < n; p++) out[i * n + p] = e[p] * src[p];
  }
  return makeF32(backend, [b, h, w], out);
}

/**
 * The same two kernels composed from the backend's own BatchMatMul / element-wise kernels (DFT matrices,
 * float32): for backends that cannot read tensors synchronously (webgpu in Node).
 */
export function matrixDcKernels(backendName: string): {
  forward: (a: KernelArgs) => TensorInfo;
  grad: (a: KernelArgs) => TensorInfo;
} {
  return {
    forward: ({ inputs, backend, attrs }) => {
      const { x, k0re, k0im, mask } = inputs;
      if (!x || !k0re || !k0im || !mask) throw new Error(`${DC_KERNEL}: needs inputs x, k0re, k0im and mask`);
      checkShapes(x, k0re, k0im, mask);
      return dataConsistencyViaMatrices(
        backendName,
        backend as KernelBackend,
        'forward',
        x,
        mask,
        lambdaOf(attrs),
        k0re,
        k0im,
      );
    },
    grad: ({ inputs, backend, attrs }) => {
      const { dy, mask } = inputs;
      if (!dy || !mask) throw new Error(`${DC_GRAD_KERNEL}: needs inputs dy and mask`);
      const part = (attrs?.part ?? 'x') as DcGradPart;
      return dataConsistencyViaMatrices(
        backendName,
        backend as KernelBackend,
        part,
        dy,
        mask,
        lambdaOf(attrs),
      );
    },
  };
}

/** Backends that get the DFT-matrix composition instead of the float64 FFT in JS. */
const MATRIX_BACKENDS = new Set(['webgpu']);

const dcGradConfig: GradConfig = {
  kernelName: DC_KERNEL,
  inputsToSave: ['mask'],
  gradFunc: (dy, saved, attrs) => {
    const [mask] = saved;
    const g = dy as Tensor;
    const lambda = lambdaOf(attrs);
    const run = (part: DcGradPart) => () =>
      engine().runKernel(DC_GRAD_KERNEL, { dy: g, mask }, { lambda, part }) as Tensor;
    return { x: run('x'), k0re: run('k0re'), k0im: run('k0im'), mask: () => zerosLike(mask) };
  },
};

/** Register the DC kernel, its gradient kernel (for every backend name given) and its gradient. Idempotent. */
export function registerDataConsistency(
  backendNames: readonly string[],
  registerKernel: (c: KernelConfig) => void,
  registerGradient: (c: GradConfig) => void,
): void {
  for (const backendName of backendNames) {
    const m = MATRIX_BACKENDS.has(backendName) ? matrixDcKernels(backendName) : null;
    if (!getKernel(DC_KERNEL, backendName)) {
      registerKernel({ kernelName: DC_KERNEL, backendName, kernelFunc: m ? m.forward : dcForward });
    }
    if (!getKernel(DC_GRAD_KERNEL, backendName)) {
      registerKernel({ kernelName: DC_GRAD_KERNEL, backendName, kernelFunc: m ? m.grad : dcGrad });
    }
  }
  if (!getGradient(DC_KERNEL)) registerGradient(dcGradConfig);
}
