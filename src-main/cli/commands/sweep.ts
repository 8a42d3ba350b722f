/**
 * `kdmri sweep`: a grid of distillations (dataset × mask × acceleration × seed), each task a
 * `kdmri distill` with its own database and model folder under a shared work folder, run in this
 * machine's job queue (`--executor local`) or as one Slurm job array (`--executor slurm`).
 * `kdmri sweep status ID`, `kdmri sweep resubmit ID` (failed and cancelled tasks resume from their
 * checkpoints) and `kdmri sweep import ID` (its finished tasks into the library; `kdmri runs import`
 * takes any task folders or databases).
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { ImportReport, SweepInfo } from '../../contract/api.js';
import type { MaskChoice } from '../../services/sweeps.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import { choiceArg, intArg, maskKindArg } from '../options.js';
import { printJson, table } from '../output.js';
import { addConfigOptions, configFromOptions, type DistillOptions } from './distill.js';
import { numberList } from './study.js';

interface SweepOptions extends Omit<DistillOptions, 'acc' | 'seed' | 'steps' | 'resume' | 'data' | 'mask'> {
  data?: string[];
  accs: number[];
  masks: MaskChoice[];
  seeds: number[];
  name?: string;
  executor: 'local' | 'slurm';
  partition?: string;
  time?: string;
  cpus?: number;
  gpus?: number;
  workdir?: string;
  copyData: boolean;
  kdmri?: string;
}

function maskList(v: string): MaskChoice[] {
  return v.split(',').map((m) => maskKindArg(m.trim()));
}

function slurmTime(v: string): string {
  if (!/^(\d+-)?\d+(:\d{1,2}){0,2}$/.test(v.trim()))
    throw new InvalidArgumentError(`--time must look like HH:MM:SS, D-HH:MM:SS or minutes, got '${v}'`);
  return v.trim();
}

function slurmName(v: string): string {
  if (!/^[\w.-]{1,64}$/.test(v))
    throw new InvalidArgumentError(`--partition must be a Slurm partition name, got '${v}'`);
  return v;
}

/** One line per task: index, grid point, state, scheduler id, error. */
export function printSweep(s: SweepInfo): void {
  const counts = new Map<string, number>();
  for (const t of s.tasks) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  process.stdout.write(
    `sweep ${s.id} (${s.executor}) in ${s.workdir}\n${table([
      ['task', 'data', 'mask', 'acc', 'seed', 'state', 'scheduler', 'job', 'error'],
      ...s.tasks.map((t) => [
        t.idx,
        t.data,
        t.mask,
        t.acc === null ? '-' : `${t.acc}x`,
        t.seed,
        t.state,
        t.schedulerId ?? '-',
        t.jobId.slice(0, 8),
        t.error ?? '',
      ]),
    ])}\n${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}\n`,
  );
}

export function printImport(r: ImportReport): void {
  for (const i of r.imported)
    process.stdout.write(
      `imported job ${i.jobId}: ${i.runs} runs, ${i.models} models, ${i.evaluations} evaluations (${i.source})\n`,
    );
  for (const s of r.skipped) process.stdout.write(`skipped job ${s.jobId}: ${s.reason} (${s.source})\n`);
  for (const c of r.conflicts) process.stdout.write(`CONFLICT job ${c.jobId}: ${c.reason} (${c.source})\n`);
  process.stdout.write(
    `${r.imported.length} imported, ${r.skipped.length} skipped, ${r.conflicts.length} conflicts\n`,
  );
}

