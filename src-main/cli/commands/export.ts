/**
 * `kdmri export`: the services' exports from the command line.
 *   --series UID --format dicom|nifti|png --out DIR     a library series
 *   --model DIR  --format onnx|folder     --out FILE|DIR a saved model (ONNX opset 17, DC layers inside)
 * `--deidentify` applies the DICOM PS3.15 basic profile with the library's key map (for a model: its
 * card's data source becomes a pseudonym).
 */
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Db } from '../../store/db.js';
import { copyModelFolder, exportSeriesFiles, writeModelOnnx } from '../../services/exports.js';
import { Deidentifier } from '../../studies/deidentify.js';
import { ApiFailure } from '../../contract/api.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { choiceArg } from '../options.js';
import { printJson } from '../output.js';

const FORMATS = ['dicom', 'nifti', 'png', 'onnx', 'folder'] as const;
type Format = (typeof FORMATS)[number];
const SERIES_FORMATS: readonly Format[] = ['dicom', 'nifti', 'png'];
const MODEL_FORMATS: readonly Format[] = ['onnx', 'folder'];
const VERSION = '0.1.0';

interface ExportOptions {
  series?: string;
  model?: string;
  format: Format;
  out: string;
  deidentify: boolean;
  db?: string;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('export')
    .description(
      'export a library series (DICOM derived series, float32 NIfTI, PNG slices) or a model (ONNX, folder)',
    )
    .option('--series <uid>', 'Series Instance UID (see kdmri studies)')
    .option('--model <dir>', 'model folder (model.json + weights.bin)')
    .requiredOption(
      '--format <format>',
      'dicom | nifti | png (series); onnx | folder (model)',
      choiceArg('--format', FORMATS),
    )
    .requiredOption('--out <path>', 'output folder (an .onnx file for --format onnx)')
    .option('--deidentify', 'de-identify (DICOM PS3.15 basic profile, key map kept in the library)', false)
    .option('--db <file>', 'database file')
    .option('--json', 'print a JSON summary', false)
    .action(async (o: ExportOptions) => {
      if (!!o.series === !!o.model) throw new UserError('give exactly one of --series UID or --model DIR');
      const allowed = o.series ? SERIES_FORMATS : MODEL_FORMATS;
      if (!allowed.includes(o.format))
        throw new UserError(
          `--format ${o.format} does not apply to ${o.series ? 'a series' : 'a model'}: use ${allowed.join(' | ')}`,
        );
      const run = (db: Db | null) => {
        const deid = db && o.deidentify ? new Deidentifier(db.pseudonyms) : null;
        const out = resolve(o.out);
        let files: string[];
        let extra: Record<string, unknown> = {};
        try {
          if (o.series) {
            const r = exportSeriesFiles(db!, o.series, o.format as 'dicom' | 'nifti' | 'png', out, {
              deidentify: deid,
            });
            files = r.paths;
            extra = r.extra;
          } else if (o.format === 'onnx') {
            const file = /\.onnx$/i.test(out) ? out : join(out, 'model.onnx');
            const r = writeModelOnnx(resolve(o.model!), file, { version: VERSION, deidentify: deid });
            files = [r.path];
            extra = { bytes: r.bytes, kind: r.card.kind, task: r.card.task, opset: 17 };
          } else {
            files = copyModelFolder(resolve(o.model!), out, deid);
          }
        } catch (e) {
          if (e instanceof ApiFailure || e instanceof Error) throw new UserError(e.message);
          throw e;
        }
        if (o.json)
          printJson({
            format: o.format,
            series: o.series,
            model: o.model,
            deidentified: !!deid,
            files,
            ...extra,
          });
        else {
          const where = files.length === 1 ? files[0] : o.format === 'onnx' ? dirname(files[0]) : out;
          process.stdout.write(`wrote ${files.length} file${files.length > 1 ? 's' : ''} to ${where}\n`);
          // e.g. a NIfTI of a series whose orientation is unknown (voxel spacing only)
          const warnings = Array.isArray(extra.warnings) ? (extra.warnings as string[]) : [];
          for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
        }
      };
      // the library is needed for a series, and for the key map of a de-identified export
      if (o.series || o.deidentify) await withServices(o, (services) => run(services.db));
      else run(null);
    });
}
