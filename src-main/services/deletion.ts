/**
 * Deleting from the library: a model, a dataset, a series, a study or a patient, with its files.
 *
 * A deletion is planned first (`dryRun`: what goes, rows and files, so the user confirms knowingly),
 * and refused while a job that uses what it removes is training or queued. What depends on the target
 * (the datasets built from a series, the jobs, models and evaluations of a dataset) goes only when the
 * caller says `cascade`; otherwise the refusal lists it.
 *
 * Files: model folders, checkpoint folders, the library's DICOM copies (dicom/, PACS retrievals) and,
 * with the rows, the pixel BLOBs. Never a file outside the library that the user imported from: an
 * import reads those, it does not own them. The rows go in ONE transaction that also records the files
 * in pending_deletes; the files are removed after the commit and their records then; start-up recovery
 * removes what a crash left in pending_deletes. With SQLite's secure_delete on, the removed rows' pages
 * are overwritten, and the WAL is checkpointed, so deleted patient data does not linger in the file.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { ApiFailure, type DeleteOutcome, type DeletePlan, type DeleteTarget } from '../contract/api.js';
import type { Db, JobRow } from '../store/db.js';
import { leaseAlive } from '../store/lease.js';
import { parseSeriesSource } from '../studies/library.js';
import type { ServiceContext } from './context.js';

/** Where a job keeps its checkpoints: `<models root>/checkpoints/<job>`. */
function checkpointFolder(ctx: ServiceContext, job: JobRow): string {
  const fromRun = ctx.db.runs.list({ jobId: job.id }).find((r) => r.checkpointDir)?.checkpointDir;
  if (fromRun) return dirname(fromRun);
  return join(job.modelsRoot ?? ctx.modelsRoot, 'checkpoints', job.id);
}

interface SeriesRef {
  ref: number;
  uid: string;
  label: string;
  study: number;
}

/** Rows and files a deletion removes (internal: ids to delete, not only labels). */
interface Work {
  plan: DeletePlan;
  /** Row ids of what the plan names (its datasets, jobs and experiments are listed by id already). */
  patients: number[];
  studies: number[];
  series: SeriesRef[];
  /** Models deleted with their rows (cascades), and a model deleted alone (its row kept, marked deleted). */
  models: number[];
  softModel: number | null;
  /** Pseudonyms (the de-identification key map) of what goes: kind + original. */
  pseudonyms: { kind: string; original: string }[];
}

