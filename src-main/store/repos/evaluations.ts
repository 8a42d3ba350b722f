/**
 * Evaluations: one model (or a baseline: zero-filled, low-resolution, compressed sensing) scored on
 * a split of a dataset under one degradation, with every volume's and slice's values; the source of
 * the results tables (src-main/results/table.ts), which read validation rows only.
 */
import type Database from 'better-sqlite3';
import {
  BACKENDS,
  DegradationSchema,
  EVAL_KINDS,
  EVAL_SPLITS,
  type BackendName,
  type Degradation,
  type EvalKind,
  type EvalSplit,
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
  type JsonObject,
  nanToNull,
  nullToNaN,
  StoreError,
  toJson,
  zodProblem,
} from '../util.js';

export type { EvalKind, EvalSplit } from '../../contract/domain.js';
export { EVAL_KINDS } from '../../contract/domain.js';

/** Stored split: the known ones, or 'unknown' for rows older than the split column. */
export type StoredSplit = EvalSplit | 'unknown';

/** One volume's metrics and, when recorded, each of its slices' (R = the volume maximum throughout). */
export interface VolumeValues extends VolumeMetrics {
  slices: VolumeMetrics[];
}

export interface EvaluationRow {
  id: number;
  /** null for the baselines ('zf', 'lr', 'cs'). */
  modelId: number | null;
  runKind: EvalKind;
  datasetId: number;
  /** The job that wrote it; null for evaluations made outside a job (kdmri eval). */
  jobId: string | null;
  split: StoredSplit;
  /** Label as in table headers: degradationLabel(degradationJson). */
  degradation: string;
  degradationJson: Degradation | null;
  /** degradationKey(degradationJson): the degradation's full identity. */
  degradationKey: string | null;
  /** SHA-256 (hex) of the mask applied, H×W bytes, 1 = sampled; null for non-mask degradations. */
  maskHash: string | null;
  /** True acceleration of the mask; null for low-resolution degradations. */
  acceleration: number | null;
  /** SHA-256 (hex) of the scored targets: equal hashes, same slices. */
  dataHash: string | null;
  /** Parameters of a baseline method (the CS λ, iterations, wavelet). */
  method: JsonObject | null;
  /** Means over volumes and 2·std (ddof 1); NaN where undefined (the std of one volume). */
  psnr: number;
  ssim: number;
  nmse: number;
  psnrStd2: number;
  ssimStd2: number;
  nmseStd2: number;
  volumes: number;
  perVolume: VolumeValues[];
  backend: BackendName | null;
  /** Epoch ms. */
  createdAt: number;
}

export interface NewEvaluation {
  modelId: number | null;
  runKind: EvalKind;
  datasetId: number;
  /** The job writing it; null (the default) outside a job. */
  jobId?: string | null;
  split: EvalSplit;
  degradation: string;
  degradationJson?: Degradation | null;
  degradationKey?: string | null;
  maskHash?: string | null;
  acceleration?: number | null;
  dataHash?: string | null;
  method?: JsonObject | null;
  psnr: number;
  ssim: number;
  nmse: number;
  psnrStd2: number;
  ssimStd2: number;
  nmseStd2: number;
  volumes: number;
  /** One entry per volume; `slices` optional (per-slice values, in slice order). */
  perVolume?: (VolumeMetrics & { slices?: VolumeMetrics[] })[];
  backend?: BackendName | null;
  createdAt?: number;
}

export interface EvaluationFilter {
  datasetId?: number;
  modelId?: number;
  jobId?: string;
  split?: StoredSplit;
}

/** A row of a results table, with where it came from. */
export interface PaperRow extends MetricRow {
  evaluationId: number;
  modelId: number | null;
  jobId: string | null;
  acceleration: number | null;
  degradationKey: string | null;
  maskHash: string | null;
  createdAt: number;
}

interface EvalSql {
  id: number;
  model_id: number | null;
  run_kind: EvalKind;
  dataset_id: number;
  job_id: string | null;
  split: StoredSplit;
  degradation: string;
  degradation_json: string | null;
  degradation_key: string | null;
  mask_hash: string | null;
  acceleration: number | null;
  data_hash: string | null;
  method: string | null;
  psnr: number | null;
  ssim: number | null;
  nmse: number | null;
  psnr_std2: number | null;
  ssim_std2: number | null;
  nmse_std2: number | null;
  volumes: number;
  backend: BackendName | null;
  created_at: number;
}

interface ValueSql {
  volume: number;
  slice: number;
  psnr: number | null;
  ssim: number | null;
  nmse: number | null;
}

