/**
 * Start-up recovery: what a process that died (kill -9, power cut, full disk) left in the library is
 * put right before anything else runs.
 *
 *  - runs and jobs it left 'running' become 'failed' with error 'interrupted' (resumable from their
 *    checkpoints); jobs of a process that is still alive (the CLI next to the app) are left alone;
 *  - jobs it left 'queued' never started: they are marked cancelled, to be resumed by hand (jobs queued
 *    by another live process, whose lease says so, are left alone);
 *  - studies left running or queued take the status their jobs now give (distill/study.ts);
 *  - files a deletion had still to remove when it died are removed (pending_deletes);
 *  - slices an import had written but not yet put in place are removed (series.import_pid);
 *  - temporary folders and files of dead writers are removed: half-written model folders
 *    (`models/.tmp-<pid>-*`, restoring an `.old-*` folder whose replacement never arrived), half-written
 *    checkpoints (`checkpoint.tmp`), half-copied exports and atomic-write temporaries.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { refreshStudyStatus } from '../distill/study.js';
import { leaseAlive } from '../store/lease.js';
import { sweepModelRoot, sweepTempFiles } from '../store/model-files.js';
import { recoverImports } from '../studies/library.js';
import type { ServiceContext } from './context.js';
import { finishPendingDeletes } from './deletion.js';

export interface Recovered {
  /** Runs marked interrupted. */
  interruptedRuns: number[];
  /** Jobs that were queued when their process died, now cancelled. */
  cancelledJobs: string[];
  /** Temporary files and folders removed (or restored). */
  swept: string[];
  /** Series an import was adding to when it died: the slices it had not put in place are removed. */
  imports: string[];
}

export function recoverLibrary(ctx: ServiceContext): Recovered {
  const { db } = ctx;
  const interruptedRuns = db.runs.markInterrupted();
  const cancelledJobs: string[] = [];
  for (const j of db.jobs.list({ status: 'queued' })) {
    if (j.lease && leaseAlive(j.lease)) continue;
    db.jobs.update(j.id, {
      status: 'cancelled',
      error: 'the app closed before this job started; resume it',
      endedAt: Date.now(),
    });
    cancelledJobs.push(j.id);
  }
  // a study left running or waiting: its status follows what became of its jobs above
  for (const e of db.experiments.list({ kind: 'study' }))
    if (e.status === 'running' || e.status === 'queued') refreshStudyStatus(db, e.id);
  const swept = [
    // a deletion cut short between its rows and its files
    ...finishPendingDeletes(db, join(ctx.dataDir, 'dicom')),
    ...sweepModelRoot(ctx.modelsRoot),
    ...sweepTempFiles(ctx.modelsRoot),
    ...sweepCheckpoints(ctx),
    ...sweepTempFiles(join(ctx.dataDir, 'exports')),
    // uploads a process that died did not finish
    ...sweepTempFiles(join(ctx.dataDir, 'uploads')),
    ...sweepTempFiles(ctx.dataDir),
  ];
  return { interruptedRuns, cancelledJobs, swept, imports: recoverImports(db) };
}

/**
 * `checkpoint.tmp` folders of jobs that no live process runs: a save cut short (the complete
 * checkpoints next to it are kept).
 */
function sweepCheckpoints(ctx: ServiceContext): string[] {
  const root = join(ctx.modelsRoot, 'checkpoints');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const jobId of readdirSync(root)) {
    const job = ctx.db.jobs.get(jobId);
    if (job?.status === 'running') continue; // its (live) worker owns the folder
    const jobDir = join(root, jobId);
    let steps: string[];
    try {
      steps = readdirSync(jobDir);
    } catch {
      continue; // a file, not a folder: not ours to touch
    }
    for (const step of steps) {
      const tmp = join(jobDir, step, 'checkpoint.tmp');
      if (existsSync(tmp)) {
        rmSync(tmp, { recursive: true, force: true });
        out.push(tmp);
      }
    }
  }
  return out;
}
