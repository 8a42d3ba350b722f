/**
 * `kdmri runs import` at the store level, without training: a task database's finished job arrives
 * with its runs (parent links followed), epochs, models (rows and folders), evaluations and
 * experiment; importing twice changes nothing; a job id the library holds with another configuration
 * and a model folder name taken by other files are conflicts that write nothing; unfinished jobs are
 * skipped.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultDistillConfig, type ModelCard } from '../../src-main/contract/domain.js';
import type { ImportReport } from '../../src-main/contract/api.js';
import { openDatabase, type Db } from '../../src-main/store/db.js';
import { databasesIn, mergeDatabase } from '../../src-main/store/merge.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kdmri-merge-'));
  dirs.push(d);
  return d;
};
const config = defaultDistillConfig('recon', {
  kind: 'mask',
  mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
});
const report = (): ImportReport => ({ imported: [], skipped: [], conflicts: [] });

/** A task database with one finished job (teacher + kd, kd's parent the teacher) in an experiment. */
function taskDb(dir: string, jobId: string, status: 'finished' | 'running' = 'finished'): string {
  const file = join(dir, 'kdmri.db');
  const db = openDatabase(file);
  const ds = db.datasets.create({
    name: 'p',
    source: '/data/p.nii',
    task: 'recon',
    h: 32,
    w: 32,
    trainSlices: 6,
    valSlices: 2,
    meta: { size: 32, slab: null },
  });
  db.jobs.create({ id: jobId, datasetId: ds.id, config, status, modelsRoot: join(dir, 'models') });
  const exp = db.experiments.create({
    id: 'exp-1',
    kind: 'sweep',
    name: 'sweep',
    datasetId: ds.id,
    config: {},
  });
  db.experiments.addJob({ experimentId: exp.id, jobId, position: 0, role: 'main', acc: 4, seed: 1 });
  let teacherRun: number | null = null;
  let teacherModel: number | null = null;
  for (const kind of ['teacher', 'kd'] as const) {
    const run = db.runs.create({
      jobId,
      kind,
      config,
      epochsPlanned: 2,
      parentRunId: teacherRun,
      status: 'finished',
    });
    db.epochs.record({ runId: run.id, epoch: 0, trainLoss: 1, valLoss: 0.5, lr: 1e-3, seconds: 1 });
    db.epochs.record({ runId: run.id, epoch: 1, trainLoss: 0.8, valLoss: 0.4, lr: 1e-3, seconds: 1 });
    const mdir = join(dir, 'models', `${jobId}-${kind}`);
    mkdirSync(mdir, { recursive: true });
    writeFileSync(join(mdir, 'model.json'), JSON.stringify({ kind }));
    writeFileSync(join(mdir, 'weights.bin'), Buffer.from([1, 2, 3, kind.length]));
    const m = db.models.create({
      runId: run.id,
      kind,
      name: `${kind}`,
      dir: mdir,
      paramCount: 1,
      spec: config.teacher,
      card: { name: kind } as unknown as ModelCard,
      teacherModelId: teacherModel,
    });
    db.evaluations.record({
      modelId: m.id,
      runKind: kind,
      datasetId: ds.id,
      jobId,
      split: 'validation',
      degradation: 'cartesian 4x',
      psnr: 30 + run.id,
      ssim: 0.9,
      nmse: 0.01,
      psnrStd2: 0,
      ssimStd2: 0,
      nmseStd2: 0,
      volumes: 1,
    });
    if (kind === 'teacher') {
      teacherRun = run.id;
      teacherModel = m.id;
    }
  }
  db.close();
  return file;
}

