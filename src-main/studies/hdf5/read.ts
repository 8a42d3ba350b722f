/**
 * Raw k-space HDF5 files as Volumes: the fastMRI layout (single- and multi-coil) and the KD-MRI
 * reference layout (method spec §4.2, §7).
 *
 * fastMRI (`kspace` complex64, (S,H,W) single-coil or (S,C,H,W) multi-coil; `reconstruction_esc` /
 * `reconstruction_rss` cropped targets; optional 1-D `mask` over columns in test files):
 *  - fastMRI's k-space is CENTRED: its image is x = ifft2c(K) = fftshift(ifft2(ifftshift(K))), ortho.
 *    The product keeps unshifted orthonormal k-space, so Volume.kspace = fft2(x) — the unshifted
 *    k-space of the image fastMRI shows. (For even sizes this is ifftshift(K) times a (−1)^(kx+ky)
 *    checkerboard; computing fft2(ifft2c(K)) is exact for odd sizes too.)
 *  - single-coil: data = |x| at the full k-space size; mask = all ones for fully sampled files, or the
 *    file's `mask` unshifted (ifftshift) and broadcast over rows; kspace is multiplied by it.
 *  - multi-coil: data = root-sum-of-squares of the coil images; no Volume.kspace (the engine is
 *    single-coil).
 *  - the cropped targets become their own (secondary) volumes for browsing.
 * KD-MRI (`volfs` H×W×S or H×W; `img_volus_<acc>`; `kspace_volus_<acc>` complex, already unshifted
 * and orthonormal): data = volfs as S×H×W; kspace = kspace_volus_<acc>, mask = 1 where any slice's
 * k-space is non-zero (the acquired lines); one volume per acceleration found.
 *
 * Memory: every dataset's declared shape is checked against the input caps (data/limits.ts) before
 * it is read — k-space is read one slice (and coil) at a time, so the caps apply to the volumes
 * produced (float32 image, and k-space re/im when kept), not to the coil count.
 */
import { basename } from 'node:path';
import type { Volume } from '../../contract/domain.js';
import { checkVolume } from '../../data/limits.js';
import { fft2 } from '../../kspace/fft.js';
import type { LabelledVolume } from '../hdf5-registry.js';
import { openH5, type H5Dataset, type H5File } from './h5.js';

export interface Hdf5Volume extends LabelledVolume {
  /** The volume the engine trains on (k-space / ground truth); secondary ones are for browsing only. */
  primary: boolean;
}

/** numpy's ifftshift / fftshift of a 1-D index: where element i of the shifted array comes from. */
function shiftIndex(n: number, inverse: boolean): (i: number) => number {
  const s = inverse ? Math.floor(n / 2) : Math.ceil(n / 2); // ifftshift: out[i] = in[(i + floor(n/2)) % n]
  return (i) => (i + s) % n;
}

/** 2-D (i)fftshift of an H×W complex plane, out of place. */
function shift2(
  re: Float64Array,
  im: Float64Array,
  h: number,
  w: number,
  inverse: boolean,
): { re: Float64Array; im: Float64Array } {
  const rs = shiftIndex(h, inverse);
  const cs = shiftIndex(w, inverse);
  const ore = new Float64Array(h * w);
  const oim = new Float64Array(h * w);
  for (let r = 0; r < h; r++) {
    const sr = rs(r) * w;
    for (let c = 0; c < w; c++) {
      ore[r * w + c] = re[sr + cs(c)];
      oim[r * w + c] = im[sr + cs(c)];
    }
  }
  return { re: ore, im: oim };
}

/** fastMRI's ifft2c of one centred H×W plane: fftshift(ifft2(ifftshift(K))), orthonormal. */
export function ifft2c(
  re: Float64Array,
  im: Float64Array,
  h: number,
  w: number,
): { re: Float64Array; im: Float64Array } {
  const a = shift2(re, im, h, w, true);
  fft2(a.re, a.im, h, w, true);
  return shift2(a.re, a.im, h, w, false);
}

function labelAttrs(a: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) out[k] = String(v);
  return out;
}

/** A dataset the file lists by name; a corrupt object header makes it unreadable (found by the fuzzer). */
function needDataset(f: H5File, name: string): H5Dataset {
  const d = f.dataset(name);
  if (!d) throw new Error(`"${name}" is listed but is not a readable dataset (corrupt file?)`);
  return d;
}

