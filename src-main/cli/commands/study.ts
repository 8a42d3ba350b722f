/**
 * `kdmri study`: the whole KD-MRI protocol for every acceleration and seed, as one study in the
 * database (distill/study.ts), then its table: mean ± std over seeds, the share of the
 * student→teacher gap that KD closes (with a 95 % interval), and paired comparisons of KD against
 * the student and against student-long (a student trained as long as attention + KD together).
 */
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { defaultDbPath, openDatabase } from '../../store/db.js';
import { createStudy, runStudy } from '../../distill/study.js';
import { renderTable, studyJson, studyTable } from '../../results/table.js';
import { UserError } from '../errors.js';
import { printJson, progressReporter } from '../output.js';
import { addConfigOptions, configFromOptions, type DistillOptions } from './distill.js';

interface StudyOptions extends Omit<DistillOptions, 'acc' | 'seed' | 'task' | 'steps' | 'resume'> {
  accs: number[];
  seeds: number[];
  name?: string;
  resume?: string;
}

/** A comma-separated list of numbers (integers when `integer`) in [min, max]. */
export function numberList(name: string, integer: boolean, min: number, max: number) {
  return (v: string): number[] => {
    const parts = v.split(',').map((x) => x.trim());
    const out = parts.map(Number);
    if (
      parts.some((p) => p === '') ||
      out.some((n) => !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
    )
      throw new InvalidArgumentError(
        `${name} takes a comma-separated list of ${integer ? 'integers' : 'numbers'} from ${min} to ${max}, got '${v}'`,
      );
    return out;
  };
}

export function register(program: Command): void {
  const cmd = program
    .command('study')
    .description(
      'the KD-MRI protocol for every acceleration × seed as one study (with the student-long control); prints its table',
    )
    .option(
      '--data <path>',
      'NIfTI volume, folder of volumes, DICOM series or HDF5 file (default: bundled sample)',
    )
    .option('--accs <list>', 'accelerations, e.g. 4,5,8', numberList('--accs', false, 1.01, 64), [4, 5, 8])
    .option(
      '--seeds <list>',
      'seeds for weights and shuffling, e.g. 1,2,3',
      numberList('--seeds', true, 0, 2 ** 31),
      [1, 2, 3],
    )
    .option('--name <text>', 'a name for the study');
  addConfigOptions(cmd)
    .option('--resume <studyId>', 'run the unfinished jobs of a study')
    .option('--json', 'print the table as one JSON object', false)
    .action(async (o: StudyOptions) => {
      const dbPath = resolve(o.db ?? defaultDbPath());
      const modelsRoot = resolve(o.out ?? join(dirname(dbPath), 'models'));
      let studyId = o.resume;
      // a mask file has one acceleration, its own: the study's only column
      if (o.maskFile) o.accs = [Number(o.maskFile.acc.toFixed(2))];
      if (!studyId) {
        const base = configFromOptions({ ...o, task: 'recon', acc: o.accs[0], seed: o.seeds[0] });
        const db = openDatabase(dbPath);
        try {
          studyId = createStudy(db, {
            name: o.name,
            base,
            accs: o.accs,
            seeds: o.seeds,
            data: { kind: 'path', path: o.data, size: o.size, slab: o.slab },
            task: 'recon',
            modelsRoot,
          }).studyId;
        } catch (e) {
          throw new UserError((e as Error).message);
        } finally {
          db.close();
        }
      }
      process.stderr.write(`study ${studyId}\n`);
      const progress = o.json ? null : progressReporter();
      let stop = false;
      const onSigint = () => {
        stop = true;
      };
      process.once('SIGINT', onSigint);
      let lastJob = -1;
      const r = await runStudy(
        studyId,
        { dbPath, modelsRoot, backend: o.backend },
        {
          onEvent: (i, total, job, e) => {
            if (i !== lastJob) {
              lastJob = i;
              process.stderr.write(
                `study ${studyId.slice(0, 8)}: job ${i + 1}/${total} (${job.role}, ${job.acc}x, seed ${job.seed})\n`,
              );
            }
            progress?.onEvent(e);
          },
          shouldStop: () => stop,
        },
      ).catch((e: Error) => {
        throw new UserError(e.message);
      });
      process.off('SIGINT', onSigint);
      progress?.stop();
      const db = openDatabase(dbPath);
      try {
        const t = studyTable(db, studyId);
        if (o.json) printJson({ ...studyJson(t), status: r.status, failed: r.failed });
        else process.stdout.write(`${renderTable(t, 'text')}\n\nstudy ${studyId} (${r.status})\n`);
      } finally {
        db.close();
      }
      if (r.status === 'cancelled') process.exitCode = 130;
      else if (r.status === 'failed')
        throw new UserError(`study ${studyId}: ${r.failed.map((f) => f.error).join('; ')}`, 1);
    });
}
