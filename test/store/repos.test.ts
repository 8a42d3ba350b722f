import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { StoreError } from '../../src-main/store/db.js';
import { FOREIGN_LEASE_STALE_MS, processStart, thisProcess } from '../../src-main/store/lease.js';
import { CONFIG, card, memoryDb, modelRow, seeded } from './helpers.js';

const METRICS = { psnr: 30, ssim: 0.9, nmse: 0.01, psnrStd2: 1, ssimStd2: 0.02, nmseStd2: 0.001 };

test('datasets: create, get, list, findBySource; meta round-trips', () => {
  const db = memoryDb();
  const a = db.datasets.create({
    name: 'knee',
    source: '/data/knee.h5',
    task: 'recon',
    h: 320,
    w: 320,
    trainSlices: 100,
    valSlices: 20,
    meta: { size: 128, description: 'fastMRI knee', tags: ['a', 'b'] },
    createdAt: 1000,
  });
  const b = db.datasets.create({
    name: 'sr',
    source: 'series:1.2.3',
    task: 'sr',
    h: 64,
    w: 64,
    trainSlices: 5,
    valSlices: 1,
  });
  db.datasets.create({
    name: 'knee small',
    source: '/data/knee.h5',
    task: 'recon',
    h: 64,
    w: 64,
    trainSlices: 9,
    valSlices: 2,
  });
  assert.deepEqual(db.datasets.get(a.id), {
    id: a.id,
    name: 'knee',
    source: '/data/knee.h5',
    task: 'recon',
    h: 320,
    w: 320,
    trainSlices: 100,
    valSlices: 20,
    createdAt: 1000,
    meta: { size: 128, description: 'fastMRI knee', tags: ['a', 'b'] },
  });
  assert.deepEqual(b.meta, {});
  assert.ok(b.createdAt > 1_600_000_000_000, 'createdAt defaults to now in epoch ms');
  assert.equal(db.datasets.get(9999), null);
  assert.deepEqual(
    db.datasets.list().map((d) => d.name),
    ['knee', 'sr', 'knee small'],
  );
  assert.deepEqual(
    db.datasets.findBySource('/data/knee.h5').map((d) => d.h),
    [320, 64],
  );
  assert.deepEqual(db.datasets.findBySource('nope'), []);
});

test('datasets: bad input names the field', () => {
  const db = memoryDb();
  const ok = {
    name: 'd',
    source: 'sample',
    task: 'recon' as const,
    h: 4,
    w: 4,
    trainSlices: 1,
    valSlices: 1,
  };
  assert.throws(
    () => db.datasets.create({ ...ok, h: 0 }),
    /datasets\.create: h: expected an integer ≥ 1, got 0/,
  );
  assert.throws(
    () => db.datasets.create({ ...ok, task: 'segment' as 'sr' }),
    /datasets\.create: task: expected one of recon, sr/,
  );
  assert.throws(() => db.datasets.create({ ...ok, name: '' }), /datasets\.create: name/);
  assert.throws(() => db.datasets.create({ ...ok, trainSlices: 1.5 }), /trainSlices/);
  assert.equal(db.datasets.list().length, 0);
});