export function createDeletion(
  ctx: ServiceContext,
  hooks: { isActive(jobId: string): boolean; forgetModel(dir: string): void },
) {
  const { db } = ctx;
  const q = db.sqlite;
  const dicomRoot = resolve(ctx.dataDir, 'dicom');

  /** Why a job blocks a deletion now, or null. */
  function activeJob(jobId: string): string | null {
    const job = db.jobs.get(jobId);
    if (!job) return null;
    if (hooks.isActive(jobId)) return `job ${jobId} is training or queued in this process`;
    if ((job.status === 'running' || job.status === 'queued') && job.lease && leaseAlive(job.lease))
      return `job ${jobId} is ${job.status === 'running' ? 'training' : 'queued'} in process ${job.lease.pid} (${job.lease.label})`;
    return null;
  }

  function emptyWork(kind: DeletePlan['target']['kind'], id: string, label: string): Work {
    return {
      plan: {
        target: { kind, id, label },
        patients: [],
        studies: [],
        series: [],
        datasets: [],
        jobs: [],
        experiments: [],
        models: [],
        evaluations: 0,
        files: [],
        dependents: null,
        blockedBy: null,
      },
      patients: [],
      studies: [],
      series: [],
      models: [],
      softModel: null,
      pseudonyms: [],
    };
  }

  const blocked = (w: Work, why: string | null) => {
    if (why && !w.plan.blockedBy) w.plan.blockedBy = why;
  };

  /** A model's folder and the job it belongs to. */
  function addModel(w: Work, id: number, soft: boolean) {
    const m = db.models.get(id);
    if (!m) return;
    if (!w.models.includes(id) && w.softModel !== id) {
      if (soft) w.softModel = id;
      else w.models.push(id);
      w.plan.models.push({ id, name: m.name });
      if (m.deletedAt === null) w.plan.files.push(m.dir);
    }
    const run = m.runId !== null ? db.runs.get(m.runId) : null;
    if (run) blocked(w, activeJob(run.jobId));
  }

  /** A dataset with everything built on it: jobs (runs, models, checkpoints), experiments, evaluations. */
  function addDataset(w: Work, id: number) {
    if (w.plan.datasets.some((d) => d.id === id)) return;
    const ds = db.datasets.get(id);
    if (!ds) return;
    w.plan.datasets.push({ id, name: ds.name });
    for (const job of db.jobs.list({ datasetId: id })) {
      w.plan.jobs.push(job.id);
      blocked(w, activeJob(job.id));
      const folder = checkpointFolder(ctx, job);
      if (existsSync(folder)) w.plan.files.push(folder);
      for (const run of db.runs.list({ jobId: job.id }))
        for (const m of db.models.list({ runId: run.id, includeDeleted: true })) addModel(w, m.id, false);
    }
    const experiments = q.prepare('SELECT id FROM experiments WHERE dataset_id = ?').all(id) as {
      id: string;
    }[];
    for (const e of experiments) w.plan.experiments.push(e.id);
    w.plan.evaluations += (
      q.prepare('SELECT COUNT(*) AS n FROM evaluations WHERE dataset_id = ?').get(id) as { n: number }
    ).n;
    // the key map's entry for the dataset's source, unless another dataset keeps the same source
    if (db.datasets.findBySource(ds.source).every((d) => w.plan.datasets.some((x) => x.id === d.id)))
      w.pseudonyms.push({ kind: 'source', original: ds.source });
  }

  /** Datasets built from any of these series (their sources name them). */
  function datasetsOf(uids: Set<string>): number[] {
    return db.datasets
      .list()
      .filter((d) => (parseSeriesSource(d.source) ?? []).some((u) => uids.has(u)))
      .map((d) => d.id);
  }

  function addSeries(w: Work, s: SeriesRef) {
    if (w.series.some((x) => x.ref === s.ref)) return;
    w.series.push(s);
    w.plan.series.push(s.label);
    w.pseudonyms.push({ kind: 'uid', original: s.uid });
    const instances = q.prepare('SELECT sop_uid, path FROM instances WHERE series_ref = ?').all(s.ref) as {
      sop_uid: string;
      path: string;
    }[];
    const copies = new Set<string>();
    for (const i of instances) {
      w.pseudonyms.push({ kind: 'uid', original: i.sop_uid.replace(/#\d+$/, '') });
      // the library's own DICOM copies (PACS retrievals), never a file the user imported from elsewhere
      const path = resolve(i.path);
      if (path.startsWith(dicomRoot + sep) && existsSync(path)) copies.add(path);
    }
    w.plan.files.push(...copies);
  }

  function seriesRows(where: string, arg: string | number): SeriesRef[] {
    return (
      q
        .prepare(
          `SELECT se.id AS ref, se.series_uid AS uid, se.description AS d, se.series_number AS n, se.study_ref AS study
             FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE ${where}`,
        )
        .all(arg) as { ref: number; uid: string; d: string; n: number | null; study: number }[]
    ).map((r) => ({ ref: r.ref, uid: r.uid, study: r.study, label: `${r.n ?? '-'} ${r.d || r.uid}`.trim() }));
  }

  /** The patients a PatientID (or "PatientID\PatientName") names. */
  function patientsFor(id: string): { ref: number; key: string; label: string }[] {
    const rows = q
      .prepare(
        'SELECT id, patient_key, patient_id, name FROM patients WHERE patient_key = ? OR patient_id = ?',
      )
      .all(id, id) as { id: number; patient_key: string; patient_id: string; name: string }[];
    const exact = rows.filter((r) => r.patient_key === id);
    return (exact.length ? exact : rows).map((r) => ({
      ref: r.id,
      key: r.patient_key,
      label: `${r.name || '(no name)'} [${r.patient_id || '-'}]`,
    }));
  }

  /** What deleting `target` removes (rows, files), what it needs to cascade to, what blocks it. */
  function plan(target: DeleteTarget, cascade: boolean): Work {
    const id = String(target.id);
    const notFound = (what: string) =>
      new ApiFailure('not-found', `no ${what} ${id} in the library`, 'target.id');
    let w: Work;
    let dependents: string[] = [];
    switch (target.kind) {
      case 'model': {
        const m = typeof target.id === 'number' ? db.models.get(target.id) : null;
        if (!m || m.deletedAt !== null) throw notFound('model');
        w = emptyWork('model', id, m.name);
        addModel(w, m.id, true);
        break;
      }
      case 'dataset': {
        const ds = typeof target.id === 'number' ? db.datasets.get(target.id) : null;
        if (!ds) throw notFound('dataset');
        w = emptyWork('dataset', id, ds.name);
        addDataset(w, ds.id);
        const n = w.plan.jobs.length;
        if (n || w.plan.evaluations || w.plan.experiments.length)
          dependents = [
            `${n} job${n === 1 ? '' : 's'} (${w.plan.models.length} models)`,
            `${w.plan.evaluations} evaluations`,
            ...(w.plan.experiments.length ? [`${w.plan.experiments.length} studies (kdmri study)`] : []),
          ];
        break;
      }
      case 'series':
      case 'study':
      case 'patient': {
        let series: SeriesRef[];
        let label: string;
        const patients: { ref: number; key: string; label: string }[] = [];
        const studies: { ref: number; uid: string }[] = [];
        if (target.kind === 'series') {
          series = seriesRows('se.series_uid = ?', id);
          if (!series.length) throw notFound('series');
          label = `series ${series[0].label}`;
        } else if (target.kind === 'study') {
          const st = q
            .prepare('SELECT id, study_uid, description FROM studies WHERE study_uid = ?')
            .get(id) as { id: number; study_uid: string; description: string } | undefined;
          if (!st) throw notFound('study');
          studies.push({ ref: st.id, uid: st.study_uid });
          series = seriesRows('se.study_ref = ?', st.id);
          label = `study ${st.description || st.study_uid}`;
        } else {
          patients.push(...patientsFor(id));
          if (!patients.length) throw notFound('patient');
          if (patients.length > 1)
            throw new ApiFailure(
              'bad-request',
              `${patients.length} patients have PatientID ${id} (${patients.map((p) => p.label).join(', ')}): ` +
                `name one as "PatientID\\PatientName"`,
              'target.id',
            );
          for (const st of q
            .prepare('SELECT id, study_uid FROM studies WHERE patient_ref = ?')
            .all(patients[0].ref) as {
            id: number;
            study_uid: string;
          }[])
            studies.push({ ref: st.id, uid: st.study_uid });
          series = seriesRows('p.id = ?', patients[0].ref);
          label = `patient ${patients[0].label}`;
        }
        w = emptyWork(target.kind, id, label);
        for (const s of series) addSeries(w, s);
        for (const st of studies) {
          w.studies.push(st.ref);
          w.plan.studies.push(st.uid);
          w.pseudonyms.push({ kind: 'uid', original: st.uid });
        }
        for (const p of patients) {
          w.patients.push(p.ref);
          w.plan.patients.push(p.label);
          w.pseudonyms.push({ kind: 'patient', original: p.key });
        }
        const built = datasetsOf(new Set(series.map((s) => s.uid)));
        for (const d of built) addDataset(w, d);
        if (built.length)
          dependents = [
            `${built.length} dataset${built.length === 1 ? '' : 's'} built from it` +
              (w.plan.jobs.length ? ` (${w.plan.jobs.length} jobs, ${w.plan.models.length} models)` : ''),
          ];
        break;
      }
    }
    if (dependents.length && !cascade)
      w.plan.dependents = `${w.plan.target.label} is used by ${dependents.join(', ')}: delete them with it (cascade)`;
    else if (dependents.length) w.plan.dependents = `also deletes ${dependents.join(', ')}`;
    return w;
  }

  /** Remove rows (one transaction, files recorded in pending_deletes), then the files. */
  function execute(w: Work): void {
    const now = Date.now();
    const files = [...new Set(w.plan.files)];
    const forget = [...w.models, ...(w.softModel !== null ? [w.softModel] : [])]
      .map((id) => db.models.get(id)?.dir)
      .filter((d): d is string => !!d);
    db.sqlite.pragma('secure_delete = ON');
    try {
      db.transaction(() => {
        const run = (sql: string, ...args: unknown[]) => q.prepare(sql).run(...args);
        for (const p of w.pseudonyms)
          run('DELETE FROM pseudonyms WHERE kind = ? AND original = ?', p.kind, p.original);
        for (const e of w.plan.experiments) run('DELETE FROM experiments WHERE id = ?', e);
        for (const id of w.models) run('DELETE FROM models WHERE id = ?', id);
        if (w.softModel !== null) db.models.softDelete(w.softModel, now);
        for (const j of w.plan.jobs) run('DELETE FROM jobs WHERE id = ?', j);
        for (const { id: d } of w.plan.datasets) {
          run('DELETE FROM evaluations WHERE dataset_id = ?', d);
          run('DELETE FROM datasets WHERE id = ?', d);
        }
        for (const s of w.series) run('DELETE FROM series WHERE id = ?', s.ref);
        for (const st of w.studies) run('DELETE FROM studies WHERE id = ?', st);
        for (const p of w.patients) run('DELETE FROM patients WHERE id = ?', p);
        // a study or patient left without series by this deletion goes too
        run('DELETE FROM studies WHERE id NOT IN (SELECT study_ref FROM series)');
        run('DELETE FROM patients WHERE id NOT IN (SELECT patient_ref FROM studies)');
        for (const f of files)
          run('INSERT OR IGNORE INTO pending_deletes (path, created_at) VALUES (?, ?)', f, now);
      });
    } finally {
      db.sqlite.pragma('secure_delete = OFF');
    }
    for (const dir of forget) hooks.forgetModel(dir);
    finishPendingDeletes(db, dicomRoot);
    db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  }

  return {
    plan,
    async deleteItem(req: {
      target: DeleteTarget;
      cascade: boolean;
      dryRun: boolean;
    }): Promise<DeleteOutcome> {
      const w = plan(req.target, req.cascade);
      if (req.dryRun) return { plan: w.plan, deleted: false };
      if (w.plan.blockedBy)
        throw new ApiFailure(
          'conflict',
          `cannot delete ${w.plan.target.label}: ${w.plan.blockedBy}`,
          'target',
        );
      if (w.plan.dependents && !req.cascade) throw new ApiFailure('conflict', w.plan.dependents, 'cascade');
      execute(w);
      for (const what of ['models', 'datasets', 'jobs', 'studies'] as const)
        ctx.emit({ channel: 'library', what });
      return { plan: w.plan, deleted: true };
    },
  };
}

/**
 * Remove the files recorded in pending_deletes (a deletion's, or one a crash cut short), then their
 * records. Returns the paths removed. A DICOM copy's emptied series folder under `dicomRoot` goes too.
 */
export function finishPendingDeletes(db: Db, dicomRoot: string): string[] {
  const rows = db.sqlite.prepare('SELECT path FROM pending_deletes').all() as { path: string }[];
  const done: string[] = [];
  for (const { path } of rows) {
    rmSync(path, { recursive: true, force: true });
    const parent = dirname(path);
    if (parent.startsWith(dicomRoot + sep) && existsSync(parent) && readdirSync(parent).length === 0)
      rmdirSync(parent);
    db.sqlite.prepare('DELETE FROM pending_deletes WHERE path = ?').run(path);
    done.push(path);
  }
  return done;
}
