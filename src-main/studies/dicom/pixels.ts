/**
 * Pure pixel maths: stored frame bytes → integer stored values → float32 after the modality LUT.
 *
 * Conventions (PS3.5 §8, PS3.3 C.7.6.3):
 *  - native data is little endian except in Explicit VR Big Endian, where each 16/32-bit word is
 *    byte-swapped (8-bit data is never swapped);
 *  - only the BitsStored low bits (HighBit = BitsStored − 1) carry the value: the rest is masked off,
 *    and signed values (PixelRepresentation 1) are sign-extended from bit BitsStored − 1;
 *  - RLE Lossless (PS3.5 Annex G): a 64-byte header (segment count + 15 offsets, uint32 LE), one
 *    PackBits segment per byte plane, most significant byte first;
 *  - output value = stored · RescaleSlope + RescaleIntercept (float32).
 */
import { DicomError, type PixelModule } from './parse.js';

/** Stored values of one frame from native bytes, as float64-exact integers in an Int32/Uint32-safe Float64Array. */
export function nativeStoredValues(bytes: Uint8Array, px: PixelModule, bigEndian: boolean): Float64Array {
  const n = px.rows * px.columns * px.samplesPerPixel;
  const out = new Float64Array(n);
  const bpp = px.bitsAllocated;
  if (bpp === 1) {
    for (let i = 0; i < n; i++) out[i] = (bytes[i >> 3] >> (i & 7)) & 1;
    return out;
  }
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw new DicomError(`Bits Allocated ${bpp} is not supported`);
  const bytesPer = bpp / 8;
  if (bytes.length < n * bytesPer)
    throw new DicomError(`truncated Pixel Data: ${bytes.length} bytes for ${n} pixels of ${bpp} bits`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * bytesPer);
  const le = !bigEndian;
  for (let i = 0; i < n; i++) {
    out[i] = bpp === 8 ? dv.getUint8(i) : bpp === 16 ? dv.getUint16(i * 2, le) : dv.getUint32(i * 4, le);
  }
  return maskStored(out, px);
}

/** Keep the BitsStored low bits; sign-extend when PixelRepresentation is 1. In place. */
export function maskStored(v: Float64Array, px: PixelModule): Float64Array {
  const bs = px.bitsStored;
  if (bs <= 0 || bs > 32) throw new DicomError(`Bits Stored ${bs} is not supported`);
  const range = 2 ** bs;
  const half = 2 ** (bs - 1);
  for (let i = 0; i < v.length; i++) {
    // arithmetic on doubles: exact for 32-bit integers, unlike JS bit operators (signed 32-bit)
    let x = v[i] % range;
    if (px.pixelRepresentation === 1 && x >= half) x -= range;
    v[i] = x;
  }
  return v;
}

/** PackBits decoding of one RLE segment into exactly `n` bytes. */
function unpackBits(src: Uint8Array, start: number, end: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  let i = start;
  while (o < n && i < end) {
    const h = src[i++];
    if (h < 128) {
      const len = h + 1;
      if (i + len > end) throw new DicomError('corrupt RLE segment (literal run past the segment end)');
      out.set(src.subarray(i, i + Math.min(len, n - o)), o);
      o += len;
      i += len;
    } else if (h > 128) {
      const len = 257 - h;
      if (i >= end) throw new DicomError('corrupt RLE segment (replicate run past the segment end)');
      out.fill(src[i++], o, Math.min(n, o + len));
      o += len;
    } // 128: no-op
  }
  if (o < n) throw new DicomError(`corrupt RLE segment (${o} of ${n} bytes decoded)`);
  return out;
}

/** Stored values of one RLE Lossless frame. */
export function rleStoredValues(frame: Uint8Array, px: PixelModule): Float64Array {
  if (frame.length < 64) throw new DicomError('corrupt RLE frame (header shorter than 64 bytes)');
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const nSeg = dv.getUint32(0, true);
  const bytesPer = px.bitsAllocated / 8;
  const spp = px.samplesPerPixel;
  if (!Number.isInteger(bytesPer) || nSeg !== bytesPer * spp) {
    throw new DicomError(
      `corrupt RLE frame (${nSeg} segments for ${px.bitsAllocated}-bit, ${spp}-sample pixels)`,
    );
  }
  const n = px.rows * px.columns;
  const offsets = Array.from({ length: nSeg }, (_, s) => dv.getUint32(4 + 4 * s, true));
  // PackBits expands 2 bytes to at most 128: a segment shorter than n/64 bytes cannot hold a
  // Rows×Columns plane, so a header claim past the data is refused before anything is allocated
  for (let k = 0; k < nSeg; k++) {
    const end = k + 1 < nSeg ? offsets[k + 1] : frame.length;
    if (offsets[k] < 64 || end > frame.length || end < offsets[k] || (end - offsets[k]) * 64 < n)
      throw new DicomError(
        `corrupt RLE frame: segment ${k + 1} (${Math.max(0, end - offsets[k])} bytes) cannot hold ${px.columns}×${px.rows} pixels`,
      );
  }
  const out = new Float64Array(n * spp);
  for (let s = 0; s < spp; s++) {
    const planes: Uint8Array[] = [];
    for (let b = 0; b < bytesPer; b++) {
      const k = s * bytesPer + b;
      const end = k + 1 < nSeg ? offsets[k + 1] : frame.length;
      planes.push(unpackBits(frame, offsets[k], end, n));
    }
    // planes[0] holds the most significant byte
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let b = 0; b < bytesPer; b++) v = v * 256 + planes[b][i];
      out[i * spp + s] = v;
    }
  }
  return maskStored(out, px);
}

/** Apply the modality LUT (slope/intercept) into float32. */
export function rescale(stored: ArrayLike<number>, slope: number, intercept: number): Float32Array {
  const out = new Float32Array(stored.length);
  for (let i = 0; i < stored.length; i++) out[i] = stored[i] * slope + intercept;
  return out;
}

/** MONOCHROME1 displays low values bright; the library keeps physical values, so nothing is inverted. */
export function isMonochrome(px: PixelModule): boolean {
  return px.samplesPerPixel === 1 && /^MONOCHROME[12]$/.test(px.photometric.trim());
}