test('jobs: create with a uuid, get, list by dataset/status, update; config validated', () => {
  const { db, datasetId, jobId } = seeded();
  assert.match(jobId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const job = db.jobs.get(jobId)!;
  assert.equal(job.status, 'queued');
  assert.equal(job.datasetId, datasetId);
  assert.deepEqual(job.config, CONFIG);
  assert.equal(job.pid, null);
  const other = db.jobs.create({ id: 'job-2', datasetId, config: CONFIG, status: 'running', backend: 'cpu' });
  assert.equal(other.pid, process.pid, 'a running job records its owner process');
  assert.deepEqual(
    db.jobs.list({ status: 'running' }).map((j) => j.id),
    ['job-2'],
  );
  assert.equal(db.jobs.list({ datasetId }).length, 2);
  assert.equal(db.jobs.list({ datasetId: 999 }).length, 0);
  const done = db.jobs.update('job-2', { status: 'finished', endedAt: 5000, error: null });
  assert.equal(done.status, 'finished');
  assert.equal(done.endedAt, 5000);
  assert.equal(db.jobs.get('missing'), null);
  assert.throws(() => db.jobs.update('missing', { status: 'failed' }), /jobs\.update: no job missing/);
  assert.throws(
    () => db.jobs.update(jobId, { status: 'paused' as 'failed' }),
    /status: expected one of queued/,
  );
  assert.throws(() => db.jobs.create({ id: 'job-2', datasetId, config: CONFIG }), /job job-2 already exists/);
  assert.throws(() => db.jobs.create({ datasetId: 77, config: CONFIG }), /jobs\.create: no dataset 77/);
  const bad = { ...CONFIG, training: { ...CONFIG.training, epochs: -3 } };
  assert.throws(
    () => db.jobs.create({ datasetId, config: bad }),
    /jobs\.create: invalid config \(training\.epochs: /,
  );
  assert.equal(db.jobs.list().length, 2);
});

test('runs: create, get, list filters, update, parent run; unknown ids', () => {
  const { db, jobId } = seeded();
  const t = db.runs.create({
    jobId,
    kind: 'teacher',
    config: CONFIG,
    epochsPlanned: 10,
    checkpointDir: '/ck/t',
    backend: 'cpu',
  });
  assert.equal(t.status, 'queued');
  assert.equal(t.epochsDone, 0);
  assert.equal(t.bestEpoch, null);
  assert.equal(t.checkpointDir, '/ck/t');
  const s = db.runs.create({
    jobId,
    kind: 'kd',
    status: 'running',
    config: CONFIG,
    epochsPlanned: 10,
    parentRunId: t.id,
  });
  assert.equal(s.parentRunId, t.id);
  assert.equal(s.pid, process.pid);
  assert.deepEqual(
    db.runs.list({ jobId }).map((r) => r.kind),
    ['teacher', 'kd'],
  );
  assert.deepEqual(
    db.runs.list({ kind: 'kd' }).map((r) => r.id),
    [s.id],
  );
  assert.deepEqual(
    db.runs.list({ status: 'queued' }).map((r) => r.id),
    [t.id],
  );
  assert.deepEqual(db.runs.list({ jobId: 'other' }), []);

  const u = db.runs.update(t.id, {
    status: 'running',
    startedAt: 100,
    epochsDone: 3,
    bestEpoch: 2,
    bestValLoss: 0.125,
  });
  assert.equal(u.status, 'running');
  assert.equal(u.pid, process.pid);
  assert.deepEqual([u.epochsDone, u.bestEpoch, u.bestValLoss, u.startedAt], [3, 2, 0.125, 100]);
  const f = db.runs.update(t.id, {
    status: 'finished',
    endedAt: 200,
    wallSeconds: 0.1,
    bestValLoss: Infinity,
  });
  assert.equal(f.bestValLoss, Infinity);
  assert.equal(f.wallSeconds, 0.1);
  assert.equal(db.runs.update(t.id, {}).id, t.id, 'an empty patch is a read');

  assert.equal(db.runs.get(12345), null);
  assert.throws(() => db.runs.update(12345, { status: 'failed' }), /runs\.update: no run 12345/);
  assert.throws(() => db.runs.update(t.id, { epochsDone: -1 }), /runs\.update\(\d+\): epochsDone/);
  assert.throws(
    () => db.runs.create({ jobId: 'nope', kind: 'teacher', config: CONFIG, epochsPlanned: 1 }),
    /runs\.create: no job nope/,
  );
  assert.throws(
    () => db.runs.create({ jobId, kind: 'teacher', config: CONFIG, epochsPlanned: 1, parentRunId: 999 }),
    /runs\.create: no parent run 999/,
  );
  assert.throws(
    () => db.runs.create({ jobId, kind: 'boss' as 'kd', config: CONFIG, epochsPlanned: 1 }),
    /kind: expected one of teacher, student, attention, kd/,
  );
  assert.equal(db.runs.list().length, 2);
});

test('runs.markInterrupted: orphaned running runs and jobs become failed/interrupted; others untouched', async () => {
  const { db, datasetId, jobId } = seeded();
  db.jobs.update(jobId, { status: 'running' });
  const crashed = db.runs.create({
    jobId,
    kind: 'teacher',
    status: 'running',
    config: CONFIG,
    epochsPlanned: 5,
  });
  const done = db.runs.create({
    jobId,
    kind: 'student',
    status: 'finished',
    config: CONFIG,
    epochsPlanned: 5,
  });
  const queued = db.runs.create({ jobId, kind: 'attention', config: CONFIG, epochsPlanned: 5 });
  // A run owned by another live process (a CLI training next to the app) must be spared.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    const liveJob = db.jobs.create({ id: 'live', datasetId, config: CONFIG, status: 'running' });
    const live = db.runs.create({
      jobId: liveJob.id,
      kind: 'teacher',
      status: 'running',
      config: CONFIG,
      epochsPlanned: 5,
    });
    db.sqlite.prepare('UPDATE runs SET pid = ? WHERE id = ?').run(child.pid, live.id);
    db.sqlite.prepare('UPDATE jobs SET pid = ? WHERE id = ?').run(child.pid, liveJob.id);

    const marked = db.runs.markInterrupted(4242);
    assert.deepEqual(marked, [crashed.id]);
    const c = db.runs.get(crashed.id)!;
    assert.deepEqual([c.status, c.error, c.endedAt, c.pid], ['failed', 'interrupted', 4242, null]);
    assert.equal(db.runs.get(done.id)!.status, 'finished');
    assert.equal(db.runs.get(queued.id)!.status, 'queued');
    assert.equal(db.runs.get(live.id)!.status, 'running');
    const j = db.jobs.get(jobId)!;
    assert.deepEqual([j.status, j.error], ['failed', 'interrupted']);
    assert.equal(db.jobs.get('live')!.status, 'running');
    assert.deepEqual(db.runs.markInterrupted(), [], 'second call finds nothing');
  } finally {
    child.kill();
  }
});

test('epochs: record upserts (a resumed run rewrites the epoch), forRun in order, NaN round-trips', () => {
  const { db, jobId } = seeded();
  const r = db.runs.create({ jobId, kind: 'teacher', config: CONFIG, epochsPlanned: 3 });
  db.epochs.record({
    runId: r.id,
    epoch: 1,
    trainLoss: 0.5,
    valLoss: 0.4,
    lr: 1e-3,
    seconds: 2,
    createdAt: 10,
  });
  db.epochs.record({ runId: r.id, epoch: 0, trainLoss: 0.9, valLoss: 0.8, lr: 1e-3, seconds: 2 });
  db.epochs.record({
    runId: r.id,
    epoch: 1,
    trainLoss: 0.45,
    valLoss: 0.35,
    lr: 1e-3,
    seconds: 3,
    createdAt: 20,
  });
  db.epochs.record({ runId: r.id, epoch: 2, trainLoss: NaN, valLoss: Infinity, lr: 1e-4, seconds: 3 });
  const rows = db.epochs.forRun(r.id);
  assert.deepEqual(
    rows.map((e) => e.epoch),
    [0, 1, 2],
  );
  assert.deepEqual(rows[1], {
    runId: r.id,
    epoch: 1,
    trainLoss: 0.45,
    valLoss: 0.35,
    lr: 1e-3,
    seconds: 3,
    createdAt: 20,
  });
  assert.ok(Number.isNaN(rows[2].trainLoss));
  assert.equal(rows[2].valLoss, Infinity);
  assert.equal(db.epochs.deleteFrom(r.id, 1), 2);
  assert.deepEqual(
    db.epochs.forRun(r.id).map((e) => e.epoch),
    [0],
  );
  assert.deepEqual(db.epochs.forRun(9999), []);
  assert.throws(
    () => db.epochs.record({ runId: 9999, epoch: 0, trainLoss: 1, valLoss: 1, lr: 1, seconds: 1 }),
    /epochs\.record: no run 9999/,
  );
  assert.throws(
    () => db.epochs.record({ runId: r.id, epoch: -1, trainLoss: 1, valLoss: 1, lr: 1, seconds: 1 }),
    /epochs\.record: epoch/,
  );
});

test('deleting a job cascades to its runs and their epochs', () => {
  const { db, jobId } = seeded();
  const r = db.runs.create({ jobId, kind: 'teacher', config: CONFIG, epochsPlanned: 3 });
  db.epochs.record({ runId: r.id, epoch: 0, trainLoss: 1, valLoss: 1, lr: 1, seconds: 1 });
  db.sqlite.prepare('DELETE FROM jobs WHERE id = ?').run(jobId);
  assert.equal(db.runs.get(r.id), null);
  assert.deepEqual(db.epochs.forRun(r.id), []);
});

test('models: create, get, list, softDelete, updateCard; one live model per folder', () => {
  const { db, jobId } = seeded();
  const r = db.runs.create({ jobId, kind: 'teacher', config: CONFIG, epochsPlanned: 3 });
  const t = db.models.create({ ...modelRow('teacher', r.id), dir: '/models/t', createdAt: 7 });
  assert.equal(t.runId, r.id);
  assert.equal(t.dir, '/models/t');
  assert.deepEqual(t.spec, CONFIG.teacher);
  assert.deepEqual(t.card, card('teacher'));
  assert.equal(t.deletedAt, null);
  const s = db.models.create({ ...modelRow('kd', null, 'imported'), dir: '/models/s', teacherModelId: t.id });
  assert.equal(s.teacherModelId, t.id);
  assert.deepEqual(
    db.models.list().map((m) => m.name),
    ['teacher-model', 'imported'],
  );
  assert.deepEqual(
    db.models.list({ runId: r.id }).map((m) => m.id),
    [t.id],
  );
  assert.deepEqual(
    db.models.list({ kind: 'kd' }).map((m) => m.id),
    [s.id],
  );

  const newCard = { ...card('kd', 'imported'), compactness: null, params: 99 };
  assert.equal(db.models.updateCard(s.id, newCard).card.params, 99);

  assert.throws(
    () => db.models.create({ ...modelRow('teacher', null), dir: '/models/t' }),
    /folder \/models\/t already belongs to model \d+/,
  );
  const del = db.models.softDelete(t.id, 99);
  assert.equal(del.deletedAt, 99);
  assert.equal(db.models.softDelete(t.id, 123).deletedAt, 99, 'idempotent: the first deletion time stays');
  assert.deepEqual(
    db.models.list().map((m) => m.id),
    [s.id],
  );
  assert.deepEqual(
    db.models.list({ includeDeleted: true }).map((m) => m.id),
    [t.id, s.id],
  );
  assert.equal(db.models.get(t.id)!.deletedAt, 99, 'get still returns a soft-deleted model');
  // the folder is free again once its model is deleted
  db.models.create({ ...modelRow('teacher', null, 'again'), dir: '/models/t' });

  assert.equal(db.models.get(4040), null);
  assert.throws(() => db.models.softDelete(4040), /models\.softDelete: no model 4040/);
  assert.throws(() => db.models.updateCard(4040, newCard), /models\.updateCard: no model 4040/);
  assert.throws(
    () => db.models.create({ ...modelRow('kd', 555), dir: '/models/x' }),
    /models\.create: no run 555/,
  );
  assert.throws(
    () => db.models.create({ ...modelRow('kd', null), dir: 'relative/x' }),
    /dir must be an absolute path/,
  );
  assert.throws(
    () => db.models.create({ ...modelRow('kd', null), dir: '/models/y', teacherModelId: 31337 }),
    /no teacher model 31337/,
  );
  assert.throws(
    () => db.models.create({ ...modelRow('kd', null), dir: '/models/z', spec: { arch: 'unet' } as never }),
    /models\.create: invalid spec/,
  );
});

test('evaluations: record, list by dataset/model/job/split; baseline rules; per-slice values', () => {
  const { db, datasetId, jobId } = seeded();
  const r = db.runs.create({ jobId, kind: 'teacher', config: CONFIG, epochsPlanned: 3 });
  const m = db.models.create({ ...modelRow('teacher', r.id), dir: '/m/t' });
  const zf = db.evaluations.record({
    modelId: null,
    runKind: 'zf',
    datasetId,
    jobId,
    split: 'validation',
    degradation: 'cartesian 4x',
    degradationJson: CONFIG.degradation,
    acceleration: 3.7,
    ...METRICS,
    psnrStd2: NaN,
    volumes: 2,
    perVolume: [
      {
        psnr: 29,
        ssim: 0.8,
        nmse: 0.02,
        slices: [
          { psnr: 28, ssim: 0.7, nmse: 0.03 },
          { psnr: 30, ssim: 0.9, nmse: 0.01 },
        ],
      },
      { psnr: NaN, ssim: 0.9, nmse: 0.01 },
    ],
    backend: 'cpu',
  });
  assert.equal(zf.modelId, null);
  assert.ok(Number.isNaN(zf.psnrStd2));
  assert.ok(Number.isNaN(zf.perVolume[1].psnr));
  assert.deepEqual(zf.degradationJson, CONFIG.degradation);
  assert.equal(zf.acceleration, 3.7);
  assert.deepEqual(zf.perVolume[0].slices, [
    { psnr: 28, ssim: 0.7, nmse: 0.03 },
    { psnr: 30, ssim: 0.9, nmse: 0.01 },
  ]);
  assert.deepEqual(zf.perVolume[1].slices, []);
  assert.equal(zf.split, 'validation');
  const te = db.evaluations.record({
    modelId: m.id,
    runKind: 'teacher',
    datasetId,
    split: 'all',
    degradation: 'cartesian 4x',
    ...METRICS,
    volumes: 2,
  });
  assert.equal(te.jobId, null, 'outside a job (kdmri eval) an evaluation has no job');
  assert.deepEqual(te.perVolume, []);
  assert.deepEqual(
    db.evaluations.list({ datasetId }).map((e) => e.id),
    [zf.id, te.id],
  );
  assert.deepEqual(
    db.evaluations.list({ modelId: m.id }).map((e) => e.id),
    [te.id],
  );
  assert.deepEqual(
    db.evaluations.list({ jobId }).map((e) => e.id),
    [zf.id],
  );
  assert.deepEqual(db.evaluations.list({ jobId: 'x' }), []);
  assert.deepEqual(
    db.evaluations.list({ split: 'all' }).map((e) => e.id),
    [te.id],
  );

  const base = {
    datasetId,
    split: 'validation' as const,
    degradation: 'cartesian 4x',
    ...METRICS,
    volumes: 1,
  };
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: m.id, runKind: 'zf' }),
    /a 'zf' baseline has no model/,
  );
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: null, runKind: 'kd' }),
    /a 'kd' evaluation needs a modelId/,
  );
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: m.id, runKind: 'kd' }),
    /model \d+ is a teacher, not a kd/,
  );
  assert.throws(() => db.evaluations.record({ ...base, modelId: 808, runKind: 'kd' }), /no model 808/);
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: null, runKind: 'zf', datasetId: 66 }),
    /no dataset 66/,
  );
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: null, runKind: 'zf', jobId: 'ghost' }),
    /no job ghost/,
  );
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: null, runKind: 'zf', split: 'test' as never }),
    /split: expected one of validation, train, all/,
  );
  assert.throws(
    () => db.evaluations.record({ ...base, modelId: null, runKind: 'zf', maskHash: 'abc' }),
    /maskHash: expected a SHA-256 hex digest/,
  );
  assert.throws(
    () =>
      db.evaluations.record({
        ...base,
        modelId: null,
        runKind: 'zf',
        perVolume: [
          { psnr: 1, ssim: 1, nmse: 1 },
          { psnr: 1, ssim: 1, nmse: 1 },
        ],
      }),
    /volumes is 1 but perVolume has 2 entries/,
  );
  assert.throws(
    () =>
      db.evaluations.record({
        ...base,
        modelId: null,
        runKind: 'zf',
        perVolume: [{ psnr: 1, ssim: 'x', nmse: 1 } as never],
      }),
    /perVolume\[0\]\.ssim: expected a number/,
  );
  assert.equal(db.evaluations.list().length, 2, 'no half-written rows');
});

