/**
 * `kdmri pacs query|retrieve|store (--node NAME | --url URL [--user U --password P | --token T])`: the
 * lab's PACS over DICOMweb, and `kdmri pacs nodes [list] | add NAME --url URL [--auth basic --user U |
 * --auth bearer] | remove NAME`: the nodes the app shows. Passwords and tokens come from
 * KDMRI_PACS_PASSWORD / KDMRI_PACS_TOKEN rather than the command line (which other users can see in the
 * process list); a node's secret goes to the secret store (services/secrets.ts), never the database.
 *
 * Options are declared on the leaf commands only: commander gives an option declared on both a parent
 * and its subcommand to the parent, so `kdmri pacs nodes add --url …` would lose it.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiFailure, PACS_AUTH, type PacsAuthKind } from '../../contract/api.js';
import { dicomFilesIn, dicomFilesOfSeries, sendFiles } from '../../services/pacs.js';
import { secretEnvName } from '../../services/secrets.js';
import { PacsError, searchSeries, searchStudies, type PacsSettings } from '../../studies/dicomweb.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { choiceArg } from '../options.js';
import { printJson, table } from '../output.js';
import { makeScratchDir, removeScratchDir } from '../../util/scratch.js';

interface PacsOptions {
  url?: string;
  node?: string;
  user?: string;
  password?: string;
  token?: string;
  json: boolean;
  db?: string;
}

/** The PACS to talk to: a configured node (--node), or one given on the command line (--url). */
function settings(o: PacsOptions, byName: (name: string) => PacsSettings): PacsSettings {
  if (!o.url === !o.node) throw new UserError('give exactly one of --node NAME or --url URL');
  if (o.node) {
    if (o.user || o.password || o.token) throw new UserError('--node takes its credentials from the node');
    return byName(o.node);
  }
  const url = o.url as string;
  const password = o.password ?? process.env.KDMRI_PACS_PASSWORD;
  const token = o.token ?? process.env.KDMRI_PACS_TOKEN;
  if (o.user && token) throw new UserError('give either --user/--password or --token, not both');
  if (o.user) {
    if (password === undefined) throw new UserError('--user needs --password (or KDMRI_PACS_PASSWORD)');
    return { url, auth: { kind: 'basic', user: o.user, password } };
  }
  if (token) return { url, auth: { kind: 'bearer', token } };
  return { url, auth: { kind: 'none' } };
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
    .option('--node <name>', 'a configured PACS node (see kdmri pacs nodes)')
    .option('--url <url>', 'DICOMweb root, e.g. http://pacs:8042/dicom-web')
    .option('--user <name>', 'basic-auth user (with --url)')
    .option('--password <password>', 'basic-auth password (or KDMRI_PACS_PASSWORD)')
    .option('--token <token>', 'bearer token (or KDMRI_PACS_TOKEN)')
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false);
}

function registerNodes(cmd: Command): void {
  const nodes = cmd
    .command('nodes')
    .description('the PACS nodes the workstation knows (secrets in the secret store, never the database)');
  nodes
    .command('list', { isDefault: true })
    .description('list the nodes')
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .action((o: { db?: string; json: boolean }) =>
      withServices(o, async (s) => {
        const list = await s.handlers.listPacsNodes({});
        if (o.json) return printJson(list);
        if (!list.length)
          return void process.stdout.write('no PACS nodes (add one with kdmri pacs nodes add)\n');
        process.stdout.write(
          `${table([['name', 'url', 'auth', 'user', 'secret'], ...list.map((n) => [n.name, n.url, n.auth, n.user ?? '-', n.auth === 'none' ? '-' : (n.secretIn ?? 'missing')])])}\n`,
        );
      }),
    );
  nodes
    .command('add')
    .description(
      'add a node or change one; the password or token is read from KDMRI_PACS_PASSWORD or KDMRI_PACS_TOKEN',
    )
    .argument('<name>', 'the node name')
    .requiredOption('--url <url>', 'DICOMweb root, e.g. http://pacs:8042/dicom-web')
    .option(
      '--auth <kind>',
      `authentication: ${PACS_AUTH.join(', ')}`,
      choiceArg<PacsAuthKind>('--auth', PACS_AUTH),
      'none',
    )
    .option('--user <name>', 'basic-auth user')
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .action(
      (name: string, o: { url: string; auth: PacsAuthKind; user?: string; db?: string; json: boolean }) =>
        withServices(o, async (s) => {
          if (o.user && o.auth !== 'basic') throw new UserError('--user goes with --auth basic');
          const envName = o.auth === 'basic' ? 'KDMRI_PACS_PASSWORD' : 'KDMRI_PACS_TOKEN';
          const secret = o.auth === 'none' ? undefined : process.env[envName] || undefined;
          const existing = s.db.pacsNodes.byName(name);
          const r = await s.call('savePacsNode', {
            ...(existing ? { id: existing.id } : {}),
            name,
            url: o.url,
            auth: o.auth,
            ...(o.user ? { user: o.user } : {}),
            ...(secret ? { secret } : {}),
          });
          if (!r.ok)
            throw new UserError(
              r.error.where === 'secret'
                ? `${r.error.message} (set ${envName}, or ${secretEnvName(name)})`
                : r.error.message,
            );
          if (o.json) return printJson(r.value);
          process.stdout.write(`${existing ? 'changed' : 'added'} PACS node ${name}\n`);
        }),
    );
  nodes
    .command('remove')
    .description('remove a node and its stored secret')
    .argument('<name>', 'the node name')
    .option('--db <file>', 'database file')
    .action((name: string, o: { db?: string }) =>
      withServices(o, async (s) => {
        const n = s.db.pacsNodes.byName(name);
        if (!n) throw new UserError(`no PACS node named "${name}"`);
        await s.handlers.deletePacsNode({ id: n.id });
        process.stdout.write(`removed PACS node ${name}\n`);
      }),
    );
}

