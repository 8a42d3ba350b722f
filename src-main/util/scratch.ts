/**
 * Scratch folders of this process in the OS temp folder. A process killed outright (SIGKILL, the
 * machine losing power) runs no exit handler and leaves its scratch behind — with `kdmri convert`, a
 * whole temporary library of decoded slices. So every name carries the owner's pid,
 * `<prefix><pid>-<random>`, and the first scratch folder a process makes removes those of owners that
 * are no longer running. A pid that is running (even if reused by another program) keeps its folders:
 * only certainly-stale scratch is removed.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every prefix a KD-MRI process names its scratch with, and the pid after it (teacher-cache.ts names
 * its spill file `teacher-cache-<pid>-<uuid>.bin`).
 */
const SCRATCH_NAME = /^(?:kdmri-[a-z]+-|teacher-cache-)(\d+)-/;

let swept = false;

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the scratch entries in `dir` (default: the OS temp folder) whose owning process has ended.
 * Returns the names removed. Entries that cannot be removed are left (another user's, say).
 */
function sweepStaleScratch(dir = tmpdir()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = SCRATCH_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || !Number.isSafeInteger(pid) || pid <= 0 || running(pid)) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // not ours to remove
    }
  }
  return removed;
}

const live = new Set<string>();

/**
 * A new folder `<tmp>/<prefix><pid>-<random>` (prefix like 'kdmri-convert-'), removed by
 * removeScratchDir or else when the process exits; the first call in a process first sweeps stale
 * scratch.
 */
export function makeScratchDir(prefix: string): string {
  if (!/^kdmri-[a-z]+-$/.test(prefix)) throw new Error(`scratch prefix '${prefix}' must be kdmri-<word>-`);
  if (!swept) {
    swept = true;
    sweepStaleScratch();
    process.once('exit', () => {
      for (const dir of live) rmSync(dir, { recursive: true, force: true });
    });
  }
  const dir = mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
  live.add(dir);
  return dir;
}

/** Remove a folder made by makeScratchDir, with everything in it. */
export function removeScratchDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}
