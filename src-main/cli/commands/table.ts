/**
 * `kdmri table`: the paper-shaped results table of one job (or one study), built only from its own
 * validation evaluations: rows ZF, CS, teacher, student, KD (and student-long in a study), columns
 * accelerations, PSNR/SSIM/NMSE as mean ± 2·std over validation volumes (over seeds in a study),
 * with the split and the number of volumes behind every figure.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { TableFormat } from '../../contract/api.js';
import { defaultDbPath, openDatabase } from '../../store/db.js';
import { jobTable, renderTable, studyTable, TableError } from '../../results/table.js';
import { UserError } from '../errors.js';

interface TableOptions {
  job?: string;
  study?: string;
  db?: string;
  json: boolean;
  csv: boolean;
  markdown: boolean;
  latex: boolean;
}

export function register(program: Command): void {
  program
    .command('table')
    .description("a job's (or a study's) results on its validation split: ZF, CS, teacher, student, KD")
    .option('--job <id>', 'the job')
    .option('--study <id>', 'the study (kdmri study)')
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .option('--csv', 'print CSV (one line per model × column × metric)', false)
    .option('--markdown', 'print a Markdown table', false)
    .option('--latex', 'print a LaTeX tabular', false)
    .action((o: TableOptions) => {
      if ((o.job === undefined) === (o.study === undefined))
        throw new UserError('give exactly one of --job ID and --study ID');
      const formats = (['json', 'csv', 'markdown', 'latex'] as const).filter((f) => o[f]);
      if (formats.length > 1)
        throw new UserError(`choose one output format, not ${formats.map((f) => `--${f}`).join(' and ')}`);
      const format: TableFormat = formats[0] ?? 'text';
      const db = openDatabase(resolve(o.db ?? defaultDbPath()));
      try {
        const t = o.job !== undefined ? jobTable(db, o.job) : studyTable(db, o.study!);
        if (t.rows.length === 0)
          throw new UserError(`${t.kind} ${t.id} has no validation evaluations yet (has it finished?)`);
        process.stdout.write(`${renderTable(t, format)}\n`);
      } catch (e) {
        if (e instanceof TableError) throw new UserError(e.message);
        throw e;
      } finally {
        db.close();
      }
    });
}