function readFastMri(f: H5File): Hdf5Volume[] {
  const ks = needDataset(f, 'kspace');
  if (ks.kind !== 'complex') throw new Error('fastMRI "kspace" is not a complex dataset');
  const attrs = labelAttrs(f.attrs());
  const acq = attrs.acquisition ? ` ${attrs.acquisition}` : '';
  const out: Hdf5Volume[] = [];
  if (ks.shape.length === 3) {
    const [S, H, W] = ks.shape;
    checkVolume(ks.shape, 12, 'HDF5 dataset "kspace"'); // image + k-space re/im, float32
    const n = H * W;
    const mask = new Float32Array(n).fill(1);
    const m = f.dataset('mask');
    let undersampled = false;
    if (m && m.shape.length === 1 && m.shape[0] === W) {
      const mc = f.readReal('mask');
      const cs = shiftIndex(W, true);
      for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) mask[r * W + c] = mc[cs(c)] ? 1 : 0;
      undersampled = mask.some((x) => x === 0);
    }
    const data = new Float32Array(S * n);
    const kre = new Float32Array(S * n);
    const kim = new Float32Array(S * n);
    for (let s = 0; s < S; s++) {
      const k = f.readComplex('kspace', [[s, s + 1], [], []]);
      const x = ifft2c(k.re, k.im, H, W);
      for (let i = 0; i < n; i++) data[s * n + i] = Math.hypot(x.re[i], x.im[i]);
      fft2(x.re, x.im, H, W, false);
      for (let i = 0; i < n; i++) {
        // + 0: no negative zeros from masking (fastMRI's −0 trap)
        kre[s * n + i] = x.re[i] * mask[i] + 0;
        kim[s * n + i] = x.im[i] * mask[i] + 0;
      }
    }
    out.push({
      label: `fastMRI single-coil${acq} k-space${undersampled ? ' (under-sampled)' : ''}`,
      volume: { data, slices: S, h: H, w: W, kspace: { re: kre, im: kim, mask } },
      attributes: {
        ...attrs,
        Layout: 'fastMRI single-coil',
        KSpace: 'unshifted orthonormal fft2 of ifft2c(kspace)',
      },
      primary: true,
    });
  } else if (ks.shape.length === 4) {
    const [S, C, H, W] = ks.shape;
    checkVolume([S, H, W], 4, `HDF5 dataset "kspace" (${C} coils)`); // the RSS image, float32
    const n = H * W;
    const data = new Float32Array(S * n);
    for (let s = 0; s < S; s++) {
      const acc = new Float64Array(n);
      for (let c = 0; c < C; c++) {
        const k = f.readComplex('kspace', [[s, s + 1], [c, c + 1], [], []]);
        const x = ifft2c(k.re, k.im, H, W);
        for (let i = 0; i < n; i++) acc[i] += x.re[i] * x.re[i] + x.im[i] * x.im[i];
      }
      for (let i = 0; i < n; i++) data[s * n + i] = Math.sqrt(acc[i]);
    }
    out.push({
      label: `fastMRI multi-coil${acq} RSS (${C} coils)`,
      volume: { data, slices: S, h: H, w: W },
      attributes: { ...attrs, Layout: 'fastMRI multi-coil', Coils: String(C) },
      primary: true,
    });
  } else {
    throw new Error(
      `fastMRI "kspace" has ${ks.shape.length} dimensions, expected 3 (single-coil) or 4 (multi-coil)`,
    );
  }
  for (const key of ['reconstruction_esc', 'reconstruction_rss']) {
    const d = f.dataset(key);
    if (!d || d.kind !== 'real' || d.shape.length !== 3) continue;
    const [S, H, W] = d.shape;
    checkVolume(d.shape, 12, `HDF5 dataset "${key}"`); // read as float64, kept as float32
    out.push({
      label: `fastMRI ${key} (${H}×${W} target)`,
      volume: { data: Float32Array.from(f.readReal(key)), slices: S, h: H, w: W },
      attributes: { ...attrs, Dataset: key },
      primary: false,
    });
  }
  return out;
}

