/** Saved models: a folder on disk (model.json + weights) and its card. Deletion is soft. */
import { isAbsolute } from 'node:path';
import type Database from 'better-sqlite3';
import {
  NetworkSpecSchema,
  RUN_KINDS,
  type ModelCard,
  type NetworkSpec,
  type RunKind,
} from '../../contract/domain.js';
import {
  checkInt,
  checkNullable,
  checkOneOf,
  checkString,
  checkTime,
  fromJson,
  StoreError,
  toJson,
  zodProblem,
} from '../util.js';

export interface ModelRow {
  id: number;
  /** null for an imported model, or once its run was deleted. */
  runId: number | null;
  kind: RunKind;
  name: string;
  /** Absolute folder. */
  dir: string;
  paramCount: number;
  spec: NetworkSpec;
  card: ModelCard;
  teacherModelId: number | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms of the soft delete, null while the model is live. */
  deletedAt: number | null;
}

export interface NewModel {
  runId?: number | null;
  kind: RunKind;
  name: string;
  /** Absolute folder (writeModelDir's return value). */
  dir: string;
  paramCount: number;
  spec: NetworkSpec;
  card: ModelCard;
  teacherModelId?: number | null;
  createdAt?: number;
}

export interface ModelFilter {
  runId?: number;
  kind?: RunKind;
  /** Include soft-deleted models (default false). */
  includeDeleted?: boolean;
}

interface ModelSql {
  id: number;
  run_id: number | null;
  kind: RunKind;
  name: string;
  dir: string;
  param_count: number;
  spec: string;
  card: string;
  teacher_model_id: number | null;
  created_at: number;
  deleted_at: number | null;
}

function toRow(r: ModelSql): ModelRow {
  return {
    id: r.id,
    runId: r.run_id,
    kind: r.kind,
    name: r.name,
    dir: r.dir,
    paramCount: r.param_count,
    spec: fromJson<NetworkSpec>(r.spec, `models.spec of model ${r.id}`),
    card: fromJson<ModelCard>(r.card, `models.card of model ${r.id}`),
    teacherModelId: r.teacher_model_id,
    createdAt: r.created_at,
    deletedAt: r.deleted_at,
  };
}

function checkCard(card: unknown, where: string): ModelCard {
  if (typeof card !== 'object' || card === null || Array.isArray(card)) {
    throw new StoreError(`${where}: card must be an object`);
  }
  return card as ModelCard;
}

export class ModelRepo {
  private readonly byId: Database.Statement<[number], ModelSql>;

  constructor(private readonly db: Database.Database) {
    this.byId = db.prepare('SELECT * FROM models WHERE id = ?');
  }

  /**
   * Insert a model row for a folder already written. Throws StoreError for an unknown run or teacher,
   * or when a live model already owns the folder (use saveModelAtomically to replace one).
   */
  create(m: NewModel): ModelRow {
    const w = 'models.create';
    const spec = NetworkSpecSchema.safeParse(m.spec);
    if (!spec.success) throw new StoreError(`${w}: invalid spec (${zodProblem(spec.error.issues)})`);
    const dir = checkString(m.dir, `${w}: dir`);
    if (!isAbsolute(dir)) throw new StoreError(`${w}: dir must be an absolute path, got ${dir}`);
    const row = {
      runId: checkNullable(m.runId, (r) => checkInt(r, `${w}: runId`, 1)),
      kind: checkOneOf(m.kind, RUN_KINDS, `${w}: kind`),
      name: checkString(m.name, `${w}: name`),
      dir,
      paramCount: checkInt(m.paramCount, `${w}: paramCount`),
      spec: toJson(spec.data, `${w}: spec`),
      card: toJson(checkCard(m.card, w), `${w}: card`),
      teacherModelId: checkNullable(m.teacherModelId, (t) => checkInt(t, `${w}: teacherModelId`, 1)),
      createdAt: checkTime(m.createdAt ?? Date.now(), `${w}: createdAt`),
    };
    const id = this.db.transaction(() => {
      if (row.runId !== null && !this.db.prepare('SELECT 1 FROM runs WHERE id = ?').get(row.runId)) {
        throw new StoreError(`${w}: no run ${row.runId}`);
      }
      if (row.teacherModelId !== null && !this.byId.get(row.teacherModelId)) {
        throw new StoreError(`${w}: no teacher model ${row.teacherModelId}`);
      }
      const owner = this.liveOwnerOf(dir);
      if (owner !== null) throw new StoreError(`${w}: folder ${dir} already belongs to model ${owner}`);
      const info = this.db
        .prepare(
          `INSERT INTO models (run_id, kind, name, dir, param_count, spec, card, teacher_model_id, created_at)
           VALUES (@runId, @kind, @name, @dir, @paramCount, @spec, @card, @teacherModelId, @createdAt)`,
        )
        .run(row);
      return Number(info.lastInsertRowid);
    })();
    return this.get(id)!;
  }

  /** The live model whose folder is `dir`, or null. */
  liveOwnerOf(dir: string): number | null {
    const r = this.db.prepare('SELECT id FROM models WHERE dir = ? AND deleted_at IS NULL').get(dir) as
      { id: number } | undefined;
    return r ? r.id : null;
  }

  /** null when there is no such model; soft-deleted models are returned (deletedAt set). */
  get(id: number): ModelRow | null {
    const r = this.byId.get(id);
    return r ? toRow(r) : null;
  }

  /** Models matching every filter, oldest first; live ones only unless includeDeleted. */
  list(filter: ModelFilter = {}): ModelRow[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (!filter.includeDeleted) where.push('deleted_at IS NULL');
    if (filter.runId !== undefined) {
      where.push('run_id = @runId');
      params.runId = filter.runId;
    }
    if (filter.kind !== undefined) {
      where.push('kind = @kind');
      params.kind = checkOneOf(filter.kind, RUN_KINDS, 'models.list: kind');
    }
    const sql = `SELECT * FROM models ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    return (this.db.prepare(sql).all(params) as ModelSql[]).map(toRow);
  }

  /**
   * Mark a model deleted (its folder is left on disk: remove it with removeModelDir if wanted).
   * Idempotent; throws StoreError for an unknown id.
   */
  softDelete(id: number, now = Date.now()): ModelRow {
    this.db.prepare('UPDATE models SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL').run(now, id);
    const row = this.get(id);
    if (!row) throw new StoreError(`models.softDelete: no model ${id}`);
    return row;
  }

  /** Replace a model's card (e.g. after measuring compactness or evaluating). Throws for an unknown id. */
  updateCard(id: number, card: ModelCard): ModelRow {
    const w = `models.updateCard(${id})`;
    const info = this.db
      .prepare('UPDATE models SET card = ? WHERE id = ?')
      .run(toJson(checkCard(card, w), `${w}: card`), id);
    if (info.changes === 0) throw new StoreError(`models.updateCard: no model ${id}`);
    return this.get(id)!;
  }
}
