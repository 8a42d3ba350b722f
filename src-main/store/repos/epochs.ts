/** Per-epoch training metrics of a run; a resumed run re-writes the epochs it repeats. */
import type Database from 'better-sqlite3';
import { checkInt, checkNumber, checkTime, nanToNull, nullToNaN, StoreError } from '../util.js';

export interface EpochRow {
  runId: number;
  /** 0-based. */
  epoch: number;
  /** NaN when the loss was not a number (diverged). */
  trainLoss: number;
  valLoss: number;
  lr: number;
  seconds: number;
  /** Epoch ms. */
  createdAt: number;
}

export interface EpochInput {
  runId: number;
  epoch: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  seconds: number;
  createdAt?: number;
}

interface EpochSql {
  run_id: number;
  epoch: number;
  train_loss: number | null;
  val_loss: number | null;
  lr: number | null;
  seconds: number | null;
  created_at: number;
}

export class EpochRepo {
  private readonly upsert: Database.Statement;
  private readonly runExists: Database.Statement<[number]>;
  private readonly byRun: Database.Statement<[number], EpochSql>;

  constructor(private readonly db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO epoch_metrics (run_id, epoch, train_loss, val_loss, lr, seconds, created_at)
       VALUES (@runId, @epoch, @trainLoss, @valLoss, @lr, @seconds, @createdAt)
       ON CONFLICT (run_id, epoch) DO UPDATE SET
         train_loss = excluded.train_loss, val_loss = excluded.val_loss, lr = excluded.lr,
         seconds = excluded.seconds, created_at = excluded.created_at`,
    );
    this.runExists = db.prepare('SELECT 1 FROM runs WHERE id = ?');
    this.byRun = db.prepare('SELECT * FROM epoch_metrics WHERE run_id = ? ORDER BY epoch');
  }

  /** Insert or replace the metrics of one epoch. Throws StoreError for an unknown run. */
  record(e: EpochInput): EpochRow {
    const w = 'epochs.record';
    const row = {
      runId: checkInt(e.runId, `${w}: runId`, 1),
      epoch: checkInt(e.epoch, `${w}: epoch`),
      trainLoss: nanToNull(checkNumber(e.trainLoss, `${w}: trainLoss`)),
      valLoss: nanToNull(checkNumber(e.valLoss, `${w}: valLoss`)),
      lr: nanToNull(checkNumber(e.lr, `${w}: lr`)),
      seconds: nanToNull(checkNumber(e.seconds, `${w}: seconds`)),
      createdAt: checkTime(e.createdAt ?? Date.now(), `${w}: createdAt`),
    };
    this.db.transaction(() => {
      if (!this.runExists.get(row.runId)) throw new StoreError(`${w}: no run ${row.runId}`);
      this.upsert.run(row);
    })();
    return {
      runId: row.runId,
      epoch: row.epoch,
      trainLoss: e.trainLoss,
      valLoss: e.valLoss,
      lr: e.lr,
      seconds: e.seconds,
      createdAt: row.createdAt,
    };
  }

  /**
   * Forget epochs ≥ `fromEpoch` (a run resumed from an older checkpoint will train them again).
   * Returns how many were removed.
   */
  deleteFrom(runId: number, fromEpoch: number): number {
    const from = checkInt(fromEpoch, 'epochs.deleteFrom: fromEpoch');
    return this.db.prepare('DELETE FROM epoch_metrics WHERE run_id = ? AND epoch >= ?').run(runId, from)
      .changes;
  }

  /** The run's epochs in order; [] for a run without epochs or an unknown run. */
  forRun(runId: number): EpochRow[] {
    return this.byRun.all(runId).map((r) => ({
      runId: r.run_id,
      epoch: r.epoch,
      trainLoss: nullToNaN(r.train_loss),
      valLoss: nullToNaN(r.val_loss),
      lr: nullToNaN(r.lr),
      seconds: nullToNaN(r.seconds),
      createdAt: r.created_at,
    }));
  }
}
