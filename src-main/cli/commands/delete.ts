/**
 * `kdmri delete model|dataset|series|study|patient ID [--cascade] [--yes]`: remove something from the
 * library with its files (model folders, checkpoints, pixels, the library's DICOM copies). It says what
 * will go and asks first (on a terminal; elsewhere --yes is required). What depends on the target (the
 * datasets built from a series, the jobs and models of a dataset) goes only with --cascade.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { DELETE_KINDS, describeDeletePlan, type DeleteKind } from '../../contract/api.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { choiceArg } from '../options.js';
import { printJson } from '../output.js';

interface DeleteOptions {
  db?: string;
  cascade: boolean;
  yes: boolean;
  json: boolean;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function register(program: Command): void {
  program
    .command('delete')
    .description('delete a model, dataset, series, study or patient from the library, with its files')
    .argument('<kind>', DELETE_KINDS.join(' | '), choiceArg('kind', DELETE_KINDS))
    .argument('<id>', 'model or dataset id, series or study UID, PatientID (or "PatientID\\PatientName")')
    .option(
      '--cascade',
      'also delete what depends on it (datasets of a series, jobs and models of a dataset)',
      false,
    )
    .option('--yes', 'do not ask', false)
    .option('--db <file>', 'database file')
    .option('--json', 'print the outcome as JSON', false)
    .action((kind: DeleteKind, rawId: string, o: DeleteOptions) =>
      withServices(o, async (services) => {
        const numeric = kind === 'model' || kind === 'dataset';
        if (numeric && !/^\d+$/.test(rawId))
          throw new UserError(
            `a ${kind} is named by its number (see kdmri runs / the Runs page), got '${rawId}'`,
          );
        const target = { kind, id: numeric ? Number(rawId) : rawId };
        const { plan } = await services.deletion.deleteItem({ target, cascade: o.cascade, dryRun: true });
        if (!o.json) process.stderr.write(`${describeDeletePlan(plan).join('\n')}\n`);
        if (plan.blockedBy) throw new UserError(`cannot delete ${plan.target.label}: ${plan.blockedBy}`, 1);
        if (plan.dependents && !o.cascade) throw new UserError(`${plan.dependents}: add --cascade`, 1);
        if (plan.dependents) process.stderr.write(`${plan.dependents}\n`);
        if (!o.yes) {
          if (!process.stdin.isTTY)
            throw new UserError('not a terminal, so nothing was deleted: add --yes to delete without asking');
          if (!(await confirm('Delete all of this? [y/N] '))) {
            process.stderr.write('nothing deleted\n');
            process.exitCode = 1;
            return;
          }
        }
        const outcome = await services.deletion.deleteItem({ target, cascade: o.cascade, dryRun: false });
        if (o.json) printJson(outcome);
        else process.stdout.write(`deleted ${outcome.plan.target.label}\n`);
      }),
    );
}