const metricsOf = (v: ValueSql): VolumeMetrics => ({
  psnr: nullToNaN(v.psnr),
  ssim: nullToNaN(v.ssim),
  nmse: nullToNaN(v.nmse),
});

const HASH = /^[0-9a-f]{64}$/;
function checkHash(h: unknown, where: string): string {
  if (typeof h !== 'string' || !HASH.test(h)) throw new StoreError(`${where}: expected a SHA-256 hex digest`);
  return h;
}

/** Order of the model column in tables: the inputs and baselines first, then teacher, student, AT, KD. */
export const KIND_ORDER: Record<EvalKind, number> = {
  zf: 0,
  lr: 1,
  cs: 2,
  teacher: 3,
  student: 4,
  attention: 5,
  kd: 6,
};

export class EvaluationRepo {
  private readonly valuesOf: Database.Statement<[number], ValueSql>;

  constructor(private readonly db: Database.Database) {
    this.valuesOf = db.prepare(
      'SELECT volume, slice, psnr, ssim, nmse FROM evaluation_values WHERE evaluation_id = ? ORDER BY volume, slice',
    );
  }

  private toRow(r: EvalSql): EvaluationRow {
    const where = `evaluation ${r.id}`;
    const perVolume: VolumeValues[] = [];
    for (const v of this.valuesOf.all(r.id)) {
      if (v.slice === -1)
        perVolume[v.volume] = { ...metricsOf(v), slices: perVolume[v.volume]?.slices ?? [] };
      else {
        perVolume[v.volume] ??= { psnr: NaN, ssim: NaN, nmse: NaN, slices: [] };
        perVolume[v.volume].slices[v.slice] = metricsOf(v);
      }
    }
    return {
      id: r.id,
      modelId: r.model_id,
      runKind: r.run_kind,
      datasetId: r.dataset_id,
      jobId: r.job_id,
      split: r.split,
      degradation: r.degradation,
      degradationJson:
        r.degradation_json === null
          ? null
          : fromJson<Degradation>(r.degradation_json, `degradation_json of ${where}`),
      degradationKey: r.degradation_key,
      maskHash: r.mask_hash,
      acceleration: r.acceleration,
      dataHash: r.data_hash,
      method: r.method === null ? null : fromJson<JsonObject>(r.method, `method of ${where}`),
      psnr: nullToNaN(r.psnr),
      ssim: nullToNaN(r.ssim),
      nmse: nullToNaN(r.nmse),
      psnrStd2: nullToNaN(r.psnr_std2),
      ssimStd2: nullToNaN(r.ssim_std2),
      nmseStd2: nullToNaN(r.nmse_std2),
      volumes: r.volumes,
      perVolume,
      backend: r.backend,
      createdAt: r.created_at,
    };
  }

