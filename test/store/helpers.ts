/** Fixtures shared by the store tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import {
  defaultDistillConfig,
  type DistillConfig,
  type ModelCard,
  type RunKind,
} from '../../src-main/contract/domain.js';
import { openDatabase, type Db } from '../../src-main/store/db.js';

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(prefix = 'kdmri-store-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const CONFIG: DistillConfig = defaultDistillConfig('recon', {
  kind: 'mask',
  mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
});

export function memoryDb(): Db {
  const db = openDatabase(':memory:');
  after(() => db.close());
  return db;
}

/** A database with one dataset and one job. */
export function seeded(): { db: Db; datasetId: number; jobId: string } {
  const db = memoryDb();
  const ds = db.datasets.create({
    name: 'sample 64×64',
    source: 'sample',
    task: 'recon',
    h: 64,
    w: 64,
    trainSlices: 20,
    valSlices: 5,
  });
  const job = db.jobs.create({ datasetId: ds.id, config: CONFIG });
  return { db, datasetId: ds.id, jobId: job.id };
}

export function card(kind: RunKind, name = `${kind}-model`): ModelCard {
  return {
    name,
    kind,
    task: 'recon',
    spec: kind === 'teacher' ? CONFIG.teacher : CONFIG.student,
    params: 1234,
    degradation: CONFIG.degradation,
    degradationLabel: 'cartesian 4x',
    acceleration: 3.9,
    data: { source: 'sample', h: 64, w: 64, trainSlices: 20, valSlices: 5 },
    training: { ...CONFIG.training, epochsDone: 3, bestEpoch: 2, bestValLoss: 0.01, seconds: 12 },
    teacher: null,
    backend: 'cpu',
    createdAt: new Date(0).toISOString(),
    metrics: null,
    compactness: null,
  };
}

/** The row fields of a model (everything but dir). */
export function modelRow(kind: RunKind, runId: number | null, name = `${kind}-model`) {
  const c = card(kind, name);
  return { runId, kind, name, paramCount: c.params, spec: c.spec, card: c, teacherModelId: null };
}