/** H×W×S (or H×W) → S×H×W. */
function slicesFirst(
  v: Float64Array,
  shape: number[],
): { data: Float32Array; S: number; H: number; W: number } {
  const [H, W] = shape;
  const S = shape.length === 3 ? shape[2] : 1;
  const data = new Float32Array(S * H * W);
  for (let r = 0; r < H; r++)
    for (let c = 0; c < W; c++)
      for (let s = 0; s < S; s++) data[(s * H + r) * W + c] = v[(r * W + c) * S + s];
  return { data, S, H, W };
}

function readKdMri(f: H5File): Hdf5Volume[] {
  const vf = needDataset(f, 'volfs');
  if (vf.kind !== 'real' || (vf.shape.length !== 2 && vf.shape.length !== 3))
    throw new Error('KD-MRI "volfs" must be a real H×W or H×W×S dataset');
  checkVolume(vf.shape, 12, 'HDF5 dataset "volfs"'); // read as float64, kept as float32
  const { data, S, H, W } = slicesFirst(f.readReal('volfs'), vf.shape);
  const n = H * W;
  const out: Hdf5Volume[] = [];
  const accs = f
    .keys()
    .map((k) => /^kspace_volus_(.+)$/.exec(k)?.[1])
    .filter((a): a is string => Boolean(a))
    .sort();
  for (const acc of accs) {
    const name = `kspace_volus_${acc}`;
    const d = needDataset(f, name);
    if (d.kind !== 'complex' || d.shape.join('×') !== vf.shape.join('×'))
      throw new Error(
        `"${name}" must be complex with the shape of volfs (${vf.shape.join('×')}), got ${d.shape.join('×')}`,
      );
    // each acceleration keeps an image copy and k-space re/im (float32); read one slice at a time,
    // as h5wasm returns a compound dataset as one JS array per element
    checkVolume(
      d.shape,
      12 * (accs.length + 1),
      `HDF5 dataset "${name}" (with ${accs.length} accelerations)`,
    );
    const re = new Float32Array(S * n);
    const im = new Float32Array(S * n);
    for (let s = 0; s < S; s++) {
      const k = f.readComplex(name, d.shape.length === 3 ? [[], [], [s, s + 1]] : undefined);
      re.set(Float32Array.from(k.re), s * n);
      im.set(Float32Array.from(k.im), s * n);
    }
    const mask = new Float32Array(n);
    for (let s = 0; s < S; s++)
      for (let i = 0; i < n; i++) if (re[s * n + i] !== 0 || im[s * n + i] !== 0) mask[i] = 1;
    out.push({
      label: `KD-MRI ${acc} (volfs + kspace_volus_${acc})`,
      volume: { data: data.slice(), slices: S, h: H, w: W, kspace: { re, im, mask } },
      attributes: {
        Layout: 'KD-MRI',
        Acceleration: acc,
        SampledFraction: (mask.reduce((a, b) => a + b, 0) / n).toFixed(4),
      },
      primary: true,
    });
  }
  if (out.length === 0)
    out.push({
      label: `KD-MRI volfs (${S > 1 ? 'volume' : 'slice'})`,
      volume: { data, slices: S, h: H, w: W },
      attributes: { Layout: 'KD-MRI' },
      primary: true,
    });
  return out;
}

/** Volumes of a fastMRI or KD-MRI HDF5 file. Throws with a reason for other HDF5 layouts. */
export function readHdf5(path: string): Hdf5Volume[] {
  try {
    return readLayouts(path);
  } catch (e) {
    // a refusal names the file (convert's and the engine's messages have no other place for it); the
    // class is kept, so that limit errors stay limit errors and our own bugs stay internal
    const name = basename(path);
    if (e instanceof Error && !(e instanceof TypeError || e instanceof RangeError))
      if (!e.message.startsWith(`${name}: `)) e.message = `${name}: ${e.message}`;
    throw e;
  }
}

function readLayouts(path: string): Hdf5Volume[] {
  const f = openH5(path);
  try {
    const keys = f.keys();
    if (keys.includes('kspace')) return readFastMri(f);
    if (keys.includes('volfs')) return readKdMri(f);
    throw new Error(
      `neither the fastMRI layout ("kspace") nor the KD-MRI layout ("volfs") (datasets: ${f.keys().join(', ') || 'none'})`,
    );
  } finally {
    f.close();
  }
}

/** Only the volumes the engine should train on. */
export function primaryVolumes(vols: Hdf5Volume[]): Volume[] {
  return vols.filter((v) => v.primary).map((v) => v.volume);
}
