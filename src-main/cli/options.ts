/**
 * Argument parsers shared by the commands. Each returns a typed value or throws a UserError that names
 * the option and what was expected, so that bad input never reaches the engine.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { parseSize, setInputLimits, type InputLimits } from '../data/limits.js';
import { BACKENDS, MASK_PRESETS, type BackendName, type MaskSpec } from '../contract/domain.js';
import { readMaskFile } from '../kspace/mask-file.js';

export function intArg(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got '${v}'`);
    }
    return n;
  };
}

export function numArg(name: string, minExclusive: number, maxInclusive: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= minExclusive || n > maxInclusive) {
      throw new InvalidArgumentError(
        `${name} must be a number above ${minExclusive} and at most ${maxInclusive}, got '${v}'`,
      );
    }
    return n;
  };
}

export function choiceArg<T extends string>(name: string, choices: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(choices as readonly string[]).includes(v)) {
      throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got '${v}'`);
    }
    return v as T;
  };
}

export const backendArg = choiceArg<BackendName>('--backend', BACKENDS);

/** "240x240" or "640×368" → [h, w]. */
export function shapeArg(v: string): [number, number] {
  const m = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`--shape must look like 240x240 (rows x columns), got '${v}'`);
  const h = Number(m[1]);
  const w = Number(m[2]);
  if (h < 2 || w < 2 || h > 4096 || w > 4096)
    throw new InvalidArgumentError(`--shape sides must be 2 to 4096, got '${v}'`);
  return [h, w];
}

const PRESET_ALIASES: Record<string, (typeof MASK_PRESETS)[number]> = {
  cardiac: 'cardiac',
  brain: 'mrbrain',
  mrbrain: 'mrbrain',
  knee: 'knee',
};

/** "cartesian" | "random" | "equispaced" | "preset:brain" → the kind (and preset) part of a MaskSpec. */
export function maskKindArg(v: string): Pick<MaskSpec, 'kind' | 'preset' | 'axis'> {
  if (v === 'cartesian' || v === 'random' || v === 'equispaced') return { kind: v, axis: 'rows' };
  const m = /^preset:(\w+)$/.exec(v);
  const preset = m ? PRESET_ALIASES[m[1]] : undefined;
  if (!preset) {
    throw new InvalidArgumentError(
      `--mask must be cartesian, random, equispaced or preset:cardiac|brain|knee, got '${v}'`,
    );
  }
  return { kind: 'preset', preset, axis: preset === 'knee' ? 'cols' : 'rows' };
}

export function listArg<T extends string>(name: string, choices: readonly T[]): (v: string) => T[] {
  return (v) => {
    const parts = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = parts.filter((p) => !(choices as readonly string[]).includes(p));
    if (parts.length === 0 || bad.length) {
      throw new InvalidArgumentError(
        `${name} takes a comma-separated list of ${choices.join(', ')}, got '${v}'`,
      );
    }
    return parts as T[];
  };
}

/** "64M", "2G", "1000000" → a positive integer (binary multiples). */
export function sizeArg(name: string): (v: string) => number {
  return (v) => {
    const n = parseSize(v);
    if (n === null)
      throw new InvalidArgumentError(
        `${name} must be a positive size such as 64M, 2G or 1000000, got '${v}'`,
      );
    return n;
  };
}

/** The input-limit options (src-main/data/limits.ts) on a command that reads user files. */
export interface LimitOptions {
  maxVoxels?: number;
  maxBytes?: number;
  maxFrames?: number;
  maxFileSize?: number;
}

export function addLimitOptions(cmd: Command): Command {
  return cmd
    .option('--max-voxels <n>', 'largest volume read, in voxels (default 64M)', sizeArg('--max-voxels'))
    .option(
      '--max-bytes <n>',
      'largest decompressed stream / pixel data read, in bytes (default 1G)',
      sizeArg('--max-bytes'),
    )
    .option('--max-frames <n>', 'most frames in one DICOM object (default 16384)', sizeArg('--max-frames'))
    .option('--max-file-size <n>', 'largest input file, in bytes (default 1G)', sizeArg('--max-file-size'));
}

/** Put the command's limit options in force (for this process and the workers it starts). */
export function applyLimitOptions(o: LimitOptions): void {
  const p: Partial<InputLimits> = {
    maxVoxels: o.maxVoxels,
    maxBytes: o.maxBytes,
    maxFrames: o.maxFrames,
    maxFileBytes: o.maxFileSize,
  };
  setInputLimits(p);
}
/** `--mask-file`: a PNG or .npy mask (unshifted, as `kdmri mask` writes it) read into a MaskSpec. */
export function maskFileArg(v: string): MaskSpec {
  try {
    return readMaskFile(resolve(v));
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

export const MASK_FILE_HELP =
  'mask from a PNG or .npy file (H×W, unshifted as `kdmri mask` writes it; its true acceleration replaces --acc)';
