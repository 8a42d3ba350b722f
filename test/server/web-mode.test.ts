// Web mode as a user runs it: `kdmri serve` in a child process on a temporary KDMRI_HOME, driven over
// HTTP. A kill -9 during training, then a restart: the job shows interrupted and resumes through the
// services losing at most the epoch in progress; while it trains, a second process's resume is refused
// naming the holder. The access token never appears in any process's arguments.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeWire,
  type ApiEvent,
  type ApiResult,
  type JobInfo,
  type RunInfo,
} from '../../src-main/contract/api.js';
import { defaultDistillConfig } from '../../src-main/contract/domain.js';
import { openDatabase } from '../../src-main/store/db.js';

const root = new URL('../..', import.meta.url).pathname;
const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const cli = ['--import', 'tsx', 'src-main/cli/entry.ts'];

interface Serve {
  child: ChildProcess;
  port: number;
  cookie: string;
  /** The printed one-time link. */
  link: string;
  call<T>(op: string, body?: unknown): Promise<T>;
}

function httpGet(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((ok, ko) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', ko);
    req.end();
  });
}

/** Start `kdmri serve` on `home`, wait for its link, log in with it (the cookie). */
async function serve(
  home: string,
  env: NodeJS.ProcessEnv = {},
  args: string[] = ['--no-open'],
): Promise<Serve> {
  const child = spawn(process.execPath, [...cli, 'serve', '--port', '0', ...args], {
    cwd: root,
    env: { ...process.env, KDMRI_HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const link = await new Promise<string>((ok, ko) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /open \(once, within 5 minutes\): (\S+)/.exec(out);
      if (m) ok(m[1]);
    });
    child.on('exit', (code) => ko(new Error(`kdmri serve exited (${code}): ${err}`)));
  });
  const url = new URL(link);
  const port = Number(url.port);
  const login = await httpGet(port, url.pathname + url.search);
  assert.equal(login.status, 303, login.text);
  const cookie = String(login.headers['set-cookie']).split(';')[0];
  const call = <T>(op: string, body: unknown = {}) =>
    new Promise<T>((ok, ko) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: `/api/${op}`,
          headers: { 'content-type': 'application/json', cookie },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => {
            const r = decodeWire<ApiResult<T>>(text);
            if (r.ok) ok(r.value);
            else ko(Object.assign(new Error(`${op}: ${r.error.message}`), { error: r.error }));
          });
        },
      );
      req.on('error', ko);
      req.end(JSON.stringify(body));
    });
  return { child, port, cookie, link, call };
}

/** Collect the server's events until `until` says stop. */
function events(s: Serve, until: (e: ApiEvent) => boolean): Promise<ApiEvent[]> {
  return new Promise((ok, ko) => {
    const seen: ApiEvent[] = [];
    const req = request(
      { host: '127.0.0.1', port: s.port, path: '/api/events', headers: { cookie: s.cookie } },
      (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!frame.startsWith('data: ')) continue;
            const e = decodeWire<ApiEvent>(frame.slice(6));
            seen.push(e);
            if (until(e)) {
              req.destroy();
              ok(seen);
            }
          }
        });
      },
    );
    req.on('error', (e) => (seen.length ? ok(seen) : ko(e)));
    req.end();
  });
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  ms = 600_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const died = (c: ChildProcess) =>
  new Promise<void>((ok) =>
    c.exitCode !== null || c.signalCode !== null ? ok() : c.once('exit', () => ok()),
  );

