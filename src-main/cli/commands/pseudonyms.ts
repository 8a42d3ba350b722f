/**
 * `kdmri pseudonyms`: the de-identification key map kept in the library (original ↔ pseudonym), for
 * the lab to re-identify a de-identified export. It never leaves the library: exports carry only the
 * pseudonyms.
 */
import type { Command } from 'commander';
import type { PseudonymKind } from '../../store/db.js';
import { PSEUDONYM_KINDS } from '../../store/repos/pseudonyms.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { choiceArg } from '../options.js';
import { printJson, table } from '../output.js';

interface PseudonymOptions {
  reveal?: string;
  kind?: PseudonymKind;
  db?: string;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('pseudonyms')
    .description('the de-identification key map: which original each pseudonym of an export stands for')
    .option(
      '--reveal <pseudonym>',
      'only the original behind this pseudonym (e.g. ANON-3F9C21A7, a 2.25 UID)',
    )
    .option('--kind <kind>', PSEUDONYM_KINDS.join(' | '), choiceArg('--kind', PSEUDONYM_KINDS))
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .action((o: PseudonymOptions) =>
      withServices(o, ({ db }) => {
        if (o.reveal) {
          const row = db.pseudonyms.reveal(o.reveal);
          if (!row) throw new UserError(`${o.reveal} is not a pseudonym in this library's key map`);
          if (o.json) return printJson(row);
          return void process.stdout.write(`${row.pseudonym} = ${row.kind} ${row.original}\n`);
        }
        const rows = db.pseudonyms.list(o.kind);
        if (o.json) return printJson(rows);
        if (rows.length === 0) return void process.stdout.write('no de-identified export yet\n');
        process.stdout.write(
          `${table([
            ['kind', 'pseudonym', 'original', 'since'],
            ...rows.map((r) => [r.kind, r.pseudonym, r.original, new Date(r.createdAt).toISOString()]),
          ])}\n`,
        );
      }),
    );
}