export function register(program: Command): void {
  const cmd = program
    .command('sweep')
    .enablePositionalOptions()
    .description(
      'distill every dataset × mask × acceleration × seed, each task with its own database, here or as a Slurm job array',
    )
    .option('--data <path...>', 'data paths, one task set each (default: the bundled sample)')
    .option('--accs <list>', 'accelerations, e.g. 4,5,8', numberList('--accs', false, 1.01, 64), [4])
    .option('--masks <list>', 'mask kinds, e.g. cartesian,random', maskList, [maskKindArg('cartesian')])
    .option('--seeds <list>', 'seeds, e.g. 1,2,3', numberList('--seeds', true, 0, 2 ** 31), [1])
    .option(
      '--task <task>',
      'recon (undersampling mask) or sr (low-resolution input)',
      choiceArg('--task', ['recon', 'sr'] as const),
      'recon',
    )
    .option('--name <text>', 'a name for the sweep')
    .option(
      '--executor <name>',
      'local (this machine) or slurm (one job array)',
      choiceArg('--executor', ['local', 'slurm'] as const),
      'local',
    )
    .option('--partition <name>', 'Slurm partition', slurmName)
    .option('--time <limit>', 'Slurm time limit per task (HH:MM:SS)', slurmTime)
    .option('--cpus <n>', 'Slurm CPUs per task', intArg('--cpus', 1, 1024))
    .option('--gpus <n>', 'Slurm GPUs per task', intArg('--gpus', 1, 64))
    .option(
      '--workdir <dir>',
      'shared work folder (the cluster must see it at the same path)',
      'kdmri-sweeps',
    )
    .option(
      '--copy-data',
      'copy the data into the work folder (default: the tasks read it where it is)',
      false,
    )
    .option('--kdmri <command>', 'how the compute nodes run kdmri (default: this node and this kdmri)');
  addConfigOptions(cmd)
    .option('--json', 'print one JSON object', false)
    .action(async (o: SweepOptions) => {
      if (o.executor === 'local' && (o.partition || o.time || o.cpus || o.gpus))
        throw new UserError('--partition, --time, --cpus and --gpus are Slurm options: add --executor slurm');
      const base = configFromOptions({
        ...o,
        data: undefined,
        acc: o.accs[0],
        seed: o.seeds[0],
        mask: o.masks[0],
      });
      const kdmri = o.kdmri
        ? o.kdmri.split(/\s+/).filter(Boolean)
        : [process.execPath, ...process.execArgv, process.argv[1]];
      const r = await withServices(o, async (services) => {
        let started;
        try {
          started = services.sweeps.start({
            name: o.name,
            data: o.data ?? ['sample'],
            masks: o.masks,
            accs: o.accs,
            seeds: o.seeds,
            base,
            size: o.size,
            slab: o.slab,
            executor: o.executor,
            workdir: o.workdir ?? 'kdmri-sweeps',
            copyData: o.copyData,
            ...(o.backend ? { backend: o.backend } : {}),
            ...(o.executor === 'slurm'
              ? {
                  slurm: {
                    partition: o.partition,
                    time: o.time,
                    cpus: o.cpus,
                    gpus: o.gpus,
                    kdmri,
                    chdir: process.cwd(),
                  },
                }
              : {}),
          });
        } catch (e) {
          throw new UserError((e as Error).message);
        }
        process.stderr.write(
          `sweep ${started.sweep.id}: ${services.db.sweeps.tasks(started.sweep.id).length} tasks\n`,
        );
        const stop = () => {
          for (const t of services.db.sweeps.tasks(started.sweep.id)) services.jobs.cancel(t.jobId);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          await started.done;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
        return services.sweeps.status(started.sweep.id);
      });
      if (o.json) printJson(r);
      else printSweep(r);
      if (r.tasks.some((t) => t.state === 'failed')) process.exitCode = 1;
    });

  cmd
    .command('status <id>')
    .description("a sweep's tasks and their states (squeue/sacct for Slurm, the task databases)")
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .action((id: string, o: { db?: string; json: boolean }) =>
      withServices(o, (services) => {
        const s = services.sweeps.status(id);
        if (o.json) printJson(s);
        else printSweep(s);
      }),
    );

  cmd
    .command('resubmit <id>')
    .description('submit the failed and cancelled tasks again; each resumes from its checkpoints')
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .action((id: string, o: { db?: string; json: boolean }) =>
      withServices(o, async (services) => {
        const r = services.sweeps.resubmit(id);
        await r.done;
        const s = services.sweeps.status(id);
        if (o.json) printJson({ resubmitted: r.tasks, sweep: s });
        else {
          process.stdout.write(`resubmitted ${r.tasks.length ? r.tasks.join(', ') : 'no tasks'}\n`);
          printSweep(s);
        }
      }),
    );

  cmd
    .command('import <id>')
    .description("merge a sweep's finished tasks into the library (idempotent)")
    .option('--db <file>', 'database file')
    .option('--json', 'print JSON', false)
    .action((id: string, o: { db?: string; json: boolean }) =>
      withServices(o, (services) => {
        const r = services.sweeps.importSweep(id);
        if (o.json) printJson(r);
        else printImport(r);
        if (r.conflicts.length) process.exitCode = 1;
      }),
    );
}
