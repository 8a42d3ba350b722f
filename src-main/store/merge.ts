/**
 * Merge another KD-MRI database (a sweep task's, another workstation's) into the library: its finished
 * jobs with their runs, epochs, run records, models (rows and folders), evaluations with their values,
 * and the experiments they belong to.
 *
 * Conventions:
 *  - a job keeps its id (a UUID), so importing the same database twice finds the job and changes
 *    nothing; run, model and evaluation ids are the library's own (remapped, links followed);
 *  - a dataset is matched by DatasetRepo.findSame (same source, size, task, slab), else created;
 *  - a job whose id is in the library with another configuration or dataset, or whose model folder
 *    name is taken by other files, is a conflict: reported, not imported;
 *  - unfinished jobs are skipped (reported): their results are not a table's yet;
 *  - per job, model folders are copied first (staged, each put in place by a rename), then every row
 *    is written in ONE transaction; if it fails the new folders are removed. No row without its
 *    folder, no folder without its row.
 *  - times, losses and metrics are copied as they are, so the merged runs' tables equal the tables the
 *    task databases give.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import type { ImportReport } from '../contract/api.js';
import { openDatabase, type Db } from './db.js';
import { stageModelCopy, type Staged } from './model-files.js';
import { fromJson, type JsonObject } from './util.js';

export type MergeReport = ImportReport;

type Row = Record<string, unknown>;

const columnsCache = new WeakMap<Database.Database, Map<string, string[]>>();

function columns(db: Database.Database, table: string): string[] {
  let m = columnsCache.get(db);
  if (!m) columnsCache.set(db, (m = new Map()));
  let cols = m.get(table);
  if (!cols) {
    cols = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
    m.set(table, cols);
  }
  return cols;
}

/** Insert `row` (a source row, with overrides applied) into `table`, leaving out `omit`; the new rowid. */
function insert(db: Database.Database, table: string, row: Row, omit: readonly string[] = []): number {
  const cols = columns(db, table).filter((c) => !omit.includes(c) && c in row);
  const info = db
    .prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
    .run(...cols.map((c) => row[c]));
  return Number(info.lastInsertRowid);
}

function sameFiles(a: string, b: string): boolean {
  const list = (d: string) => readdirSync(d).sort();
  const la = list(a);
  const lb = list(b);
  if (la.join('\0') !== lb.join('\0')) return false;
  return la.every((f) => readFileSync(join(a, f)).equals(readFileSync(join(b, f))));
}

/**
 * Where a source model folder is now: its recorded path, or, when the task's folder was moved or is
 * mounted elsewhere (a cluster's shared folder seen from the workstation), the folder of that name in
 * models/ next to the source database.
 */
function locateModelDir(dir: string, sourceDb: string): string | null {
  if (existsSync(dir) && statSync(dir).isDirectory()) return dir;
  const near = join(dirname(sourceDb), 'models', basename(dir));
  return existsSync(near) && statSync(near).isDirectory() ? near : null;
}

/** Merge every finished job of the database at `sourcePath` into `lib` (model folders under `modelsRoot`). */
export function mergeDatabase(lib: Db, modelsRoot: string, sourcePath: string, report: MergeReport): void {
  const source = resolve(sourcePath);
  if (!existsSync(source)) throw new Error(`${source}: no such database`);
  if (source === resolve(lib.file)) throw new Error(`${source} is the library's own database`);
  const src = openDatabase(source);
  try {
    const jobs = src.sqlite.prepare('SELECT * FROM jobs ORDER BY created_at, id').all() as Row[];
    for (const job of jobs) mergeJob(lib, src, modelsRoot, source, job, report);
  } finally {
    src.close();
  }
}

function mergeJob(lib: Db, src: Db, modelsRoot: string, source: string, job: Row, report: MergeReport): void {
  const jobId = String(job.id);
  const S = src.sqlite;
  const L = lib.sqlite;
  const srcDataset = S.prepare('SELECT * FROM datasets WHERE id = ?').get(job.dataset_id) as Row;
  if (job.status !== 'finished') {
    report.skipped.push({ jobId, source, reason: `not finished (${String(job.status)})` });
    return;
  }
  const existing = L.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as Row | undefined;
  if (existing) {
    const libDataset = L.prepare('SELECT source FROM datasets WHERE id = ?').get(existing.dataset_id) as Row;
    if (existing.config !== job.config || libDataset.source !== srcDataset.source)
      report.conflicts.push({
        jobId,
        source,
        reason: `the library has another job with id ${jobId} (other configuration or data)`,
      });
    else if (existing.status !== 'finished')
      report.conflicts.push({
        jobId,
        source,
        reason: `the library's job ${jobId} is ${String(existing.status)}: resume or delete it there first`,
      });
    else report.skipped.push({ jobId, source, reason: 'already in the library' });
    return;
  }

  const runs = S.prepare('SELECT * FROM runs WHERE job_id = ? ORDER BY id').all(jobId) as Row[];
  const runIds = runs.map((r) => r.id);
  const models = (
    runIds.length
      ? S.prepare(
          `SELECT * FROM models WHERE run_id IN (${runIds.map(() => '?').join(',')}) ORDER BY id`,
        ).all(...runIds)
      : []
  ) as Row[];

  // model folders: find each, and decide whether it is copied, already there, or in the way
  const plan: { model: Row; from: string | null; dest: string; copy: boolean }[] = [];
  for (const m of models) {
    const dest = join(modelsRoot, basename(String(m.dir)));
    if (m.deleted_at !== null) {
      plan.push({ model: m, from: null, dest: String(m.dir), copy: false });
      continue;
    }
    const from = locateModelDir(String(m.dir), source);
    if (!from) {
      report.conflicts.push({ jobId, source, reason: `model folder ${String(m.dir)} is missing` });
      return;
    }
    if (L.prepare('SELECT 1 FROM models WHERE dir = ? AND deleted_at IS NULL').get(dest)) {
      report.conflicts.push({ jobId, source, reason: `the library already has a model in ${dest}` });
      return;
    }
    if (existsSync(dest) && !sameFiles(from, dest)) {
      report.conflicts.push({ jobId, source, reason: `${dest} exists with other files` });
      return;
    }
    plan.push({ model: m, from, dest, copy: !existsSync(dest) });
  }

  const staged: Staged[] = [];
  try {
    for (const p of plan) {
      if (!p.copy || !p.from) continue;
      const s = stageModelCopy(modelsRoot, basename(p.dest), p.from);
      staged.push(s);
      s.install();
    }
    const counts = lib.transaction(() => copyRows(lib, src, job, srcDataset, runs, plan, modelsRoot));
    for (const s of staged) s.finish();
    report.imported.push({ jobId, source, ...counts });
  } catch (err) {
    for (const s of staged.reverse()) s.rollback();
    throw err;
  }
}

