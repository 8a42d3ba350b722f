/**
 * `kdmri reconstruct`: reconstruct (or restore) every slice of a volume with a saved model
 * (`--model DIR`) or with the ℓ1-wavelet compressed-sensing baseline (`--method cs`), and write the
 * result as float32 NIfTI in the input's scale (each slice multiplied back by the maximum it was
 * normalised by) and, for a NIfTI input, with its geometry (qform, sform, voxel sizes): the output
 * overlays its source.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../../compute/backend.js';
import { readNiftiWithGeometry, writeNifti, type NiftiGeometry } from '../../data/nifti.js';
import { readVolumes } from '../../distill/data-source.js';
// Registers the DICOM and HDF5 readers with the data source.
import '../../studies/index.js';
import {
  csReconstructVolume,
  inSourceScale,
  reconstructVolume,
  type Reconstruction,
} from '../../distill/infer.js';
import {
  CsParamsSchema,
  type BackendName,
  type Degradation,
  type MaskSpec,
  type Volume,
} from '../../contract/domain.js';
import { UserError } from '../errors.js';
import {
  addDegradationOptions,
  degradationFor,
  loadModelOrFail,
  type DegradationOptions,
} from '../model-args.js';
import { choiceArg, intArg, numArg } from '../options.js';
import { printJson } from '../output.js';

interface ReconstructOptions extends DegradationOptions {
  method?: 'model' | 'cs';
  model?: string;
  input: string;
  out: string;
  degraded?: string;
  lambda?: number;
  iterations?: number;
  backend?: BackendName;
  json: boolean;
}

/** The mask CS reconstructs with: a mask file, or a kind (default cartesian) at --acc. */
function csDegradation(o: ReconstructOptions): Degradation {
  if (o.keep !== undefined)
    throw new UserError('--method cs reconstructs from a mask: use --acc/--mask, not --keep');
  if (o.maskFile) {
    if (o.mask || o.acc !== undefined || o.maskSeed !== undefined)
      throw new UserError('--mask-file gives the whole mask: leave out --mask, --acc and --mask-seed');
    return { kind: 'mask', mask: o.maskFile };
  }
  if (o.acc === undefined) throw new UserError('--method cs needs --acc N (or --mask-file FILE)');
  const kind: Pick<MaskSpec, 'kind' | 'preset' | 'axis'> = o.mask ?? { kind: 'cartesian', axis: 'rows' };
  return { kind: 'mask', mask: { ...kind, acc: o.acc, seed: o.maskSeed ?? 42 } };
}

export function register(program: Command): void {
  addDegradationOptions(
    program
      .command('reconstruct')
      .description(
        'reconstruct every slice of a volume with a saved model or compressed sensing, in the input’s scale and geometry',
      )
      .option(
        '--method <method>',
        'model (a saved model, --model) or cs (ℓ1-wavelet compressed sensing)',
        choiceArg('--method', ['model', 'cs'] as const),
      )
      .option('--model <dir>', 'model folder (--method model)')
      .requiredOption('--input <file>', 'input volume (NIfTI, DICOM series folder, HDF5)')
      .requiredOption('--out <file.nii.gz>', 'output NIfTI file')
      .option('--degraded <file.nii.gz>', 'also write the degraded input (zero-filled or low-resolution)')
      .option(
        '--lambda <l>',
        'cs: ℓ1 weight, relative to the largest zero-filled magnitude (default 0.003)',
        numArg('--lambda', 0, 1),
      )
      .option('--iterations <n>', 'cs: FISTA iterations (default 150)', intArg('--iterations', 1, 5000))
      .option('--json', 'print a JSON summary', false),
  ).action(async (o: ReconstructOptions) => {
    const method = o.method ?? (o.model !== undefined ? 'model' : undefined);
    if (method === undefined) throw new UserError('give --model DIR, or --method cs');
    if (method === 'cs' && o.model !== undefined)
      throw new UserError('--method cs uses no model: leave out --model');
    if (method === 'model' && o.model === undefined) throw new UserError('--method model needs --model DIR');
    if (method === 'model' && (o.lambda !== undefined || o.iterations !== undefined))
      throw new UserError('--lambda and --iterations are for --method cs');
    if (!/\.nii(\.gz)?$/i.test(o.out))
      throw new UserError(`--out must end in .nii or .nii.gz, got '${o.out}'`);
    if (o.degraded !== undefined && !/\.nii(\.gz)?$/i.test(o.degraded))
      throw new UserError(`--degraded must end in .nii or .nii.gz, got '${o.degraded}'`);

    let vol: Volume;
    let geometry: NiftiGeometry | undefined;
    try {
      if (/\.nii(\.gz)?$/i.test(o.input))
        ({ volume: vol, geometry } = readNiftiWithGeometry(resolve(o.input)));
      else vol = loadAll(resolve(o.input));
    } catch (e) {
      throw new UserError((e as Error).message);
    }

    let r: Reconstruction;
    let label: string;
    let backend: string;
    const t0 = performance.now();
    if (method === 'cs') {
      const degradation = csDegradation(o);
      const params = CsParamsSchema.parse({
        ...(o.lambda !== undefined ? { lambda: o.lambda } : {}),
        ...(o.iterations !== undefined ? { iterations: o.iterations } : {}),
      });
      try {
        r = csReconstructVolume(vol, degradation, params);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      label = `cs (λ ${params.lambda}, ${params.iterations} iterations)`;
      backend = 'cpu (TypeScript)';
    } else {
      const info = await initBackend({ prefer: o.backend }).catch((e: Error) => {
        throw new UserError(e.message);
      });
      const { net, card } = loadModelOrFail(resolve(o.model!));
      try {
        r = reconstructVolume(net, vol, degradationFor(card, o));
      } catch (e) {
        throw new UserError((e as Error).message);
      } finally {
        net.dispose();
      }
      label = card.name;
      backend = info.name;
    }
    const ms = performance.now() - t0;
    writeNifti(resolve(o.out), inSourceScale(r.output, vol), geometry);
    if (o.degraded) writeNifti(resolve(o.degraded), inSourceScale(r.input, vol), geometry);
    const summary = {
      method,
      model: method === 'model' ? label : null,
      reconstruction: label,
      backend,
      slices: vol.slices,
      msPerSlice: ms / vol.slices,
      out: resolve(o.out),
    };
    if (o.json) printJson(summary);
    else
      process.stdout.write(
        `${vol.slices} slices (${label}) in ${(ms / 1000).toFixed(2)} s on ${backend}; written to ${summary.out}\n`,
      );
  });
}

/** Non-NIfTI inputs go through the same readers as training data; all slices are reconstructed. */
function loadAll(path: string): Volume {
  const vols = readVolumes(path);
  if (vols.length !== 1)
    throw new Error(`${path}: holds ${vols.length} volumes; reconstruct one volume at a time`);
  return vols[0];
}
