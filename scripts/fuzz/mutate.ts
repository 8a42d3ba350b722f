/**
 * Mutations of a seed file, each deterministic from an Rng. Each mutation knows the format only as far
 * as it needs to aim at the fields readers size their work by (NIfTI dim/datatype/vox_offset, DICOM
 * Rows/Columns/NumberOfFrames/BitsAllocated and element lengths, PNG IHDR and chunk lengths, HDF5
 * dimension tuples); everything else is format-blind.
 *
 * Conventions: a mutation returns new bytes (the seed is never modified); compressed NIfTI is mutated
 * inside its gzip stream (then written as .nii or re-compressed .nii.gz, chosen by the Rng), because
 * a flipped bit of a deflate stream only ever tests the gzip decoder.
 */
import { constants, deflateRawSync, gunzipSync, gzipSync } from 'node:zlib';
import { Rng } from '../../src-main/util/random.js';

export type FileType = 'dicom' | 'nifti' | 'hdf5' | 'png' | 'crafted';
export const MUTATIONS = ['none', 'bitflip', 'truncate', 'dims', 'lengths', 'duplicate'] as const;
export type Mutation = (typeof MUTATIONS)[number];

export interface Mutated {
  bytes: Uint8Array;
  /** File extension the case is written with ('.dcm', '.nii', '.nii.gz', '.h5', '.png'). */
  ext: string;
  /** One line: what was done (for replay and reports). */
  detail: string;
}

/** Values that break size arithmetic: zero, one, sign boundaries, near-overflow. */
const ABSURD16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x4000, 0x1000];
const ABSURD32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000000, 0x40000, 0xfffffff0];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

/** A position, 3 times in 4 within the first `head` bytes (where headers are). */
function position(rng: Rng, n: number, head = 1024): number {
  if (n <= 1) return 0;
  return rng.next() < 0.75 ? rng.int(Math.min(n, head)) : rng.int(n);
}

function bitflip(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  const flips = 1 + rng.int(16);
  const at: number[] = [];
  for (let i = 0; i < flips && b.length; i++) {
    const p = position(rng, b.length);
    b[p] ^= 1 << rng.int(8);
    at.push(p);
  }
  return {
    bytes: b,
    detail: `${flips} bit flips at ${at.slice(0, 4).join(',')}${at.length > 4 ? ',…' : ''}`,
  };
}

function truncate(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const at = rng.next() < 0.5 ? position(rng, src.length, 2048) : rng.int(Math.max(1, src.length));
  return { bytes: src.slice(0, at), detail: `truncated to ${at} of ${src.length} bytes` };
}

function duplicateSpan(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const from = position(rng, src.length, 4096);
  const len = Math.min(src.length - from, 1 + rng.int(rng.next() < 0.5 ? 64 : 4096));
  const at = Math.min(src.length, from + len);
  const out = new Uint8Array(src.length + len);
  out.set(src.subarray(0, at), 0);
  out.set(src.subarray(from, from + len), at);
  out.set(src.subarray(at), at + len);
  return { bytes: out, detail: `bytes ${from}+${len} duplicated` };
}

/** Offsets where a 4-byte DICOM tag (group, element little-endian) occurs after the preamble. */
function tagOffsets(b: Uint8Array, group: number, element: number): number[] {
  const out: number[] = [];
  const g0 = group & 0xff;
  const g1 = group >> 8;
  const e0 = element & 0xff;
  const e1 = element >> 8;
  for (let i = 132; i + 8 <= b.length; i++)
    if (b[i] === g0 && b[i + 1] === g1 && b[i + 2] === e0 && b[i + 3] === e1) out.push(i);
  return out;
}

/** Explicit VR elements with a 4-byte length (OB, OW, SQ, UN, UT, …) carry it at +8, others at +6. */
const LONG_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'SQ', 'UN', 'UT', 'UC', 'UR', 'SV', 'UV']);

