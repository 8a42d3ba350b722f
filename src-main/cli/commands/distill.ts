/**
 * `kdmri distill`: the whole KD-MRI procedure on a dataset (teacher, student baseline, attention
 * transfer, KD), evaluated on the validation split, with every run, epoch, model and evaluation in
 * the database.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import {
  DistillConfigSchema,
  RUN_KINDS,
  defaultDistillConfig,
  type BackendName,
  type Degradation,
  type DistillConfig,
  type MaskSpec,
  type RunKind,
} from '../../contract/domain.js';
import { UserError } from '../errors.js';
import { withServices } from '../library.js';
import {
  addLimitOptions,
  applyLimitOptions,
  backendArg,
  choiceArg,
  intArg,
  listArg,
  MASK_FILE_HELP,
  maskFileArg,
  maskKindArg,
  numArg,
  type LimitOptions,
} from '../options.js';
import { metricsTable, printJson, progressReporter } from '../output.js';

export interface DistillOptions extends LimitOptions {
  task: 'recon' | 'sr';
  data?: string;
  acc: number;
  mask: Pick<MaskSpec, 'kind' | 'preset' | 'axis'>;
  maskFile?: MaskSpec;
  axis?: 'rows' | 'cols';
  centerLines?: number;
  centerFraction?: number;
  maskSeed: number;
  keep: number;
  size?: number;
  slab?: number;
  epochs: number;
  lrStep: number;
  patience?: number;
  batch: number;
  seed: number;
  imitation?: DistillConfig['imitation'];
  alpha: number;
  atNorm: DistillConfig['atNorm'];
  residual: boolean;
  studentInit: DistillConfig['studentInit'];
  steps?: RunKind[];
  db?: string;
  out?: string;
  backend?: BackendName;
  resume?: string;
  like?: number;
  json: boolean;
}

/** Options that may go with --like (where, how to print, input caps: not what to train). */
const WITH_LIKE = new Set([
  'like',
  'db',
  'out',
  'json',
  'backend',
  'maxVoxels',
  'maxBytes',
  'maxFrames',
  'maxFileSize',
]);

