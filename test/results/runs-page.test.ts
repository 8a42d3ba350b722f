/**
 * What the Runs page's results panel calls: listExperiments (the studies to choose from, with their
 * accelerations, seeds and job counts, per dataset) and paperTable for a study, through the same
 * services.call that the server route and Electron IPC use, with the export formats it offers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ExperimentInfo, ResultsTable } from '../../src-main/contract/api.js';
import { createServices } from '../../src-main/services/index.js';
import { openDatabase } from '../../src-main/store/db.js';
import { CONFIG, tempDir } from '../store/helpers.js';

test('listExperiments and a study table in every export format, through services.call', async () => {
  const dir = tempDir('kdmri-runs-page-');
  const dbPath = join(dir, 'kdmri.db');
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
  const other = db.datasets.create({
    name: 'e',
    source: '/x',
    task: 'recon',
    h: 16,
    w: 16,
    trainSlices: 4,
    valSlices: 2,
  });
  const study = db.experiments.create({ kind: 'study', name: 'repro', datasetId: ds.id, config: {} });
  let pos = 0;
  for (const acc of [4, 8])
    for (const seed of [1, 2]) {
      const job = db.jobs.create({ datasetId: ds.id, config: CONFIG });
      db.experiments.addJob({
        experimentId: study.id,
        jobId: job.id,
        position: pos++,
        role: 'main',
        acc,
        seed,
      });
      const ev = { ssim: 0.9, nmse: 0.01, psnrStd2: 0.2, ssimStd2: 0.01, nmseStd2: 0.001 };
      db.evaluations.record({
        modelId: null,
        runKind: 'zf',
        datasetId: ds.id,
        jobId: job.id,
        split: 'validation',
        degradation: `cartesian ${acc}x`,
        degradationJson: { kind: 'mask', mask: { kind: 'cartesian', acc, axis: 'rows', seed: 42 } },
        maskHash: 'a'.repeat(64),
        dataHash: 'b'.repeat(64),
        acceleration: acc,
        ...ev,
        psnr: 30 - acc / 2 + seed / 10,
        volumes: 1,
        perVolume: [{ psnr: 30 - acc / 2 + seed / 10, ssim: 0.9, nmse: 0.01, slices: [] }],
      });
    }
  db.experiments.create({ kind: 'study', name: 'elsewhere', datasetId: other.id, config: {} });
  db.close();

  const s = createServices({ dbPath, dataDir: dir });
  try {
    const all = await s.call('listExperiments', {});
    assert.ok(all.ok, JSON.stringify(all));
    assert.equal((all.value as ExperimentInfo[]).length, 2);
    const mine = await s.call('listExperiments', { datasetId: ds.id });
    assert.ok(mine.ok);
    const [e] = mine.value as ExperimentInfo[];
    assert.deepEqual([e.id, e.name, e.accs, e.seeds, e.jobs], [study.id, 'repro', [4, 8], [1, 2], 4]);
    const bad = await s.call('listExperiments', { datasetId: 'x' });
    assert.ok(!bad.ok && bad.error.code === 'bad-request');

    const t = await s.call('paperTable', { studyId: study.id });
    assert.ok(t.ok, JSON.stringify(t));
    const table = (t.value as { table: ResultsTable }).table;
    assert.equal(table.kind, 'study');
    assert.deepEqual(
      table.rows.map((r) => r.model),
      ['zf'],
    );
    // the zero-filled PSNR at 4x over seeds 1, 2: 28.1 and 28.2
    assert.ok(Math.abs(table.rows[0].cells[0]!.psnr.mean - 28.15) < 1e-9);
    for (const [format, head] of [
      ['csv', /^model,column,metric/],
      ['markdown', /^\|/m],
      ['latex', /\\begin\{tabular\}/],
    ] as const) {
      const r = await s.call('paperTable', { studyId: study.id, format });
      assert.ok(r.ok);
      assert.match((r.value as { text: string }).text, head, format);
    }
  } finally {
    await s.close();
  }
});