test('StoreError is what bad input raises', () => {
  const db = memoryDb();
  try {
    db.runs.update(1, { status: 'failed' });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof StoreError);
    assert.equal((err as Error).name, 'StoreError');
  }
});

test('job leases: one holder at a time; refused naming the live holder; a dead or reused pid is taken over', () => {
  const { db, jobId } = seeded();
  const me = thisProcess('kdmri serve, web mode');
  assert.deepEqual(db.jobs.acquireLease(jobId, me), { ok: true });
  assert.deepEqual(db.jobs.acquireLease(jobId, me, 5), { ok: true }, 'the holder renews its own lease');
  assert.equal(db.jobs.get(jobId)!.lease!.at, 5);
  // another live process on this host: refused, naming it
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    const other = { pid: child.pid!, host: me.host, start: processStart(child.pid!), label: 'kdmri distill' };
    const r = db.jobs.acquireLease(jobId, other);
    assert.ok(!r.ok);
    assert.match(
      r.message,
      new RegExp(
        `^job ${jobId} is leased to process ${process.pid} \\(kdmri serve, web mode\\) on host ${me.host}`,
      ),
    );
    db.jobs.releaseLease(jobId, other); // not its lease: nothing happens
    assert.equal(db.jobs.get(jobId)!.lease!.pid, process.pid);
    db.jobs.releaseLease(jobId, me);
    assert.equal(db.jobs.get(jobId)!.lease, null);
    // now the other process holds it; this one is refused
    assert.ok(db.jobs.acquireLease(jobId, other).ok);
    assert.match((db.jobs.acquireLease(jobId, me) as { message: string }).message, /kdmri distill/);
    // the holder's pid reused by a later process (other start time): not the holder any more
    db.sqlite.prepare(`UPDATE jobs SET lease_start = 'not-its-start' WHERE id = ?`).run(jobId);
    assert.ok(db.jobs.acquireLease(jobId, me).ok, 'a reused pid does not hold the lease');
  } finally {
    child.kill('SIGKILL');
  }
  // a holder that died: taken over
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  db.jobs.releaseLease(jobId, me);
  assert.ok(db.jobs.acquireLease(jobId, { pid: dead, host: me.host, start: null, label: 'x' }).ok);
  assert.ok(db.jobs.acquireLease(jobId, me).ok, 'the lease of a dead process is taken over');
  // a holder on another host (a shared library folder): live while its heartbeat is recent
  db.jobs.releaseLease(jobId, me);
  const remote = { pid: 1, host: 'other-host', start: null, label: 'desktop app' };
  assert.ok(db.jobs.acquireLease(jobId, remote, Date.now()).ok);
  assert.ok(!db.jobs.acquireLease(jobId, me).ok);
  db.jobs.heartbeat(jobId, remote, Date.now() - FOREIGN_LEASE_STALE_MS - 1);
  assert.ok(db.jobs.acquireLease(jobId, me).ok, 'a silent foreign holder is taken over');
});
