/**
 * Crash-safe writes of model folders and single files.
 *
 * A model folder is written as `<root>/.tmp-<pid>-<random>/`, every file fsynced, then renamed to
 * `<root>/<name>/`; an existing folder of that name is first renamed aside to
 * `<root>/.old-<pid>-<random>.<name>/` and removed once the new one is in place. So `<root>/<name>/` is
 * either the complete old folder or the complete new one, never a mixture. A crash can leave a
 * `.tmp-*` or `.old-*` folder behind: sweepModelRoot cleans those up (restoring an `.old-*` folder
 * whose replacement never arrived).
 *
 * The caller's pattern for a model: write the folder first, then insert its row in a transaction; if
 * the insert fails, put things back. saveModelAtomically does exactly that.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  mkdirSync,
  statSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, parse, resolve } from 'node:path';
import type { Db } from './db.js';
import type { ModelRow, NewModel } from './repos/models.js';
import { StoreError } from './util.js';

/** Named files of a model folder (or of a checkpoint's weights): strings are written as UTF-8. */
export type ModelFiles = Record<string, Uint8Array | string>;

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** Folder and file names: letters, digits, '.', '_', '-', not starting with '.', at most 200 characters. */
export function checkName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !SAFE_NAME.test(name)) {
    throw new StoreError(
      `${where}: invalid name ${JSON.stringify(name)} (use letters, digits, '.', '_', '-'; no leading '.'; ≤ 200 characters)`,
    );
  }
  return name;
}

const token = () => `${process.pid}-${randomBytes(6).toString('hex')}`;

