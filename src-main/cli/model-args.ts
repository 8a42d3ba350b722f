/**
 * Options shared by the commands that apply a saved model (eval, reconstruct): which degradation to
 * apply, defaulting to the one the model was trained for.
 */
import type { Command } from 'commander';
import type { Degradation, MaskSpec } from '../contract/domain.js';
import type { ModelCard } from '../contract/domain.js';
import { loadModelDir, type LoadedModel } from '../distill/infer.js';
import { UserError } from './errors.js';
import { backendArg, intArg, MASK_FILE_HELP, maskFileArg, maskKindArg, numArg } from './options.js';

export interface DegradationOptions {
  acc?: number;
  mask?: Pick<MaskSpec, 'kind' | 'preset' | 'axis'>;
  maskFile?: MaskSpec;
  maskSeed?: number;
  keep?: number;
}

export function addDegradationOptions(cmd: Command): Command {
  return cmd
    .option('--acc <n>', "acceleration (default: the model's)", numArg('--acc', 1, 64))
    .option('--mask <kind>', "cartesian | random | equispaced | preset:… (default: the model's)", maskKindArg)
    .option('--mask-file <file>', MASK_FILE_HELP, maskFileArg)
    .option('--mask-seed <n>', "mask seed (default: the model's)", intArg('--mask-seed', 0, 2 ** 31))
    .option('--keep <f>', 'kept k-space fraction per axis, restoration models', numArg('--keep', 0, 0.999))
    .option('--backend <name>', 'force a compute backend', backendArg);
}

/** The model's training degradation with the user's overrides applied. */
export function degradationFor(card: ModelCard, o: DegradationOptions): Degradation {
  const d = card.degradation;
  if (d.kind === 'lowres') {
    if (o.acc !== undefined || o.mask || o.maskFile)
      throw new UserError(`${card.name} is a restoration model: use --keep, not --acc/--mask/--mask-file`);
    return { kind: 'lowres', keep: o.keep ?? d.keep };
  }
  if (o.keep !== undefined)
    throw new UserError(`${card.name} is a reconstruction model: use --acc/--mask, not --keep`);
  if (o.maskFile) {
    if (o.mask || o.acc !== undefined || o.maskSeed !== undefined)
      throw new UserError('--mask-file gives the whole mask: leave out --mask, --acc and --mask-seed');
    return { kind: 'mask', mask: o.maskFile };
  }
  const mask: MaskSpec = {
    ...d.mask,
    ...(o.mask ? { kind: o.mask.kind, preset: o.mask.preset, axis: o.mask.axis } : {}),
    acc: o.acc ?? d.mask.acc,
    seed: o.maskSeed ?? d.mask.seed,
  };
  return { kind: 'mask', mask };
}

export function loadModelOrFail(dir: string): LoadedModel {
  try {
    return loadModelDir(dir);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}