test('kill -9 of web mode during training: restart shows the job interrupted; it resumes through the services losing at most one epoch; a second process is refused the job', async (t) => {
  const home = tmp('kdmri-kill9-');
  const a = await serve(home);
  const datasets = await waitFor('the bundled sample dataset', async () => {
    const ds = await a.call<{ id: number }[]>('listDatasets');
    return ds.length ? ds : null;
  });
  const base = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
  });
  // enough epochs that the kill lands mid-training however fast the machine is (the lease check in
  // between starts a CLI process, seconds long)
  const EPOCHS = 30;
  const config = { ...base, steps: ['teacher'], training: { ...base.training, epochs: EPOCHS } };
  const { jobId } = await a.call<{ jobId: string }>('startDistillation', {
    datasetId: datasets[0].id,
    config,
    size: 32,
  });
  const teacherRun = () => a.call<RunInfo[]>('listRuns', { jobId }).then((r) => r[0]);
  await waitFor('a first epoch', async () => ((await teacherRun())?.epochs ?? 0) >= 1);

  // another process (the CLI) wants the job while web mode trains it: refused, naming the holder
  const second = spawnSync(process.execPath, [...cli, 'distill', '--resume', jobId], {
    cwd: root,
    env: { ...process.env, KDMRI_HOME: home },
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(second.status, 1, second.stderr);
  assert.match(
    second.stderr,
    new RegExp(
      `kdmri: job ${jobId} is leased to process ${a.child.pid} \\(kdmri serve, web mode\\) on host \\S+, last seen \\d\\d:\\d\\d:\\d\\d`,
    ),
  );
  assert.doesNotMatch(second.stderr, /\n\s+at /);

  a.child.kill('SIGKILL');
  await died(a.child);
  const db = openDatabase(join(home, 'kdmri.db'));
  const atKill = db.runs.list({ jobId })[0];
  assert.equal(atKill.status, 'running', 'the run was cut short');
  const epochsAtKill = atKill.epochsDone;
  assert.ok(epochsAtKill >= 1 && epochsAtKill < EPOCHS, `killed mid-training (${epochsAtKill} epochs done)`);
  db.close();

  const b = await serve(home);
  const job = (await b.call<JobInfo[]>('listJobs')).find((j) => j.id === jobId)!;
  assert.deepEqual([job.status, job.error, job.live], ['failed', 'interrupted', false]);
  const stream = events(b, (e) => e.channel === 'job' && e.jobId === jobId && e.event.type === 'job-end');
  await new Promise((r) => setTimeout(r, 200));
  await b.call('resumeJob', { jobId });
  const seen = (await stream).flatMap((e) => (e.channel === 'job' && e.jobId === jobId ? [e.event] : []));
  const end = seen.at(-1)!;
  assert.deepEqual(end, { type: 'job-end', status: 'finished' });
  const start = seen.find((e) => e.type === 'step-start');
  assert.ok(start && start.type === 'step-start');
  // the resume starts after the last checkpointed epoch: what was lost is at most the epoch in progress
  assert.ok(
    start.startEpoch >= epochsAtKill,
    `resumed at epoch ${start.startEpoch}, ${epochsAtKill} were done`,
  );
  t.diagnostic(`killed with ${epochsAtKill} of ${EPOCHS} epochs done; resumed at epoch ${start.startEpoch}`);
  const trained = seen.filter((e) => e.type === 'epoch').map((e) => (e.type === 'epoch' ? e.epoch : -1));
  assert.deepEqual(trained, [...Array(EPOCHS).keys()].slice(start.startEpoch));
  const runs = await b.call<RunInfo[]>('listRuns', { jobId });
  assert.deepEqual(
    runs.map((r) => [r.kind, r.status, r.epochs]),
    [['teacher', 'finished', EPOCHS]],
  );
  const epochs = await b.call<{ epoch: number }[]>('runEpochs', { runId: runs[0].id });
  assert.deepEqual(
    epochs.map((e) => e.epoch),
    [...Array(EPOCHS).keys()],
  );
  b.child.kill('SIGTERM');
  await died(b.child);
});

test('the access token is in no process arguments: the browser opens a one-time link', async () => {
  const home = tmp('kdmri-argv-');
  const bin = join(home, 'bin');
  mkdirSync(bin);
  const argsFile = join(home, 'xdg-open.args');
  const pidFile = join(home, 'xdg-open.pid');
  // a desktop's xdg-open, recording what it was given and staying alive like a browser
  writeFileSync(
    join(bin, 'xdg-open'),
    `#!/bin/sh\necho $$ > ${pidFile}\necho "$@" > ${argsFile}\nexec sleep 60\n`,
  );
  chmodSync(join(bin, 'xdg-open'), 0o755);
  const env: NodeJS.ProcessEnv = { DISPLAY: ':99', PATH: `${bin}:${process.env.PATH}`, CI: '' };
  const s = await serve(home, env, []);
  const opened = await waitFor(
    'xdg-open to be called',
    async () => {
      try {
        return readFileSync(argsFile, 'utf8').trim();
      } catch {
        return null;
      }
    },
    60_000,
  );
  assert.match(opened, /^http:\/\/127\.0\.0\.1:\d+\/login\?code=[0-9a-f]{48}$/);
  assert.notEqual(opened, s.link, 'the browser gets its own link; the printed one stays usable');
  const token = s.cookie.split('=')[1];
  assert.match(token, /^[0-9a-f]{64}$/);
  // every process's command line, this machine's whole process table
  const leaks: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(token)) leaks.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  assert.deepEqual(leaks, []);
  // the browser's link logs in once; once used it is worthless
  const url = new URL(opened);
  assert.equal((await httpGet(s.port, url.pathname + url.search)).status, 303);
  assert.equal((await httpGet(s.port, url.pathname + url.search)).status, 401);
  s.child.kill('SIGTERM');
  await died(s.child);
  process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); // the stand-in browser
});