function dicomDims(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const fields: [string, number, number][] = [
    ['Rows', 0x0028, 0x0010],
    ['Columns', 0x0028, 0x0011],
    ['BitsAllocated', 0x0028, 0x0100],
    ['SamplesPerPixel', 0x0028, 0x0002],
    ['PixelRepresentation', 0x0028, 0x0103],
  ];
  const done: string[] = [];
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const [name, g, e] = pick(rng, fields);
    const offs = tagOffsets(b, g, e);
    if (offs.length) {
      // explicit VR 'US' + 2-byte length, or implicit 4-byte length: the value is at +8 either way
      const o = pick(rng, offs) + 8;
      if (o + 2 <= b.length) {
        const v = pick(rng, ABSURD16);
        dv.setUint16(o, v, true);
        done.push(`${name}=${v}`);
      }
    }
  }
  // NumberOfFrames is an IS string: replace its text with an absurd or malformed count of equal length
  const nf = tagOffsets(b, 0x0028, 0x0008);
  if (nf.length && rng.next() < 0.5) {
    const o = nf[0];
    const len =
      b[o + 4] === 0x49 && b[o + 5] === 0x53 ? dv.getUint16(o + 6, true) : dv.getUint32(o + 4, true);
    const text = pick(rng, ['99999999', '1A', '-1', '0', '2147483648', '1e9', ' ']);
    for (let i = 0; i < len && o + 8 + i < b.length; i++)
      b[o + 8 + i] = i < text.length ? text.charCodeAt(i) : 0x20;
    done.push(`NumberOfFrames="${text.slice(0, len)}"`);
  }
  return done.length ? { bytes: b, detail: `DICOM ${done.join(' ')}` } : bitflip(rng, src);
}

function dicomLengths(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  // explicit VR elements: two capital letters at +4
  const cands: { o: number; long: boolean }[] = [];
  for (let i = 132; i + 12 <= b.length && cands.length < 4000; i += 2) {
    const vr = String.fromCharCode(b[i + 4], b[i + 5]);
    if (/^[A-Z]{2}$/.test(vr) && b[i + 1] < 0x80 && (b[i] | b[i + 1]) !== 0)
      cands.push({ o: i, long: LONG_VRS.has(vr) });
  }
  if (!cands.length) {
    const o = position(rng, b.length);
    if (o + 4 <= b.length) dv.setUint32(o, pick(rng, ABSURD32), true);
    return { bytes: b, detail: `uint32 at ${o} set absurd` };
  }
  const c = pick(rng, cands);
  if (c.long) {
    const v = pick(rng, ABSURD32);
    dv.setUint32(c.o + 8, v, true);
    return { bytes: b, detail: `element at ${c.o}: 32-bit length ${v}` };
  }
  const v = pick(rng, ABSURD16);
  dv.setUint16(c.o + 6, v, true);
  return { bytes: b, detail: `element at ${c.o}: 16-bit length ${v}` };
}

/** NIfTI-1 header fields readers size allocations by. */
function niftiDims(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  if (b.length < 348) return bitflip(rng, src);
  const dv = new DataView(b.buffer);
  const done: string[] = [];
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    switch (rng.int(5)) {
      case 0: {
        const i = rng.int(8);
        const v = pick(rng, [...ABSURD16, 0xffff - 1]);
        dv.setUint16(40 + 2 * i, v, true);
        done.push(`dim[${i}]=${v}`);
        break;
      }
      case 1: {
        const v = pick(rng, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 2304, 0x7fff]);
        dv.setInt16(70, v, true);
        done.push(`datatype=${v}`);
        break;
      }
      case 2: {
        const v = pick(rng, [0, -352, 1e12, Number.NaN, Infinity, 3.5e9, 351]);
        dv.setFloat32(108, v, true);
        done.push(`vox_offset=${v}`);
        break;
      }
      case 3: {
        const v = pick(rng, [0, Number.NaN, Infinity, -Infinity, 1e38, -1e-38]);
        dv.setFloat32(112, v, true);
        done.push(`scl_slope=${v}`);
        break;
      }
      default: {
        // every spatial dim large: the classic "1024×1024×512 over a small file"
        dv.setUint16(40, 3, true);
        for (let i = 1; i <= 3; i++) dv.setUint16(40 + 2 * i, pick(rng, [1024, 4096, 32767]), true);
        done.push(`dims ${dv.getUint16(42, true)}×${dv.getUint16(44, true)}×${dv.getUint16(46, true)}`);
      }
    }
  }
  return { bytes: b, detail: `NIfTI ${done.join(' ')}` };
}

