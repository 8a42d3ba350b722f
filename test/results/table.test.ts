/**
 * Results tables: built from one job's own validation evaluations only; "n = 1" instead of "± 0";
 * the study statistics (two-stage bootstrap, paired t-test against scipy); migration 3 gives old
 * evaluations a split and moves their per-volume values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { migrate, openDatabase } from '../../src-main/store/db.js';
import { MIGRATIONS } from '../../src-main/store/migrations/index.js';
import { jobTable, renderTable, studyJson, studyTable } from '../../src-main/results/table.js';
import { hierarchicalBootstrap, mean, pairedTTest, tTwoSidedP } from '../../src-main/results/stats.js';
import { CONFIG, modelRow, seeded, tempDir } from '../store/helpers.js';

const M = { ssim: 0.9, nmse: 0.01, psnrStd2: 0.4, ssimStd2: 0.01, nmseStd2: 0.001 };
const HASH = 'a'.repeat(64);

function addModels(db: ReturnType<typeof seeded>['db'], jobId: string) {
  const ids: Record<string, number> = {};
  for (const kind of ['teacher', 'student', 'kd'] as const) {
    const r = db.runs.create({ jobId, kind, config: CONFIG, epochsPlanned: 1 });
    ids[kind] = db.models.create({ ...modelRow(kind, r.id), dir: `/m/${jobId}/${kind}` }).id;
  }
  return ids;
}

test('a job table holds its own validation rows; eval rows, other splits and other jobs never change it', () => {
  const { db, datasetId, jobId } = seeded();
  const ids = addModels(db, jobId);
  const rec = (runKind: 'zf' | 'cs' | 'teacher' | 'student' | 'kd', psnr: number, extra = {}) =>
    db.evaluations.record({
      modelId: ids[runKind] ?? null,
      runKind,
      datasetId,
      jobId,
      split: 'validation',
      degradation: 'cartesian 4x',
      degradationJson: CONFIG.degradation,
      maskHash: HASH,
      acceleration: 3.9,
      ...M,
      psnr,
      volumes: 3,
      ...extra,
    });
  for (const [k, p] of [
    ['zf', 25],
    ['cs', 28],
    ['teacher', 34],
    ['student', 31],
    ['kd', 32],
  ] as const)
    rec(k, p);
  const before = jobTable(db, jobId);
  assert.deepEqual(
    before.rows.map((r) => [r.model, r.cells[0]?.psnr.mean]),
    [
      ['zf', 25],
      ['cs', 28],
      ['teacher', 34],
      ['student', 31],
      ['kd', 32],
    ],
  );
  assert.equal(before.columns.length, 1);
  assert.equal(before.rows[0].cells[0]?.volumes, 3);
  // what kdmri eval --split all writes (no job), a training-split row, and another job's rows
  rec('kd', 99, { jobId: null, split: 'all' });
  rec('kd', 98, { split: 'all' });
  rec('kd', 97, { split: 'train' });
  const other = db.jobs.create({ datasetId, config: CONFIG });
  db.evaluations.record({
    modelId: null,
    runKind: 'zf',
    datasetId,
    jobId: other.id,
    split: 'validation',
    degradation: 'cartesian 4x',
    ...M,
    psnr: 1,
    volumes: 3,
  });
  assert.deepEqual(jobTable(db, jobId), before);
  // a soft-deleted model drops out
  db.models.softDelete(ids.kd);
  assert.ok(!jobTable(db, jobId).rows.some((r) => r.model === 'kd'));
  assert.throws(() => jobTable(db, 'nope'), /no job nope/);
});

test('one validation volume shows n = 1, never ± 0, in every format', () => {
  const { db, datasetId, jobId } = seeded();
  db.evaluations.record({
    modelId: null,
    runKind: 'zf',
    datasetId,
    jobId,
    split: 'validation',
    degradation: 'cartesian 4x',
    degradationJson: CONFIG.degradation,
    ...M,
    psnr: 25.5,
    psnrStd2: NaN,
    ssimStd2: NaN,
    nmseStd2: NaN,
    volumes: 1,
  });
  const t = jobTable(db, jobId);
  assert.ok(Number.isNaN(t.rows[0].cells[0]!.psnr.spread));
  const text = renderTable(t, 'text');
  assert.match(text, /25\.50 \(n = 1\)/);
  assert.doesNotMatch(text, /± 0\.00/);
  assert.match(text, /over 1 validation volume/);
  assert.match(renderTable(t, 'markdown'), /\| Zero-filled \| 25\.50 \(n = 1\)/);
  assert.match(renderTable(t, 'latex'), /25\.50 \(\$n = 1\$\)/);
  const csv = renderTable(t, 'csv').split('\n');
  assert.equal(csv[0], 'model,column,metric,mean,two_std,n,volumes,seeds');
  assert.equal(csv[1], 'zf,cartesian 4x,psnr,25.5,,1,1,1');
  assert.equal(JSON.parse(renderTable(t, 'json')).rows[0].cells[0].psnr.spread, null);
});

test('paired t-test agrees with scipy.stats.ttest_1samp', () => {
  const a = pairedTTest([0.1, 0.3, -0.05, 0.2]);
  assert.ok(Math.abs(a.t - 1.8418803882136277) < 1e-12);
  assert.ok(Math.abs(a.p - 0.16273310982429354) < 1e-9);
  const b = pairedTTest([0.12, 0.05, 0.2]);
  assert.ok(Math.abs(b.p - 0.10446005199273212) < 1e-9);
  assert.ok(Math.abs(tTwoSidedP(2.0, 30) - 0.0546250449629831) < 1e-9);
});

test('the two-stage bootstrap is deterministic, brackets its estimate and widens with seed noise', () => {
  const groups = [
    [
      [1, 2, 3],
      [0.5, 1.5, 2.5],
    ],
    [
      [1.2, 2.1, 2.9],
      [0.9, 1.6, 2.6],
    ],
    [
      [0.8, 2.2, 3.1],
      [0.2, 1.7, 2.4],
    ],
  ];
  const diff = (arms: number[][]) => mean(arms[0].map((x, i) => x - arms[1][i]));
  const a = hierarchicalBootstrap(groups, diff);
  const b = hierarchicalBootstrap(groups, diff);
  assert.deepEqual(a, b);
  assert.ok(a.low <= a.estimate && a.estimate <= a.high, JSON.stringify(a));
  assert.ok(a.low > 0, 'every seed and unit favours arm 0');
});

test('a study table: mean ± std over seeds, KD gain with its interval, paired comparisons', () => {
  const { db, datasetId } = seeded();
  const study = db.experiments.create({ kind: 'study', name: 's', datasetId, config: {} });
  // seeds 1..3 at 4x: teacher 34, student 31, kd 32.5 (per slice of one volume, so paired per slice)
  let pos = 0;
  for (const seed of [1, 2, 3]) {
    const job = db.jobs.create({ datasetId, config: CONFIG });
    const long = db.jobs.create({ datasetId, config: CONFIG });
    db.experiments.addJob({
      experimentId: study.id,
      jobId: job.id,
      position: pos++,
      role: 'main',
      acc: 4,
      seed,
    });
    db.experiments.addJob({
      experimentId: study.id,
      jobId: long.id,
      position: pos++,
      role: 'student-long',
      acc: 4,
      seed,
    });
    const ids = addModels(db, job.id);
    const longIds = addModels(db, long.id);
    const put = (
      jobId: string,
      modelId: number | null,
      runKind: 'zf' | 'teacher' | 'student' | 'kd',
      base: number,
    ) => {
      const slices = [0, 1, 2, 3].map((i) => ({ psnr: base + 0.1 * i + 0.01 * seed, ssim: 0.9, nmse: 0.01 }));
      db.evaluations.record({
        modelId,
        runKind,
        datasetId,
        jobId,
        split: 'validation',
        degradation: 'cartesian 4x',
        degradationJson: CONFIG.degradation,
        maskHash: HASH,
        dataHash: HASH,
        acceleration: 4,
        ...M,
        psnr: mean(slices.map((s) => s.psnr)),
        volumes: 1,
        perVolume: [{ psnr: mean(slices.map((s) => s.psnr)), ssim: 0.9, nmse: 0.01, slices }],
      });
    };
    put(job.id, null, 'zf', 25);
    put(job.id, ids.teacher, 'teacher', 34);
    put(job.id, ids.student, 'student', 31);
    put(job.id, ids.kd, 'kd', 32.5);
    put(long.id, null, 'zf', 25);
    put(long.id, longIds.student, 'student', 31.5);
  }
  const t = studyTable(db, study.id);
  assert.deepEqual(
    t.rows.map((r) => r.model),
    ['zf', 'teacher', 'student', 'student-long', 'kd'],
  );
  const kd = t.rows.find((r) => r.model === 'kd')!.cells[0]!;
  assert.equal(kd.seeds, 3);
  assert.ok(Math.abs(kd.psnr.mean - (32.5 + 0.15 + 0.02)) < 1e-9);
  assert.ok(Math.abs(kd.psnr.spread - 0.01) < 1e-9);
  const g = t.kdGain!['4'];
  assert.ok(Math.abs(g.fraction - 0.5) < 1e-9, `${g.fraction}`);
  const [vsStudent, vsLong] = t.paired!['4'];
  assert.equal(vsStudent.unit, 'slice');
  assert.equal(vsStudent.units, 12);
  assert.ok(Math.abs(vsStudent.meanDiff - 1.5) < 1e-9);
  assert.ok(Math.abs(vsLong.meanDiff - 1.0) < 1e-9);
  assert.equal(vsStudent.wins, 1);
  const j = studyJson(t);
  assert.deepEqual(Object.keys(j.kd_gain), ['4']);
  const row = j.rows.find((r) => r.model === 'kd' && r.acc === 4)!;
  assert.deepEqual(Object.keys(row.psnr), ['mean', 'std']);
  assert.match(renderTable(t, 'text'), /KD closes 50 % of the student→teacher gap/);
  assert.ok(Math.abs(g.teacherMinusStudent - 3) < 1e-9);
  // a teacher no better than its student leaves no gap: no percentage of it is printed
  const noGap = { ...t, kdGain: { '4': { ...g, teacherMinusStudent: -0.16 } } };
  assert.match(
    renderTable(noGap, 'text'),
    /the teacher is not above the student \(teacher − student = -0\.160 dB\)/,
  );
  assert.doesNotMatch(renderTable(noGap, 'text'), /KD closes/);
});

test('migration 3: old evaluations get a split (validation when their job wrote them) and keep their values', () => {
  const file = join(tempDir(), 'old.db');
  const raw = new Database(file);
  raw.pragma('foreign_keys = ON');
  migrate(raw, file, MIGRATIONS.slice(0, 2));
  raw
    .prepare(
      `INSERT INTO datasets (name, source, task, h, w, train_slices, val_slices, created_at)
               VALUES ('d', 'sample', 'recon', 16, 16, 3, 1, 0)`,
    )
    .run();
  raw
    .prepare(
      `INSERT INTO jobs (id, dataset_id, config, status, created_at, ended_at)
               VALUES ('j', 1, ?, 'finished', 0, 100)`,
    )
    .run(JSON.stringify(CONFIG));
  const ins =
    raw.prepare(`INSERT INTO evaluations (run_kind, dataset_id, job_id, degradation, psnr, ssim, nmse,
                             volumes, per_volume, created_at) VALUES ('zf', 1, ?, 'cartesian 4x', 20, 0.5, 0.1, 2, ?, ?)`);
  const pv = JSON.stringify([
    { psnr: 19, ssim: 0.4, nmse: 0.2 },
    { psnr: 21, ssim: null, nmse: 0.1 },
  ]);
  ins.run('j', pv, 50); // written by the job while it ran
  ins.run('j', pv, 500); // kdmri eval afterwards: split unknown
  ins.run(null, pv, 50);
  raw.close();
  const db = openDatabase(file);
  const rows = db.evaluations.list();
  assert.deepEqual(
    rows.map((r) => r.split),
    ['validation', 'unknown', 'unknown'],
  );
  assert.deepEqual(
    rows[0].perVolume.map((v) => v.psnr),
    [19, 21],
  );
  assert.ok(Number.isNaN(rows[0].perVolume[1].ssim));
  assert.equal(jobTable(db, 'j').rows[0].cells[0]?.psnr.mean, 20);
  db.close();
});
