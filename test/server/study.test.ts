// A study launched the way the Distill page does it: startStudy over web mode's HTTP API (the real
// services, store and training workers, in-process) on the bundled sample at 16×16 with tiny
// networks and one epoch per step. One experiment with its jobs in plan order, all through the one
// queue; the experiment ends 'finished' and its table has both seeds and the student-long row.
// Bad requests are refused with a message naming the problem, and leave no rows behind. Cancelling a
// member stops the study ('cancelled'); resuming its jobs finishes it. The status rule itself
// (studyState) is checked case by case, and start-up recovery puts a closed process's study right.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeWire,
  type ApiResult,
  type ExperimentInfo,
  type JobInfo,
  type ResultsTable,
} from '../../src-main/contract/api.js';
import { defaultDistillConfig } from '../../src-main/contract/domain.js';
import { createStudy, studyState } from '../../src-main/distill/study.js';
import { openDatabase } from '../../src-main/store/db.js';
import { startServer, type RunningServer } from '../../src-main/server/server.js';
import { createServices, type Services } from '../../src-main/services/index.js';
import { tinyReconConfig } from '../distill/tiny-config.js';

let dir: string;
let services: Services;
let server: RunningServer;
let datasetId: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kdmri-study-api-'));
  const staticDir = join(dir, 'renderer');
  mkdirSync(staticDir);
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
  services = createServices({ dbPath: join(dir, 'kdmri.db'), dataDir: dir, mode: 'web', workers: 'inline' });
  server = await startServer({ services, staticDir });
  const sample = await call<{ datasets: { id: number }[] }>('importSample', {});
  assert.ok(sample.ok, JSON.stringify(sample));
  const ds = await call<{ id: number }[]>('listDatasets', {});
  assert.ok(ds.ok && ds.value.length);
  datasetId = ds.value[0].id;
});

after(async () => {
  await server?.close();
  await services?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call<T>(op: string, body: unknown): Promise<ApiResult<T>> {
  const text = await new Promise<string>((ok, ko) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: `/api/${op}`,
        headers: { 'content-type': 'application/json', 'x-kdmri-token': server.token },
      },
      (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (t += c));
        res.on('end', () => ok(t));
      },
    );
    req.on('error', ko);
    req.end(JSON.stringify(body));
  });
  return decodeWire<ApiResult<T>>(text);
}

const tinyConfig = tinyReconConfig;

const rowCount = () => {
  const db = services.db;
  return {
    experiments: db.experiments.list().length,
    jobs: db.jobs.list().length,
    datasets: db.datasets.list().length,
  };
};

