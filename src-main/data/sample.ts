/**
 * The bundled sample: 40 axial slices of the Colin27 T1 brain (Debian mricron-data's ch2.nii.gz,
 * BSD-3), made by scripts/make-sample.ts. See resources/sample/README.md.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SAMPLE_FILE = 'colin27-t1-40slices.nii.gz';

/** Slices [from, to): the first 30 train, the last 10 validate (a split by slice range). */
export const SAMPLE_SPLIT: { trainSlices: [number, number]; valSlices: [number, number] } = {
  trainSlices: [0, 30],
  valSlices: [30, 40],
};

/**
 * Absolute path of the sample. Looks in the packaged app's resources (process.resourcesPath), then
 * walks up from this module (src-main/data when run from source, build/main/data when compiled) to
 * the project's resources/ folder.
 */
export function sampleDataPath(): string {
  const candidates: string[] = [];
  const rp = (process as NodeJS.Process & { resourcesPath?: string }).resourcesPath;
  if (rp) candidates.push(join(rp, 'sample', SAMPLE_FILE));
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    candidates.push(join(dir, 'resources', 'sample', SAMPLE_FILE));
    dir = resolve(dir, '..');
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new Error(`the bundled sample ${SAMPLE_FILE} is missing (looked in ${candidates.join(', ')})`);
  return found;
}