export function register(program: Command): void {
  const cmd = program
    .command('pacs')
    .description('query, retrieve from and store to a PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS)');

  registerNodes(cmd);

  common(cmd.command('query').description('list studies (or the series of --study)'))
    .option('--patient-id <id>', 'PatientID filter (wildcards * ?)')
    .option('--patient-name <name>', 'PatientName filter (wildcards * ?)')
    .option('--date <range>', 'StudyDate (YYYYMMDD or YYYYMMDD-YYYYMMDD)')
    .option('--modality <m>', 'ModalitiesInStudy, e.g. MR')
    .option('--study <uid>', 'list the series of this study')
    .action(
      (
        o: PacsOptions & {
          patientId?: string;
          patientName?: string;
          date?: string;
          modality?: string;
          study?: string;
        },
      ) =>
        withServices(o, async (svc) => {
          const s = settings(o, svc.pacs.settingsByName);
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
          if (o.modality) filters.ModalitiesInStudy = o.modality;
          const studies = await pacs(() => searchStudies(s, filters));
          if (o.json) return printJson(studies);
          if (studies.length === 0) return void process.stdout.write('no studies\n');
          process.stdout.write(
            `${table([['patient', 'date', 'description', 'modalities', 'series', 'study UID'], ...studies.map((x) => [`${x.patientName || '-'} [${x.patientId || '-'}]`, x.date || '-', x.description || '-', x.modalities.join(',') || '-', x.series ?? '-', x.uid])])}\n`,
          );
        }),
    );

  common(cmd.command('retrieve').description('retrieve a series (WADO-RS) into the library'))
    .requiredOption('--study <uid>', 'Study Instance UID')
    .requiredOption('--series <uid>', 'Series Instance UID')
    .action((o: PacsOptions & { study: string; series: string }) =>
      withServices(o, async (svc) => {
        const s = settings(o, svc.pacs.settingsByName);
        const res = await pacs(() =>
          svc.studies.retrieveNow(s, o.study, o.series, join(svc.paths.dataDir, 'dicom')),
        );
        if (o.json) printJson(res);
        else for (const r of res) process.stdout.write(`${r.status.padEnd(8)} ${r.path}: ${r.message}\n`);
        if (!res.some((r) => r.status !== 'failed'))
          throw new UserError(`nothing imported from series ${o.series}`, 1);
      }),
    );

  common(cmd.command('store').description('store (STOW-RS) a library series or a folder of DICOM files'))
    .option(
      '--series <uid>',
      'a library series (DICOM series: its files; NIfTI/HDF5 series: exported as DICOM first)',
    )
    .option('--dir <folder>', 'a folder of DICOM files')
    .action((o: PacsOptions & { series?: string; dir?: string }) =>
      withServices(o, async (svc) => {
        if (!o.series === !o.dir) throw new UserError('give exactly one of --series UID or --dir FOLDER');
        const s = settings(o, svc.pacs.settingsByName);
        const tmp = makeScratchDir('kdmri-stow-');
        try {
          let paths: string[];
          if (o.dir) {
            paths = dicomFilesIn(resolve(o.dir));
            if (paths.length === 0) throw new UserError(`${resolve(o.dir)}: no DICOM Part 10 files`);
          } else {
            try {
              paths = dicomFilesOfSeries(svc.db, o.series as string, tmp).paths;
            } catch (e) {
              if (e instanceof ApiFailure) throw new UserError(e.message);
              throw e;
            }
          }
          const r = await pacs(() => sendFiles(s, paths));
          if (o.json) printJson(r);
          else {
            process.stdout.write(`stored ${r.stored.length} of ${paths.length} instances\n`);
            for (const f of r.failed) process.stdout.write(`failed ${f.sopUid}: ${f.reason}\n`);
          }
          if (r.stored.length === 0)
            throw new UserError(`the PACS stored none of the ${paths.length} instances`, 1);
        } finally {
          removeScratchDir(tmp);
        }
      }),
    );
}
