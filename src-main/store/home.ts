/**
 * The library home: ONE folder per user holding the database (kdmri.db), model folders (models/),
 * exports (exports/) and DICOM files retrieved from a PACS (dicom/). The desktop app, the CLI and web
 * mode all use it: `$KDMRI_HOME` when set (and non-empty), else `~/.kdmri`.
 *
 * The library holds patient data, so it is private to its user: folders the store creates are 0700,
 * the database (and SQLite's -wal / -shm files, which take the database's mode) 0600.
 */
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, sep } from 'node:path';

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

/** What a library folder holds (besides SQLite's -wal / -shm next to the database). */
const LIBRARY_ENTRIES = [
  DB_FILE,
  `${DB_FILE}-wal`,
  `${DB_FILE}-shm`,
  'models',
  'exports',
  'dicom',
  // the PACS nodes' secrets (services/secrets.ts), plain and safeStorage-encrypted
  'pacs-secrets.json',
  'pacs-secrets.safe.json',
];

/** A note left in a library's old folder once it moved. */
export const MOVED_NOTE = 'KDMRI-LIBRARY-MOVED.txt';

/**
 * Move a whole library (database, models/, exports/, dicom/) from `from` to `to` once, and make the
 * paths the database holds (model folders, checkpoint folders, the DICOM copies) point into `to`.
 * Refuses when `to` already has a database (two libraries are never merged silently). Leaves a note
 * in `from` saying where the library went. Returns the note's text.
 *
 * Moves are renames (the same disk: instant, nothing copied); across disks, a copy then removal.
 * The database is checkpointed and closed first, so its -wal holds nothing.
 */
export function moveLibrary(
  from: string,
  to: string,
  open: (file: string) => {
    sqlite: { pragma(s: string): unknown; prepare(s: string): { run(...a: unknown[]): unknown } };
    close(): void;
  },
): string {
  const src = resolve(from);
  const dst = resolve(to);
  if (existsSync(join(dst, DB_FILE)))
    throw new Error(`${dst} already holds a library: not merging ${src} into it`);
  const old = open(join(src, DB_FILE));
  old.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  old.close();
  mkdirPrivate(dst);
  for (const entry of LIBRARY_ENTRIES) {
    const a = join(src, entry);
    if (!existsSync(a)) continue;
    const b = join(dst, entry);
    try {
      renameSync(a, b);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      cpSync(a, b, { recursive: true });
      rmSync(a, { recursive: true, force: true });
    }
  }
  const db = open(join(dst, DB_FILE));
  try {
    const prefix = src + sep;
    // every absolute path the store keeps, re-rooted (only those inside the old folder)
    for (const [table, column] of [
      ['models', 'dir'],
      ['runs', 'checkpoint_dir'],
      ['jobs', 'models_root'],
      ['instances', 'path'],
      ['series', 'source'],
      ['datasets', 'source'],
    ]) {
      db.sqlite
        .prepare(
          `UPDATE ${table} SET ${column} = ? || substr(${column}, ?) WHERE substr(${column}, 1, ?) = ?`,
        )
        .run(dst + sep, prefix.length + 1, prefix.length, prefix);
    }
  } finally {
    db.close();
  }
  const note =
    `The KD-MRI Workstation library that was here moved to ${dst} on ${new Date().toISOString()}: ` +
    `the desktop app, the kdmri command line and web mode now share it (set KDMRI_HOME to choose another folder).\n`;
  writeFileSync(join(src, MOVED_NOTE), note);
  return note.trim();
}
