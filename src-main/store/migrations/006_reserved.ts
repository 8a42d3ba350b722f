/**
 * 006 — reserved for another branch's migration (the lead numbers migrations across branches; the
 * timings table of this branch is 007). Changes nothing. At merge, the other branch's 006 replaces
 * this file.
 */
import type { Migration } from './types.js';

export const migration006Reserved: Migration = {
  version: 6,
  name: 'reserved',
  sql: /* sql */ `SELECT 1;`,
};