export function configFromOptions(o: DistillOptions): DistillConfig {
  if (o.maskFile && o.task === 'sr')
    throw new UserError('--mask-file is for reconstruction (--task recon), not restoration');
  const degradation: Degradation =
    o.task === 'sr'
      ? { kind: 'lowres', keep: o.keep }
      : o.maskFile
        ? { kind: 'mask', mask: o.maskFile }
        : {
            kind: 'mask',
            mask: {
              ...o.mask,
              axis: o.axis ?? o.mask.axis,
              acc: o.acc,
              seed: o.maskSeed,
              centerLines: o.centerLines,
              centerFraction: o.centerFraction,
            },
          };
  const base = defaultDistillConfig(o.task, degradation);
  const residualize = <T extends DistillConfig['teacher']>(s: T): T =>
    s.arch === 'dccnn' ? { ...s, residual: o.residual } : s;
  const parsed = DistillConfigSchema.safeParse({
    ...base,
    teacher: residualize(base.teacher),
    student: residualize(base.student),
    training: {
      ...base.training,
      epochs: o.epochs,
      batchSize: o.batch,
      seed: o.seed,
      lrStep: o.lrStep,
      patience: o.patience ?? null,
    },
    imitation: o.imitation ?? base.imitation,
    alpha: o.alpha,
    atNorm: o.atNorm,
    studentInit: o.studentInit,
    steps: o.steps ?? base.steps,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`invalid configuration at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * The options that shape a distillation config and where it runs, shared by `distill` and `study`
 * (which sets the acceleration and the seed per job itself).
 */
export function addConfigOptions(cmd: Command): Command {
  return cmd
    .option(
      '--mask <kind>',
      'cartesian | random | equispaced | preset:cardiac|brain|knee',
      maskKindArg,
      maskKindArg('cartesian'),
    )
    .option('--mask-file <file>', MASK_FILE_HELP, maskFileArg)
    .option('--axis <axis>', 'sampled lines: rows or cols', choiceArg('--axis', ['rows', 'cols'] as const))
    .option(
      '--center-lines <n>',
      'fully sampled centre lines (cartesian; default 10)',
      intArg('--center-lines', 1, 4096),
    )
    .option(
      '--center-fraction <f>',
      'centre fraction (random/equispaced)',
      numArg('--center-fraction', 0, 0.999),
    )
    .option('--mask-seed <n>', 'mask seed', intArg('--mask-seed', 0, 2 ** 31), 42)
    .option('--keep <f>', 'kept k-space fraction per axis (sr)', numArg('--keep', 0, 0.999), 0.25)
    .option('--size <n>', 'resample slices to n×n (default: native)', intArg('--size', 8, 2048))
    .option('--epochs <n>', 'epochs per step', intArg('--epochs', 1, 10000), 150)
    .option(
      '--lr-step <n>',
      'StepLR: multiply the learning rate by 0.1 every n epochs (reference: 40 of 150)',
      intArg('--lr-step', 1, 10000),
      40,
    )
    .option(
      '--patience <n>',
      'stop a step after n epochs without a better validation loss (default: train every epoch)',
      intArg('--patience', 1, 10000),
    )
    .option(
      '--slab <n>',
      'cut the volumes into slabs of n slices after the split: each slab is one unit of evaluation',
      intArg('--slab', 1, 4096),
    )
    .option('--batch <n>', 'batch size', intArg('--batch', 1, 256), 4)
    .option(
      '--imitation <mode>',
      'off | numel | unit | alpha (default: off for recon, unit for sr)',
      choiceArg('--imitation', ['off', 'numel', 'unit', 'alpha'] as const),
    )
    .option('--alpha <a>', 'α of the paper-mode imitation loss', numArg('--alpha', -1e-12, 1), 0.5)
    .option(
      '--at-norm <norm>',
      'attention map normalisation: batch (code) or spatial',
      choiceArg('--at-norm', ['batch', 'spatial'] as const),
      'batch',
    )
    .option('--residual', "add the paper figure's residual skip to each cascade", false)
    .option(
      '--student-init <init>',
      'kd step starts from: attention | random',
      choiceArg('--student-init', ['attention', 'random'] as const),
      'attention',
    )
    .option('--db <file>', 'database file (default: ~/.kdmri/kdmri.db or $KDMRI_HOME/kdmri.db)')
    .option(
      '--out <dir>',
      'folder for models and checkpoints of a new job (default: the library); a resumed job keeps its own',
    )
    .option('--backend <name>', 'force a compute backend', backendArg);
}

export function register(program: Command): void {
  const cmd = program
    .command('distill')
    .description('train teacher, student baseline, attention transfer and KD student; evaluate all')
    .option(
      '--task <task>',
      'recon (undersampling mask) or sr (low-resolution input)',
      choiceArg('--task', ['recon', 'sr'] as const),
      'recon',
    )
    .option(
      '--data <path>',
      'NIfTI volume, folder of volumes, DICOM series or HDF5 file (default: bundled sample)',
    )
    .option('--acc <n>', 'acceleration (recon)', numArg('--acc', 1, 64), 4)
    .option('--seed <n>', 'seed for weights and shuffling', intArg('--seed', 0, 2 ** 31), 42)
    .option('--steps <list>', 'comma-separated steps', listArg('--steps', RUN_KINDS));
  addLimitOptions(addConfigOptions(cmd))
    .option('--resume <jobId>', 'resume an interrupted or cancelled job')
    .option(
      '--like <runId>',
      "repeat a run: its job's exact config and seeds, on the same data and backend (see kdmri runs --show)",
      intArg('--like', 1, 2 ** 31),
    )
    .option('--json', 'print one JSON object instead of tables', false)
    .action(async (o: DistillOptions, command: Command) => {
      if (o.like !== undefined) {
        const extra = command.options
          .map((opt) => opt.attributeName())
          .filter((k) => !WITH_LIKE.has(k) && command.getOptionValueSource(k) === 'cli');
        if (extra.length)
          throw new UserError(
            `--like repeats the run's own config: leave out ${extra.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
          );
      }
      const config = o.like === undefined ? configFromOptions(o) : null;
      // before the services start the training worker, which inherits the caps for --data
      applyLimitOptions(o);
      const progress = o.json ? null : progressReporter();
      const jobId = o.resume ?? randomUUID();
      let repeated: { of: number; runId: number; differences: string[] } | null = null;
      const result = await withServices(o, async (services) => {
        const like = o.like === undefined ? null : services.jobs.likeRun(o.like);
        // the run's thread count, unless the user pinned one: XNNPACK's reductions depend on it
        if (like && !process.env.KDMRI_WASM_THREADS) process.env.KDMRI_WASM_THREADS = String(like.threads);
        const stop = () => services.jobs.cancel(jobId);
        // SIGTERM: a scheduler's scancel, time limit or pre-emption; the job keeps its checkpoint
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const r = await services.jobs.run({
            jobId,
            config: like?.config ?? config!,
            data: like?.data ?? { kind: 'path', path: o.data, size: o.size, slab: o.slab },
            resume: o.resume !== undefined,
            ...(o.backend ? { backend: o.backend } : like ? { backend: like.backend } : {}),
            onEvent: (e) => progress?.onEvent(e),
          });
          if (like && r.status === 'finished')
            repeated = { of: like.original.run.id, ...services.jobs.compareRepetition(like.original, jobId) };
          return r;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          progress?.stop();
        }
      });
      if (result.status === 'failed') throw new UserError(result.error ?? 'distillation failed', 1);
      if (o.json) {
        printJson({
          backend: result.backend,
          params: result.params,
          rows: result.rows.map((r) => ({ ...r })),
          jobId: result.jobId,
          status: result.status,
          seconds: result.seconds,
          models: result.models,
          ...(repeated ? { repeated } : {}),
        });
      } else {
        process.stdout.write(
          `\n${metricsTable(result.rows)}\n\nbackend ${result.backend}; teacher ${result.params.teacher} params, student ${result.params.student}; ` +
            `${result.seconds.toFixed(1)} s; job ${result.jobId} (${result.status})\n`,
        );
        const rep = repeated as { of: number; runId: number; differences: string[] } | null;
        if (rep)
          process.stdout.write(
            rep.differences.length
              ? `run ${rep.runId} repeats run ${rep.of}, but its record differs in: ${rep.differences.join(', ')}\n`
              : `run ${rep.runId} repeats run ${rep.of}: same config, seeds, mask, data, backend, threads and versions\n`,
          );
      }
      if (result.status === 'cancelled') process.exitCode = 130;
    });
}
