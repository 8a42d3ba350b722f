/**
 * A real single-node Slurm for one test, everything in the test's own folder (see
 * /work/shared/notes/slurm-single-node.md): a localhost slurm.conf, munged (unless one already
 * answers), slurmctld and slurmd, stopped by the pids in their pid files. Clients reach it through
 * SLURM_CONF in `env`. Needs root (SlurmUser=root) and Debian's slurm-wlm and munge.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';

const BINARIES = [
  '/usr/sbin/slurmctld',
  '/usr/sbin/slurmd',
  '/usr/sbin/munged',
  'sbatch',
  'squeue',
  'scancel',
  'sinfo',
  'munge',
  'unmunge',
];

function which(b: string): boolean {
  if (b.startsWith('/')) return existsSync(b);
  return spawnSync('sh', ['-c', `command -v ${b}`]).status === 0;
}

/** Why the test cannot run here (a missing binary or not root), or null. */
export function slurmMissing(): string | null {
  const missing = BINARIES.filter((b) => !which(b));
  if (missing.length)
    return `slurm-wlm/munge binaries missing: ${missing.join(', ')} (apt-get install slurm-wlm munge)`;
  if (process.getuid?.() !== 0) return 'a single-node Slurm runs its daemons as root here; run as root';
  return null;
}

export interface Slurm {
  env: NodeJS.ProcessEnv;
  conf: string;
  stop(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mungeWorks(): boolean {
  const r = spawnSync('sh', ['-c', 'munge -n | unmunge'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

function killPidFile(file: string): void {
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

export async function startSlurm(dir: string): Promise<Slurm> {
  mkdirSync(join(dir, 'state'), { recursive: true });
  mkdirSync(join(dir, 'spool'), { recursive: true });
  const node = hostname().split('.')[0];
  // ports of our own, so that another test's Slurm (or a real one) is not disturbed
  const base = 20000 + Math.floor(Math.random() * 20000);
  const memory = Math.max(512, Math.floor(totalmem() / 2 ** 20) - 2048);
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=kdmri-test',
      `SlurmctldHost=${node}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'ReturnToService=2',
      'MpiDefault=none',
      // time for a cancelled task's clean stop (SIGTERM → checkpoint, lease released) on a loaded machine
      'KillWait=120',
      `SlurmctldPort=${base}`,
      `SlurmdPort=${base + 1}`,
      `NodeName=${node} CPUs=${cpus().length} RealMemory=${memory} State=UNKNOWN`,
      `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  let mungePid: string | null = null;
  if (!mungeWorks()) {
    mkdirSync('/run/munge', { recursive: true });
    execFileSync('chown', ['munge:munge', '/run/munge']);
    execFileSync('su', ['-s', '/bin/sh', 'munge', '-c', '/usr/sbin/munged']);
    mungePid = '/run/munge/munged.pid';
    for (let i = 0; i < 50 && !mungeWorks(); i++) await sleep(100);
  }
  const stop = () => {
    killPidFile(join(dir, 'slurmd.pid'));
    killPidFile(join(dir, 'slurmctld.pid'));
    if (mungePid) killPidFile(mungePid);
  };
  try {
    execFileSync('/usr/sbin/slurmctld', ['-f', conf], { env });
    execFileSync('/usr/sbin/slurmd', ['-f', conf], { env });
    let state = '';
    for (let i = 0; i < 120; i++) {
      state = spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8' }).stdout?.trim() ?? '';
      if (state === 'idle') break;
      await sleep(500);
    }
    if (state !== 'idle')
      throw new Error(`the test's Slurm node is '${state}', not idle (see ${dir}/slurmd.log)`);
  } catch (err) {
    stop();
    throw err;
  }
  return { env, conf, stop };
}