function copyRows(
  lib: Db,
  src: Db,
  job: Row,
  srcDataset: Row,
  runs: Row[],
  plan: { model: Row; dest: string }[],
  modelsRoot: string,
): { runs: number; models: number; evaluations: number } {
  const S = src.sqlite;
  const L = lib.sqlite;
  const jobId = String(job.id);
  const meta = fromJson<JsonObject>(String(srcDataset.meta), `meta of dataset ${String(srcDataset.id)}`);
  const found = lib.datasets.findSame({
    source: String(srcDataset.source),
    h: Number(srcDataset.h),
    w: Number(srcDataset.w),
    task: String(srcDataset.task),
    slab: typeof meta.slab === 'number' ? meta.slab : null,
  });
  const datasetId = found?.id ?? insert(L, 'datasets', srcDataset, ['id']);

  insert(L, 'jobs', {
    ...job,
    dataset_id: datasetId,
    models_root: modelsRoot,
    pid: null,
    lease_pid: null,
    lease_host: null,
    lease_start: null,
    lease_label: null,
    lease_at: null,
  });

  const runMap = new Map<unknown, number>();
  for (const r of runs) {
    const id = insert(
      L,
      'runs',
      {
        ...r,
        parent_run_id: r.parent_run_id === null ? null : (runMap.get(r.parent_run_id) ?? null),
        checkpoint_dir: null,
        pid: null,
      },
      ['id'],
    );
    runMap.set(r.id, id);
    for (const e of S.prepare('SELECT * FROM epoch_metrics WHERE run_id = ?').all(r.id) as Row[])
      insert(L, 'epoch_metrics', { ...e, run_id: id });
    const rec = S.prepare('SELECT * FROM run_records WHERE run_id = ?').get(r.id) as Row | undefined;
    if (rec) {
      const data = fromJson<JsonObject>(String(rec.data), `run record of run ${String(r.id)}`);
      insert(L, 'run_records', { ...rec, run_id: id, data: JSON.stringify({ ...data, datasetId }) });
    }
  }

  const modelMap = new Map<unknown, number>();
  for (const p of plan) {
    const m = p.model;
    const id = insert(
      L,
      'models',
      {
        ...m,
        run_id: runMap.get(m.run_id) ?? null,
        teacher_model_id: m.teacher_model_id === null ? null : (modelMap.get(m.teacher_model_id) ?? null),
        dir: p.dest,
      },
      ['id'],
    );
    modelMap.set(m.id, id);
  }

  const evals = S.prepare('SELECT * FROM evaluations WHERE job_id = ? ORDER BY id').all(jobId) as Row[];
  for (const e of evals) {
    const id = insert(
      L,
      'evaluations',
      {
        ...e,
        model_id: e.model_id === null ? null : (modelMap.get(e.model_id) ?? null),
        dataset_id: datasetId,
      },
      ['id'],
    );
    for (const v of S.prepare('SELECT * FROM evaluation_values WHERE evaluation_id = ?').all(e.id) as Row[])
      insert(L, 'evaluation_values', { ...v, evaluation_id: id });
  }

  for (const ej of S.prepare('SELECT * FROM experiment_jobs WHERE job_id = ?').all(jobId) as Row[]) {
    if (!L.prepare('SELECT 1 FROM experiments WHERE id = ?').get(ej.experiment_id)) {
      const exp = S.prepare('SELECT * FROM experiments WHERE id = ?').get(ej.experiment_id) as Row;
      insert(L, 'experiments', {
        ...exp,
        dataset_id: exp.dataset_id === null ? null : datasetId,
        pid: null,
      });
    }
    insert(L, 'experiment_jobs', ej);
  }
  return { runs: runs.length, models: plan.length, evaluations: evals.length };
}

/** The databases named by `paths`: a database file, or every `kdmri.db` under a folder (a sweep's). */
export function databasesIn(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isFile() && e.name === 'kdmri.db') out.push(p);
      else if (e.isDirectory() && depth < 4 && e.name !== 'models') walk(p, depth + 1);
    }
  };
  for (const p of paths) {
    const abs = resolve(p);
    if (!existsSync(abs)) throw new Error(`${abs}: no such file or folder`);
    if (statSync(abs).isDirectory()) {
      const before = out.length;
      walk(abs, 0);
      if (out.length === before) throw new Error(`${abs}: no kdmri.db in this folder or below it`);
    } else out.push(abs);
  }
  return [...new Set(out)];
}
