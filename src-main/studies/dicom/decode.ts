/**
 * Frame decoding by transfer syntax: native (implicit/explicit LE, deflated — inflated by the
 * parser — explicit BE) and RLE Lossless here; compressed syntaxes through registered codecs
 * (codecs.ts), so that a missing codec package makes only those files fail, with a clear reason.
 */
import {
  DicomError,
  NATIVE_SYNTAXES,
  SYNTAX_NAMES,
  TS,
  type DicomObject,
  type PixelModule,
} from './parse.js';
import { isMonochrome, nativeStoredValues, rescale, rleStoredValues } from './pixels.js';

/** Decodes one compressed frame to stored values (row-major, samples interleaved). */
export type FrameDecoder = (frame: Uint8Array, px: PixelModule) => Float64Array;

const codecs = new Map<string, FrameDecoder>();

/** Make a compressed transfer syntax decodable. */
export function registerCodec(syntax: string, decoder: FrameDecoder): void {
  codecs.set(syntax, decoder);
}

export function supportedSyntaxes(): string[] {
  return [...NATIVE_SYNTAXES, TS.rle, ...codecs.keys()];
}

/** Why an object with Pixel Data is not an image we import, or null when it is. */
export function unsupportedImageReason(obj: DicomObject): string | null {
  const px = obj.pixel;
  if (!px) return 'no Pixel Data (not an image object)';
  if (!isMonochrome(px))
    return `colour image (${px.photometric}, ${px.samplesPerPixel} samples per pixel): only monochrome images are imported`;
  return null;
}

/** Stored integer values of every frame. */
export function decodeStoredFrames(obj: DicomObject): Float64Array[] {
  const px = obj.pixel;
  if (!px) throw new DicomError('no Pixel Data (not an image object)', 'skip');
  const ts = obj.transferSyntax;
  const frames: Float64Array[] = [];
  for (let f = 0; f < px.frames; f++) {
    if (NATIVE_SYNTAXES.has(ts) && !obj.encapsulated) {
      frames.push(nativeStoredValues(obj.frameBytes(f), px, ts === TS.explicitBE));
    } else if (ts === TS.rle) {
      frames.push(rleStoredValues(obj.frameBytes(f), px));
    } else {
      const codec = codecs.get(ts);
      if (!codec) {
        const name = SYNTAX_NAMES[ts] ?? 'unknown';
        throw new DicomError(`unsupported transfer syntax ${ts} (${name}): no decoder installed`);
      }
      frames.push(codec(obj.frameBytes(f), px));
    }
  }
  return frames;
}

/** Every frame after the modality LUT (float32, H×W each). */
export function decodeFrames(obj: DicomObject): Float32Array[] {
  const reason = unsupportedImageReason(obj);
  if (reason) throw new DicomError(reason, 'skip');
  const px = obj.pixel as PixelModule;
  return decodeStoredFrames(obj).map((s) => rescale(s, px.rescaleSlope, px.rescaleIntercept));
}
