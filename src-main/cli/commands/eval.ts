/**
 * `kdmri eval`: score a saved model under its training degradation or another one, next to the
 * degraded input's own score, with the model's compactness. By default on the model's own dataset
 * (the one its job trained on, through the same train/validation split) and its validation split.
 * The evaluation is recorded with its split, full degradation, mask hash and data hash, but with no
 * job: results tables show a job's own validation rows only, so an evaluation here never changes one.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { degradationKey, degradationLabel, type EvalSplit } from '../../contract/domain.js';
import { initBackend } from '../../compute/backend.js';
import { defaultDbPath, openDatabase } from '../../store/db.js';
import { loadJobData } from '../../distill/job-data.js';
import { buildSliceBank } from '../../distill/slice-bank.js';
import {
  bankHash,
  evaluatePrediction,
  evaluationFigures,
  metricRow,
  predict,
} from '../../distill/evaluate.js';
import { maskOfBank } from '../../distill/records.js';
import type { DataRef } from '../../distill/protocol.js';
import { UserError } from '../errors.js';
import {
  addDegradationOptions,
  degradationFor,
  loadModelOrFail,
  type DegradationOptions,
} from '../model-args.js';
import { choiceArg, intArg } from '../options.js';
import { metricsTable, printJson, table } from '../output.js';
import type { BackendName } from '../../contract/domain.js';

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
  ).action(async (o: EvalOptions) => {
    const info = await initBackend({ prefer: o.backend }).catch((e: Error) => {
      throw new UserError(e.message);
    });
    const { net, card, dir } = loadModelOrFail(resolve(o.model));
    const degradation = degradationFor(card, o);
    const size = o.size ?? (card.data.h === card.data.w ? card.data.h : undefined);
    const db = openDatabase(resolve(o.db ?? defaultDbPath()));
    try {
      const modelRow = db.models.list().find((m) => resolve(m.dir) === dir && m.deletedAt === null);
      const run = modelRow?.runId ? db.runs.get(modelRow.runId) : null;
      const job = run ? db.jobs.get(run.jobId) : null;
      // the model's own data: its job's dataset when this database knows it, else what its card names
      const ref: DataRef =
        o.data !== undefined
          ? { kind: 'path', path: o.data, size }
          : job
            ? { kind: 'dataset', datasetId: job.datasetId, size }
            : { kind: 'path', path: card.data.source === 'sample' ? undefined : card.data.source, size };
      let data;
      try {
        data = loadJobData(db, ref, card.task);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      const split: EvalSplit = o.split === 'val' ? 'validation' : o.split;
      const vols =
        split === 'all'
          ? [...data.split.train, ...data.split.val]
          : split === 'train'
            ? data.split.train
            : data.split.val;
      const bank = buildSliceBank(vols, degradation);
      const label = degradationLabel(degradation);
      const base = evaluatePrediction(bank, bank.input);
      const mine = evaluatePrediction(bank, predict(net, bank));
      const baseKind = card.task === 'sr' ? 'lr' : 'zf';
      const rows = [metricRow(baseKind, label, base), metricRow(card.kind, label, mine)];
      const acceleration = bank.maskInfo?.acceleration ?? null;
      if (modelRow) {
        db.evaluations.record({
          modelId: modelRow.id,
          runKind: card.kind,
          datasetId: data.datasetId,
          jobId: null,
          split,
          degradation: label,
          degradationJson: degradation,
          degradationKey: degradationKey(degradation),
          maskHash: maskOfBank(bank).hash,
          acceleration,
          dataHash: bankHash(bank),
          ...evaluationFigures(mine),
          backend: info.name,
        });
      }
      const result = {
        model: card.name,
        kind: card.kind,
        task: card.task,
        degradation: label,
        acceleration,
        split,
        data: data.split.description,
        backend: info.name,
        slices: bank.count,
        rows,
        perVolume: mine.perVolume,
        compactness: card.compactness,
      };
      if (o.json) printJson(result);
      else {
        process.stdout.write(`${metricsTable(rows)}\n`);
        const c = card.compactness;
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
    } finally {
      db.close();
      net.dispose();
    }
  });
}
