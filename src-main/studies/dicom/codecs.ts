/**
 * Compressed transfer syntaxes through well-kept codec packages (WebAssembly builds used by
 * Cornerstone), registered with decode.ts:
 *  - JPEG-LS lossless / near-lossless (1.2.840.10008.1.2.4.80/.81): @cornerstonejs/codec-charls
 *  - JPEG 2000 lossless / lossy (.90/.91): @cornerstonejs/codec-openjpeg
 *  - JPEG baseline 8-bit (.50) and extended with 8-bit samples (.51): @cornerstonejs/codec-libjpeg-turbo-8bit
 *  - JPEG lossless process 14 (.57) and SV1 (.70): jpeg-lossless-decoder-js
 * The WebAssembly modules are instantiated once (top-level await); a package that fails to load
 * leaves its syntaxes unregistered, so those files fail with "no decoder installed".
 *
 * Output convention: decoders return samples in 8- or 16-bit words; they are read as signed when
 * PixelRepresentation is 1, then masked / sign-extended to BitsStored like native data.
 */
import { createRequire } from 'node:module';
import { Decoder as LosslessDecoder } from 'jpeg-lossless-decoder-js';
import { registerCodec } from './decode.js';
import { DicomError, type PixelModule } from './parse.js';
import { maskStored } from './pixels.js';

const require = createRequire(import.meta.url);

/** The emscripten decoder object all three Cornerstone codecs expose. */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned?: boolean;
  };
  getDecodedBuffer(): Uint8Array;
  delete?(): void;
}
type Factory = (opts?: Record<string, unknown>) => Promise<Record<string, unknown>>;

const quiet = { print: () => undefined, printErr: () => undefined };

async function wasmDecoder(pkg: string, className: string): Promise<(() => WasmDecoder) | null> {
  try {
    const factory = require(`${pkg}/decodewasmjs`) as Factory;
    const mod = await factory(quiet);
    const Ctor = mod[className] as (new () => WasmDecoder) | undefined;
    return Ctor ? () => new Ctor() : null;
  } catch {
    return null;
  }
}

/** Decoded words → stored values. */
function toStored(bytes: Uint8Array, px: PixelModule, bitsPerSample: number): Float64Array {
  const n = px.rows * px.columns * px.samplesPerPixel;
  const out = new Float64Array(n);
  if (bitsPerSample <= 8) {
    if (bytes.length < n) throw new DicomError(`decoded frame has ${bytes.length} samples, expected ${n}`);
    for (let i = 0; i < n; i++) out[i] = px.pixelRepresentation === 1 ? (bytes[i] << 24) >> 24 : bytes[i];
  } else {
    if (bytes.length < 2 * n)
      throw new DicomError(`decoded frame has ${bytes.length / 2} samples, expected ${n}`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, 2 * n);
    for (let i = 0; i < n; i++)
      out[i] = px.pixelRepresentation === 1 ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true);
  }
  return maskStored(out, px);
}

/**
 * The width × height a JPEG / JPEG-LS (SOFn, SOF55) or JPEG 2000 (SIZ) codestream declares, read
 * from its markers without decoding; null when none is found. Checked against Rows×Columns before
 * a codec is asked to allocate the frame.
 */
export function codestreamSize(b: Uint8Array): { width: number; height: number } | null {
  const u16 = (o: number) => (b[o] << 8) | b[o + 1];
  const u32 = (o: number) => b[o] * 2 ** 24 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
  if (b.length < 4) return null;
  if (b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51) {
    // J2K: SIZ follows SOC; Lsiz(2) Rsiz(2) Xsiz Ysiz XOsiz YOsiz (4 each)
    if (b.length < 6 + 2 + 2 + 16) return null;
    return { width: u32(8) - u32(16), height: u32(12) - u32(20) };
  }
  if (!(b[0] === 0xff && b[1] === 0xd8)) return null;
  let o = 2;
  while (o + 9 <= b.length) {
    if (b[o] !== 0xff) return null;
    const m = b[o + 1];
    if (m === 0xff) {
      o++;
      continue;
    }
    const sof = (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7;
    if (sof) return { height: u16(o + 5), width: u16(o + 7) };
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      o += 2;
      continue;
    }
    o += 2 + u16(o + 2);
  }
  return null;
}

