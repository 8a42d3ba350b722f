/**
 * NIfTI-1/2 volumes (.nii, .nii.gz) ↔ Volume.
 *
 * Axis convention: NIfTI stores i (x) fastest, then j (y), then k (z). A Volume slice is one k plane,
 * with H = ny rows (j) and W = nx columns (i): voxel (i, j, k) → data[k·ny·nx + j·nx + i]. We do not
 * reorient; the qform/sform codes are reported by readNiftiInfo for callers that care. Intensities are
 * scaled by scl_slope/scl_inter when the slope is non-zero. A 4-D file yields its first volume.
 * Spacing is [pixdim1, pixdim2, pixdim3] in the file's units (normally mm).
 */
import { existsSync } from 'node:fs';
import { constants as zlibConstants, crc32, deflateRawSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import type { Volume } from '../contract/domain.js';
import { writeFileAtomic } from '../store/model-files.js';
import { stackOfVolume, volumeOfStack, type SliceStack } from './volume.js';
import {
  LimitError,
  checkVolume,
  formatSize,
  inputLimits,
  openByteStream,
  type ByteStream,
} from './limits.js';

type Header = ReturnType<typeof nifti.readHeader>;

export interface NiftiInfo {
  dims: number[];
  datatypeCode: number;
  pixDims: number[];
  qformCode: number;
  sformCode: number;
}

const NIFTI1_HEADER = 348;
const NIFTI2_HEADER = 540;

/**
 * The header only: at most 540 (decompressed) bytes are read, whatever the file declares. Only the
 * header's own bytes are given to nifti-reader-js, so that it does not go looking for extensions.
 */
function openHeader(path: string): { header: Header; stream: ByteStream; consumed: number } {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const stream = openByteStream(path);
  try {
    const first = stream.read(NIFTI1_HEADER);
    const ab = first.buffer.slice(first.byteOffset, first.byteOffset + first.byteLength) as ArrayBuffer;
    let hdr: ArrayBuffer | null = null;
    if (ab.byteLength === NIFTI1_HEADER && nifti.isNIFTI1(ab)) hdr = ab;
    else if (ab.byteLength === NIFTI1_HEADER && nifti.isNIFTI2(ab)) {
      const rest = stream.read(NIFTI2_HEADER - NIFTI1_HEADER);
      if (rest.length === NIFTI2_HEADER - NIFTI1_HEADER) {
        const both = new Uint8Array(NIFTI2_HEADER);
        both.set(first);
        both.set(rest, NIFTI1_HEADER);
        hdr = both.buffer;
      }
    }
    if (!hdr) throw new Error(`${path}: not a NIfTI file (bad header size or magic)`);
    return { header: nifti.readHeader(hdr), stream, consumed: hdr.byteLength };
  } catch (e) {
    stream.close();
    throw e;
  }
}

export function readNiftiInfo(path: string): NiftiInfo {
  const { header, stream } = openHeader(path);
  stream.close();
  return {
    dims: header.dims.slice(0, header.dims[0] + 1),
    datatypeCode: header.datatypeCode,
    pixDims: header.pixDims.slice(0, header.dims[0] + 1),
    qformCode: header.qform_code,
    sformCode: header.sform_code,
  };
}

/** Bytes per voxel and a reader of one voxel at a byte offset, for the supported datatypes. */
function voxelReader(
  code: number,
  little: boolean,
  path: string,
): { bytes: number; name: string; get: (dv: DataView, o: number) => number } {
  const T = nifti.NIFTI1;
  switch (code) {
    case T.TYPE_UINT8:
      return { bytes: 1, name: 'uint8', get: (dv, o) => dv.getUint8(o) };
    case T.TYPE_INT8:
      return { bytes: 1, name: 'int8', get: (dv, o) => dv.getInt8(o) };
    case T.TYPE_INT16:
      return { bytes: 2, name: 'int16', get: (dv, o) => dv.getInt16(o, little) };
    case T.TYPE_UINT16:
      return { bytes: 2, name: 'uint16', get: (dv, o) => dv.getUint16(o, little) };
    case T.TYPE_INT32:
      return { bytes: 4, name: 'int32', get: (dv, o) => dv.getInt32(o, little) };
    case T.TYPE_UINT32:
      return { bytes: 4, name: 'uint32', get: (dv, o) => dv.getUint32(o, little) };
    case T.TYPE_FLOAT32:
      return { bytes: 4, name: 'float32', get: (dv, o) => dv.getFloat32(o, little) };
    case T.TYPE_FLOAT64:
      return { bytes: 8, name: 'float64', get: (dv, o) => dv.getFloat64(o, little) };
    default:
      throw new Error(
        `${path}: unsupported NIfTI datatype ${code} (supported: integer types, float32, float64)`,
      );
  }
}

/** The deflate format's largest expansion (a run of one byte): no gzip file inflates further. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * A NIfTI volume as a SliceStack, read one k plane at a time. Everything that can be refused is
 * checked here, before any voxel is read or any output begun: the declared size (dims × datatype)
 * against the caps (limits.ts) and against what the file can hold. Each `read()` opens the file again
 * and inflates a gzip file only as far as the slice it is on: memory is one slice, whatever nz is.
 */
export function openNiftiSlices(path: string): SliceStack {
  const { header, stream, consumed } = openHeader(path);
  let layout: { nx: number; ny: number; nz: number; start: number; need: number };
  const vox = (() => {
    try {
      const nd = header.dims[0];
      if (nd < 2 || nd > 7) throw new Error(`${path}: NIfTI has ${nd} dimensions; expected 2 to 4`);
      const nx = header.dims[1];
      const ny = header.dims[2];
      const nz = nd >= 3 ? Math.max(1, header.dims[3]) : 1;
      if (!(nx > 0 && ny > 0)) throw new Error(`${path}: NIfTI image size ${nx}×${ny} is empty`);
      const vox = voxelReader(header.datatypeCode, header.littleEndian, path);
      const offset = header.vox_offset;
      if (!Number.isFinite(offset) || offset < consumed)
        throw new Error(`${path}: invalid vox_offset ${offset} (inside the ${consumed}-byte header)`);
      const start = Math.floor(offset);
      const limits = inputLimits();
      // the output is float32; the declared voxels' bytes are what is read and inflated
      checkVolume([nx, ny, nz], Math.max(4, vox.bytes), `${path}: volume`, limits);
      const need = nx * ny * nz * vox.bytes;
      const holds = stream.compressed ? stream.fileSize * MAX_DEFLATE_RATIO : stream.fileSize;
      if (start + need > holds)
        throw new LimitError(
          `${path}: truncated: the header declares ${nx}×${ny}×${nz} ${vox.name} (${formatSize(need)} bytes after offset ${start}), ` +
            `more than the ${stream.compressed ? 'compressed ' : ''}file of ${formatSize(stream.fileSize)} bytes can hold`,
        );
      if (start + need > limits.maxBytes)
        throw new LimitError(
          `${path}: ${formatSize(start + need)} bytes to read is over the ${formatSize(limits.maxBytes)} byte limit; raise it with --max-bytes`,
        );
      layout = { nx, ny, nz, start, need };
      return vox;
    } finally {
      stream.close();
    }
  })();
  const { nx, ny, nz, start, need } = layout!;
  const slope = header.scl_slope && Number.isFinite(header.scl_slope) ? header.scl_slope : 1;
  const inter = header.scl_slope && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const p = header.pixDims;
  const spacing: [number, number, number] = [Math.abs(p[1]) || 1, Math.abs(p[2]) || 1, Math.abs(p[3]) || 1];
  const hw = nx * ny;
  const sliceBytes = hw * vox.bytes;
  return {
    slices: nz,
    h: ny,
    w: nx,
    spacing,
    *read() {
      const again = openHeader(path);
      try {
        again.stream.skip(start - again.consumed);
        const out = new Float32Array(hw);
        for (let k = 0; k < nz; k++) {
          const b = again.stream.read(sliceBytes);
          if (b.length < sliceBytes)
            throw new Error(
              `${path}: truncated (needs ${need} bytes of voxels after offset ${start}, has ${k * sliceBytes + b.length})`,
            );
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          for (let i = 0; i < hw; i++) out[i] = vox.get(dv, i * vox.bytes) * slope + inter;
          yield out;
        }
      } finally {
        again.stream.close();
      }
    },
  };
}

/**
 * Read a NIfTI volume whole (see openNiftiSlices: the same checks before anything is allocated, the
 * same values).
 */
export function readNifti(path: string): Volume {
  return volumeOfStack(openNiftiSlices(path));
}

/**
 * Where a NIfTI volume sits in space, as its header says: the qform (quaternion, offsets, qfac) and
 * sform (three affine rows) with their codes, the signed voxel sizes and the units. Written back
 * unchanged, an output overlays its source in any viewer (nibabel's affine is equal).
 */
export interface NiftiGeometry {
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d */
  quatern: [number, number, number];
  /** qoffset_x, qoffset_y, qoffset_z */
  qoffset: [number, number, number];
  /** pixdim[0]: the qform's handedness (±1; 0 is read as 1). */
  qfac: number;
  /** pixdim[1..3] as stored (signed). */
  pixdim: [number, number, number];
  /** srow_x, srow_y, srow_z, 4 values each (zeros when there is no sform). */
  srow: [number[], number[], number[]];
  xyztUnits: number;
}

/** Where the volume in `path` sits in space (see NiftiGeometry), from its header alone. */
export function readNiftiGeometry(path: string): NiftiGeometry {
  const { header, stream } = openHeader(path);
  stream.close();
  const p = header.pixDims;
  const srow =
    header.sform_code > 0
      ? ([0, 1, 2].map((r) => header.affine[r].slice(0, 4)) as [number[], number[], number[]])
      : ([
          [0, 0, 0, 0],
          [0, 0, 0, 0],
          [0, 0, 0, 0],
        ] as [number[], number[], number[]]);
  return {
    qformCode: header.qform_code,
    sformCode: header.sform_code,
    quatern: [header.quatern_b, header.quatern_c, header.quatern_d],
    qoffset: [header.qoffset_x, header.qoffset_y, header.qoffset_z],
    qfac: p[0],
    pixdim: [p[1], p[2], p[3] ?? 1],
    srow,
    xyztUnits: header.xyzt_units,
  };
}

/** The volume and its geometry (see NiftiGeometry). */
export function readNiftiWithGeometry(path: string): { volume: Volume; geometry: NiftiGeometry } {
  return { volume: readNifti(path), geometry: readNiftiGeometry(path) };
}

/** The 352-byte header (348 + the empty extension flag) of a float32 NIfTI-1 of `stack`'s shape. */
function float32Header(stack: Omit<SliceStack, 'read'>, geometry?: NiftiGeometry): Uint8Array {
  const out = new ArrayBuffer(VOX_OFFSET);
  const dv = new DataView(out);
  const le = true;
  dv.setInt32(0, 348, le);
  const dims = [3, stack.w, stack.h, stack.slices, 1, 1, 1, 1];
  dims.forEach((d, i) => dv.setInt16(40 + 2 * i, d, le));
  dv.setInt16(70, 16, le); // datatype float32
  dv.setInt16(72, 32, le); // bitpix
  const [sx, sy, sz] = geometry?.pixdim ?? stack.spacing ?? [1, 1, 1];
  [geometry?.qfac ?? 1, sx, sy, sz, 1, 1, 1, 1].forEach((v, i) => dv.setFloat32(76 + 4 * i, v, le));
  dv.setFloat32(108, VOX_OFFSET, le);
  dv.setFloat32(112, 1, le); // scl_slope
  dv.setFloat32(116, 0, le); // scl_inter
  dv.setUint8(123, geometry?.xyztUnits ?? 10 | 8); // xyzt_units: mm, s
  if (geometry) {
    dv.setInt16(252, geometry.qformCode, le);
    dv.setInt16(254, geometry.sformCode, le);
    [...geometry.quatern, ...geometry.qoffset].forEach((v, i) => dv.setFloat32(256 + 4 * i, v, le));
    geometry.srow.flat().forEach((v, i) => dv.setFloat32(280 + 4 * i, v, le));
  }
  new Uint8Array(out, 148, 24).set(new TextEncoder().encode('KD-MRI Workstation'));
  new Uint8Array(out, 344, 4).set([0x6e, 0x2b, 0x31, 0]); // "n+1\0"
  return new Uint8Array(out);
}

const VOX_OFFSET = 352;

/** The header, then each slice's float32 values (host order: little endian on every supported host). */
function* float32Nifti(stack: SliceStack, geometry?: NiftiGeometry): Generator<Uint8Array> {
  const hw = stack.h * stack.w;
  yield float32Header(stack, geometry);
  let s = 0;
  for (const slice of stack.read()) {
    if (s >= stack.slices || slice.length !== hw)
      throw new Error(`writeNifti: slice ${s} has ${slice.length} values, expected ${stack.h}×${stack.w}`);
    // a copy, as Float32Array: the reader may reuse its slice buffer once the next one is asked for
    yield new Uint8Array(Float32Array.from(slice).buffer);
    s++;
  }
  if (s !== stack.slices) throw new Error(`writeNifti: ${s} slices for ${stack.slices}`);
}

/** Input is deflated in pieces of this size: each piece is one native deflate call. */
const DEFLATE_PIECE = 4 * 2 ** 20;

/**
 * One gzip member (RFC 1952) of the concatenated pieces, written as it goes. Each DEFLATE_PIECE is
 * deflated by a separate native zlib call ending in a sync flush (byte-aligned, not final), the last
 * one with the final block, so the blocks form one valid deflate stream (pigz does the same); any
 * gzip reader reads it. The compression lost at the piece boundaries is a few hundred bytes per piece.
 */
function* gzipPieces(pieces: Iterable<Uint8Array>): Generator<Uint8Array> {
  // the header gzipSync writes: no name, no time, OS = Unix
  yield Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3);
  let crc = 0;
  let size = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = (final: boolean) => {
    const input = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return deflateRawSync(input, {
      finishFlush: final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH,
    });
  };
  for (const p of pieces) {
    crc = crc32(p, crc);
    size += p.byteLength;
    pending.push(p);
    pendingBytes += p.byteLength;
    if (pendingBytes >= DEFLATE_PIECE) yield flush(false);
  }
  yield flush(true);
  const trailer = new DataView(new ArrayBuffer(8));
  trailer.setUint32(0, crc >>> 0, true);
  trailer.setUint32(4, size % 2 ** 32, true);
  yield new Uint8Array(trailer.buffer);
}

