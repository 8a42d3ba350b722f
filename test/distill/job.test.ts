/**
 * The distillation job end to end at a tiny size: every step runs, the store holds runs, epochs,
 * models and evaluations; a cancelled job resumes to exactly the weights of an uninterrupted one;
 * the worker-thread service delivers progress events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultDistillConfig,
  type DistillConfig,
  type ProgressEvent,
} from '../../src-main/contract/domain.js';
import { runJobRequest } from '../../src-main/distill/job.js';
import { startJob } from '../../src-main/distill/service.js';
import { openDatabase } from '../../src-main/store/db.js';
import type { JobRequest } from '../../src-main/distill/protocol.js';

const SIZE = 16;

function config(epochs: number, steps: DistillConfig['steps']): DistillConfig {
  const c = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
  });
  return { ...c, steps, training: { ...c.training, epochs } };
}

function request(dir: string, cfg: DistillConfig, jobId?: string, models = 'models'): JobRequest {
  return {
    config: cfg,
    data: { kind: 'path', size: SIZE },
    modelsRoot: join(dir, models),
    dbPath: join(dir, 'kdmri.db'),
    backend: 'wasm',
    jobId,
  };
}

test('a full job (teacher, student, attention, kd) fills the store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-job-'));
  const events: ProgressEvent[] = [];
  const res = await runJobRequest(
    request(dir, config(2, ['teacher', 'student', 'attention', 'kd'])),
    'job-full',
    {
      onEvent: (e) => events.push(e),
      shouldStop: () => false,
    },
  );
  assert.equal(res.status, 'finished', res.error);
  assert.equal(res.params.teacher, 141765);
  assert.equal(res.params.student, 49285);
  assert.deepEqual(
    res.rows.map((r) => r.model),
    ['zf', 'cs', 'teacher', 'student', 'kd'],
  );
  for (const r of res.rows) {
    assert.ok(Number.isFinite(r.psnr) && r.psnr > 5, `${r.model} psnr ${r.psnr}`);
    assert.ok(r.ssim > 0 && r.ssim <= 1, `${r.model} ssim ${r.ssim}`);
  }
  const db = openDatabase(join(dir, 'kdmri.db'));
  const runs = db.runs.list({ jobId: 'job-full' });
  assert.deepEqual(
    runs.map((r) => [r.kind, r.status, r.epochsDone]),
    [
      ['teacher', 'finished', 2],
      ['student', 'finished', 2],
      ['attention', 'finished', 2],
      ['kd', 'finished', 2],
    ],
  );
  for (const r of runs) assert.equal(db.epochs.forRun(r.id).length, 2);
  const models = db.models.list();
  assert.equal(models.length, 4);
  for (const m of models) {
    assert.ok(existsSync(join(m.dir, 'model.json')) && existsSync(join(m.dir, 'weights.bin')));
    assert.ok(m.card.compactness && m.card.compactness.latencyMsWarm > 0);
  }
  const kd = models.find((m) => m.kind === 'kd')!;
  assert.equal(db.models.get(kd.teacherModelId!)!.kind, 'teacher');
  const evals = db.evaluations.list({ jobId: 'job-full' });
  assert.deepEqual(evals.map((e) => e.runKind).sort(), ['cs', 'kd', 'student', 'teacher', 'zf']);
  assert.ok(
    evals.every((e) => e.split === 'validation' && e.jobId === 'job-full' && e.maskHash && e.dataHash),
  );
  assert.equal(new Set(evals.map((e) => e.dataHash)).size, 1, 'all scored on the same slices');
  for (const r of runs) {
    const rec = db.runRecords.get(r.id)!;
    assert.equal(rec.stopReason, 'completed');
    assert.equal(rec.maskHash, evals[0].maskHash);
    assert.equal(rec.valHash, evals[0].dataHash);
    assert.equal(rec.weightSeed, 42);
    assert.ok(rec.threads >= 1 && rec.tfjsVersion && rec.appVersion);
  }
  assert.ok(events.some((e) => e.type === 'epoch' && e.step === 'kd'));
  db.close();
});

test('a cancelled job resumes from its checkpoint to the same weights as an uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-resume-'));
  const straight = await runJobRequest(request(dir, config(3, ['teacher'])), 'straight', {
    onEvent: () => {},
    shouldStop: () => false,
  });
  assert.equal(straight.status, 'finished');

  let epochsSeen = 0;
  const first = await runJobRequest(request(dir, config(3, ['teacher'])), 'interrupted', {
    onEvent: (e) => {
      if (e.type === 'epoch') epochsSeen++;
    },
    shouldStop: () => epochsSeen >= 2,
  });
  assert.equal(first.status, 'cancelled');
  const db = openDatabase(join(dir, 'kdmri.db'));
  assert.equal(db.runs.list({ jobId: 'interrupted' })[0].status, 'cancelled');
  db.close();

  const events: ProgressEvent[] = [];
  const resumed = await runJobRequest(request(dir, config(3, ['teacher']), 'interrupted'), 'interrupted', {
    onEvent: (e) => events.push(e),
    shouldStop: () => false,
  });
  assert.equal(resumed.status, 'finished', resumed.error);
  const start = events.find((e) => e.type === 'step-start');
  assert.ok(start && start.type === 'step-start' && start.startEpoch === 2);
  const a = readFileSync(join(straight.models.teacher!.dir, 'weights.bin'));
  const b = readFileSync(join(resumed.models.teacher!.dir, 'weights.bin'));
  assert.ok(a.equals(b), 'resumed weights differ from the uninterrupted run');
});

/** Train `epochs` epochs of a teacher-only job, stopping it after `stopAfter`. */
async function interrupted(dir: string, jobId: string, epochs: number, stopAfter: number) {
  let seen = 0;
  const r = await runJobRequest(request(dir, config(epochs, ['teacher'])), jobId, {
    onEvent: (e) => {
      if (e.type === 'epoch') seen++;
    },
    shouldStop: () => seen >= stopAfter,
  });
  assert.equal(r.status, 'cancelled', r.error);
}

