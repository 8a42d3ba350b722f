/**
 * The schema's migrations, oldest first. `version` is what `PRAGMA user_version` holds once the
 * migration has been applied; versions are 1, 2, 3, … without gaps (openDatabase checks this).
 *
 * To add one: create `NNN_name.ts` exporting a `Migration`, import it here and append it to the array.
 * Never edit a migration that has shipped; add a new one instead.
 */
import type { Migration } from './types.js';
import { migration001Core } from './001_core.js';
import { migration002Library } from './002_library.js';
import { migration003Results } from './003_results.js';
import { migration004Pseudonyms } from './004_pseudonyms.js';
import { migration005Safety } from './005_safety.js';
import { migration006PacsNodes } from './006_pacs_nodes.js';
import { migration007Timings } from './007_timings.js';
import { migration008Sweeps } from './008_sweeps.js';

export type { Migration } from './types.js';

// One entry per line, so that adding a migration is a one-line change.
// prettier-ignore
export const MIGRATIONS: Migration[] = [
  migration001Core,
  migration002Library,
  migration003Results,
  migration004Pseudonyms,
  migration005Safety,
  migration006PacsNodes,
  migration007Timings,
  migration008Sweeps,
];