  /**
   * Record one evaluation with its values, in one transaction. A baseline ('zf' / 'lr' / 'cs') has
   * no model; a model's evaluation must carry the model's kind. Throws StoreError for unknown model,
   * dataset or job ids and for malformed metrics; nothing is written then.
   */
  record(e: NewEvaluation): EvaluationRow {
    const w = 'evaluations.record';
    const runKind = checkOneOf(e.runKind, EVAL_KINDS, `${w}: runKind`);
    const modelId = checkNullable(e.modelId, (m) => checkInt(m, `${w}: modelId`, 1));
    const baseline = runKind === 'zf' || runKind === 'lr' || runKind === 'cs';
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
      (v.slices ?? []).forEach((s, j) => {
        for (const k of ['psnr', 'ssim', 'nmse'] as const)
          checkNumber(s?.[k], `${w}: perVolume[${i}].slices[${j}].${k}`);
      });
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
      split: checkOneOf(e.split, EVAL_SPLITS, `${w}: split`),
      degradation: checkString(e.degradation, `${w}: degradation`),
      degradationJson,
      degradationKey: checkNullable(e.degradationKey, (k) => checkString(k, `${w}: degradationKey`)),
      maskHash: checkNullable(e.maskHash, (h) => checkHash(h, `${w}: maskHash`)),
      acceleration: checkNullable(e.acceleration, (a) => checkNumber(a, `${w}: acceleration`)),
      dataHash: checkNullable(e.dataHash, (h) => checkHash(h, `${w}: dataHash`)),
      method: e.method === undefined || e.method === null ? null : toJson(e.method, `${w}: method`),
      psnr: metric('psnr'),
      ssim: metric('ssim'),
      nmse: metric('nmse'),
      psnrStd2: metric('psnrStd2'),
      ssimStd2: metric('ssimStd2'),
      nmseStd2: metric('nmseStd2'),
      volumes,
      backend: checkNullable(e.backend, (b) => checkOneOf(b, BACKENDS, `${w}: backend`)),
      createdAt: checkTime(e.createdAt ?? Date.now(), `${w}: createdAt`),
    };
    const id = this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM datasets WHERE id = ?').get(row.datasetId)) {
        throw new StoreError(`${w}: no dataset ${row.datasetId}`);
      }
      if (modelId !== null) {
        const m = this.db.prepare('SELECT kind FROM models WHERE id = ?').get(modelId) as
          { kind: RunKind } | undefined;
        if (!m) throw new StoreError(`${w}: no model ${modelId}`);
        if (m.kind !== runKind)
          throw new StoreError(`${w}: model ${modelId} is a ${m.kind}, not a ${runKind}`);
      }
      if (row.jobId !== null && !this.db.prepare('SELECT 1 FROM jobs WHERE id = ?').get(row.jobId)) {
        throw new StoreError(`${w}: no job ${row.jobId}`);
      }
      const info = this.db
        .prepare(
          `INSERT INTO evaluations (model_id, run_kind, dataset_id, job_id, split, degradation,
             degradation_json, degradation_key, mask_hash, acceleration, data_hash, method, psnr, ssim,
             nmse, psnr_std2, ssim_std2, nmse_std2, volumes, backend, created_at)
           VALUES (@modelId, @runKind, @datasetId, @jobId, @split, @degradation, @degradationJson,
             @degradationKey, @maskHash, @acceleration, @dataHash, @method, @psnr, @ssim, @nmse,
             @psnrStd2, @ssimStd2, @nmseStd2, @volumes, @backend, @createdAt)`,
        )
        .run(row);
      const evalId = Number(info.lastInsertRowid);
      const put = this.db.prepare(
        'INSERT INTO evaluation_values (evaluation_id, volume, slice, psnr, ssim, nmse) VALUES (?, ?, ?, ?, ?, ?)',
      );
      perVolume.forEach((v, i) => {
        put.run(evalId, i, -1, nanToNull(v.psnr), nanToNull(v.ssim), nanToNull(v.nmse));
        (v.slices ?? []).forEach((s, j) =>
          put.run(evalId, i, j, nanToNull(s.psnr), nanToNull(s.ssim), nanToNull(s.nmse)),
        );
      });
      return evalId;
    })();
    return this.get(id)!;
  }

  /** null when there is no such evaluation. */
  get(id: number): EvaluationRow | null {
    const r = this.db.prepare('SELECT * FROM evaluations WHERE id = ?').get(id) as EvalSql | undefined;
    return r ? this.toRow(r) : null;
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
    if (filter.split !== undefined) {
      where.push('split = @split');
      params.split = filter.split;
    }
    const sql = `SELECT * FROM evaluations ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(params) as EvalSql[]).map((r) => this.toRow(r));
  }

  /**
   * What a results table shows for these jobs: their own validation evaluations (evaluations of
   * soft-deleted models left out), the latest per job × degradation identity × kind. Rows of other
   * splits, of `kdmri eval` (no job) or of another job never appear. Ordered by job (as given), then
   * acceleration, then zf, lr, cs, teacher, student, attention, kd.
   */
  tableRows(jobIds: readonly string[]): EvaluationRow[] {
    if (jobIds.length === 0) return [];
    const order = new Map(jobIds.map((j, i) => [j, i]));
    const rows = this.db
      .prepare(
        `SELECT * FROM (
           SELECT e.*, ROW_NUMBER() OVER (
             PARTITION BY e.job_id, COALESCE(e.mask_hash, e.degradation_key, e.degradation), e.run_kind
             ORDER BY e.created_at DESC, e.id DESC) AS rank
           FROM evaluations e LEFT JOIN models m ON m.id = e.model_id
           WHERE e.job_id IN (SELECT value FROM json_each(?)) AND e.split = 'validation'
             AND (e.model_id IS NULL OR m.deleted_at IS NULL))
         WHERE rank = 1`,
      )
      .all(JSON.stringify(jobIds)) as EvalSql[];
    return rows
      .map((r) => this.toRow(r))
      .sort(
        (a, b) =>
          order.get(a.jobId!)! - order.get(b.jobId!)! ||
          (a.acceleration ?? Infinity) - (b.acceleration ?? Infinity) ||
          KIND_ORDER[a.runKind] - KIND_ORDER[b.runKind],
      );
  }
}

/** The table-facing figures of an evaluation row. */
export function paperRow(r: EvaluationRow): PaperRow {
  return {
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
    degradationKey: r.degradationKey,
    maskHash: r.maskHash,
    createdAt: r.createdAt,
  };
}
