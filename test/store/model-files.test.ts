import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase, StoreError } from '../../src-main/store/db.js';
import {
  readModelFile,
  removeModelDir,
  saveModelAtomically,
  sweepModelRoot,
  writeFileAtomic,
  writeFolderAtomic,
  writeModelDir,
  type ModelFiles,
} from '../../src-main/store/model-files.js';
import { CONFIG, memoryDb, modelRow, seeded, tempDir } from './helpers.js';

const FIXTURE = new URL('./fixtures/crash-writer.ts', import.meta.url).pathname;

/** Files whose entry `failAt` throws when read: the producer fails after the earlier files were written. */
function failingFiles(failAt: string): ModelFiles {
  const files: ModelFiles = { 'model.json': '{"format":"layers-model"}' };
  Object.defineProperty(files, failAt, {
    enumerable: true,
    get() {
      throw new Error('producer crashed');
    },
  });
  files['after.bin'] = new Uint8Array([9]);
  return files;
}

test('writeModelDir writes every file and returns the absolute folder; nothing temporary is left', () => {
  const root = tempDir();
  const dir = writeModelDir(root, 'teacher-1', {
    'model.json': '{"a":1}',
    'weights.bin': new Uint8Array([1, 2, 3]),
  });
  assert.equal(dir, join(root, 'teacher-1'));
  assert.equal(readModelFile(dir, 'model.json').toString('utf8'), '{"a":1}');
  assert.deepEqual([...readModelFile(dir, 'weights.bin')], [1, 2, 3]);
  assert.deepEqual(readdirSync(root), ['teacher-1']);
});

test('writeModelDir replaces an existing folder as a whole (no stale files survive)', () => {
  const root = tempDir();
  writeModelDir(root, 'm', { 'model.json': 'old', 'stale.bin': new Uint8Array([1]) });
  const dir = writeModelDir(root, 'm', { 'model.json': 'new' });
  assert.deepEqual(readdirSync(dir), ['model.json']);
  assert.equal(readModelFile(dir, 'model.json').toString(), 'new');
  assert.deepEqual(readdirSync(root), ['m']);
});

test('a producer failing between two files leaves no final folder and no temporary folder', () => {
  const root = tempDir();
  assert.throws(() => writeModelDir(root, 'half', failingFiles('weights.bin')), /producer crashed/);
  assert.deepEqual(readdirSync(root), []);
  // ... and when replacing, the old folder is intact
  writeModelDir(root, 'keep', { 'model.json': 'v1' });
  assert.throws(() => writeModelDir(root, 'keep', failingFiles('weights.bin')), /producer crashed/);
  assert.deepEqual(readdirSync(root), ['keep']);
  assert.equal(readModelFile(join(root, 'keep'), 'model.json').toString(), 'v1');
});

test('bad names and file contents are refused before anything is written', () => {
  const root = tempDir();
  for (const name of ['', '.hidden', '../escape', 'a/b', 'x'.repeat(201)]) {
    assert.throws(
      () => writeModelDir(root, name, { 'model.json': '{}' }),
      /writeModelDir: name: invalid name/,
    );
  }
  assert.throws(
    () => writeModelDir(root, 'ok', { '../evil': 'x' }),
    /writeModelDir: file: invalid name "\.\.\/evil"/,
  );
  assert.throws(
    () => writeModelDir(root, 'ok', { 'n.bin': 42 as never }),
    /file n\.bin must be a string or Uint8Array/,
  );
  assert.deepEqual(readdirSync(root), []);
});

test('readModelFile names the missing path; removeModelDir is idempotent and guarded', () => {
  const root = tempDir();
  const dir = writeModelDir(root, 'm', { 'model.json': '{}' });
  assert.throws(
    () => readModelFile(dir, 'weights.bin'),
    (e: Error) => e instanceof StoreError && e.message.includes(join(dir, 'weights.bin')),
  );
  removeModelDir(dir);
  assert.equal(existsSync(dir), false);
  removeModelDir(dir);
  assert.throws(() => removeModelDir('relative/dir'), /absolute folder/);
  assert.throws(() => removeModelDir('/'), /refusing/);
  assert.throws(() => removeModelDir(homedir()), /refusing/);
});

test('writeFileAtomic replaces a file whole and leaves no temporary file', () => {
  const root = tempDir();
  const file = join(root, 'sub', 'card.json');
  writeFileAtomic(file, 'first');
  writeFileAtomic(file, new Uint8Array([104, 105]));
  assert.equal(readFileSync(file, 'utf8'), 'hi');
  assert.deepEqual(readdirSync(join(root, 'sub')), ['card.json']);
  assert.throws(() => writeFileAtomic(file, 5 as never), /must be a string, Uint8Array or iterable/);
  assert.equal(readFileSync(file, 'utf8'), 'hi');
});

test('writeFileAtomic writes pieces in order; a piece source failing part-way leaves the old file', () => {
  const root = tempDir();
  const file = join(root, 'v.bin');
  writeFileAtomic(file, [Uint8Array.of(1, 2), Uint8Array.of(), Uint8Array.of(3)]);
  assert.deepEqual([...readFileSync(file)], [1, 2, 3]);
  function* broken() {
    yield Uint8Array.of(9, 9);
    throw new Error('truncated input');
  }
  assert.throws(() => writeFileAtomic(file, broken()), /truncated input/);
  assert.deepEqual([...readFileSync(file)], [1, 2, 3]);
  assert.deepEqual(readdirSync(root), ['v.bin']);
});

