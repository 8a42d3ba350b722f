/**
 * Where the workstation keeps its library when run from the command line or web mode: the store's
 * default ($KDMRI_HOME, else ~/.kdmri) holds kdmri.db, models/ and exports/. (Electron uses
 * app.getPath('userData') instead.)
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function dataHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.KDMRI_HOME ? resolve(env.KDMRI_HOME) : join(homedir(), '.kdmri');
}

/** Same file name as the store's defaultDbPath(). */
export const DB_FILE = 'kdmri.db';

export function defaultDbPathIn(dir: string): string {
  return join(dir, DB_FILE);
}
