/** A small synthetic brain-like volume (ellipses of different intensities), written as NIfTI. */
import { writeNifti } from '../../src-main/data/nifti.js';

export function writePhantom(file: string, slices = 8, n = 32): void {
  const data = new Float32Array(slices * n * n);
  for (let s = 0; s < slices; s++)
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        const u = (x - n / 2 + 0.5) / (n / 2);
        const v = (y - n / 2 + 0.5) / (n / 2);
        const r = 0.8 - 0.02 * s;
        let p = (u * u) / (r * r) + (v * v) / (0.95 * 0.95) < 1 ? 0.6 : 0;
        if ((u - 0.2) ** 2 + (v + 0.1 * Math.sin(s)) ** 2 < 0.06) p += 0.3;
        if ((u + 0.3) ** 2 / 0.02 + (v - 0.2) ** 2 / 0.1 < 1) p -= 0.25;
        data[s * n * n + y * n + x] = p + 0.05 * Math.sin(3 * x + 2 * y + s);
      }
  writeNifti(file, { data, slices, h: n, w: n });
}
