/**
 * The lab's PACS nodes (migration 006): name, DICOMweb root and authentication kind. Credentials are
 * never stored here (see services/secrets.ts); a node's name is the key of its secret.
 */
import type Database from 'better-sqlite3';
import { checkOneOf, checkString, StoreError } from '../util.js';

import { PACS_AUTH, type PacsAuthKind } from '../../contract/api.js';

export type { PacsAuthKind };

export interface PacsNodeRow {
  id: number;
  name: string;
  url: string;
  authKind: PacsAuthKind;
  /** Basic authentication's user; null otherwise. */
  username: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface NewPacsNode {
  name: string;
  url: string;
  authKind: PacsAuthKind;
  username: string | null;
}

interface PacsNodeSql {
  id: number;
  name: string;
  url: string;
  auth_kind: PacsAuthKind;
  username: string | null;
  created_at: number;
  updated_at: number;
}

const toRow = (r: PacsNodeSql): PacsNodeRow => ({
  id: r.id,
  name: r.name,
  url: r.url,
  authKind: r.auth_kind,
  username: r.username,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class PacsNodeRepo {
  constructor(private readonly db: Database.Database) {}

  list(): PacsNodeRow[] {
    return (this.db.prepare(`SELECT * FROM pacs_nodes ORDER BY name`).all() as PacsNodeSql[]).map(toRow);
  }

  get(id: number): PacsNodeRow | null {
    const r = this.db.prepare(`SELECT * FROM pacs_nodes WHERE id = ?`).get(id) as PacsNodeSql | undefined;
    return r ? toRow(r) : null;
  }

  byName(name: string): PacsNodeRow | null {
    const r = this.db.prepare(`SELECT * FROM pacs_nodes WHERE name = ?`).get(name) as PacsNodeSql | undefined;
    return r ? toRow(r) : null;
  }

  /** Insert a node, or update the one with this id. Names are unique. */
  save(node: NewPacsNode, id?: number): PacsNodeRow {
    checkString(node.name, 'PACS node name');
    checkString(node.url, 'PACS node URL');
    checkOneOf(node.authKind, PACS_AUTH, 'PACS node authentication');
    const now = Date.now();
    const clash = this.byName(node.name);
    if (clash && clash.id !== id) throw new StoreError(`a PACS node named "${node.name}" exists already`);
    if (id === undefined) {
      const r = this.db
        .prepare(
          `INSERT INTO pacs_nodes (name, url, auth_kind, username, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(node.name, node.url, node.authKind, node.username, now, now);
      return this.get(Number(r.lastInsertRowid)) as PacsNodeRow;
    }
    const r = this.db
      .prepare(
        `UPDATE pacs_nodes SET name = ?, url = ?, auth_kind = ?, username = ?, updated_at = ? WHERE id = ?`,
      )
      .run(node.name, node.url, node.authKind, node.username, now, id);
    if (r.changes === 0) throw new StoreError(`no PACS node ${id}`);
    return this.get(id) as PacsNodeRow;
  }

  /** True when a node was removed. */
  remove(id: number): boolean {
    return this.db.prepare(`DELETE FROM pacs_nodes WHERE id = ?`).run(id).changes > 0;
  }
}
