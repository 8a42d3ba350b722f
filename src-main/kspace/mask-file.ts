/**
 * `--mask-file`: an undersampling mask read from a PNG or a NumPy .npy file, in the layout `kdmri mask`
 * writes: H×W, row-major, **unshifted** (DC at index 0, the fully sampled centre block split between
 * both ends), sampled = non-zero (.npy) or a grey level of at least 128 (PNG; `kdmri mask` writes 0
 * and 255). The mask must be a 1-D Cartesian mask (whole rows or whole columns), like every mask the
 * networks train with; it becomes a MaskSpec of kind 'file' that carries its sampled lines and shape,
 * so a run record of it is enough to rebuild it without the file.
 *
 * The .npy reader is ours (format 1.0–3.0, C or Fortran order, bool/int/uint/float of any byte
 * order): the format is a short text header before raw values, and no maintained npm package reads it
 * without pulling in a numeric library.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { PNG } from 'pngjs';
import type { MaskSpec } from '../contract/domain.js';
import { readFileBounded } from '../data/limits.js';

/** Largest side a mask file may have (the line count a MaskSpec can carry). */
export const MAX_MASK_SIDE = 4096;

export interface MaskPlaneFile {
  h: number;
  w: number;
  /** 1 = sampled, row-major. */
  plane: Uint8Array;
}

/** The H×W 0/1 plane of a PNG or .npy mask; errors name the file and what is wrong. */
export function readMaskPlane(path: string): MaskPlaneFile {
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
  } catch (e) {
    throw new Error(`mask file ${path}: cannot read (${(e as Error).message})`);
  }
  // the file-size cap of the input limits (data/limits.ts), like every file the app reads
  const bytes = readFileBounded(path);
  if (/\.png$/i.test(path)) return pngPlane(path, bytes);
  if (/\.npy$/i.test(path)) return npyPlane(path, bytes);
  throw new Error(`mask file ${path}: expected a .png or .npy file`);
}

function checkShape(path: string, h: number, w: number): void {
  if (
    !Number.isInteger(h) ||
    !Number.isInteger(w) ||
    h < 2 ||
    w < 2 ||
    h > MAX_MASK_SIDE ||
    w > MAX_MASK_SIDE
  )
    throw new Error(`mask file ${path}: shape ${h}×${w} is outside 2–${MAX_MASK_SIDE} per side`);
}

function pngPlane(path: string, bytes: Buffer): MaskPlaneFile {
  // the IHDR chunk states the size: refuse a huge claim before decoding allocates for it
  if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR')
    throw new Error(`mask file ${path}: not a PNG file`);
  checkShape(path, bytes.readUInt32BE(20), bytes.readUInt32BE(16));
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (e) {
    throw new Error(`mask file ${path}: not a readable PNG (${(e as Error).message})`);
  }
  const { width: w, height: h, data } = png;
  const plane = new Uint8Array(h * w);
  // pngjs decodes every colour type to RGBA, 8 bits per channel: the red channel is the grey level
  for (let i = 0; i < h * w; i++) plane[i] = data[4 * i] >= 128 ? 1 : 0;
  return { h, w, plane };
}

const NPY_MAGIC = '\x93NUMPY';

function npyPlane(path: string, bytes: Buffer): MaskPlaneFile {
  const bad = (why: string) => new Error(`mask file ${path}: not a valid .npy file (${why})`);
  if (bytes.length < 10 || bytes.toString('latin1', 0, 6) !== NPY_MAGIC) throw bad('no NUMPY magic');
  const major = bytes[6];
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.length) throw bad('truncated header');
  const header = bytes.toString(major >= 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1] === 'True';
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw bad('header lacks descr or shape');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  // a (1, H, W) array is one mask too (a batch axis of one, as masks are often saved)
  while (shape.length > 2 && shape[0] === 1) shape.shift();
  if (shape.length !== 2)
    throw new Error(`mask file ${path}: expected a 2-D H×W array, got shape (${shapeText})`);
  const [h, w] = shape;
  checkShape(path, h, w);
  const m = /^([<>|=])([biuf])(\d+)$/.exec(descr);
  if (!m || !['1', '2', '4', '8'].includes(m[3]) || (m[2] === 'f' && m[3] === '1'))
    throw new Error(`mask file ${path}: unsupported .npy dtype '${descr}' (bool, integers or floats)`);
  const little = m[1] !== '>';
  const kind = m[2];
  const size = Number(m[3]);
  const offset = start + headerLen;
  if (bytes.length - offset < h * w * size)
    throw bad(
      `${h}×${w} values of ${size} bytes need ${h * w * size} bytes, the file has ${bytes.length - offset}`,
    );
  const read = (i: number): number => {
    const o = offset + i * size;
    switch (`${kind}${size}`) {
      case 'b1':
      case 'u1':
        return bytes[o];
      case 'i1':
        return bytes.readInt8(o);
      case 'i2':
        return little ? bytes.readInt16LE(o) : bytes.readInt16BE(o);
      case 'u2':
        return little ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o);
      case 'i4':
        return little ? bytes.readInt32LE(o) : bytes.readInt32BE(o);
      case 'u4':
        return little ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o);
      case 'i8':
      case 'u8':
        // only zero / non-zero matters: test the 8 bytes
        return bytes.subarray(o, o + 8).some((b) => b !== 0) ? 1 : 0;
      case 'f2':
        // half float: non-zero unless every bit but the sign is clear
        return ((little ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o)) & 0x7fff) !== 0 ? 1 : 0;
      case 'f4':
        return little ? bytes.readFloatLE(o) : bytes.readFloatBE(o);
      default:
        return little ? bytes.readDoubleLE(o) : bytes.readDoubleBE(o);
    }
  };
  const plane = new Uint8Array(h * w);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) plane[r * w + c] = read(fortran ? c * h + r : r * w + c) !== 0 ? 1 : 0;
  return { h, w, plane };
}

/**
 * A mask file as a MaskSpec of kind 'file': its sampled lines along the axis it samples, its shape
 * (checked against the images when the mask is built) and its true acceleration. When `shape` is given
 * (the images' H×W), a mismatch is refused here already.
 */
export function readMaskFile(path: string, shape?: { h: number; w: number }): MaskSpec {
  const { h, w, plane } = readMaskPlane(path);
  const name = basename(path);
  if (shape && (shape.h !== h || shape.w !== w))
    throw new Error(
      `mask file ${path} is ${h}×${w} but the images are ${shape.h}×${shape.w}: the mask must match the image shape`,
    );
  const rowsConstant = (): boolean => {
    for (let r = 0; r < h; r++)
      for (let c = 1; c < w; c++) if (plane[r * w + c] !== plane[r * w]) return false;
    return true;
  };
  const colsConstant = (): boolean => {
    for (let c = 0; c < w; c++) for (let r = 1; r < h; r++) if (plane[r * w + c] !== plane[c]) return false;
    return true;
  };
  let axis: 'rows' | 'cols';
  if (rowsConstant()) axis = 'rows';
  else if (colsConstant()) axis = 'cols';
  else
    throw new Error(
      `mask file ${path}: not a 1-D Cartesian mask (it samples neither whole rows nor whole columns)`,
    );
  const n = axis === 'rows' ? h : w;
  const lines: number[] = [];
  for (let i = 0; i < n; i++) if (plane[axis === 'rows' ? i * w : i]) lines.push(i);
  if (lines.length === 0) throw new Error(`mask file ${path}: samples no lines`);
  return {
    kind: 'file',
    acc: n / lines.length,
    axis,
    seed: 0,
    lines,
    lineCount: n,
    fileShape: [h, w],
    name,
  };
}
