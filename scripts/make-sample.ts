/**
 * Make the bundled sample: 40 axial slices of the Colin27 T1 brain from Debian's mricron-data
 * (/usr/share/mricron/templates/ch2.nii.gz, BSD-3), square and small enough to ship.
 *
 *   node --import tsx scripts/make-sample.ts [SOURCE] [OUT]
 *
 * Steps: read the 181×217×181 1-mm volume; take 40 axial planes centred on k = 90 (the middle of the
 * brain); flip rows so that anterior is at the top of the image; zero-pad each 217×181 plane
 * symmetrically to 217×217; resample to 160×160 (antialiased linear); store float32 NIfTI, gzip.
 */
import { join } from 'node:path';
import { readNifti, writeNifti } from '../src-main/data/nifti.js';
import { resampleSlices, selectSlices } from '../src-main/data/volume.js';
import { SAMPLE_FILE } from '../src-main/data/sample.js';

const SLICES = 40;
const SIZE = 160;

const source = process.argv[2] ?? '/usr/share/mricron/templates/ch2.nii.gz';
const out = process.argv[3] ?? join(import.meta.dirname, '..', 'resources', 'sample', SAMPLE_FILE);

const vol = readNifti(source);
const mid = Math.floor(vol.slices / 2);
const axial = selectSlices(vol, mid - SLICES / 2, mid + SLICES / 2);
const side = Math.max(axial.h, axial.w);
const padded = new Float32Array(SLICES * side * side);
const r0 = Math.floor((side - axial.h) / 2);
const c0 = Math.floor((side - axial.w) / 2);
for (let s = 0; s < SLICES; s++) {
  for (let r = 0; r < axial.h; r++) {
    const srcRow = axial.h - 1 - r; // NIfTI j grows anteriorly; image rows grow downwards
    for (let c = 0; c < axial.w; c++) {
      padded[s * side * side + (r + r0) * side + c + c0] =
        axial.data[s * axial.h * axial.w + srcRow * axial.w + c];
    }
  }
}
const square = { data: padded, slices: SLICES, h: side, w: side, spacing: axial.spacing };
const sample = resampleSlices(square, SIZE);
writeNifti(out, sample);
console.log(
  `${source} (${vol.w}×${vol.h}×${vol.slices}) → ${out}: ${SLICES} slices of ${SIZE}×${SIZE}, axial planes ${mid - SLICES / 2}–${mid + SLICES / 2 - 1}`,
);
