/**
 * Evaluations: one model (or the zero-filled / low-resolution input itself) scored per volume on a
 * dataset's validation split under one degradation; the source of the paper-style results table.
 */
import type Database from 'better-sqlite3';
import {
  BACKENDS,
  DegradationSchema,
  RUN_KINDS,
  type BackendName,
  type Degradation,
  type MetricRow,
  type RunKind,
  type VolumeMetrics,
} from '../../contract/domain.js';
import {
  checkInt,
  checkNullable,
  checkNumber,
  checkOneOf,
  checkString,
  checkTime,
  fromJson,
  nanToNull,
  nullToNaN,
  StoreError,
  toJson,
  zodProblem,
} from '../util.js';

export type EvalKind = 'zf' | 'lr' | RunKind;
export const EVAL_KINDS: readonly EvalKind[] = ['zf', 'lr', ...RUN_KINDS];

export interface EvaluationRow {
  id: number;
  /** null for the zero-filled ('zf') / low-resolution ('lr') baseline. */
  modelId: number | null;
  runKind: EvalKind;
  datasetId: number;
  /** The job that produced it, when known. */
  jobId: string | null;
  /** Label as in tables: degradationLabel(degradationJson). */
  degradation: string;
  degradationJson: Degradation | null;
  /** True acceleration of the mask; null for low-resolution degradations. */
  acceleration: number | null;
  /** Means over volumes and 2·std (ddof 1); NaN where undefined (e.g. std of one volume). */
  psnr: number;
  ssim: number;
  nmse: number;
  psnrStd2: number;
  ssimStd2: number;
  nmseStd2: number;
  volumes: number;
  perVolume: VolumeMetrics[];
  backend: BackendName | null;
  /** Epoch ms. */
  createdAt: number;
}

export interface NewEvaluation {
  modelId: number | null;
  runKind: EvalKind;
  datasetId: number;
  /** Defaults to the job of the model's run (none for a baseline without it). */
  jobId?: string | null;
  degradation: string;
  degradationJson?: Degradation | null;
  acceleration?: number | null;
  psnr: number;
  ssim: number;
  nmse: number;
  psnrStd2: number;
  ssimStd2: number;
  nmseStd2: number;
  volumes: number;
  perVolume?: VolumeMetrics[];
  backend?: BackendName | null;
  createdAt?: number;
}

export interface EvaluationFilter {
  datasetId?: number;
  modelId?: number;
  jobId?: string;
}

/** A row of the paper-style table, with where it came from. */
export interface PaperRow extends MetricRow {
  evaluationId: number;
  modelId: number | null;
  jobId: string | null;
  acceleration: number | null;
  createdAt: number;
}

interface EvalSql {
  id: number;
  model_id: number | null;
  run_kind: EvalKind;
  dataset_id: number;
  job_id: string | null;
  degradation: string;
  degradation_json: string | null;
  acceleration: number | null;
  psnr: number | null;
  ssim: number | null;
  nmse: number | null;
  psnr_std2: number | null;
  ssim_std2: number | null;
  nmse_std2: number | null;
  volumes: number;
  per_volume: string;
  backend: BackendName | null;
  created_at: number;
}

type StoredVolume = { psnr: number | null; ssim: number | null; nmse: number | null };

function toRow(r: EvalSql): EvaluationRow {
  const where = `evaluation ${r.id}`;
  return {
    id: r.id,
    modelId: r.model_id,
    runKind: r.run_kind,
    datasetId: r.dataset_id,
    jobId: r.job_id,
    degradation: r.degradation,
    degradationJson:
      r.degradation_json === null
        ? null
        : fromJson<Degradation>(r.degradation_json, `degradation_json of ${where}`),
    acceleration: r.acceleration,
    psnr: nullToNaN(r.psnr),
    ssim: nullToNaN(r.ssim),
    nmse: nullToNaN(r.nmse),
    psnrStd2: nullToNaN(r.psnr_std2),
    ssimStd2: nullToNaN(r.ssim_std2),
    nmseStd2: nullToNaN(r.nmse_std2),
    volumes: r.volumes,
    // JSON turns NaN into null; turn it back.
    perVolume: fromJson<StoredVolume[]>(r.per_volume, `per_volume of ${where}`).map((v) => ({
      psnr: nullToNaN(v.psnr),
      ssim: nullToNaN(v.ssim),
      nmse: nullToNaN(v.nmse),
    })),
    backend: r.backend,
    createdAt: r.created_at,
  };
}

