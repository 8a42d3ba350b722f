/**
 * `kdmri table`: the paper-shaped results table of one job (or one study), built only from its own
 * validation evaluations: rows ZF, CS, teacher, student, KD (and student-long in a study), columns
 * accelerations, PSNR/SSIM/NMSE as mean ± 2·std over validation volumes (over seeds in a study),
 * with the split and the number of volumes behind every figure.
 */
import type { Command } from 'commander';
import type { TableFormat } from '../../contract/api.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';

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
      // the services' paperTable: the same table the Runs page shows
      return withServices(o, async (services) => {
        const { table: t, text } = await services.handlers.paperTable(
          o.job !== undefined ? { jobId: o.job, format } : { studyId: o.study!, format },
        );
        if (t.rows.length === 0)
          throw new UserError(`${t.kind} ${t.id} has no validation evaluations yet (has it finished?)`);
        process.stdout.write(`${text}\n`);
      });
    });
}
