/** `kdmri export --series UID --format dicom|nifti|png --out DIR`: a library series to files. */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultDbPath, openDatabase } from '../../store/db.js';
import { getSeries, loadSeriesVolume } from '../../studies/index.js';
import { exportSeriesDicom, writeVolumeNifti, writeVolumePngs } from '../../studies/export.js';
import { UserError } from '../errors.js';
import { choiceArg } from '../options.js';
import { printJson } from '../output.js';

const FORMATS = ['dicom', 'nifti', 'png'] as const;
type Format = (typeof FORMATS)[number];

interface ExportOptions {
  series: string;
  format: Format;
  out: string;
  db?: string;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('export')
    .description('export a library series as a DICOM derived series, a float32 NIfTI or PNG slices')
    .requiredOption('--series <uid>', 'Series Instance UID (see kdmri studies)')
    .requiredOption('--format <format>', 'dicom | nifti | png', choiceArg('--format', FORMATS))
    .requiredOption('--out <dir>', 'output folder')
    .option('--db <file>', 'database file')
    .option('--json', 'print a JSON summary', false)
    .action((o: ExportOptions) => {
      const db = openDatabase(resolve(o.db ?? defaultDbPath()));
      try {
        const s = getSeries(db, o.series);
        if (!s) throw new UserError(`no series ${o.series} in the library (see kdmri studies)`);
        const out = resolve(o.out);
        let files: string[];
        let extra: Record<string, unknown> = {};
        if (o.format === 'dicom') {
          const e = exportSeriesDicom(db, o.series, out, {
            derivation: { model: 'none (re-export)', note: `exported from series ${o.series}` },
          });
          files = e.paths;
          extra = {
            seriesUid: e.seriesUid,
            studyUid: e.studyUid,
            rescaleSlope: e.slope,
            rescaleIntercept: e.intercept,
          };
        } else if (o.format === 'nifti') {
          const p = join(out, `${o.series}.nii.gz`);
          writeVolumeNifti(loadSeriesVolume(db, o.series), p);
          files = [p];
        } else {
          files = writeVolumePngs(loadSeriesVolume(db, o.series), out);
        }
        if (o.json) printJson({ format: o.format, series: o.series, files, ...extra });
        else process.stdout.write(`wrote ${files.length} file${files.length > 1 ? 's' : ''} to ${out}\n`);
      } finally {
        db.close();
      }
    });
}
