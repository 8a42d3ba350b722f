/**
 * `kdmri sweep` on a REAL single-node Slurm (slurmctld + slurmd + munged started by the test, on
 * ports of its own): a 2-acceleration × 2-seed sweep of tiny distillations (32×32, 2 epochs) is one
 * job array; one task is cancelled with scancel mid-run and resubmitted, and resumes from its
 * checkpoint (the epochs it had done keep their rows and times: not redone); every task finishes;
 * `kdmri runs import` merges them (twice: the second changes nothing); the merged study's table
 * equals the table of the same sweep run locally (through this machine's job queue), which runs at
 * the same time: the uninterrupted tasks' evaluations bit for bit, the resumed task's to float32
 * rounding (see below).
 *
 * Skipped only when the slurm-wlm / munge binaries are missing (named), or when not root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ImportReport, ResultsTable, SweepInfo } from '../../src-main/contract/api.js';
import { slurmMissing, startSlurm } from './slurm-harness.js';
import { writePhantom } from './phantom.js';

const root = new URL('../..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function kdmri(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function kdmriAsync(env: NodeJS.ProcessEnv, ...args: string[]) {
  return new Promise<{ code: number | null; out: string; err: string }>((ok) => {
    const c = spawn(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
      cwd: root,
      env,
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => ok({ code, out, err }));
  });
}

function json<T>(r: { code: number | null; out: string; err: string }, what: string): T {
  assert.equal(r.code, 0, `${what}: ${r.err}`);
  return JSON.parse(r.out) as T;
}

/** Read-only query of a database another process may be writing (WAL). */
function query<T>(file: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

function counts(file: string): Record<string, number> {
  const tables = [
    'datasets',
    'jobs',
    'runs',
    'epoch_metrics',
    'models',
    'evaluations',
    'evaluation_values',
    'run_records',
    'experiments',
    'experiment_jobs',
  ];
  return Object.fromEntries(
    tables.map((t) => [t, query<{ n: number }>(file, `SELECT count(*) AS n FROM ${t}`)[0].n]),
  );
}

/** The table without its ids (the study's and the dataset's differ between two libraries). */
function comparable(t: ResultsTable) {
  return { columns: t.columns, rows: t.rows, kdGain: t.kdGain, paired: t.paired, notes: t.notes };
}

/**
 * Equal structure, counts and texts; numbers equal to `rel` (relative to max(1, |a|, |b|): absolute
 * for small figures such as spreads). Returns the largest difference and where it is.
 */
function assertClose(a: unknown, b: unknown, rel: number, path = ''): { diff: number; at: string } {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) {
      assert.ok(Number.isNaN(a) && Number.isNaN(b), `${path}: ${a} vs ${b}`);
      return { diff: 0, at: path };
    }
    const d = a === b ? 0 : Math.abs(a - b) / Math.max(1, Math.abs(a), Math.abs(b));
    assert.ok(d <= rel, `${path}: ${a} vs ${b} (relative difference ${d})`);
    return { diff: d, at: path };
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    assert.deepEqual(a, b, path);
    return { diff: 0, at: path };
  }
  const ka = Object.keys(a).sort();
  assert.deepEqual(ka, Object.keys(b).sort(), `${path}: keys`);
  let worst = { diff: 0, at: path };
  for (const k of ka) {
    const r = assertClose(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      rel,
      `${path}.${k}`,
    );
    if (r.diff > worst.diff) worst = r;
  }
  return worst;
}

/** Each job's validation PSNR by (acceleration, seed, model), for a message on a difference. */
function evaluationsOf(file: string) {
  return query<{ acc: number; seed: number; run_kind: string; psnr: number; threads: number | null }>(
    file,
    `SELECT ej.acc, ej.seed, e.run_kind, e.psnr,
       (SELECT rr.threads FROM runs r JOIN run_records rr ON rr.run_id = r.id
         WHERE r.job_id = e.job_id AND r.kind = e.run_kind) AS threads
     FROM evaluations e JOIN experiment_jobs ej ON ej.job_id = e.job_id
     WHERE e.split = 'validation' ORDER BY ej.acc, ej.seed, e.run_kind`,
  );
}

/** The array tasks' logs and the daemons' logs under `dir`. */
function findLogs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(out|log)$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const missing = slurmMissing();