async function until<T>(what: string, f: () => T | null | undefined | false, ms = 240_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('startStudy over HTTP: 1 acceleration × 2 seeds is one experiment of 4 jobs in plan order, run through the queue to a table with both seeds and student-long', async () => {
  const r = await call<{ studyId: string; jobIds: string[] }>('startStudy', {
    datasetId,
    config: tinyConfig(),
    accs: [4],
    seeds: [1, 2],
    size: 16,
    name: 'tiny study',
  });
  assert.ok(r.ok, JSON.stringify(r));
  const { studyId, jobIds } = r.value;
  const db = services.db;
  const study = db.experiments.get(studyId)!;
  assert.equal(study.name, 'tiny study');
  assert.equal(db.datasets.get(study.datasetId!)!.h, 16, 'the study trains on the dataset at its size');
  const members = db.experiments.jobs(studyId);
  assert.deepEqual(
    members.map((m) => [m.role, m.acc, m.seed]),
    [
      ['main', 4, 1],
      ['student-long', 4, 1],
      ['main', 4, 2],
      ['student-long', 4, 2],
    ],
  );
  assert.deepEqual(
    members.map((m) => m.jobId),
    jobIds,
  );
  for (const [i, id] of jobIds.entries()) {
    const job = db.jobs.get(id)!;
    assert.equal(job.datasetId, study.datasetId);
    assert.equal(job.modelsRoot, services.paths.modelsRoot);
    assert.equal(job.config.training.seed, members[i].seed);
    assert.equal(job.config.degradation.kind === 'mask' && job.config.degradation.mask.acc, 4);
    assert.deepEqual(
      job.config.steps,
      members[i].role === 'main' ? ['teacher', 'student', 'attention', 'kd'] : ['student'],
    );
  }
  // one job trains at a time: the others wait in the queue
  const listed = await call<JobInfo[]>('listJobs', {});
  assert.ok(listed.ok);
  const mine = listed.value.filter((j) => jobIds.includes(j.id));
  assert.equal(mine.length, 4);
  assert.ok(mine.filter((j) => j.status === 'running').length <= 1);
  assert.ok(mine.filter((j) => j.status === 'queued').length >= 3);

  // the study is running while its jobs are: never 'finished' before the last one ends
  const seen = new Set<string>();
  await until('the study to end', () => {
    const s = db.experiments.get(studyId)!;
    seen.add(s.status);
    return s.status === 'finished' || s.status === 'failed' || s.status === 'cancelled';
  });
  const end = db.experiments.get(studyId)!;
  assert.equal(end.status, 'finished', end.error ?? '');
  assert.ok(seen.has('running'), `statuses seen: ${[...seen].join(', ')}`);
  const jobs = jobIds.map((id) => db.jobs.get(id)!);
  assert.deepEqual(
    jobs.map((j) => j.status),
    ['finished', 'finished', 'finished', 'finished'],
  );
  // in plan order, one after another
  for (let i = 1; i < jobs.length; i++) assert.ok(jobs[i].startedAt! >= jobs[i - 1].endedAt!);
  assert.equal(end.startedAt, jobs[0].startedAt);
  assert.equal(end.endedAt, jobs[3].endedAt);

  const table = await call<{ table: ResultsTable }>('paperTable', { studyId });
  assert.ok(table.ok, JSON.stringify(table));
  const t = table.value.table;
  assert.equal(t.kind, 'study');
  assert.equal(t.spread, 'std-seeds');
  assert.deepEqual(
    t.rows.map((x) => x.model),
    ['zf', 'cs', 'teacher', 'student', 'student-long', 'kd'],
  );
  for (const row of t.rows) assert.equal(row.cells[0]?.seeds, 2, `${row.model}: both seeds`);
  const listedStudies = await call<ExperimentInfo[]>('listExperiments', { datasetId: study.datasetId! });
  assert.ok(listedStudies.ok);
  assert.deepEqual(
    listedStudies.value.map((e) => [e.id, e.status, e.accs, e.seeds, e.jobs]),
    [[studyId, 'finished', [4], [1, 2], 4]],
  );
});

test('startStudy refuses bad requests with a clear message and records nothing', async () => {
  const before = rowCount();
  const sr = defaultDistillConfig('sr', { kind: 'lowres', keep: 0.25 });
  const cases: { body: Record<string, unknown>; code: string; message: RegExp }[] = [
    {
      body: { datasetId, config: sr, accs: [4], seeds: [1] },
      code: 'bad-request',
      message: /^config\.task: a study compares reconstructions under undersampling masks \(task recon\)/,
    },
    {
      body: { datasetId, config: tinyConfig(), accs: [4], seeds: [1, 2, 1] },
      code: 'bad-request',
      message: /^seeds: seeds repeat a value: 1$/,
    },
    {
      body: { datasetId, config: tinyConfig(), accs: [], seeds: [1] },
      code: 'bad-request',
      message: /^accs: a study needs at least one acceleration$/,
    },
    {
      body: { datasetId, config: tinyConfig(), accs: [4, 4], seeds: [1] },
      code: 'bad-request',
      message: /^accs: accelerations repeat a value: 4$/,
    },
    {
      body: { datasetId, config: tinyConfig(), accs: [4], seeds: [1.5] },
      code: 'bad-request',
      message: /^seeds\.0: seeds are integers$/,
    },
    {
      body: { datasetId, config: tinyConfig(), accs: [4], seeds: [...Array(11).keys()] },
      code: 'bad-request',
      message: /^seeds: at most 10 seeds in a study$/,
    },
    {
      body: {
        datasetId,
        config: { ...tinyConfig(), training: { ...tinyConfig().training, epochs: 6000 } },
        accs: [4],
        seeds: [1],
      },
      code: 'bad-request',
      message:
        /^config\.training\.epochs: a study's student-long control trains 2 × the epochs: at most 5000 epochs in a study$/,
    },
    {
      // a mask file has one acceleration, its own (planStudy): refused before the 24×24 dataset is made
      body: {
        datasetId,
        config: {
          ...tinyConfig(),
          degradation: {
            kind: 'mask',
            mask: { kind: 'file', acc: 4, axis: 'rows', lines: [0, 4, 8], lineCount: 12, name: 'm.png' },
          },
        },
        accs: [4, 8],
        seeds: [1],
        size: 24,
      },
      code: 'bad-request',
      message: /^a mask file has one acceleration: give a single --accs value, or a mask kind$/,
    },
    {
      body: { datasetId: 999, config: tinyConfig(), accs: [4], seeds: [1] },
      code: 'not-found',
      message: /^no dataset 999$/,
    },
    {
      body: { datasetId, config: tinyConfig(), accs: [4], seeds: [1], extra: true },
      code: 'bad-request',
      message: /extra/,
    },
  ];
  for (const c of cases) {
    const r = await call('startStudy', c.body);
    assert.ok(!r.ok, `refused: ${JSON.stringify(c.body).slice(0, 80)}`);
    assert.equal(r.error.code, c.code, r.error.message);
    assert.match(r.error.message, c.message);
  }
  assert.deepEqual(rowCount(), before, 'no experiment or job recorded');
});

test('cancelling a member stops the study (cancelled, the waiting members with it); resuming its jobs finishes it', async () => {
  const db = services.db;
  const r = await call<{ studyId: string; jobIds: string[] }>('startStudy', {
    datasetId,
    config: { ...tinyConfig(), cs: null },
    accs: [8],
    seeds: [3],
    size: 16,
  });
  assert.ok(r.ok, JSON.stringify(r));
  const { studyId, jobIds } = r.value;
  await until('the first job to run', () => db.jobs.get(jobIds[0])!.status === 'running');
  assert.equal(db.experiments.get(studyId)!.status, 'running');
  const c = await call<{ cancelled: boolean }>('cancelJob', { jobId: jobIds[0] });
  assert.ok(c.ok && c.value.cancelled);
  await until('the study to stop', () => db.experiments.get(studyId)!.status === 'cancelled', 120_000);
  assert.deepEqual(
    jobIds.map((id) => db.jobs.get(id)!.status),
    ['cancelled', 'cancelled'],
    'the student-long job waiting behind it left the queue',
  );
  await new Promise((ok) => setTimeout(ok, 500));
  assert.equal(db.jobs.get(jobIds[1])!.startedAt, null, 'and never started');
  for (const jobId of jobIds) assert.ok((await call('resumeJob', { jobId })).ok);
  await until('the resumed study to finish', () => db.experiments.get(studyId)!.status === 'finished');
  assert.deepEqual(
    jobIds.map((id) => db.jobs.get(id)!.status),
    ['finished', 'finished'],
  );
});

test("a study's status from its members' (studyState)", () => {
  const j = (
    status: JobInfo['status'],
    startedAt: number | null = null,
    endedAt: number | null = null,
    error: string | null = null,
  ) => ({
    status,
    startedAt,
    endedAt,
    error,
  });
  assert.deepEqual(studyState([j('queued'), j('queued')], 9), {
    status: 'queued',
    startedAt: null,
    endedAt: null,
    error: null,
  });
  assert.equal(studyState([j('running', 1), j('queued')]).status, 'running');
  // between two jobs of the queue: running, not queued
  assert.equal(studyState([j('finished', 1, 2), j('queued')]).status, 'running');
  assert.equal(studyState([j('failed', 1, 2, 'x'), j('queued')]).status, 'running');
  assert.equal(studyState([j('cancelled', 1, 2), j('queued')]).status, 'cancelled');
  assert.equal(studyState([j('cancelled', 1, 2), j('running', 3)]).status, 'running');
  assert.deepEqual(studyState([j('finished', 1, 2), j('failed', 3, 4, 'no memory')], 9), {
    status: 'failed',
    startedAt: 1,
    endedAt: 4,
    error: '1 job(s) failed: no memory',
  });
  assert.deepEqual(studyState([j('finished', 5, 6), j('finished', 1, 2)], 9), {
    status: 'finished',
    startedAt: 1,
    endedAt: 6,
    error: null,
  });
});

test('start-up recovery: a study whose process closed takes the status its jobs are left with', async () => {
  const home = mkdtempSync(join(tmpdir(), 'kdmri-study-recover-'));
  try {
    const dbPath = join(home, 'kdmri.db');
    const db = openDatabase(dbPath);
    const ds = db.datasets.create({
      name: 'd',
      source: 'sample',
      task: 'recon',
      h: 16,
      w: 16,
      trainSlices: 4,
      valSlices: 2,
    });
    // queued by a process that is gone (no lease), the study left 'running'
    const { studyId, jobs } = createStudy(db, {
      base: tinyConfig(),
      accs: [4],
      seeds: [1],
      data: { kind: 'dataset', datasetId: ds.id },
      task: 'recon',
    });
    db.experiments.update(studyId, { status: 'running', startedAt: Date.now() });
    db.close();
    const s = createServices({ dbPath, dataDir: home, workers: 'inline' });
    try {
      assert.deepEqual(s.recovered.cancelledJobs.sort(), jobs.map((j) => j.jobId).sort());
      const study = s.db.experiments.get(studyId)!;
      assert.equal(study.status, 'cancelled');
      assert.notEqual(study.endedAt, null);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
