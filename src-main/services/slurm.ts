/**
 * Slurm, through its command-line clients (sbatch, squeue, sacct, scancel): one job-array script per
 * sweep, submitted with `sbatch --array`, and the states of its tasks. The clients read the cluster's
 * configuration as they always do (SLURM_CONF, /etc/slurm); nothing here talks to slurmctld directly.
 *
 * The script runs task $SLURM_ARRAY_TASK_ID as `kdmri distill --db <task>/kdmri.db --resume <job>`:
 * every task database holds its job already ('queued'), so a first run starts it and a resubmitted
 * one continues from its checkpoints. The script passes SIGTERM (scancel, a time limit, pre-emption)
 * on to kdmri, which cancels the job cleanly (checkpoint kept, job 'cancelled', lease released), and
 * writes `<task>/state` when it starts and ends.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/model-files.js';

export interface SlurmOptions {
  partition?: string;
  /** Wall-time limit per task, Slurm's format (HH:MM:SS, D-HH:MM:SS, minutes). */
  time?: string;
  cpus?: number;
  gpus?: number;
  /** The command that runs kdmri on the compute nodes (argv). */
  kdmri: string[];
  /** The folder kdmri runs in on the nodes (the submitting shell's, by default). */
  chdir: string;
  backend?: string;
}

export interface ArrayTask {
  idx: number;
  dir: string;
  jobId: string;
}

/** Single-quote for bash: the paths are the user's and may hold spaces or quotes. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Write the sweep's job script and task list into `sweepDir`; the script's path. */
export function writeArrayScript(
  sweepDir: string,
  name: string,
  tasks: ArrayTask[],
  o: SlurmOptions,
): string {
  const list = join(sweepDir, 'tasks.tsv');
  writeFileAtomic(list, tasks.map((t) => `${t.idx}\t${t.dir}\t${t.jobId}\n`).join(''));
  const directives = [
    `#SBATCH --job-name=${name}`,
    `#SBATCH --output=${join(sweepDir, 'logs', '%A_%a.out')}`,
    `#SBATCH --chdir=${o.chdir}`,
    ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
    ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
    ...(o.cpus ? [`#SBATCH --cpus-per-task=${o.cpus}`] : []),
    ...(o.gpus ? [`#SBATCH --gpus=${o.gpus}`] : []),
  ];
  const kdmri = o.kdmri.map(q).join(' ');
  const backend = o.backend ? ` --backend ${q(o.backend)}` : '';
  const script = `#!/bin/bash
${directives.join('\n')}
# Written by kdmri sweep. One array task per line of tasks.tsv (index, task folder, job id); submit
# with sbatch --array=INDICES. A resubmitted task resumes from its checkpoints.
set -u
line=$(awk -F'\\t' -v i="$SLURM_ARRAY_TASK_ID" '$1 == i' ${q(list)})
dir=$(printf '%s' "$line" | cut -f2)
job=$(printf '%s' "$line" | cut -f3)
if [ -z "$job" ]; then echo "kdmri sweep: no task $SLURM_ARRAY_TASK_ID in ${list}" >&2; exit 2; fi
printf 'running %s_%s %s\\n' "$SLURM_ARRAY_JOB_ID" "$SLURM_ARRAY_TASK_ID" "$(hostname)" > "$dir/state"
${kdmri} distill --db "$dir/kdmri.db" --resume "$job" --json${backend} > "$dir/result.json" &
child=$!
# scancel, a time limit or pre-emption send SIGTERM: let kdmri cancel the job cleanly
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"; rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
printf 'exit %s\\n' "$rc" > "$dir/state"
exit "$rc"
`;
  const path = join(sweepDir, 'sweep.sbatch');
  writeFileAtomic(path, script);
  return path;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} not found: is this a Slurm submit host (slurm-client)?`);
    const detail = (e.stderr ?? '').trim().split('\n')[0] || e.message;
    throw new Error(`${cmd} ${args.join(' ')} failed: ${detail}`);
  }
}

/** Submit `script` for the given array indices; the array job's id. */
export function submitArray(script: string, indices: number[]): string {
  const out = run('sbatch', ['--parsable', `--array=${indices.join(',')}`, script]).trim();
  const id = out.split(';')[0];
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed '${out}', not a job id`);
  return id;
}

/** Slurm's state of each array task still known to squeue, by "<array>_<index>". */
export function queueStates(arrayIds: string[]): Map<string, string> {
  const states = new Map<string, string>();
  if (arrayIds.length === 0) return states;
  let out = '';
  try {
    out = run('squeue', ['-h', '-r', '-j', arrayIds.join(','), '-o', '%i|%T']);
  } catch (err) {
    // squeue refuses ids it has forgotten ("Invalid job id"): those tasks have left the queue
    if (!/Invalid job id/i.test((err as Error).message)) throw err;
  }
  for (const line of out.split('\n')) {
    const [id, state] = line.trim().split('|');
    if (id && state) states.set(id, state);
  }
  return states;
}

/**
 * Accounting's final state of each array task (CANCELLED, TIMEOUT, PREEMPTED, FAILED, …), or an empty
 * map where the cluster keeps no accounting (sacct then fails or prints nothing).
 */
export function accountingStates(arrayIds: string[]): Map<string, string> {
  const states = new Map<string, string>();
  if (arrayIds.length === 0) return states;
  try {
    const out = run('sacct', ['-n', '-P', '-X', '-j', arrayIds.join(','), '-o', 'JobID,State']);
    for (const line of out.split('\n')) {
      const [id, state] = line.trim().split('|');
      if (id && state) states.set(id, state.split(' ')[0]);
    }
  } catch {
    // no accounting storage: the task's own database says how it ended
  }
  return states;
}
