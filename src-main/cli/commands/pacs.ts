/**
 * `kdmri pacs query|retrieve|store --url URL [--user U --password P | --token T]`: the lab's PACS over
 * DICOMweb. The password and token may come from KDMRI_PACS_PASSWORD / KDMRI_PACS_TOKEN instead of
 * the command line (which other users can see in the process list).
 */
import { readdirSync, readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { readFileBounded } from '../../data/limits.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultDbPath, openDatabase } from '../../store/db.js';
import { getSeries, seriesInstances } from '../../studies/index.js';
import { exportSeriesDicom } from '../../studies/export.js';
import {
  PacsError,
  searchSeries,
  searchStudies,
  storeInstances,
  type PacsSettings,
} from '../../studies/dicomweb.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { printJson, table } from '../output.js';

interface PacsOptions {
  url: string;
  user?: string;
  password?: string;
  token?: string;
  json: boolean;
  db?: string;
}

function settings(o: PacsOptions): PacsSettings {
  const password = o.password ?? process.env.KDMRI_PACS_PASSWORD;
  const token = o.token ?? process.env.KDMRI_PACS_TOKEN;
  if (o.user && token) throw new UserError('give either --user/--password or --token, not both');
  if (o.user) {
    if (password === undefined) throw new UserError('--user needs --password (or KDMRI_PACS_PASSWORD)');
    return { url: o.url, auth: { kind: 'basic', user: o.user, password } };
  }
  if (token) return { url: o.url, auth: { kind: 'bearer', token } };
  return { url: o.url, auth: { kind: 'none' } };
}

/** PacsError → one-line user error. */
async function pacs<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof PacsError) throw new UserError(e.message);
    throw e;
  }
}

function common(c: Command): Command {
  return c
    .requiredOption('--url <url>', 'DICOMweb root, e.g. http://pacs:8042/dicom-web')
    .option('--user <name>', 'basic-auth user')
    .option('--password <password>', 'basic-auth password (or KDMRI_PACS_PASSWORD)')
    .option('--token <token>', 'bearer token (or KDMRI_PACS_TOKEN)')
    .option('--json', 'print JSON', false);
}

export function register(program: Command): void {
  const cmd = program
    .command('pacs')
    .description('query, retrieve from and store to a PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS)');

  common(cmd.command('query').description('list studies (or the series of --study)'))
    .option('--patient-id <id>', 'PatientID filter (wildcards * ?)')
    .option('--patient-name <name>', 'PatientName filter (wildcards * ?)')
    .option('--date <range>', 'StudyDate (YYYYMMDD or YYYYMMDD-YYYYMMDD)')
    .option('--study <uid>', 'list the series of this study')
    .action(
      async (
        o: PacsOptions & { patientId?: string; patientName?: string; date?: string; study?: string },
      ) => {
        const s = settings(o);
        if (o.study) {
          const series = await pacs(() => searchSeries(s, o.study));
          if (o.json) return printJson(series);
          if (series.length === 0) return void process.stdout.write('no series\n');
          process.stdout.write(
            `${table([['series', 'modality', 'description', 'instances', 'series UID'], ...series.map((x) => [x.number ?? '-', x.modality, x.description || '-', x.instances ?? '-', x.uid])])}\n`,
          );
          return;
        }
        const filters: Record<string, string> = {};
        if (o.patientId) filters.PatientID = o.patientId;
        if (o.patientName) filters.PatientName = o.patientName;
        if (o.date) filters.StudyDate = o.date;
        const studies = await pacs(() => searchStudies(s, filters));
        if (o.json) return printJson(studies);
        if (studies.length === 0) return void process.stdout.write('no studies\n');
        process.stdout.write(
          `${table([['patient', 'date', 'description', 'modalities', 'series', 'study UID'], ...studies.map((x) => [`${x.patientName || '-'} [${x.patientId || '-'}]`, x.date || '-', x.description || '-', x.modalities.join(',') || '-', x.series ?? '-', x.uid])])}\n`,
        );
      },
    );

  common(cmd.command('retrieve').description('retrieve a series (WADO-RS) into the library'))
    .requiredOption('--study <uid>', 'Study Instance UID')
    .requiredOption('--series <uid>', 'Series Instance UID')
    .option('--db <file>', 'database file')
    .action(async (o: PacsOptions & { study: string; series: string }) => {
      const s = settings(o);
      await withServices({ db: o.db }, async (services) => {
        const res = await pacs(() => services.studies.retrieveNow(s, o.study, o.series));
        if (o.json) printJson(res);
        else {
          for (const r of res) process.stdout.write(`${r.status.padEnd(8)} ${r.path}: ${r.message}\n`);
        }
        if (!res.some((r) => r.status !== 'failed'))
          throw new UserError(`nothing imported from series ${o.series}`, 1);
      });
    });

  common(cmd.command('store').description('store (STOW-RS) a library series or a folder of DICOM files'))
    .option(
      '--series <uid>',
      'a library series (DICOM series: its files; NIfTI/HDF5 series: exported as DICOM first)',
    )
    .option('--dir <folder>', 'a folder of DICOM files')
    .option('--db <file>', 'database file')
    .action(async (o: PacsOptions & { series?: string; dir?: string }) => {
      if (!o.series === !o.dir) throw new UserError('give exactly one of --series UID or --dir FOLDER');
      const s = settings(o);
      let files: Buffer[];
      let tmp: string | null = null;
      if (o.dir) {
        const dir = resolve(o.dir);
        const walk = (d: string): string[] =>
          readdirSync(d).flatMap((n) =>
            statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)],
          );
        files = walk(dir)
          .map((p) => readFileBounded(p))
          .filter((b) => b.length > 132 && b.toString('latin1', 128, 132) === 'DICM');
        if (files.length === 0) throw new UserError(`${dir}: no DICOM Part 10 files`);
      } else {
        const db = openDatabase(resolve(o.db ?? defaultDbPath()));
        try {
          const detail = getSeries(db, o.series as string);
          if (!detail) throw new UserError(`no series ${o.series} in the library`);
          const kind = (
            db.sqlite.prepare('SELECT source_kind FROM series WHERE series_uid = ?').get(o.series) as {
              source_kind: string;
            }
          ).source_kind;
          if (kind === 'dicom') {
            files = [...new Set(seriesInstances(db, o.series as string).map((i) => i.path))].map((p) =>
              readFileBounded(p),
            );
          } else {
            tmp = mkdtempSync(join(tmpdir(), 'kdmri-stow-'));
            files = exportSeriesDicom(db, o.series as string, tmp).paths.map((p) => readFileSync(p));
          }
        } finally {
          db.close();
        }
      }
      try {
        const r = await pacs(() => storeInstances(s, files));
        if (o.json) printJson(r);
        else {
          process.stdout.write(`stored ${r.stored.length} of ${files.length} instances\n`);
          for (const f of r.failed) process.stdout.write(`failed ${f.sopUid}: ${f.reason}\n`);
        }
        if (r.stored.length === 0)
          throw new UserError(`the PACS stored none of the ${files.length} instances`, 1);
      } finally {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
      }
    });
}