/** Order of the model column in the paper table: the input first, then teacher, student, AT, KD. */
const KIND_ORDER: Record<EvalKind, number> = { zf: 0, lr: 1, teacher: 2, student: 3, attention: 4, kd: 5 };

export class EvaluationRepo {
  constructor(private readonly db: Database.Database) {}

  /**
   * Record one evaluation. A baseline ('zf' / 'lr') has no model; a model's evaluation must carry the
   * model's kind. Throws StoreError for unknown model, dataset or job ids and for malformed metrics.
   */
  record(e: NewEvaluation): EvaluationRow {
    const w = 'evaluations.record';
    const runKind = checkOneOf(e.runKind, EVAL_KINDS, `${w}: runKind`);
    const modelId = checkNullable(e.modelId, (m) => checkInt(m, `${w}: modelId`, 1));
    const baseline = runKind === 'zf' || runKind === 'lr';
    if (baseline && modelId !== null) throw new StoreError(`${w}: a '${runKind}' baseline has no model`);
    if (!baseline && modelId === null)
      throw new StoreError(`${w}: a '${runKind}' evaluation needs a modelId`);
    let degradationJson: string | null = null;
    if (e.degradationJson !== undefined && e.degradationJson !== null) {
      const d = DegradationSchema.safeParse(e.degradationJson);
      if (!d.success) throw new StoreError(`${w}: invalid degradationJson (${zodProblem(d.error.issues)})`);
      degradationJson = toJson(d.data, `${w}: degradationJson`);
    }
    const perVolume = e.perVolume ?? [];
    if (!Array.isArray(perVolume)) throw new StoreError(`${w}: perVolume must be an array`);
    perVolume.forEach((v, i) => {
      for (const k of ['psnr', 'ssim', 'nmse'] as const) checkNumber(v?.[k], `${w}: perVolume[${i}].${k}`);
    });
    const volumes = checkInt(e.volumes, `${w}: volumes`);
    if (perVolume.length > 0 && perVolume.length !== volumes) {
      throw new StoreError(`${w}: volumes is ${volumes} but perVolume has ${perVolume.length} entries`);
    }
    const metric = (k: 'psnr' | 'ssim' | 'nmse' | 'psnrStd2' | 'ssimStd2' | 'nmseStd2') =>
      nanToNull(checkNumber(e[k], `${w}: ${k}`));
    const row = {
      modelId,
      runKind,
      datasetId: checkInt(e.datasetId, `${w}: datasetId`, 1),
      jobId: checkNullable(e.jobId, (j) => checkString(j, `${w}: jobId`)),
      degradation: checkString(e.degradation, `${w}: degradation`),
      degradationJson,
      acceleration: checkNullable(e.acceleration, (a) => checkNumber(a, `${w}: acceleration`)),
      psnr: metric('psnr'),
      ssim: metric('ssim'),
      nmse: metric('nmse'),
      psnrStd2: metric('psnrStd2'),
      ssimStd2: metric('ssimStd2'),
      nmseStd2: metric('nmseStd2'),
      volumes,
      perVolume: toJson(
        perVolume.map((v) => ({ psnr: v.psnr, ssim: v.ssim, nmse: v.nmse })),
        `${w}: perVolume`,
      ),
      backend: checkNullable(e.backend, (b) => checkOneOf(b, BACKENDS, `${w}: backend`)),
      createdAt: checkTime(e.createdAt ?? Date.now(), `${w}: createdAt`),
    };
    const id = this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM datasets WHERE id = ?').get(row.datasetId)) {
        throw new StoreError(`${w}: no dataset ${row.datasetId}`);
      }
      if (modelId !== null) {
        const m = this.db
          .prepare('SELECT m.kind, r.job_id FROM models m LEFT JOIN runs r ON r.id = m.run_id WHERE m.id = ?')
          .get(modelId) as { kind: RunKind; job_id: string | null } | undefined;
        if (!m) throw new StoreError(`${w}: no model ${modelId}`);
        if (m.kind !== runKind)
          throw new StoreError(`${w}: model ${modelId} is a ${m.kind}, not a ${runKind}`);
        if (e.jobId === undefined) row.jobId = m.job_id;
      }
      if (row.jobId !== null && !this.db.prepare('SELECT 1 FROM jobs WHERE id = ?').get(row.jobId)) {
        throw new StoreError(`${w}: no job ${row.jobId}`);
      }
      const info = this.db
        .prepare(
          `INSERT INTO evaluations (model_id, run_kind, dataset_id, job_id, degradation, degradation_json,
             acceleration, psnr, ssim, nmse, psnr_std2, ssim_std2, nmse_std2, volumes, per_volume, backend,
             created_at)
           VALUES (@modelId, @runKind, @datasetId, @jobId, @degradation, @degradationJson, @acceleration,
             @psnr, @ssim, @nmse, @psnrStd2, @ssimStd2, @nmseStd2, @volumes, @perVolume, @backend, @createdAt)`,
        )
        .run(row);
      return Number(info.lastInsertRowid);
    })();
    return this.get(id)!;
  }

  /** null when there is no such evaluation. */
  get(id: number): EvaluationRow | null {
    const r = this.db.prepare('SELECT * FROM evaluations WHERE id = ?').get(id) as EvalSql | undefined;
    return r ? toRow(r) : null;
  }

  /** Evaluations matching every filter, oldest first. */
  list(filter: EvaluationFilter = {}): EvaluationRow[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.datasetId !== undefined) {
      where.push('dataset_id = @datasetId');
      params.datasetId = filter.datasetId;
    }
    if (filter.modelId !== undefined) {
      where.push('model_id = @modelId');
      params.modelId = filter.modelId;
    }
    if (filter.jobId !== undefined) {
      where.push('job_id = @jobId');
      params.jobId = filter.jobId;
    }
    const sql = `SELECT * FROM evaluations ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(params) as EvalSql[]).map(toRow);
  }

  /**
   * The paper-style table for a dataset: one row per degradation × model kind, the latest evaluation
   * of each (evaluations of soft-deleted models are ignored). Ordered by degradation label (natural
   * order, so 4x before 10x), then zf, lr, teacher, student, attention, kd.
   */
  paperTable(datasetId: number): PaperRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM (
           SELECT e.*, ROW_NUMBER() OVER (
             PARTITION BY e.degradation, e.run_kind ORDER BY e.created_at DESC, e.id DESC) AS rank
           FROM evaluations e LEFT JOIN models m ON m.id = e.model_id
           WHERE e.dataset_id = ? AND (e.model_id IS NULL OR m.deleted_at IS NULL))
         WHERE rank = 1`,
      )
      .all(datasetId) as EvalSql[];
    const collator = new Intl.Collator('en', { numeric: true });
    return rows
      .map(toRow)
      .sort(
        (a, b) =>
          collator.compare(a.degradation, b.degradation) || KIND_ORDER[a.runKind] - KIND_ORDER[b.runKind],
      )
      .map((r) => ({
        model: r.runKind,
        degradation: r.degradation,
        psnr: r.psnr,
        ssim: r.ssim,
        nmse: r.nmse,
        psnrStd2: r.psnrStd2,
        ssimStd2: r.ssimStd2,
        nmseStd2: r.nmseStd2,
        volumes: r.volumes,
        evaluationId: r.id,
        modelId: r.modelId,
        jobId: r.jobId,
        acceleration: r.acceleration,
        createdAt: r.createdAt,
      }));
  }
}
