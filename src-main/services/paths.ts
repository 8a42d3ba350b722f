/**
 * Where the workstation keeps its library when run from the command line or web mode: $KDMRI_HOME,
 * else $XDG_DATA_HOME/kdmri, else ~/.local/share/kdmri. (Electron uses app.getPath('userData').)
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function dataHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KDMRI_HOME) return resolve(env.KDMRI_HOME);
  if (env.XDG_DATA_HOME) return join(resolve(env.XDG_DATA_HOME), 'kdmri');
  return join(homedir(), '.local', 'share', 'kdmri');
}

export const DB_FILE = 'kdmri.sqlite';

export function defaultDbPathIn(dir: string): string {
  return join(dir, DB_FILE);
}
