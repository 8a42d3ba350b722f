/**
 * The library home: ONE folder per user holding the database (kdmri.db), model folders (models/),
 * exports (exports/) and DICOM files retrieved from a PACS (dicom/). The desktop app, the CLI and web
 * mode all use it: `$KDMRI_HOME` when set (and non-empty), else `~/.kdmri`.
 *
 * The library holds patient data, so it is private to its user: folders the store creates are 0700,
 * the database (and SQLite's -wal / -shm files, which take the database's mode) 0600.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const DB_FILE = 'kdmri.db';

/** `$KDMRI_HOME` when set and non-empty, else `~/.kdmri`. */
export function libraryHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.KDMRI_HOME ? resolve(env.KDMRI_HOME) : join(homedir(), '.kdmri');
}

/** Owner-only modes (POSIX; Windows has no such bits, where the user profile is private already). */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
const posix = process.platform !== 'win32';

/** Create `dir` (and missing parents) owner-only. An existing folder is left as it is. */
export function mkdirPrivate(dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask; the folder we made must be 0700 whatever the umask
  if (posix) chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Make an existing folder of ours owner-only (the library home on every start: old libraries were 0755). */
export function makePrivate(path: string, mode: number): void {
  if (!posix || !existsSync(path)) return;
  const st = statSync(path);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return; // not ours to change
  if ((st.mode & 0o777) !== mode) chmodSync(path, mode);
}

/**
 * Create the database file owner-only before SQLite opens it (SQLite gives its -wal and -shm files the
 * database's mode), and make an existing one owner-only.
 */
export function preparePrivateFile(file: string): void {
  if (!existsSync(file)) closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  makePrivate(file, PRIVATE_FILE_MODE);
}
