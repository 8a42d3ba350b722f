/**
 * NIfTI-1/2 volumes (.nii, .nii.gz) ↔ Volume.
 *
 * Axis convention: NIfTI stores i (x) fastest, then j (y), then k (z). A Volume slice is one k plane,
 * with H = ny rows (j) and W = nx columns (i): voxel (i, j, k) → data[k·ny·nx + j·nx + i]. We do not
 * reorient; the qform/sform codes are reported by readNiftiInfo for callers that care. Intensities are
 * scaled by scl_slope/scl_inter when the slope is non-zero. A 4-D file yields its first volume.
 * Spacing is [pixdim1, pixdim2, pixdim3] in the file's units (normally mm).
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import type { Volume } from '../contract/domain.js';
import { writeFileAtomic } from '../store/model-files.js';

type Header = ReturnType<typeof nifti.readHeader>;

export interface NiftiInfo {
  dims: number[];
  datatypeCode: number;
  pixDims: number[];
  qformCode: number;
  sformCode: number;
}

function load(path: string): { header: Header; buf: ArrayBuffer } {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  let bytes: Uint8Array = readFileSync(path);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${path}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  if (buf.byteLength < 348 || !nifti.isNIFTI(buf)) {
    throw new Error(`${path}: not a NIfTI file (bad header size or magic)`);
  }
  return { header: nifti.readHeader(buf), buf };
}

export function readNiftiInfo(path: string): NiftiInfo {
  const { header } = load(path);
  return {
    dims: header.dims.slice(0, header.dims[0] + 1),
    datatypeCode: header.datatypeCode,
    pixDims: header.pixDims.slice(0, header.dims[0] + 1),
    qformCode: header.qform_code,
    sformCode: header.sform_code,
  };
}

function typed(
  code: number,
  buf: ArrayBuffer,
  offset: number,
  count: number,
  little: boolean,
  path: string,
): ArrayLike<number> {
  const dv = new DataView(buf, offset);
  const read = (bytes: number, get: (o: number) => number): Float64Array => {
    if (offset + count * bytes > buf.byteLength) {
      throw new Error(
        `${path}: truncated (needs ${count * bytes} bytes of voxels after offset ${offset}, has ${buf.byteLength - offset})`,
      );
    }
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) out[i] = get(i * bytes);
    return out;
  };
  const T = nifti.NIFTI1;
  switch (code) {
    case T.TYPE_UINT8:
      return read(1, (o) => dv.getUint8(o));
    case T.TYPE_INT8:
      return read(1, (o) => dv.getInt8(o));
    case T.TYPE_INT16:
      return read(2, (o) => dv.getInt16(o, little));
    case T.TYPE_UINT16:
      return read(2, (o) => dv.getUint16(o, little));
    case T.TYPE_INT32:
      return read(4, (o) => dv.getInt32(o, little));
    case T.TYPE_UINT32:
      return read(4, (o) => dv.getUint32(o, little));
    case T.TYPE_FLOAT32:
      return read(4, (o) => dv.getFloat32(o, little));
    case T.TYPE_FLOAT64:
      return read(8, (o) => dv.getFloat64(o, little));
    default:
      throw new Error(
        `${path}: unsupported NIfTI datatype ${code} (supported: integer types, float32, float64)`,
      );
  }
}

export function readNifti(path: string): Volume {
  const { header, buf } = load(path);
  const nd = header.dims[0];
  if (nd < 2 || nd > 7) throw new Error(`${path}: NIfTI has ${nd} dimensions; expected 2 to 4`);
  const nx = header.dims[1];
  const ny = header.dims[2];
  const nz = nd >= 3 ? Math.max(1, header.dims[3]) : 1;
  if (!(nx > 0 && ny > 0)) throw new Error(`${path}: NIfTI image size ${nx}×${ny} is empty`);
  const count = nx * ny * nz;
  const raw = typed(
    header.datatypeCode,
    buf,
    Math.floor(header.vox_offset),
    count,
    header.littleEndian,
    path,
  );
  const slope = header.scl_slope && Number.isFinite(header.scl_slope) ? header.scl_slope : 1;
  const inter = header.scl_slope && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = raw[i] * slope + inter;
  const p = header.pixDims;
  const spacing: [number, number, number] = [Math.abs(p[1]) || 1, Math.abs(p[2]) || 1, Math.abs(p[3]) || 1];
  return { data, slices: nz, h: ny, w: nx, spacing };
}

/** Write a float32 NIfTI-1 (.nii, or gzip-compressed when the name ends in .gz), atomically. */
export function writeNifti(path: string, vol: Volume): void {
  if (!/\.nii(\.gz)?$/i.test(path)) throw new Error(`${path}: a NIfTI file name must end in .nii or .nii.gz`);
  const n = vol.slices * vol.h * vol.w;
  if (vol.data.length !== n)
    throw new Error(`writeNifti: ${vol.data.length} values for ${vol.slices}×${vol.h}×${vol.w}`);
  const voxOffset = 352;
  const out = new ArrayBuffer(voxOffset + n * 4);
  const dv = new DataView(out);
  const le = true;
  dv.setInt32(0, 348, le);
  const dims = [3, vol.w, vol.h, vol.slices, 1, 1, 1, 1];
  dims.forEach((d, i) => dv.setInt16(40 + 2 * i, d, le));
  dv.setInt16(70, 16, le); // datatype float32
  dv.setInt16(72, 32, le); // bitpix
  const [sx, sy, sz] = vol.spacing ?? [1, 1, 1];
  [1, sx, sy, sz, 1, 1, 1, 1].forEach((v, i) => dv.setFloat32(76 + 4 * i, v, le));
  dv.setFloat32(108, voxOffset, le);
  dv.setFloat32(112, 1, le); // scl_slope
  dv.setFloat32(116, 0, le); // scl_inter
  dv.setUint8(123, 10 | 8); // xyzt_units: mm, s
  new Uint8Array(out, 148, 24).set(new TextEncoder().encode('KD-MRI Workstation'));
  new Uint8Array(out, 344, 4).set([0x6e, 0x2b, 0x31, 0]); // "n+1\0"
  new Float32Array(out, voxOffset, n).set(vol.data);
  const bytes = new Uint8Array(out);
  writeFileAtomic(path, /\.gz$/i.test(path) ? gzipSync(bytes) : bytes);
}
