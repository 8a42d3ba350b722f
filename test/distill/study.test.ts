// `kdmri study`'s runner (runStudy) with the status rule it shares with the app's queue
// (refreshStudyStatus): a study of the bundled sample at 16×16 with tiny networks, stopped during its
// first job, is 'cancelled' with its waiting job cancelled too (nothing left 'queued' to look
// running); run again, it resumes and ends 'finished'. createStudy records the jobs' models folder.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStudy, runStudy } from '../../src-main/distill/study.js';
import { openDatabase } from '../../src-main/store/db.js';
import { tinyReconConfig } from './tiny-config.js';

const dir = mkdtempSync(join(tmpdir(), 'kdmri-study-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tiny = () => ({ ...tinyReconConfig(), cs: null });

test('runStudy: stopped in its first job the study is cancelled (its waiting job too); run again it finishes', async () => {
  const dbPath = join(dir, 'kdmri.db');
  const modelsRoot = join(dir, 'models');
  const db = openDatabase(dbPath);
  const { studyId, jobs } = createStudy(db, {
    base: tiny(),
    accs: [4],
    seeds: [7],
    data: { kind: 'path', size: 16 },
    task: 'recon',
    modelsRoot,
  });
  assert.deepEqual(
    jobs.map((j) => j.role),
    ['main', 'student-long'],
  );
  for (const j of jobs) assert.equal(db.jobs.get(j.jobId)!.modelsRoot, modelsRoot);
  db.close();

  let stop = false;
  const first = await runStudy(
    studyId,
    { dbPath, modelsRoot },
    {
      onEvent: (_i, _n, _job, e) => {
        if (e.type === 'epoch') stop = true;
      },
      shouldStop: () => stop,
    },
  );
  assert.equal(first.status, 'cancelled');
  const mid = openDatabase(dbPath);
  assert.equal(mid.experiments.get(studyId)!.status, 'cancelled');
  assert.deepEqual(
    jobs.map((j) => mid.jobs.get(j.jobId)!.status),
    ['cancelled', 'cancelled'],
  );
  assert.equal(mid.jobs.get(jobs[1].jobId)!.startedAt, null, 'the student-long job never started');
  mid.close();

  const again = await runStudy(
    studyId,
    { dbPath, modelsRoot },
    { onEvent: () => undefined, shouldStop: () => false },
  );
  assert.deepEqual(again, { status: 'finished', failed: [] });
  const end = openDatabase(dbPath);
  const study = end.experiments.get(studyId)!;
  const rows = jobs.map((j) => end.jobs.get(j.jobId)!);
  assert.deepEqual(
    rows.map((r) => r.status),
    ['finished', 'finished'],
  );
  assert.equal(study.status, 'finished');
  assert.equal(study.error, null);
  assert.equal(study.endedAt, rows[1].endedAt);
  end.close();
});