function fsyncDir(dir: string): void {
  // Directory fsync makes the rename itself durable on POSIX; Windows cannot open directories.
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** errno codes of a write that failed for want of space (the disk, a quota, a file-size limit). */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/** Thrown when a file cannot be written because its disk is full: names the file and what to do. */
export class DiskFullError extends StoreError {
  override name = 'DiskFullError';
  constructor(readonly path: string) {
    super(`no space left on the disk holding ${path}: free some space, then resume`);
  }
}

/**
 * A failure as one line for the user: a full disk (ours, or SQLite's SQLITE_FULL on `dbPath`) says so
 * and what to do; anything else is its own message.
 */
export function describeWriteFailure(err: unknown, dbPath: string): string {
  if (err instanceof DiskFullError) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_FULL') return new DiskFullError(dbPath).message;
  if (typeof code === 'string' && NO_SPACE.has(code)) {
    const path = (err as { path?: string }).path;
    return new DiskFullError(path ?? 'the library').message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * What a single-file write takes: the whole content, or its pieces in order (a generator), so that a
 * large output (a NIfTI volume written slice by slice) never exists whole in memory. A generator that
 * throws part-way aborts the write like any other failure: the temporary file is removed.
 */
export type FileContent = Uint8Array | string | Iterable<Uint8Array>;

/** Write and fsync one file (created or truncated); a full disk is a DiskFullError naming the file. */
function writeDurable(path: string, data: FileContent, mode?: number): void {
  const pieces: Iterable<Uint8Array> =
    typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  try {
    // a private file (a secret) is created with its mode, so it is never readable by others, not even briefly
    const fd = openSync(path, 'w', mode);
    try {
      for (const bytes of pieces) {
        let off = 0;
        while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && NO_SPACE.has(code)) throw new DiskFullError(path);
    throw err;
  }
}

/**
 * Replace (or create) the file at `path` atomically: write `<path>.tmp-<pid>-<random>` in the same
 * folder, fsync, rename over `path`. Readers see the old content or the new, never a torn file.
 */
export function writeFileAtomic(path: string, data: FileContent, opts: { mode?: number } = {}): void {
  if (
    typeof data !== 'string' &&
    !(data instanceof Uint8Array) &&
    typeof (data as Partial<Iterable<Uint8Array>> | null)?.[Symbol.iterator] !== 'function'
  ) {
    throw new StoreError(
      `writeFileAtomic(${path}): data must be a string, Uint8Array or iterable of Uint8Array`,
    );
  }
  const final = resolve(path);
  mkdirSync(dirname(final), { recursive: true });
  const tmp = tempSibling(final);
  try {
    writeDurable(tmp, data, opts.mode);
    renameSync(tmp, final);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(final));
}

/**
 * Write a folder of files (a DICOM series, PNG slices) so that a failure part-way never leaves some of
 * them: the files go into a temporary sibling `<dir>.tmp-<pid>-<hex>/` (removed on error, and by
 * sweepTempFiles if this process dies), which takes the name `dir` once all are written. A `dir` that
 * exists already and is not empty (a folder the user chose) keeps its other files: the new ones are
 * renamed into it after all were written. `files` yields [name, content] in order, one at a time, so
 * only one file need be in memory. Returns the final paths, in order.
 */
export function writeFolderAtomic(dir: string, files: Iterable<[string, FileContent]>): string[] {
  const final = resolve(dir);
  mkdirSync(dirname(final), { recursive: true });
  const tmp = tempSibling(final);
  const names: string[] = [];
  try {
    mkdirSync(tmp);
    for (const [name, data] of files) {
      checkName(name, `${final}: file`);
      writeDurable(join(tmp, name), data);
      names.push(name);
    }
    fsyncDir(tmp);
    if (existsSync(final) && readdirSync(final).length > 0) {
      for (const name of names) renameSync(join(tmp, name), join(final, name));
      rmSync(tmp, { recursive: true, force: true });
      fsyncDir(final);
    } else {
      if (existsSync(final)) rmSync(final, { recursive: true });
      renameSync(tmp, final);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  fsyncDir(dirname(final));
  return names.map((n) => join(final, n));
}

/** Write every file of `files` into the (existing, empty) folder `dir`, fsyncing each and the folder. */
export function writeFilesInto(dir: string, files: ModelFiles, where: string): void {
  // Keys are read one at a time, so a producer that fails midway fails between two files.
  for (const file of Object.keys(files)) {
    checkName(file, `${where}: file`);
    const data = files[file];
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new StoreError(`${where}: file ${file} must be a string or Uint8Array`);
    }
    writeDurable(join(dir, file), data);
  }
  fsyncDir(dir);
}

/** A model folder written to its temporary place, ready to be put in place. */
export interface Staged {
  final: string;
  /** Move the new folder in (the old one, if any, aside). */
  install(): void;
  /** After install: drop the old folder. */
  finish(): void;
  /** Undo everything done so far: the final name holds the old folder again (or nothing). */
  rollback(): void;
}

function stageModelDir(root: string, name: string, files: ModelFiles, where: string): Staged {
  checkName(name, `${where}: name`);
  if (typeof files !== 'object' || files === null) throw new StoreError(`${where}: files must be an object`);
  const absRoot = resolve(root);
  mkdirSync(absRoot, { recursive: true });
  const final = join(absRoot, name);
  const tmp = join(absRoot, `.tmp-${token()}`);
  const old = join(absRoot, `.old-${token()}.${name}`);
  mkdirSync(tmp);
  try {
    writeFilesInto(tmp, files, where);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  let movedOld = false;
  let installed = false;
  return {
    final,
    install() {
      try {
        if (existsSync(final)) {
          if (!statSync(final).isDirectory())
            throw new StoreError(`${where}: ${final} exists and is not a folder`);
          renameSync(final, old);
          movedOld = true;
        }
        renameSync(tmp, final);
        installed = true;
        fsyncDir(absRoot);
      } catch (err) {
        this.rollback();
        throw err;
      }
    },
    finish() {
      if (movedOld) rmSync(old, { recursive: true, force: true });
      movedOld = false;
    },
    rollback() {
      if (installed) rmSync(final, { recursive: true, force: true });
      else rmSync(tmp, { recursive: true, force: true });
      installed = false;
      if (movedOld) renameSync(old, final);
      movedOld = false;
      fsyncDir(absRoot);
    },
  };
}

/**
 * Stage a copy of the model folder `src` as `<root>/<name>/` (a flat folder of files, as models are
 * written), for an import that installs it and then inserts the rows (rolling back if they fail).
 */
export function stageModelCopy(root: string, name: string, src: string): Staged {
  const files: ModelFiles = {};
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    if (!entry.isFile()) throw new StoreError(`model folder ${src}: ${entry.name} is not a file`);
    files[entry.name] = readFileSync(join(src, entry.name));
  }
  return stageModelDir(root, name, files, `copy of ${src}`);
}

/**
 * Write `files` as the folder `<root>/<name>/` atomically (see the module comment), replacing any
 * folder of that name. Returns the folder's absolute path.
 */
export function writeModelDir(root: string, name: string, files: ModelFiles): string {
  const staged = stageModelDir(root, name, files, 'writeModelDir');
  staged.install();
  staged.finish();
  return staged.final;
}

/** Read one file of a model folder; StoreError naming the path when it is missing. */
export function readModelFile(dir: string, file: string): Buffer {
  checkName(file, 'readModelFile: file');
  const path = join(dir, file);
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StoreError(`model file ${path} does not exist`);
    throw new StoreError(`cannot read model file ${path}: ${(err as Error).message}`);
  }
}

/**
 * Remove a model folder and everything in it; nothing happens when it does not exist. Refuses
 * relative paths, filesystem roots and the home folder, as a guard against a bad `dir` column.
 */
export function removeModelDir(dir: string): void {
  if (typeof dir !== 'string' || !isAbsolute(dir)) {
    throw new StoreError(`removeModelDir: expected an absolute folder, got ${JSON.stringify(dir)}`);
  }
  const abs = resolve(dir);
  if (abs === parse(abs).root || abs === resolve(homedir())) {
    throw new StoreError(`removeModelDir: refusing to remove ${abs}`);
  }
  rmSync(abs, { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Clean up after crashed writers in a models root: `.tmp-<pid>-*` folders of dead processes are
 * removed; `.old-<pid>-*.<name>` folders of dead processes are renamed back to `<name>` if that
 * name is free (the crash came between the two renames), else removed. Returns the paths handled.
 */
export function sweepModelRoot(root: string): string[] {
  const absRoot = resolve(root);
  if (!existsSync(absRoot)) return [];
  const handled: string[] = [];
  for (const entry of readdirSync(absRoot)) {
    const m = /^\.(tmp|old)-(\d+)-[0-9a-f]+(?:\.(.+))?$/.exec(entry);
    if (!m || pidAlive(Number(m[2]))) continue;
    const path = join(absRoot, entry);
    const target = m[1] === 'old' && m[3] ? join(absRoot, m[3]) : null;
    if (target && !existsSync(target)) renameSync(path, target);
    else rmSync(path, { recursive: true, force: true });
    handled.push(path);
  }
  return handled;
}

/**
 * Clean up after crashed writers of single files in `dir` (not recursive): `<name>.tmp-<pid>-<hex>`
 * files or folders (writeFileAtomic's, the exports' copies) of dead processes are removed. Returns the
 * paths removed.
 */
export function sweepTempFiles(dir: string): string[] {
  const abs = resolve(dir);
  if (!existsSync(abs)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(abs)) {
    const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!m || entry.startsWith('.tmp-') || pidAlive(Number(m[1]))) continue;
    const path = join(abs, entry);
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/** A temporary name next to `path` that sweepTempFiles recognises (removed if this process dies). */
export function tempSibling(path: string): string {
  return `${resolve(path)}.tmp-${token()}`;
}

/**
 * Save a model: write its folder atomically as `<root>/<name>/`, then insert its row (with `dir` set
 * to that folder) in a transaction. If the insert fails, the new folder is removed and any folder it
 * replaced is put back, then the error is rethrown: no folder without a row, no row without a folder.
 * A live model that owned the replaced folder is soft-deleted in the same transaction (its files are
 * gone), which is what re-running an interrupted step produces.
 */
export function saveModelAtomically(
  db: Db,
  root: string,
  name: string,
  files: ModelFiles,
  row: Omit<NewModel, 'dir'>,
): ModelRow {
  const staged = stageModelDir(root, name, files, 'saveModelAtomically');
  staged.install();
  let model: ModelRow;
  try {
    model = db.transaction(() => {
      const owner = db.models.liveOwnerOf(staged.final);
      if (owner !== null) db.models.softDelete(owner);
      return db.models.create({ ...row, dir: staged.final });
    });
  } catch (err) {
    staged.rollback();
    throw err;
  }
  staged.finish();
  return model;
}