/**
 * Write a float32 NIfTI-1 (.nii, or gzip-compressed when the name ends in .gz) of a SliceStack,
 * atomically and one slice at a time: memory is a slice (and one deflate piece), whatever the slice
 * count. With `geometry` (a source's, from readNiftiWithGeometry) the output keeps the source's place
 * in space. A reader's error part-way (a truncated input) leaves no output file.
 */
export function writeNiftiSlices(path: string, stack: SliceStack, geometry?: NiftiGeometry): void {
  if (!/\.nii(\.gz)?$/i.test(path)) throw new Error(`${path}: a NIfTI file name must end in .nii or .nii.gz`);
  const bytes = float32Nifti(stack, geometry);
  writeFileAtomic(path, /\.gz$/i.test(path) ? gzipPieces(bytes) : bytes);
}

/** Write a float32 NIfTI-1 of a volume in memory (see writeNiftiSlices). */
export function writeNifti(path: string, vol: Volume, geometry?: NiftiGeometry): void {
  const n = vol.slices * vol.h * vol.w;
  if (vol.data.length !== n)
    throw new Error(`writeNifti: ${vol.data.length} values for ${vol.slices}×${vol.h}×${vol.w}`);
  writeNiftiSlices(path, stackOfVolume(vol), geometry);
}
