/**
 * The de-identification key map (migration 004): original identifier ↔ pseudonym, one row per
 * (kind, original). Private to the library: nothing here is ever written into an export.
 */
import type Database from 'better-sqlite3';
import { checkOneOf, checkString, StoreError } from '../util.js';

export const PSEUDONYM_KINDS = ['patient', 'uid', 'source'] as const;
export type PseudonymKind = (typeof PSEUDONYM_KINDS)[number];

export interface PseudonymRow {
  kind: PseudonymKind;
  original: string;
  pseudonym: string;
  /** Epoch ms. */
  createdAt: number;
}

interface PseudonymSql {
  kind: PseudonymKind;
  original: string;
  pseudonym: string;
  created_at: number;
}

const toRow = (r: PseudonymSql): PseudonymRow => ({
  kind: r.kind,
  original: r.original,
  pseudonym: r.pseudonym,
  createdAt: r.created_at,
});

export class PseudonymRepo {
  constructor(private readonly db: Database.Database) {}

  /** The pseudonym of `original`, or null when it was never de-identified. */
  get(kind: PseudonymKind, original: string): string | null {
    const r = this.db
      .prepare(`SELECT pseudonym FROM pseudonyms WHERE kind = ? AND original = ?`)
      .get(kind, original) as { pseudonym: string } | undefined;
    return r ? r.pseudonym : null;
  }

  /**
   * The pseudonym of `original`, made by `make` (and stored) the first time. `make` is retried when
   * its value is already some other identifier's pseudonym (random values: a collision is rare).
   */
  obtain(kind: PseudonymKind, original: string, make: () => string): string {
    checkOneOf(kind, PSEUDONYM_KINDS, 'pseudonym kind');
    checkString(original, 'original identifier');
    return this.db.transaction(() => {
      const found = this.get(kind, original);
      if (found !== null) return found;
      const insert = this.db.prepare(
        `INSERT INTO pseudonyms (kind, original, pseudonym, created_at) VALUES (?, ?, ?, ?)`,
      );
      for (let attempt = 0; attempt < 8; attempt++) {
        const p = make();
        checkString(p, 'pseudonym');
        const taken = this.db.prepare(`SELECT 1 FROM pseudonyms WHERE pseudonym = ?`).get(p);
        if (taken) continue;
        insert.run(kind, original, p, Date.now());
        return p;
      }
      throw new StoreError(`could not find a free pseudonym for a ${kind} after 8 attempts`);
    })();
  }

  /** Re-identification: the original behind a pseudonym, or null. */
  reveal(pseudonym: string): PseudonymRow | null {
    const r = this.db.prepare(`SELECT * FROM pseudonyms WHERE pseudonym = ?`).get(pseudonym) as
      PseudonymSql | undefined;
    return r ? toRow(r) : null;
  }

  /** Every entry of a kind (or all), oldest first. */
  list(kind?: PseudonymKind): PseudonymRow[] {
    const rows = (
      kind
        ? this.db.prepare(`SELECT * FROM pseudonyms WHERE kind = ? ORDER BY id`).all(kind)
        : this.db.prepare(`SELECT * FROM pseudonyms ORDER BY id`).all()
    ) as PseudonymSql[];
    return rows.map(toRow);
  }
}