/** Tuples of 2–4 consecutive little-endian uint64 values in [1, 8192] (HDF5 dataspace dims). */
function hdf5Dims(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const small = (o: number) => {
    if (o + 8 > b.length) return false;
    const lo = dv.getUint32(o, true);
    return dv.getUint32(o + 4, true) === 0 && lo >= 1 && lo <= 8192;
  };
  const cands: number[] = [];
  for (let o = 0; o + 16 <= b.length; o++) if (small(o) && small(o + 8)) cands.push(o);
  if (!cands.length) return bitflip(rng, src);
  const o = pick(rng, cands);
  const which = rng.int(3);
  const big = pick(rng, [2 ** 31, 2 ** 40, 0xffffffff, 2 ** 20, 2 ** 53 - 1]);
  if (which === 2) {
    dv.setBigUint64(o, BigInt(big), true);
    dv.setBigUint64(o + 8, BigInt(big), true);
  } else dv.setBigUint64(o + 8 * which, BigInt(big), true);
  return { bytes: b, detail: `HDF5 uint64 tuple at ${o}: ${which === 2 ? 'both' : `#${which}`}=${big}` };
}

function hdf5Lengths(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  // any address or size field: an 8-byte value anywhere in the first KiB or near a dims tuple
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const o = Math.max(0, Math.min(b.length - 8, position(rng, b.length, 2048) & ~7));
  if (b.length < 8) return bitflip(rng, src);
  const v = pick(rng, [0n, 0xffffffffffffffffn, 2n ** 40n, BigInt(b.length * 4), 1n]);
  dv.setBigUint64(o, v, true);
  return { bytes: b, detail: `HDF5 uint64 at ${o} = ${v}` };
}

// PNG ----------------------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface PngChunk {
  start: number;
  type: string;
  len: number;
}

function pngChunks(b: Uint8Array): PngChunk[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: PngChunk[] = [];
  for (let o = 8; o + 12 <= b.length;) {
    const len = dv.getUint32(o);
    const type = String.fromCharCode(b[o + 4], b[o + 5], b[o + 6], b[o + 7]);
    out.push({ start: o, type, len });
    o += 12 + len;
  }
  return out;
}

