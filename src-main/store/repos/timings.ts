/**
 * Measured costs of networks on this machine (migration 007), keyed by what was measured, image
 * size, batch and backend. A later measurement of the same key replaces the earlier one.
 */
import type Database from 'better-sqlite3';
import { checkString } from '../util.js';

export interface TimingKey {
  /** A network's canonical spec (JSON), or 'cs:<params JSON>'. */
  what: string;
  h: number;
  w: number;
  batch: number;
  backend: string;
}

export interface TimingRow extends TimingKey {
  /** One training step (forward, backward, optimiser update) on one batch, ms. */
  trainMs: number;
  /** One forward pass on one batch, ms. */
  inferMs: number;
  /** What the first training step of a fresh network costs beyond a warm one, ms. */
  warmupMs: number;
  /** The model-card latency measurement at 256×256 (a cold and three warm forwards), ms. */
  latencyMs: number;
  /** Epoch ms. */
  measuredAt: number;
}

interface TimingSql {
  what: string;
  h: number;
  w: number;
  batch: number;
  backend: string;
  train_ms: number;
  infer_ms: number;
  warmup_ms: number;
  latency_ms: number;
  measured_at: number;
}

const toRow = (r: TimingSql): TimingRow => ({
  what: r.what,
  h: r.h,
  w: r.w,
  batch: r.batch,
  backend: r.backend,
  trainMs: r.train_ms,
  inferMs: r.infer_ms,
  warmupMs: r.warmup_ms,
  latencyMs: r.latency_ms,
  measuredAt: r.measured_at,
});

export class TimingRepo {
  constructor(private readonly db: Database.Database) {}

  get(k: TimingKey): TimingRow | null {
    const r = this.db
      .prepare(`SELECT * FROM timings WHERE what = ? AND h = ? AND w = ? AND batch = ? AND backend = ?`)
      .get(k.what, k.h, k.w, k.batch, k.backend) as TimingSql | undefined;
    return r ? toRow(r) : null;
  }

  put(t: Omit<TimingRow, 'measuredAt'> & { measuredAt?: number }): TimingRow {
    checkString(t.what, 'timing subject');
    checkString(t.backend, 'backend');
    for (const [name, v] of Object.entries({
      trainMs: t.trainMs,
      inferMs: t.inferMs,
      warmupMs: t.warmupMs,
      latencyMs: t.latencyMs,
    }))
      if (!Number.isFinite(v) || v < 0)
        throw new RangeError(`timing ${name} must be a finite number ≥ 0, got ${v}`);
    const row: TimingRow = { ...t, measuredAt: t.measuredAt ?? Date.now() };
    this.db
      .prepare(
        `INSERT OR REPLACE INTO timings (what, h, w, batch, backend, train_ms, infer_ms, warmup_ms, latency_ms, measured_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.what,
        row.h,
        row.w,
        row.batch,
        row.backend,
        row.trainMs,
        row.inferMs,
        row.warmupMs,
        row.latencyMs,
        row.measuredAt,
      );
    return row;
  }
}