function counts(db: Db) {
  return Object.fromEntries(
    [
      'datasets',
      'jobs',
      'runs',
      'epoch_metrics',
      'models',
      'evaluations',
      'experiments',
      'experiment_jobs',
    ].map((t) => [t, (db.sqlite.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n]),
  );
}

test('a finished job is merged with its runs, links, epochs, models and files, experiment; twice changes nothing', () => {
  const home = tmp();
  const lib = openDatabase(join(home, 'kdmri.db'));
  const models = join(home, 'models');
  // the library holds a run already, so ids must be remapped
  const ds = lib.datasets.create({
    name: 'other',
    source: '/data/other.nii',
    task: 'recon',
    h: 8,
    w: 8,
    trainSlices: 1,
    valSlices: 1,
  });
  lib.jobs.create({ id: 'mine', datasetId: ds.id, config, status: 'finished' });
  lib.runs.create({ jobId: 'mine', kind: 'teacher', config, epochsPlanned: 1 });
  const task = tmp();
  const file = taskDb(join(task, 'tasks', '000'), 'job-a');
  assert.deepEqual(databasesIn([task]), [file]);

  const r = report();
  mergeDatabase(lib, models, file, r);
  assert.deepEqual(r.imported, [{ jobId: 'job-a', source: file, runs: 2, models: 2, evaluations: 2 }]);
  const runs = lib.runs.list({ jobId: 'job-a' });
  assert.deepEqual(
    runs.map((x) => x.kind),
    ['teacher', 'kd'],
  );
  assert.equal(runs[1].parentRunId, runs[0].id, 'the kd run still points at its teacher run');
  assert.deepEqual(
    lib.epochs.forRun(runs[1].id).map((e) => e.valLoss),
    [0.5, 0.4],
  );
  const ms = lib.models.list({}).filter((m) => m.runId === runs[0].id || m.runId === runs[1].id);
  assert.equal(ms.length, 2);
  assert.equal(ms[1].teacherModelId, ms[0].id);
  for (const m of ms) {
    assert.equal(m.dir, join(models, `job-a-${m.kind}`));
    assert.deepEqual(readFileSync(join(m.dir, 'weights.bin')), Buffer.from([1, 2, 3, m.kind.length]));
  }
  assert.deepEqual(
    lib.experiments.jobs('exp-1').map((j) => [j.jobId, j.acc, j.seed]),
    [['job-a', 4, 1]],
  );
  assert.equal(
    lib.jobs.get('job-a')!.datasetId,
    lib.datasets.findSame({ source: '/data/p.nii', h: 32, w: 32, task: 'recon', slab: null })!.id,
  );

  const snap = counts(lib);
  const files = readdirSync(models).sort();
  const again = report();
  mergeDatabase(lib, models, file, again);
  assert.deepEqual(again.imported, []);
  assert.deepEqual(
    again.skipped.map((s) => s.reason),
    ['already in the library'],
  );
  assert.deepEqual(counts(lib), snap);
  assert.deepEqual(readdirSync(models).sort(), files);
  lib.close();
});

test('conflicts write nothing; unfinished jobs are skipped; the library is not its own source', () => {
  const home = tmp();
  const lib = openDatabase(join(home, 'kdmri.db'));
  const models = join(home, 'models');
  // a job with the same id but another configuration
  const ds = lib.datasets.create({
    name: 'p',
    source: '/data/p.nii',
    task: 'recon',
    h: 32,
    w: 32,
    trainSlices: 6,
    valSlices: 2,
  });
  lib.jobs.create({ id: 'job-b', datasetId: ds.id, config: { ...config, alpha: 0.25 }, status: 'finished' });
  // a folder in the way of job-c's teacher
  mkdirSync(join(models, 'job-c-teacher'), { recursive: true });
  writeFileSync(join(models, 'job-c-teacher', 'model.json'), 'something else');
  const before = counts(lib);
  const r = report();
  for (const [name, status] of [
    ['job-b', 'finished'],
    ['job-c', 'finished'],
    ['job-d', 'running'],
  ] as const)
    mergeDatabase(lib, models, taskDb(join(tmp(), name), name, status), r);
  assert.deepEqual(r.imported, []);
  assert.deepEqual(
    r.conflicts.map((c) => c.jobId),
    ['job-b', 'job-c'],
  );
  assert.match(r.conflicts[0].reason, /another job with id job-b/);
  assert.match(r.conflicts[1].reason, /exists with other files/);
  assert.deepEqual(
    r.skipped.map((s) => [s.jobId, s.reason]),
    [['job-d', 'not finished (running)']],
  );
  assert.deepEqual(counts(lib), before);
  assert.ok(!existsSync(join(models, 'job-c-kd')), 'no folder of a conflicting job was copied');
  assert.throws(() => mergeDatabase(lib, models, join(home, 'kdmri.db'), report()), /library's own database/);
  lib.close();
});
