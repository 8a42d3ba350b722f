/**
 * `kdmri convert IN OUT.nii.gz`: any supported input (DICOM file, folder or DICOMDIR; NIfTI; fastMRI or
 * KD-MRI HDF5; or `series:<UID>` from the library) to a float32 NIfTI with pixels after rescale.
 */
import type { Command } from 'commander';
import {
  convertFile,
  writeConverted,
  type ConvertInput,
  type ConvertSummary,
} from '../../services/convert.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { addLimitOptions, applyLimitOptions, intArg, type LimitOptions } from '../options.js';
import { printJson } from '../output.js';

interface ConvertOptions extends LimitOptions {
  db?: string;
  index?: number;
  json: boolean;
}

/**
 * Read the input and write it: a library series through the studies service (written while the
 * library is open, one slice at a time), a file through the convert service.
 */
async function convert(input: string, out: string, o: ConvertOptions): Promise<ConvertSummary> {
  if (input.startsWith('series:')) {
    const uid = input.slice('series:'.length);
    return withServices(o, (services) => {
      const { stack, detail } = services.studies.seriesStack(uid);
      const read: ConvertInput = { volumes: [stack], labels: [`${detail.modality} ${detail.description}`] };
      return writeConverted(read, input, out, o.index);
    });
  }
  return convertFile(input, out, o.index);
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
    const summary = await convert(input, out, o);
    if (o.json) printJson(summary);
    else {
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(
        `wrote ${summary.out}: ${summary.label}, ${summary.slices} slices of ${summary.h}×${summary.w} (float32)\n`,
      );
    }
  });
}