/** A chunk (type + data) with its CRC recomputed, so that a reader checking CRCs still sees it. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function pngDims(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  if (b.length < 33) return bitflip(rng, src);
  const dv = new DataView(b.buffer);
  const w = pick(rng, [0, 1, 0x7fffffff, 100000, 65535, 0x80000000]);
  const h = pick(rng, [0, 1, 0x7fffffff, 100000, 65535]);
  dv.setUint32(16, w);
  dv.setUint32(20, h);
  if (rng.next() < 0.3) b[24] = pick(rng, [0, 3, 7, 16, 255]); // bit depth
  if (rng.next() < 0.3) b[25] = pick(rng, [1, 5, 7, 255]); // colour type
  const fixCrc = rng.next() < 0.8;
  if (fixCrc) dv.setUint32(29, crc32(b.subarray(12, 29)));
  return { bytes: b, detail: `PNG IHDR ${w}×${h}${fixCrc ? '' : ' (stale CRC)'}` };
}

function pngLengths(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const b = Uint8Array.from(src);
  const cs = pngChunks(b);
  if (!cs.length) return bitflip(rng, src);
  const c = pick(rng, cs);
  const v = pick(rng, ABSURD32);
  new DataView(b.buffer).setUint32(c.start, v);
  return { bytes: b, detail: `PNG ${c.type} length ${v}` };
}

function pngDuplicate(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  const cs = pngChunks(src).filter((c) => c.start + 12 + c.len <= src.length);
  if (!cs.length) return duplicateSpan(rng, src);
  const c = pick(rng, cs);
  const chunk = src.subarray(c.start, c.start + 12 + c.len);
  const times = 1 + rng.int(rng.next() < 0.2 ? 200 : 3);
  const out = new Uint8Array(src.length + times * chunk.length);
  const at = c.start + chunk.length;
  out.set(src.subarray(0, at), 0);
  for (let t = 0; t < times; t++) out.set(chunk, at + t * chunk.length);
  out.set(src.subarray(at), at + times * chunk.length);
  return { bytes: out, detail: `PNG ${c.type} chunk repeated ${times}×` };
}

function dicomDuplicate(rng: Rng, src: Uint8Array): { bytes: Uint8Array; detail: string } {
  // the pixel data element (7FE0,0010) repeated, or any span
  const px = tagOffsets(src, 0x7fe0, 0x0010);
  if (px.length && rng.next() < 0.5) {
    const o = px[px.length - 1];
    const tail = src.subarray(o);
    const out = new Uint8Array(src.length + tail.length);
    out.set(src, 0);
    out.set(tail, src.length);
    return { bytes: out, detail: `DICOM Pixel Data element duplicated at end` };
  }
  return duplicateSpan(rng, src);
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/** Apply `mutation` of a seed of `type`. */
export function mutate(rng: Rng, type: FileType, ext: string, src: Uint8Array, mutation: Mutation): Mutated {
  if (mutation === 'none') return { bytes: src, ext, detail: 'as is' };
  let body = src;
  let outExt = ext;
  let inside = '';
  if (type === 'nifti' && isGzip(src) && rng.next() < 0.85) {
    // a bomb is not unpacked here (the fuzzer's own memory and time): its deflate stream is mutated
    try {
      body = gunzipSync(src, { maxOutputLength: 64 * 2 ** 20 });
      inside = ' (inside gzip)';
      outExt = '.nii';
    } catch {
      body = src;
    }
  }
  const byType: Record<
    Exclude<Mutation, 'none'>,
    (r: Rng, b: Uint8Array) => { bytes: Uint8Array; detail: string }
  > = {
    bitflip,
    truncate,
    duplicate: type === 'png' ? pngDuplicate : type === 'dicom' ? dicomDuplicate : duplicateSpan,
    dims:
      type === 'dicom'
        ? dicomDims
        : type === 'nifti'
          ? niftiDims
          : type === 'hdf5'
            ? hdf5Dims
            : type === 'png'
              ? pngDims
              : bitflip,
    lengths:
      type === 'dicom'
        ? dicomLengths
        : type === 'png'
          ? pngLengths
          : type === 'hdf5'
            ? hdf5Lengths
            : type === 'nifti'
              ? niftiDims
              : dicomLengths,
  };
  const m = byType[mutation](rng, body);
  let bytes = m.bytes;
  if (inside && rng.next() < 0.5) {
    bytes = gzipSync(bytes, { level: 1 });
    outExt = '.nii.gz';
  }
  return { bytes, ext: outExt, detail: m.detail + inside };
}

/**
 * A raw deflate stream of `size` zero bytes (BFINAL set only when `finish`), made in bounded memory:
 * each 64 MiB part is deflated with a full flush, which ends it on a byte boundary and resets the
 * history, so the concatenated parts are one valid stream.
 */
export function deflateZeros(size: number, finish = true): Buffer {
  const PART = 64 * 2 ** 20;
  const zeros = Buffer.alloc(Math.min(size, PART));
  const flushed = (n: number) =>
    deflateRawSync(zeros.subarray(0, n), { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  // the full parts are identical (the history is reset at each), so one is made and repeated
  const whole = Math.floor(size / PART);
  const rest = size - whole * PART;
  const parts: Buffer[] = [];
  if (whole > 0) {
    const one = flushed(PART);
    for (let i = 0; i < whole; i++) parts.push(one);
  }
  if (rest > 0) parts.push(flushed(rest));
  // an empty final block closes the stream
  if (finish) parts.push(deflateRawSync(Buffer.alloc(0), { level: 9 }));
  return Buffer.concat(parts);
}