test("a resume continues from the job's own checkpoint folder, whatever folder it is asked to use", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-moved-'));
  await interrupted(dir, 'moved', 2, 1);
  const events: ProgressEvent[] = [];
  const resumed = await runJobRequest(
    { ...request(dir, config(2, ['teacher']), 'moved', 'elsewhere'), resume: true },
    'moved',
    { onEvent: (e) => events.push(e), shouldStop: () => false },
  );
  assert.equal(resumed.status, 'finished', resumed.error);
  const start = events.find((e) => e.type === 'step-start');
  assert.ok(start && start.type === 'step-start');
  assert.equal(start.startEpoch, 1, 'resumed after the checkpointed epoch, not from epoch 0');
  assert.equal(resumed.models.teacher!.dir, join(dir, 'models', 'moved-teacher'));
  assert.equal(existsSync(join(dir, 'elsewhere')), false, 'nothing written to the other folder');
  const db = openDatabase(join(dir, 'kdmri.db'));
  assert.equal(db.jobs.get('moved')!.modelsRoot, join(dir, 'models'));
  db.close();
});

test('a corrupt latest checkpoint: the job resumes from the previous one and says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-corrupt-'));
  await interrupted(dir, 'torn', 3, 2);
  const cp = join(dir, 'models', 'checkpoints', 'torn', 'teacher');
  assert.deepEqual(readdirSync(cp).sort(), ['checkpoint', 'checkpoint.prev']);
  // a torn write of the newest generation (same length, other bytes)
  const opt = join(cp, 'checkpoint', 'optimizer.bin');
  writeFileSync(opt, Buffer.alloc(readFileSync(opt).length, 7));
  const events: ProgressEvent[] = [];
  const resumed = await runJobRequest(
    { ...request(dir, config(3, ['teacher']), 'torn'), resume: true },
    'torn',
    {
      onEvent: (e) => events.push(e),
      shouldStop: () => false,
    },
  );
  assert.equal(resumed.status, 'finished', resumed.error);
  const start = events.find((e) => e.type === 'step-start');
  assert.ok(start && start.type === 'step-start' && start.startEpoch === 1, 'one epoch repeated');
  const warn = events.find((e) => e.type === 'log' && e.level === 'warn');
  assert.ok(warn && warn.type === 'log');
  assert.match(
    warn.message,
    /optimizer\.bin does not match its checksum; resuming from the previous checkpoint \(epoch 1\)/,
  );
});

test("a process killed between an epoch's checkpoint and its row: the resume writes the row from the checkpoint", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-lost-row-'));
  await interrupted(dir, 'lost', 3, 2);
  const db = openDatabase(join(dir, 'kdmri.db'));
  const runId = db.runs.list({ jobId: 'lost' })[0].id;
  const written = db.epochs.forRun(runId);
  assert.deepEqual(
    written.map((e) => e.epoch),
    [0, 1],
  );
  // the kill: epoch 1's checkpoint is on disk, its row never reached the database
  db.sqlite.prepare('DELETE FROM epoch_metrics WHERE run_id = ? AND epoch = 1').run(runId);
  db.close();
  const events: ProgressEvent[] = [];
  const resumed = await runJobRequest(
    { ...request(dir, config(3, ['teacher']), 'lost'), resume: true },
    'lost',
    { onEvent: (e) => events.push(e), shouldStop: () => false },
  );
  assert.equal(resumed.status, 'finished', resumed.error);
  const start = events.find((e) => e.type === 'step-start');
  assert.ok(start && start.type === 'step-start' && start.startEpoch === 2, 'epoch 1 not trained again');
  const again = openDatabase(join(dir, 'kdmri.db'));
  const rows = again.epochs.forRun(runId);
  again.close();
  assert.deepEqual(
    rows.map((e) => e.epoch),
    [0, 1, 2],
  );
  // the restored row is the one the killed process would have written
  assert.deepEqual(rows[1], written[1]);
});

test('the service runs a job in a worker thread and streams its progress', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-worker-'));
  const events: ProgressEvent[] = [];
  const handle = startJob(request(dir, config(1, ['teacher'])), (e) => events.push(e));
  const res = await handle.done;
  assert.equal(res.status, 'finished', res.error);
  const types = new Set(events.map((e) => e.type));
  for (const t of ['job-start', 'step-start', 'batch', 'epoch', 'step-end', 'eval', 'job-end'])
    assert.ok(types.has(t as ProgressEvent['type']), t);
});

test('a job on bad data fails with the reason and leaves no job row half-done', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-bad-'));
  const req = {
    ...request(dir, config(1, ['teacher'])),
    data: { kind: 'path' as const, path: join(dir, 'missing.nii.gz') },
  };
  const res = await runJobRequest(req, 'bad', { onEvent: () => {}, shouldStop: () => false });
  assert.equal(res.status, 'failed');
  assert.match(res.error ?? '', /missing\.nii\.gz: no such file/);
  const db = openDatabase(join(dir, 'kdmri.db'));
  assert.equal(db.jobs.get('bad'), null);
  db.close();
});
