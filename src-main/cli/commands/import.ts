/**
 * `kdmri import PATH...`: DICOM files, folders, DICOMDIR media, NIfTI and HDF5 files into the library.
 * One result per file (imported / skipped with reason / failed with reason). Exit 0 when something was
 * imported or nothing failed; 1 when files failed and none was imported.
 */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { addLimitOptions, applyLimitOptions, type LimitOptions } from '../options.js';
import { printJson } from '../output.js';

interface ImportOptions extends LimitOptions {
  db?: string;
  json: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('import')
    .description(
      'import DICOM files/folders/DICOMDIR, NIfTI or fastMRI/KD-MRI HDF5 files into the studies library',
    )
    .argument('<paths...>', 'files or folders (folders are searched recursively)')
    .option('--db <file>', 'database file')
    .option('--json', 'print a JSON array of per-file results', false);
  addLimitOptions(cmd).action(async (paths: string[], o: ImportOptions) => {
    applyLimitOptions(o);
    return withServices(o, async (services) => {
      const tty = !o.json && process.stderr.isTTY;
      const res = await services.studies.importNow(paths, (done, total) => {
        if (tty) process.stderr.write(`\rimporting ${done}/${total}`);
      });
      if (tty) process.stderr.write('\n');
      const count = (s: string) => res.filter((r) => r.status === s).length;
      const imported = count('imported');
      const failed = count('failed');
      if (o.json) printJson(res);
      else {
        for (const r of res) {
          process.stdout.write(`${r.status.padEnd(8)} ${r.path}: ${r.message}\n`);
          for (const w of r.warnings ?? []) process.stdout.write(`  warning: ${w}\n`);
        }
        const series = new Set(
          res.flatMap((r) => (r.seriesUid && r.status === 'imported' ? [r.seriesUid] : [])),
        );
        process.stdout.write(
          `${imported} imported (${series.size} series), ${count('skipped')} skipped, ${failed} failed\n`,
        );
      }
      if (imported === 0 && failed > 0)
        throw new UserError(`nothing imported: ${failed} file${failed > 1 ? 's' : ''} failed`, 1);
    });
  });
}
