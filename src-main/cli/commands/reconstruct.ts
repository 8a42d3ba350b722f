/**
 * `kdmri reconstruct`: apply a saved model to a volume and write the result as NIfTI (float32, each
 * slice in the [0, 1] scale of its normalised target).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../../compute/backend.js';
import { readNifti, writeNifti } from '../../data/nifti.js';
import { readVolumes } from '../../distill/data-source.js';
// Registers the DICOM and HDF5 readers with the data source.
import '../../studies/index.js';
import { reconstructVolume } from '../../distill/infer.js';
import type { BackendName, Volume } from '../../contract/domain.js';
import { UserError } from '../errors.js';
import {
  addDegradationOptions,
  degradationFor,
  loadModelOrFail,
  type DegradationOptions,
} from '../model-args.js';
import { printJson } from '../output.js';

interface ReconstructOptions extends DegradationOptions {
  model: string;
  input: string;
  out: string;
  degraded?: string;
  backend?: BackendName;
  json: boolean;
}

export function register(program: Command): void {
  addDegradationOptions(
    program
      .command('reconstruct')
      .description('reconstruct (or restore) every slice of a volume with a saved model')
      .requiredOption('--model <dir>', 'model folder')
      .requiredOption('--input <file>', 'input volume (NIfTI, DICOM series folder, HDF5)')
      .requiredOption('--out <file.nii.gz>', 'output NIfTI file')
      .option('--degraded <file.nii.gz>', 'also write the degraded input (zero-filled or low-resolution)')
      .option('--json', 'print a JSON summary', false),
  ).action(async (o: ReconstructOptions) => {
    if (!/\.nii(\.gz)?$/i.test(o.out))
      throw new UserError(`--out must end in .nii or .nii.gz, got '${o.out}'`);
    const info = await initBackend({ prefer: o.backend }).catch((e: Error) => {
      throw new UserError(e.message);
    });
    const { net, card } = loadModelOrFail(resolve(o.model));
    const degradation = degradationFor(card, o);
    let vol: Volume;
    try {
      vol = /\.nii(\.gz)?$/i.test(o.input) ? readNifti(resolve(o.input)) : loadAll(resolve(o.input));
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const t0 = performance.now();
    let r;
    try {
      r = reconstructVolume(net, vol, degradation);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const ms = performance.now() - t0;
    writeNifti(resolve(o.out), { ...r.output, spacing: vol.spacing });
    if (o.degraded) writeNifti(resolve(o.degraded), { ...r.input, spacing: vol.spacing });
    const summary = {
      model: card.name,
      backend: info.name,
      slices: vol.slices,
      msPerSlice: ms / vol.slices,
      out: resolve(o.out),
    };
    if (o.json) printJson(summary);
    else
      process.stdout.write(
        `${vol.slices} slices in ${(ms / 1000).toFixed(2)} s on ${info.name}; written to ${summary.out}\n`,
      );
    net.dispose();
  });
}

/** Non-NIfTI inputs go through the same readers as training data; all slices are reconstructed. */
function loadAll(path: string): Volume {
  const vols = readVolumes(path);
  if (vols.length !== 1)
    throw new Error(`${path}: holds ${vols.length} volumes; reconstruct one volume at a time`);
  return vols[0];
}
