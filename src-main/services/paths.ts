/**
 * Where the workstation keeps its library: ONE home shared by the desktop app, the CLI and web mode
 * (store/home.ts: $KDMRI_HOME, else ~/.kdmri), holding kdmri.db, models/, exports/ and dicom/.
 */
import { dirname, join, resolve } from 'node:path';
import { DB_FILE, libraryHome } from '../store/home.js';

export { DB_FILE, libraryHome } from '../store/home.js';

/** The library's folder and database; `db` picks another database, whose folder then holds the rest. */
export function libraryPaths(o: { db?: string; env?: NodeJS.ProcessEnv } = {}): {
  dataDir: string;
  dbPath: string;
} {
  if (o.db) {
    const dbPath = resolve(o.db);
    return { dataDir: dirname(dbPath), dbPath };
  }
  const dataDir = libraryHome(o.env);
  return { dataDir, dbPath: join(dataDir, DB_FILE) };
}
