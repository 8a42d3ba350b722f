/**
 * Case k of a campaign: a function of the campaign seed and k alone (one Rng per case), so that cases
 * do not depend on each other and `--from K --cases 1` replays case K exactly.
 */
import { createHash } from 'node:crypto';
import { Rng } from '../../src-main/util/random.js';
import { MUTATIONS, mutate, type FileType, type Mutation } from './mutate.js';
import type { Seed } from './seeds.js';

export const TYPES: FileType[] = ['dicom', 'nifti', 'hdf5', 'png', 'crafted'];

export interface Case {
  k: number;
  type: FileType;
  seed: string;
  mutation: Mutation;
  detail: string;
  bytes: number;
  /** The case file's SHA-256 (16 hex digits): a replay must produce the same. */
  sha: string;
}

/** Case k of campaign `seed`: type uniform, then a seed file of that type, then a mutation. */
export function makeCase(
  seeds: Seed[],
  seed: number,
  k: number,
): { c: Case; bytes: Uint8Array; ext: string } {
  // one Rng per case, seeded from (seed, k) only: cases do not depend on each other
  const rng = new Rng((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca77)) >>> 0);
  for (let i = 0; i < 3; i++) rng.next();
  const present = TYPES.filter((t) => seeds.some((s) => s.type === t));
  const type = present[rng.int(present.length)];
  const ofType = seeds.filter((s) => s.type === type);
  const s = ofType[rng.int(ofType.length)];
  // crafted files are hostile as they are: half of their cases leave them untouched
  const mutation: Mutation =
    type === 'crafted' && rng.next() < 0.5 ? 'none' : MUTATIONS[1 + rng.int(MUTATIONS.length - 1)];
  const m = mutate(rng, type === 'crafted' ? guessType(s) : type, s.ext, s.bytes, mutation);
  return {
    c: {
      k,
      type,
      seed: s.name,
      mutation,
      detail: m.detail,
      bytes: m.bytes.length,
      sha: createHash('sha256').update(m.bytes).digest('hex').slice(0, 16),
    },
    bytes: m.bytes,
    ext: m.ext,
  };
}

/** The format a crafted seed is mutated as. */
function guessType(s: Seed): FileType {
  if (s.ext === '.dcm') return 'dicom';
  if (s.ext.startsWith('.nii')) return 'nifti';
  if (s.ext === '.h5') return 'hdf5';
  return 'png';
}

/** A process's resident memory now (VmRSS) or its peak since the child's last reset (VmHWM), bytes. */
