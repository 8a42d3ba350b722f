/**
 * 006 — the lab's PACS nodes (DICOMweb): a name, the DICOMweb root URL, how to authenticate, and the
 * user name for basic authentication. The password or token is NOT here: it lives in the secret store
 * (Electron's safeStorage on the desktop; the environment or an owner-only file in web mode and the
 * CLI), keyed by the node's name, so the database never holds a credential.
 */
import type { Migration } from './types.js';

export const migration006PacsNodes: Migration = {
  version: 6,
  name: 'pacs-nodes',
  sql: /* sql */ `
CREATE TABLE pacs_nodes (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT    NOT NULL UNIQUE,
  url         TEXT    NOT NULL,
  auth_kind   TEXT    NOT NULL CHECK (auth_kind IN ('none', 'basic', 'bearer')),
  -- basic authentication's user name (not a secret); NULL for 'none' and 'bearer'
  username    TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
`,
};
