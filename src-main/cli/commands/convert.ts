/**
 * `kdmri convert IN OUT.nii.gz`: any supported input (DICOM file, folder or DICOMDIR; NIfTI; fastMRI or
 * KD-MRI HDF5; or `series:<UID>` from the library) to a float32 NIfTI with pixels after rescale.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiFailure } from '../../contract/api.js';
import type { Volume } from '../../contract/domain.js';
import { readNifti } from '../../data/nifti.js';
import { readDicomVolumes } from '../../studies/volumes.js';
import { readHdf5Volumes } from '../../studies/hdf5-registry.js';
import { writeVolumeNifti } from '../../studies/export.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { addLimitOptions, applyLimitOptions, intArg, type LimitOptions } from '../options.js';
import { printJson } from '../output.js';

interface ConvertOptions extends LimitOptions {
  db?: string;
  index?: number;
  json: boolean;
}

interface Read {
  volumes: Volume[];
  labels: string[];
  /** Repairs and left-out files, reported with the result (stderr, or "warnings" in --json). */
  warnings?: string[];
}

async function readInput(input: string, o: ConvertOptions): Promise<Read> {
  if (input.startsWith('series:')) {
    const uid = input.slice('series:'.length);
    return withServices(o, (services) => {
      const { volume, detail } = services.studies.seriesVolume(uid);
      return { volumes: [volume], labels: [`${detail.modality} ${detail.description}`] };
    });
  }
  const abs = resolve(input);
  if (!existsSync(abs)) throw new UserError(`${abs}: no such file or folder`);
  if (/\.nii(\.gz)?$/i.test(abs)) return { volumes: [readNifti(abs)], labels: ['NIfTI volume'] };
  const h5 = readHdf5Volumes(abs);
  if (h5) return { volumes: h5.map((v) => v.volume), labels: h5.map((v) => v.label) };
  const dcm = readDicomVolumes(abs);
  if (dcm) return dcm;
  throw new UserError(`${abs}: not a DICOM file/folder, NIfTI or HDF5 file`);
}

export function register(program: Command): void {
  const cmd = program
    .command('convert')
    .description(
      'convert DICOM (file, folder, DICOMDIR), NIfTI, HDF5 or a library series (series:<UID>) to a float32 NIfTI',
    )
    .argument('<in>', 'input file or folder, or series:<UID>')
    .argument('<out>', 'output .nii or .nii.gz')
    .option('--db <file>', 'database file (for series:<UID>)')
    .option(
      '--index <n>',
      'which series/volume when the input holds several (0-based)',
      intArg('--index', 0, 100000),
    )
    .option('--json', 'print a JSON summary', false);
  addLimitOptions(cmd).action(async (input: string, out: string, o: ConvertOptions) => {
    if (!/\.nii(\.gz)?$/i.test(out)) throw new UserError(`output must end in .nii or .nii.gz, got ${out}`);
    applyLimitOptions(o);
    let read: Read;
    try {
      read = await readInput(input, o);
    } catch (e) {
      if (e instanceof UserError || e instanceof ApiFailure) throw e;
      throw new UserError(e instanceof Error ? e.message : String(e));
    }
    const { volumes, labels } = read;
    if (volumes.length > 1 && o.index === undefined) {
      const list = labels
        .map((l, i) => `${i}: ${l} (${volumes[i].slices}×${volumes[i].h}×${volumes[i].w})`)
        .join('; ');
      throw new UserError(
        `${input} holds ${volumes.length} series/volumes; choose one with --index (${list})`,
      );
    }
    const k = o.index ?? 0;
    if (k >= volumes.length)
      throw new UserError(`--index ${k}: ${input} holds ${volumes.length} series/volumes`);
    const vol = volumes[k];
    const path = resolve(out);
    writeVolumeNifti({ data: vol.data, slices: vol.slices, h: vol.h, w: vol.w, spacing: vol.spacing }, path);
    const summary = {
      out: path,
      label: labels[k],
      slices: vol.slices,
      h: vol.h,
      w: vol.w,
      spacing: vol.spacing ?? null,
      warnings: read.warnings ?? [],
    };
    if (o.json) printJson(summary);
    else {
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(
        `wrote ${path}: ${labels[k]}, ${vol.slices} slices of ${vol.h}×${vol.w} (float32)\n`,
      );
    }
  });
}