test(
  'a sweep on a real single-node Slurm: job array, scancel + resubmit resumes, import equals a local sweep',
  { skip: missing ?? false, timeout: 1_800_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-slurm-'));
    const data = join(dir, 'phantom.nii');
    writePhantom(data, 8, 32);
    const slurm = await startSlurm(join(dir, 'slurm'));
    const env = slurm.env;
    const lib = join(dir, 'lib', 'kdmri.db');
    const localLib = join(dir, 'local', 'kdmri.db');
    const grid = [
      '--data',
      data,
      '--accs',
      '4,8',
      '--seeds',
      '1,2',
      '--size',
      '32',
      '--epochs',
      '2',
      '--backend',
      'wasm',
    ];
    try {
      // the same sweep through this machine's job queue, at the same time
      const local = kdmriAsync(
        env,
        'sweep',
        ...grid,
        '--executor',
        'local',
        '--db',
        localLib,
        '--workdir',
        join(dir, 'work-local'),
        '--json',
      );

      const sweep = json<SweepInfo>(
        kdmri(
          env,
          'sweep',
          ...grid,
          '--executor',
          'slurm',
          '--time',
          '00:20:00',
          '--cpus',
          '1',
          '--db',
          lib,
          '--workdir',
          join(dir, 'work'),
          '--json',
        ),
        'kdmri sweep --executor slurm',
      );
      assert.equal(sweep.tasks.length, 4);
      const arrays = new Set(sweep.tasks.map((t) => t.schedulerId?.split('_')[0]));
      assert.equal(arrays.size, 1, 'one job array');
      const arrayId = [...arrays][0]!;
      assert.deepEqual(
        sweep.tasks.map((t) => [t.acc, t.seed, t.schedulerId]),
        [
          [4, 1, `${arrayId}_0`],
          [4, 2, `${arrayId}_1`],
          [8, 1, `${arrayId}_2`],
          [8, 2, `${arrayId}_3`],
        ],
      );

      // cancel task 0 as soon as it has finished an epoch
      const victim = sweep.tasks[0];
      const victimDb = join(victim.dir, 'kdmri.db');
      const t0 = Date.now();
      for (;;) {
        const n = query<{ n: number }>(victimDb, 'SELECT count(*) AS n FROM epoch_metrics')[0].n;
        if (n >= 1) break;
        assert.ok(Date.now() - t0 < 600_000, 'task 0 never recorded an epoch');
        await sleep(200);
      }
      const sc = spawnSync('scancel', [victim.schedulerId!], { env, encoding: 'utf8' });
      assert.equal(sc.status, 0, sc.stderr);

      // wait for the array to leave the queue
      let status: SweepInfo;
      for (;;) {
        status = json<SweepInfo>(
          kdmri(env, 'sweep', 'status', sweep.id, '--db', lib, '--json'),
          'sweep status',
        );
        if (status.tasks.every((t) => t.state !== 'queued' && t.state !== 'running')) break;
        assert.ok(
          Date.now() - t0 < 1_000_000,
          `tasks still running: ${JSON.stringify(status.tasks.map((t) => t.state))}`,
        );
        await sleep(2000);
      }
      assert.deepEqual(
        status.tasks.slice(1).map((t) => t.state),
        ['finished', 'finished', 'finished'],
      );
      assert.ok(
        ['cancelled', 'failed'].includes(status.tasks[0].state),
        `task 0 is ${status.tasks[0].state}`,
      );
      const before = query<{ kind: string; epoch: number; created_at: number }>(
        victimDb,
        'SELECT r.kind, e.epoch, e.created_at FROM epoch_metrics e JOIN runs r ON r.id = e.run_id ORDER BY r.id, e.epoch',
      );
      assert.ok(
        before.length >= 1 && before.length < 8,
        `task 0 was cancelled mid-run (${before.length} of 8 epochs done)`,
      );

      // resubmit: only task 0, which resumes
      const re = json<{ resubmitted: number[]; sweep: SweepInfo }>(
        kdmri(env, 'sweep', 'resubmit', sweep.id, '--db', lib, '--json'),
        'sweep resubmit',
      );
      assert.deepEqual(re.resubmitted, [0]);
      assert.notEqual(re.sweep.tasks[0].schedulerId, victim.schedulerId);
      for (;;) {
        status = json<SweepInfo>(
          kdmri(env, 'sweep', 'status', sweep.id, '--db', lib, '--json'),
          'sweep status',
        );
        if (status.tasks[0].state !== 'queued' && status.tasks[0].state !== 'running') break;
        assert.ok(Date.now() - t0 < 1_400_000, 'task 0 did not finish after resubmission');
        await sleep(2000);
      }
      assert.equal(status.tasks[0].state, 'finished', status.tasks[0].error ?? '');
      const after = query<{ kind: string; epoch: number; created_at: number }>(
        victimDb,
        'SELECT r.kind, e.epoch, e.created_at FROM epoch_metrics e JOIN runs r ON r.id = e.run_id ORDER BY r.id, e.epoch',
      );
      assert.equal(after.length, 8, 'four steps × two epochs, each once');
      for (const b of before)
        assert.ok(
          after.some((a) => a.kind === b.kind && a.epoch === b.epoch && a.created_at === b.created_at),
          `epoch ${b.epoch} of ${b.kind} was redone`,
        );
      assert.equal(
        query<{ n: number }>(victimDb, "SELECT count(*) AS n FROM runs WHERE status = 'finished'")[0].n,
        4,
      );

      // import, twice
      const first = json<ImportReport>(
        kdmri(env, 'runs', 'import', sweep.workdir, '--db', lib, '--json'),
        'runs import',
      );
      assert.equal(first.imported.length, 4, JSON.stringify(first));
      assert.equal(first.conflicts.length, 0);
      const snapshot = counts(lib);
      const files = readdirSync(join(dir, 'lib', 'models')).sort();
      assert.equal(files.length, 16, 'four models per task');
      const second = json<ImportReport>(
        kdmri(env, 'runs', 'import', sweep.workdir, '--db', lib, '--json'),
        'runs import again',
      );
      assert.equal(second.imported.length, 0);
      assert.equal(second.skipped.length, 4);
      assert.deepEqual(counts(lib), snapshot, 'a second import changes nothing');
      assert.deepEqual(readdirSync(join(dir, 'lib', 'models')).sort(), files);
      assert.deepEqual(snapshot, {
        ...snapshot,
        jobs: 4,
        runs: 16,
        models: 16,
        experiments: 1,
        experiment_jobs: 4,
        epoch_metrics: 32,
      });

      // the local sweep, imported into its own library
      const l = await local;
      const localSweep = json<SweepInfo>(l, 'kdmri sweep --executor local');
      assert.deepEqual(
        localSweep.tasks.map((t) => t.state),
        ['finished', 'finished', 'finished', 'finished'],
      );
      const li = json<ImportReport>(
        kdmri(env, 'sweep', 'import', localSweep.id, '--db', localLib, '--json'),
        'sweep import',
      );
      assert.equal(li.imported.length, 4);

      const study = sweep.tasks[0].experimentId;
      const slurmTable = json<{ table: ResultsTable }>(
        kdmri(env, 'table', '--study', study, '--db', lib, '--json'),
        'table (slurm)',
      ).table;
      const localTable = json<{ table: ResultsTable }>(
        kdmri(env, 'table', '--study', localSweep.tasks[0].experimentId, '--db', localLib, '--json'),
        'table (local)',
      ).table;
      assert.equal(slurmTable.columns.length, 2);
      assert.deepEqual(
        slurmTable.rows.map((r) => r.model),
        ['zf', 'cs', 'teacher', 'student', 'kd'],
      );
      assert.ok(slurmTable.rows.every((r) => r.cells.every((c) => c !== null && c.seeds === 2)));
      // every evaluation of the tasks that ran uninterrupted is bit-identical to the local sweep's; the
      // task that was cancelled and resumed agrees to float32 rounding (measured twice, the same both
      // times: its teacher's PSNR 21.728648384 resumed vs 21.728647526 uninterrupted, 9e-7 dB; its
      // student, attention and KD equal). That is the distill resume's, not the merge's.
      const a = evaluationsOf(lib);
      const b = evaluationsOf(localLib);
      assert.equal(a.length, b.length);
      a.forEach((x, i) => {
        const y = b[i];
        assert.deepEqual([x.acc, x.seed, x.run_kind], [y.acc, y.seed, y.run_kind]);
        if (x.acc === victim.acc && x.seed === victim.seed) {
          if (x.psnr !== y.psnr)
            console.log(`resumed task ${x.run_kind}: PSNR ${x.psnr} (slurm, resumed) vs ${y.psnr} (local)`);
          assert.ok(
            Math.abs(x.psnr - y.psnr) <= 1e-6 * Math.abs(y.psnr),
            `${x.run_kind}: ${x.psnr} vs ${y.psnr}`,
          );
        } else assert.equal(x.psnr, y.psnr, `${x.acc}x seed ${x.seed} ${x.run_kind}`);
      });
      // same structure, seeds, volumes and texts; figures equal to that rounding (measured: largest
      // differences 6e-7 and 9e-7 absolute, in the teacher's PSNR spread and a KD-gain interval bound)
      const worst = assertClose(comparable(slurmTable), comparable(localTable), 1e-5);
      console.log(`table: largest difference slurm vs local ${worst.diff.toExponential(2)} at ${worst.at}`);
    } catch (err) {
      // what Slurm and the tasks said, before the folder goes
      for (const f of findLogs(dir))
        console.log(`--- ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-15).join('\n')}`);
      throw err;
    } finally {
      slurm.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
