/**
 * Who holds a job: the process that trains it (or has it queued). A lease names the process (pid,
 * host, start identity) and what it is ("kdmri serve", "desktop app", "kdmri distill"), and carries a
 * heartbeat. A lease is live while its process is: on this host, the pid exists and (on Linux) has
 * the same start time, so a pid reused after a crash does not count; on another host (a library on a
 * shared folder) the heartbeat must be recent.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface LeaseHolder {
  pid: number;
  host: string;
  /** Process start identity (Linux: start time in clock ticks since boot), null where unknown. */
  start: string | null;
  /** What the process is, for messages: "kdmri serve", "desktop app", "kdmri distill". */
  label: string;
}

export interface Lease extends LeaseHolder {
  /** Epoch ms of the last heartbeat. */
  at: number;
}

/** A lease from another host whose heartbeat is older than this is taken to be dead. */
export const FOREIGN_LEASE_STALE_MS = 30 * 60_000;

/** Field 22 of /proc/<pid>/stat: the process start time in clock ticks after boot (Linux only). */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may contain spaces: count after its ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

let self: Omit<LeaseHolder, 'label'> | null = null;

/** This process as a lease holder. */
export function thisProcess(label: string): LeaseHolder {
  self ??= { pid: process.pid, host: hostname(), start: processStart(process.pid) };
  return { ...self, label };
}

/** Whether a process with this pid exists (on this host). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sameProcess(a: Pick<LeaseHolder, 'pid' | 'host' | 'start'>, b: LeaseHolder): boolean {
  return (
    a.pid === b.pid && a.host === b.host && (a.start === null || b.start === null || a.start === b.start)
  );
}

/** Whether the lease's process is still running (see the module comment). */
export function leaseAlive(lease: Lease, now = Date.now()): boolean {
  if (lease.host !== hostname()) return now - lease.at < FOREIGN_LEASE_STALE_MS;
  if (lease.pid === process.pid) return lease.start === null || lease.start === thisProcess('').start;
  if (!pidExists(lease.pid)) return false;
  if (lease.start === null) return true;
  const start = processStart(lease.pid);
  return start === null || start === lease.start;
}

/** "process 4242 (kdmri serve) on host box, since 08:31:02". */
export function describeHolder(lease: Lease): string {
  const since = new Date(lease.at).toTimeString().slice(0, 8);
  return `process ${lease.pid} (${lease.label}) on host ${lease.host}, last seen ${since}`;
}
