/**
 * Run reproducibility records: everything needed to repeat a run and to know whether a repetition
 * saw the same inputs — the exact config, the seeds, the mask itself and its hash, hashes of the
 * training and validation data, backend, threads and versions. Written when the run starts (before
 * its first epoch), completed with the stop reason when it ends.
 */
import type Database from 'better-sqlite3';
import { DistillConfigSchema, type DistillConfig } from '../../contract/domain.js';
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

export const STOP_REASONS = ['completed', 'patience', 'cancelled'] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/** Where the data came from and what it was, as the run saw it. */
export interface RunDataRecord {
  /** 'sample', an absolute path, or 'series:<uid>[,…]'. */
  source: string;
  /** Resampled side, or null for the native size. */
  size: number | null;
  /** Slices per slab when volumes were cut into slabs (data-source.ts toSlabs), else null. */
  slab: number | null;
  datasetId: number;
  description: string;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  trainVolumes: number;
  valVolumes: number;
}

/** The mask as applied: 1-D Cartesian, so its sampled line indices (unshifted) say it all. */
export interface MaskRecord {
  h: number;
  w: number;
  axis: 'rows' | 'cols';
  lines: number[];
}

export interface RunRecord {
  runId: number;
  config: DistillConfig;
  data: RunDataRecord;
  weightSeed: number;
  shuffleSeed: number;
  maskSeed: number | null;
  mask: MaskRecord | null;
  maskHash: string | null;
  trainHash: string;
  valHash: string;
  backend: string;
  threads: number;
  appVersion: string;
  tfjsVersion: string;
  nodeVersion: string;
  platform: string;
  stopReason: StopReason | null;
  createdAt: number;
}

export type NewRunRecord = Omit<RunRecord, 'stopReason' | 'createdAt'> & { createdAt?: number };

interface RecSql {
  run_id: number;
  config: string;
  data: string;
  weight_seed: number;
  shuffle_seed: number;
  mask_seed: number | null;
  mask: string | null;
  mask_hash: string | null;
  train_hash: string;
  val_hash: string;
  backend: string;
  threads: number;
  app_version: string;
  tfjs_version: string;
  node_version: string;
  platform: string;
  stop_reason: StopReason | null;
  created_at: number;
}

export class RunRecordRepo {
  constructor(private readonly db: Database.Database) {}

  /** Write (or, for a resumed run, keep) the record of a run. Returns the stored record. */
  write(r: NewRunRecord): RunRecord {
    const w = 'runRecords.write';
    const parsed = DistillConfigSchema.safeParse(r.config);
    if (!parsed.success) throw new StoreError(`${w}: invalid config (${zodProblem(parsed.error.issues)})`);
    const row = {
      runId: checkInt(r.runId, `${w}: runId`, 1),
      config: toJson(parsed.data, `${w}: config`),
      data: toJson(r.data, `${w}: data`),
      weightSeed: checkInt(r.weightSeed, `${w}: weightSeed`),
      shuffleSeed: checkInt(r.shuffleSeed, `${w}: shuffleSeed`),
      maskSeed: checkNullable(r.maskSeed, (s) => checkInt(s, `${w}: maskSeed`)),
      mask: r.mask === null ? null : toJson(r.mask, `${w}: mask`),
      maskHash: checkNullable(r.maskHash, (h) => checkString(h, `${w}: maskHash`)),
      trainHash: checkString(r.trainHash, `${w}: trainHash`),
      valHash: checkString(r.valHash, `${w}: valHash`),
      backend: checkString(r.backend, `${w}: backend`),
      threads: checkInt(r.threads, `${w}: threads`, 1),
      appVersion: checkString(r.appVersion, `${w}: appVersion`),
      tfjsVersion: checkString(r.tfjsVersion, `${w}: tfjsVersion`),
      nodeVersion: checkString(r.nodeVersion, `${w}: nodeVersion`),
      platform: checkString(r.platform, `${w}: platform`),
      createdAt: checkTime(r.createdAt ?? Date.now(), `${w}: createdAt`),
    };
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM runs WHERE id = ?').get(row.runId))
        throw new StoreError(`${w}: no run ${row.runId}`);
      this.db
        .prepare(
          `INSERT OR IGNORE INTO run_records (run_id, config, data, weight_seed, shuffle_seed, mask_seed,
             mask, mask_hash, train_hash, val_hash, backend, threads, app_version, tfjs_version,
             node_version, platform, created_at)
           VALUES (@runId, @config, @data, @weightSeed, @shuffleSeed, @maskSeed, @mask, @maskHash,
             @trainHash, @valHash, @backend, @threads, @appVersion, @tfjsVersion, @nodeVersion,
             @platform, @createdAt)`,
        )
        .run(row);
    })();
    return this.get(row.runId)!;
  }

  setStopReason(runId: number, reason: StopReason): void {
    const w = `runRecords.setStopReason(${runId})`;
    const info = this.db
      .prepare('UPDATE run_records SET stop_reason = ? WHERE run_id = ?')
      .run(checkOneOf(reason, STOP_REASONS, `${w}: reason`), runId);
    if (info.changes === 0) throw new StoreError(`${w}: no record for run ${runId}`);
  }

  /** null when the run has no record (runs from before records existed). */
  get(runId: number): RunRecord | null {
    const r = this.db.prepare('SELECT * FROM run_records WHERE run_id = ?').get(runId) as RecSql | undefined;
    if (!r) return null;
    const where = `run record ${runId}`;
    return {
      runId: r.run_id,
      config: fromJson<DistillConfig>(r.config, `config of ${where}`),
      data: fromJson<RunDataRecord>(r.data, `data of ${where}`),
      weightSeed: r.weight_seed,
      shuffleSeed: r.shuffle_seed,
      maskSeed: r.mask_seed,
      mask: r.mask === null ? null : fromJson<MaskRecord>(r.mask, `mask of ${where}`),
      maskHash: r.mask_hash,
      trainHash: r.train_hash,
      valHash: r.val_hash,
      backend: r.backend,
      threads: r.threads,
      appVersion: r.app_version,
      tfjsVersion: r.tfjs_version,
      nodeVersion: r.node_version,
      platform: r.platform,
      stopReason: r.stop_reason,
      createdAt: r.created_at,
    };
  }
}