/** Refuse a compressed frame whose codestream size disagrees with the header, before decoding it. */
function checkCodestream(frame: Uint8Array, px: PixelModule, name: string): void {
  const size = codestreamSize(frame);
  // a JPEG height of 0 means "defined by the DNL marker later": let the decoder and the check after it decide
  if (size && size.height !== 0 && (size.width !== px.columns || size.height !== px.rows))
    throw new DicomError(
      `${name}: frame is ${size.width}×${size.height}, the header says ${px.columns}×${px.rows}`,
    );
}

function viaWasm(make: () => WasmDecoder, name: string) {
  return (frame: Uint8Array, px: PixelModule): Float64Array => {
    checkCodestream(frame, px, name);
    const d = make();
    try {
      d.getEncodedBuffer(frame.length).set(frame);
      try {
        d.decode();
      } catch (e) {
        throw new DicomError(
          `${name}: corrupt compressed frame (${e instanceof Error ? e.message : String(e)})`,
        );
      }
      const info = d.getFrameInfo();
      if (info.width !== px.columns || info.height !== px.rows)
        throw new DicomError(
          `${name}: frame is ${info.width}×${info.height}, the header says ${px.columns}×${px.rows}`,
        );
      // copy out of the WebAssembly heap before the decoder is freed
      return toStored(new Uint8Array(d.getDecodedBuffer()), px, info.bitsPerSample);
    } finally {
      d.delete?.();
    }
  };
}

const charls = await wasmDecoder('@cornerstonejs/codec-charls', 'JpegLSDecoder');
if (charls) {
  registerCodec('1.2.840.10008.1.2.4.80', viaWasm(charls, 'JPEG-LS'));
  registerCodec('1.2.840.10008.1.2.4.81', viaWasm(charls, 'JPEG-LS'));
}
const openjpeg = await wasmDecoder('@cornerstonejs/codec-openjpeg', 'J2KDecoder');
if (openjpeg) {
  registerCodec('1.2.840.10008.1.2.4.90', viaWasm(openjpeg, 'JPEG 2000'));
  registerCodec('1.2.840.10008.1.2.4.91', viaWasm(openjpeg, 'JPEG 2000'));
}
const turbo = await wasmDecoder('@cornerstonejs/codec-libjpeg-turbo-8bit', 'JPEGDecoder');
if (turbo) {
  const dec = viaWasm(turbo, 'JPEG');
  const eightBit = (frame: Uint8Array, px: PixelModule) => {
    if (px.bitsAllocated > 8)
      throw new DicomError(`JPEG with ${px.bitsStored}-bit samples is not supported (8-bit decoder only)`);
    return dec(frame, px);
  };
  registerCodec('1.2.840.10008.1.2.4.50', eightBit);
  registerCodec('1.2.840.10008.1.2.4.51', eightBit);
}
const lossless = (frame: Uint8Array, px: PixelModule): Float64Array => {
  checkCodestream(frame, px, 'JPEG lossless');
  const bytesPer = px.bitsAllocated <= 8 ? 1 : 2;
  let words: Uint8Array | Uint16Array;
  try {
    const copy = new Uint8Array(frame); // own ArrayBuffer at offset 0
    words = new LosslessDecoder().decode(copy.buffer, 0, copy.byteLength, bytesPer);
  } catch (e) {
    throw new DicomError(
      `JPEG lossless: corrupt compressed frame (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  return toStored(bytes, px, bytesPer * 8);
};
registerCodec('1.2.840.10008.1.2.4.57', lossless);
registerCodec('1.2.840.10008.1.2.4.70', lossless);
