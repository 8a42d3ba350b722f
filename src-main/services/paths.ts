/**
 * Where the workstation keeps its library: ONE home shared by the desktop app, the CLI and web mode
 * (store/home.ts: $KDMRI_HOME, else ~/.kdmri), holding kdmri.db, models/, exports/ and dicom/.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { openDatabase } from '../store/db.js';
import { DB_FILE, libraryHome, moveLibrary } from '../store/home.js';

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

/**
 * The desktop app's library: the shared home, like the CLI's and web mode's (`KDMRI_DB` picks another
 * database). Earlier versions kept it in Electron's userData folder: such a library is moved to the
 * home once (`notice` says so), unless the home has a library already (then `notice` says the old
 * one stays where it is, unmerged).
 */
export function desktopLibrary(
  env: NodeJS.ProcessEnv,
  userData: string,
): { dataDir: string; dbPath: string; notice: string | null } {
  const paths = libraryPaths({ db: env.KDMRI_DB, env });
  const legacy = resolve(userData);
  if (env.KDMRI_DB || legacy === paths.dataDir || !existsSync(join(legacy, DB_FILE)))
    return { ...paths, notice: null };
  if (existsSync(paths.dbPath))
    return {
      ...paths,
      notice:
        `The library in ${paths.dataDir} is used; an older one stays in ${legacy}, not merged ` +
        `(open it with KDMRI_DB=${join(legacy, DB_FILE)}).`,
    };
  return { ...paths, notice: moveLibrary(legacy, paths.dataDir, openDatabase) };
}
