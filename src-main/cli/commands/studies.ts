/** `kdmri studies`: the library as patients → studies → series. */
import type { Command } from 'commander';
import { withServices } from '../library.js';
import { printJson, table } from '../output.js';

interface StudiesOptions {
  db?: string;
  search?: string;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('studies')
    .description('list the studies library: patients, studies and series')
    .option('--db <file>', 'database file')
    .option('--search <text>', 'only entries whose names, IDs, descriptions, dates or UIDs contain this')
    .option('--json', 'print a JSON array (patients → studies → series)', false)
    .action((o: StudiesOptions) =>
      withServices(o, async (services) => {
        const patients = await services.handlers.listStudies(o.search ? { search: o.search } : {});
        if (o.json) return printJson(patients);
        if (patients.length === 0)
          return void process.stdout.write('the library is empty: add studies with `kdmri import PATH`\n');
        const rows: (string | number)[][] = [
          ['patient', 'study date', 'study', 'series', 'modality', 'slices', 'size', 'series UID'],
        ];
        for (const p of patients)
          for (const s of p.studies)
            for (const se of s.series)
              rows.push([
                `${p.name || '(no name)'} [${p.id || '-'}]`,
                s.date || '-',
                s.description || '-',
                `${se.number ?? '-'} ${se.description}`.trim(),
                se.modality || '-',
                se.slices,
                `${se.rows}×${se.columns}`,
                se.uid,
              ]);
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
}
