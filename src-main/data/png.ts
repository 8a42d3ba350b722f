/** 8-bit grayscale PNG output (masks, slices, montages), written atomically. */
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../store/model-files.js';

/** Encode H×W values linearly mapped from `range` (default: the data's min–max) to 0–255. */
export function encodeGrayPng(
  data: ArrayLike<number>,
  h: number,
  w: number,
  range?: [number, number],
): Buffer {
  if (data.length !== h * w) throw new Error(`PNG: ${data.length} values for ${h}×${w}`);
  let [lo, hi] = range ?? [Infinity, -Infinity];
  if (!range) {
    for (let i = 0; i < data.length; i++) {
      lo = Math.min(lo, data[i]);
      hi = Math.max(hi, data[i]);
    }
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const png = new PNG({
    width: w,
    height: h,
    colorType: 0,
    inputColorType: 0,
    inputHasAlpha: false,
    bitDepth: 8,
  });
  const buf = Buffer.alloc(h * w);
  for (let i = 0; i < h * w; i++) buf[i] = Math.max(0, Math.min(255, Math.round((data[i] - lo) * scale)));
  png.data = buf;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

export function writeGrayPng(
  path: string,
  data: ArrayLike<number>,
  h: number,
  w: number,
  range?: [number, number],
): void {
  writeFileAtomic(path, encodeGrayPng(data, h, w, range));
}
