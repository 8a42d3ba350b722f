/** `kdmri runs`: the runs in the database with their outcome and each model's compactness report. */
import type { Command } from 'commander';
import { RUN_KINDS, RUN_STATUSES, type RunKind, type RunStatus } from '../../contract/domain.js';
import { withServices } from '../library.js';
import { choiceArg, intArg } from '../options.js';
import type { RunWithRecord } from '../../services/jobs.js';
import { printJson, table } from '../output.js';
import { printImport } from './sweep.js';

interface RunsOptions {
  db?: string;
  job?: string;
  kind?: RunKind;
  status?: RunStatus;
  show?: number;
  json: boolean;
}

/** The record as aligned "field  value" lines, the config as indented JSON last. */
function recordText({ run, record: r }: RunWithRecord): string {
  const d = r.data;
  const lines: [string, string][] = [
    ['run', `${run.id} (${run.kind}, ${run.status}) of job ${run.jobId}`],
    ['recorded', new Date(r.createdAt).toISOString()],
    ['stopped', r.stopReason ?? '-'],
    ['seeds', `weights ${r.weightSeed}, shuffle ${r.shuffleSeed}, mask ${r.maskSeed ?? '-'}`],
    [
      'mask',
      r.mask
        ? `${r.mask.h}×${r.mask.w} ${r.mask.axis}, ${r.mask.lines.length} lines: ${r.mask.lines.join(',')}`
        : '-',
    ],
    ['mask hash', r.maskHash ?? '-'],
    [
      'data',
      `${d.source}${d.size !== null ? ` at ${d.size}²` : ''}${d.slab !== null ? `, slabs of ${d.slab}` : ''} (dataset ${d.datasetId}): ${d.description}`,
    ],
    [
      'slices',
      `${d.h}×${d.w}; train ${d.trainSlices} in ${d.trainVolumes} volumes, validation ${d.valSlices} in ${d.valVolumes}`,
    ],
    ['train hash', r.trainHash],
    ['val hash', r.valHash],
    ['backend', `${r.backend}, ${r.threads} thread${r.threads === 1 ? '' : 's'}`],
    ['versions', `app ${r.appVersion}, TensorFlow.js ${r.tfjsVersion}, Node ${r.nodeVersion}`],
    ['platform', r.platform],
    ['repeat', `kdmri distill --like ${run.id}`],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  const config = JSON.stringify(r.config, null, 2).replace(/\n/g, '\n  ');
  return `${lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\nconfig\n  ${config}\n`;
}

export function register(program: Command): void {
  const cmd = program
    .command('runs')
    .enablePositionalOptions()
    .description("list training runs, their best epoch and their models' compactness")
    .option('--db <file>', 'database file')
    .option('--job <id>', 'only this job')
    .option('--kind <kind>', 'only this step', choiceArg('--kind', RUN_KINDS))
    .option('--status <status>', 'only this status', choiceArg('--status', RUN_STATUSES))
    .option(
      '--show <runId>',
      "print one run's reproducibility record (config, seeds, mask, data hashes, backend, versions)",
      intArg('--show', 1, 2 ** 31),
    )
    .option('--json', 'print a JSON array (with --show: the record as one object)', false)
    .action((o: RunsOptions) =>
      withServices(o, (services) => {
        if (o.show !== undefined) {
          const r = services.jobs.runWithRecord(o.show);
          if (o.json) return printJson({ run: r.run, record: r.record });
          return void process.stdout.write(recordText(r));
        }
        const runs = services.models.runDetails({ jobId: o.job, kind: o.kind, status: o.status });
        const rows = runs.map(({ run: r, model }) => {
          const c = model?.card.compactness ?? null;
          const m = model?.card.metrics ?? null;
          return {
            id: r.id,
            jobId: r.jobId,
            kind: r.kind,
            status: r.status,
            task: r.config.task,
            degradation: model?.card.degradationLabel ?? null,
            backend: r.backend,
            epochs: `${r.epochsDone}/${r.epochsPlanned}`,
            bestEpoch: r.bestEpoch,
            bestValLoss: r.bestValLoss,
            wallSeconds: r.wallSeconds,
            error: r.error,
            model: model
              ? { id: model.id, name: model.name, dir: model.dir, params: model.paramCount }
              : null,
            metrics: m ? { psnr: m.psnr, ssim: m.ssim, nmse: m.nmse } : null,
            compactness: c,
          };
        });
        if (o.json) return printJson(rows);
        if (rows.length === 0)
          return void process.stdout.write('no runs yet: start one with `kdmri distill`\n');
        process.stdout.write(
          `${table([
            [
              'run',
              'job',
              'step',
              'status',
              'degradation',
              'epochs',
              'best',
              'PSNR',
              'SSIM',
              'params',
              'weights KB',
              'GFLOP/slice',
              'ms/slice',
              'backend',
            ],
            ...rows.map((r) => [
              r.id,
              r.jobId.slice(0, 8),
              r.kind,
              r.status,
              r.degradation ?? '-',
              r.epochs,
              r.bestEpoch === null ? '-' : r.bestEpoch + 1,
              r.metrics ? r.metrics.psnr.toFixed(2) : '-',
              r.metrics ? r.metrics.ssim.toFixed(4) : '-',
              r.model ? r.model.params : '-',
              r.compactness ? (r.compactness.bytesOnDisk / 1024).toFixed(0) : '-',
              r.compactness ? (r.compactness.flopsPerSlice / 1e9).toFixed(2) : '-',
              r.compactness ? r.compactness.latencyMsWarm.toFixed(1) : '-',
              r.backend ?? '-',
            ]),
          ])}\n`,
        );
      }),
    );
  cmd
    .command('import <paths...>')
    .description(
      'merge task databases and model folders (a sweep folder, task folders, kdmri.db files) into the library; idempotent, conflicts reported',
    )
    .option('--db <file>', 'database file (the library to import into)')
    .option('--json', 'print JSON', false)
    .action((paths: string[], o: { db?: string; json: boolean }) =>
      withServices(o, (services) => {
        const r = services.sweeps.importPaths(paths);
        if (o.json) printJson(r);
        else printImport(r);
        if (r.conflicts.length) process.exitCode = 1;
      }),
    );
}
