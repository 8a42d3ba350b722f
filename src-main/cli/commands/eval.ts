/**
 * `kdmri eval`: score a saved model under its training degradation or another one, next to the
 * degraded input's own score, with the model's compactness. By default on the model's own dataset
 * (the one its job trained on, through the same train/validation split) and its validation split.
 * The evaluation is recorded with its split, full degradation, mask hash and data hash, but with no
 * job: results tables show a job's own validation rows only, so an evaluation here never changes one.
 */
import type { Command } from 'commander';
import type { BackendName } from '../../contract/domain.js';
import { withServices } from '../library.js';
import { addDegradationOptions, degradationFor, type DegradationOptions } from '../model-args.js';
import { choiceArg, intArg } from '../options.js';
import { metricsTable, printJson, table } from '../output.js';

interface EvalOptions extends DegradationOptions {
  model: string;
  data?: string;
  size?: number;
  split: 'val' | 'train' | 'all';
  db?: string;
  backend?: BackendName;
  json: boolean;
}

export function register(program: Command): void {
  addDegradationOptions(
    program
      .command('eval')
      .description('evaluate a saved model: PSNR/SSIM/NMSE per volume, mean ± 2·std, and its compactness')
      .requiredOption('--model <dir>', 'model folder (model.json + weights.bin)')
      .option('--data <path>', "data (default: the model's own dataset, as its job split it)")
      .option(
        '--size <n>',
        "resample slices to n×n (default: the model's training size)",
        intArg('--size', 8, 2048),
      )
      .option(
        '--split <split>',
        'val (the validation split), train, or all slices',
        choiceArg('--split', ['val', 'train', 'all'] as const),
        'val',
      )
      .option('--db <file>', 'database to record the evaluation in')
      .option('--json', 'print one JSON object', false),
  ).action((o: EvalOptions) =>
    withServices(o, async (services) => {
      const result = await services.evaluation.evaluate({
        modelDir: o.model,
        data: o.data,
        size: o.size,
        split: o.split === 'val' ? 'validation' : o.split,
        degradation: (card) => degradationFor(card, o),
        backend: o.backend,
      });
      const { rows } = result;
      if (o.json) printJson(result);
      else {
        process.stdout.write(`${metricsTable(rows)}\n`);
        const c = result.compactness;
        if (c) {
          process.stdout.write(
            `\n${table([
              [
                'params',
                'weights (KB)',
                `GFLOP/slice (${c.size}²)`,
                'latency warm (ms)',
                'latency first (ms)',
                'backend',
              ],
              [
                c.params,
                (c.bytesOnDisk / 1024).toFixed(1),
                (c.flopsPerSlice / 1e9).toFixed(2),
                c.latencyMsWarm.toFixed(1),
                c.latencyMsCold.toFixed(1),
                c.backend,
              ],
            ])}\n`,
          );
        }
      }
    }),
  );
}
