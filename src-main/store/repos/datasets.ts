/** The datasets a job trains and evaluates on: where the slices come from and how they were split. */
import type Database from 'better-sqlite3';
import { TASKS, type Task } from '../../contract/domain.js';
import {
  checkInt,
  checkOneOf,
  checkString,
  checkTime,
  fromJson,
  StoreError,
  toJson,
  type JsonObject,
} from '../util.js';

export interface DatasetRow {
  id: number;
  name: string;
  /** A file or folder path, 'sample', or 'series:<SeriesInstanceUID>'. */
  source: string;
  task: Task;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  /** Epoch ms. */
  createdAt: number;
  /** Free-form JSON object (e.g. { size, description }); `{}` when nothing was given. */
  meta: JsonObject;
}

export interface NewDataset {
  name: string;
  source: string;
  task: Task;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  meta?: JsonObject | null;
  /** Defaults to now. */
  createdAt?: number;
}

interface DatasetSql {
  id: number;
  name: string;
  source: string;
  task: Task;
  h: number;
  w: number;
  train_slices: number;
  val_slices: number;
  created_at: number;
  meta: string;
}

function toRow(r: DatasetSql): DatasetRow {
  return {
    id: r.id,
    name: r.name,
    source: r.source,
    task: r.task,
    h: r.h,
    w: r.w,
    trainSlices: r.train_slices,
    valSlices: r.val_slices,
    createdAt: r.created_at,
    meta: fromJson<JsonObject>(r.meta, `datasets.meta of dataset ${r.id}`),
  };
}

export class DatasetRepo {
  private readonly insert: Database.Statement;
  private readonly byId: Database.Statement<[number], DatasetSql>;
  private readonly all: Database.Statement<[], DatasetSql>;
  private readonly bySource: Database.Statement<[string], DatasetSql>;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO datasets (name, source, task, h, w, train_slices, val_slices, created_at, meta)
       VALUES (@name, @source, @task, @h, @w, @trainSlices, @valSlices, @createdAt, @meta)`,
    );
    this.byId = db.prepare('SELECT * FROM datasets WHERE id = ?');
    this.all = db.prepare('SELECT * FROM datasets ORDER BY id');
    this.bySource = db.prepare('SELECT * FROM datasets WHERE source = ? ORDER BY id');
  }

  create(d: NewDataset): DatasetRow {
    const w = 'datasets.create';
    if (d.meta !== undefined && d.meta !== null && (typeof d.meta !== 'object' || Array.isArray(d.meta))) {
      throw new StoreError(`${w}: meta must be a JSON object`);
    }
    const info = this.insert.run({
      name: checkString(d.name, `${w}: name`),
      source: checkString(d.source, `${w}: source`),
      task: checkOneOf(d.task, TASKS, `${w}: task`),
      h: checkInt(d.h, `${w}: h`, 1),
      w: checkInt(d.w, `${w}: w`, 1),
      trainSlices: checkInt(d.trainSlices, `${w}: trainSlices`),
      valSlices: checkInt(d.valSlices, `${w}: valSlices`),
      createdAt: checkTime(d.createdAt ?? Date.now(), `${w}: createdAt`),
      meta: toJson(d.meta ?? {}, `${w}: meta`),
    });
    return this.get(Number(info.lastInsertRowid))!;
  }

  /** null when there is no such dataset. */
  get(id: number): DatasetRow | null {
    const r = this.byId.get(id);
    return r ? toRow(r) : null;
  }

  /** All datasets, oldest first. */
  list(): DatasetRow[] {
    return this.all.all().map(toRow);
  }

  /** Datasets built from this source (several when sizes or tasks differ), oldest first. */
  findBySource(source: string): DatasetRow[] {
    return this.bySource.all(source).map(toRow);
  }

  /**
   * The dataset that holds the same slices as a new one would: same source, size, task and slab
   * length (a slabbed dataset has other units of evaluation than the same data unslabbed). A job's
   * data and an imported job's dataset are matched by this one rule.
   */
  findSame(d: {
    source: string;
    h: number;
    w: number;
    task: string;
    slab: number | null;
  }): DatasetRow | null {
    return (
      this.findBySource(d.source).find(
        (x) =>
          x.h === d.h &&
          x.w === d.w &&
          x.task === d.task &&
          (typeof x.meta?.slab === 'number' ? x.meta.slab : null) === d.slab,
      ) ?? null
    );
  }
}