test('writeFolderAtomic: all files or none; an existing folder keeps its other files', () => {
  const root = tempDir();
  const dir = join(root, 'series');
  const one = (n: number): [string, Uint8Array] => [`IM${n}.dcm`, Uint8Array.of(n)];
  function* failAfter(k: number) {
    for (let n = 1; n <= 3; n++) {
      if (n > k) throw new Error(`slice ${n} unreadable`);
      yield one(n);
    }
  }
  assert.throws(() => writeFolderAtomic(dir, failAfter(2)), /slice 3 unreadable/);
  assert.deepEqual(readdirSync(root), [], 'no folder, no temporary left');
  const paths = writeFolderAtomic(dir, failAfter(3));
  assert.deepEqual(
    paths,
    [1, 2, 3].map((n) => join(dir, `IM${n}.dcm`)),
  );
  assert.deepEqual([...readFileSync(paths[2])], [3]);
  // a folder the user chose, with a file of theirs: replaced files and theirs, nothing half-written
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  assert.throws(() => writeFolderAtomic(dir, failAfter(1)), /slice 2/);
  assert.deepEqual(readdirSync(dir).sort(), ['IM1.dcm', 'IM2.dcm', 'IM3.dcm', 'notes.txt']);
  writeFolderAtomic(dir, [[`IM1.dcm`, Uint8Array.of(7)]]);
  assert.deepEqual([...readFileSync(join(dir, 'IM1.dcm'))], [7]);
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
  assert.deepEqual(readdirSync(root), ['series']);
});

test('saveModelAtomically: folder + row; a failing insert removes the folder (no orphan files)', () => {
  const { db, jobId } = seeded();
  const root = tempDir();
  const run = db.runs.create({ jobId, kind: 'teacher', config: CONFIG, epochsPlanned: 1 });
  const m = saveModelAtomically(
    db,
    root,
    'job-teacher',
    { 'model.json': '{}', 'weights.bin': new Uint8Array(8) },
    modelRow('teacher', run.id),
  );
  assert.equal(m.dir, join(root, 'job-teacher'));
  assert.deepEqual(db.models.get(m.id)!.dir, m.dir);
  assert.deepEqual(readdirSync(m.dir).sort(), ['model.json', 'weights.bin']);

  // insert fails (unknown run): no folder, no row
  assert.throws(
    () => saveModelAtomically(db, root, 'orphan', { 'model.json': '{}' }, modelRow('kd', 4711)),
    /no run 4711/,
  );
  assert.equal(existsSync(join(root, 'orphan')), false);
  assert.deepEqual(readdirSync(root), ['job-teacher']);
  assert.equal(db.models.list().length, 1);

  // insert fails while replacing: the old folder comes back untouched
  assert.throws(
    () => saveModelAtomically(db, root, 'job-teacher', { 'model.json': 'NEW' }, { ...modelRow('kd', 4711) }),
    /no run 4711/,
  );
  assert.equal(readModelFile(m.dir, 'model.json').toString(), '{}');
  assert.deepEqual(readdirSync(m.dir).sort(), ['model.json', 'weights.bin']);
  assert.equal(db.models.get(m.id)!.deletedAt, null);

  // a producer crash mid-write: nothing at all
  assert.throws(
    () => saveModelAtomically(db, root, 'crash', failingFiles('weights.bin'), modelRow('teacher', run.id)),
    /producer crashed/,
  );
  assert.deepEqual(readdirSync(root), ['job-teacher']);
  assert.equal(db.models.list().length, 1);
});

test('saveModelAtomically over a live model folder supersedes (soft-deletes) the old model', () => {
  const db = memoryDb();
  const root = tempDir();
  const first = saveModelAtomically(db, root, 'm', { 'model.json': 'v1' }, modelRow('teacher', null));
  const second = saveModelAtomically(db, root, 'm', { 'model.json': 'v2' }, modelRow('teacher', null));
  assert.equal(second.dir, first.dir);
  assert.notEqual(db.models.get(first.id)!.deletedAt, null);
  assert.deepEqual(
    db.models.list().map((x) => x.id),
    [second.id],
  );
  assert.equal(readModelFile(second.dir, 'model.json').toString(), 'v2');
});

test('a process killed mid-write leaves no final folder and no row; sweepModelRoot cleans up', () => {
  const dir = tempDir();
  const dbFile = join(dir, 'kdmri.db');
  const root = join(dir, 'models');
  openDatabase(dbFile).close();
  const res = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, 'model', dbFile, root, 'killed'], {
    encoding: 'utf8',
  });
  assert.equal(res.signal, 'SIGKILL', `child should die by SIGKILL: ${res.stderr}`);
  assert.equal(existsSync(join(root, 'killed')), false);
  const leftovers = readdirSync(root);
  assert.equal(leftovers.length, 1);
  assert.match(leftovers[0], new RegExp(`^\\.tmp-${res.pid}-`));
  assert.deepEqual(readdirSync(join(root, leftovers[0])), ['model.json'], 'the crash came between two files');
  const db = openDatabase(dbFile);
  try {
    assert.equal(db.models.list({ includeDeleted: true }).length, 0);
  } finally {
    db.close();
  }
  assert.deepEqual(sweepModelRoot(root), [join(root, leftovers[0])]);
  assert.deepEqual(readdirSync(root), []);
});

test('sweepModelRoot restores a folder moved aside by a writer that died between the renames', () => {
  const root = tempDir();
  const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
  const aside = join(root, `.old-${deadPid}-abcdef.teacher`);
  mkdirSync(aside);
  writeFileSync(join(aside, 'model.json'), 'old');
  const mine = join(root, `.tmp-${process.pid}-123456`); // a live writer's: left alone
  mkdirSync(mine);
  assert.deepEqual(sweepModelRoot(root), [aside]);
  assert.equal(readFileSync(join(root, 'teacher', 'model.json'), 'utf8'), 'old');
  assert.ok(existsSync(mine));
  assert.deepEqual(sweepModelRoot(join(root, 'does-not-exist')), []);
});
