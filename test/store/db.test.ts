import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { defaultDbPath, migrate, openDatabase, StoreError } from '../../src-main/store/db.js';
import { MIGRATIONS } from '../../src-main/store/migrations/index.js';
import { tempDir } from './helpers.js';

const CORE_TABLES = ['datasets', 'epoch_metrics', 'evaluations', 'jobs', 'models', 'runs'];

function tables(db: Database.Database): string[] {
  return (
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as {
      name: string;
    }[]
  ).map((r) => r.name);
}

test('migrations: numbered 1..n without gaps', () => {
  assert.ok(MIGRATIONS.length >= 1);
  MIGRATIONS.forEach((m, i) => assert.equal(m.version, i + 1, `migration ${m.name}`));
});

test('openDatabase creates the parent folder, migrates an empty file and sets the pragmas', () => {
  const file = join(tempDir(), 'nested', 'deeper', 'kdmri.db');
  const db = openDatabase(file);
  try {
    assert.ok(existsSync(file));
    assert.equal(db.file, file);
    assert.equal(db.schemaVersion, MIGRATIONS.length);
    for (const t of CORE_TABLES) assert.ok(tables(db.sqlite).includes(t), `table ${t}`);
    assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.sqlite.pragma('busy_timeout', { simple: true }), 5000);
  } finally {
    db.close();
  }
  assert.equal(db.open, false);
  db.close(); // idempotent
});

test('re-opening is idempotent and keeps the data', () => {
  const file = join(tempDir(), 'kdmri.db');
  const a = openDatabase(file);
  a.datasets.create({ name: 'd', source: 'sample', task: 'recon', h: 4, w: 4, trainSlices: 1, valSlices: 1 });
  a.close();
  const b = openDatabase(file);
  try {
    assert.equal(b.schemaVersion, MIGRATIONS.length);
    assert.equal(b.datasets.list().length, 1);
  } finally {
    b.close();
  }
  // running the migrations again on a migrated connection does nothing
  const raw = new Database(file);
  migrate(raw, file);
  assert.equal(raw.pragma('user_version', { simple: true }), MIGRATIONS.length);
  raw.close();
});

test(':memory: databases work', () => {
  const db = openDatabase(':memory:');
  assert.equal(db.schemaVersion, MIGRATIONS.length);
  assert.equal(db.file, ':memory:');
  db.close();
});

test('a database from a newer version is refused with a clear error, and left untouched', () => {
  const file = join(tempDir(), 'future.db');
  const raw = new Database(file);
  raw.pragma(`user_version = ${MIGRATIONS.length + 7}`);
  raw.close();
  assert.throws(
    () => openDatabase(file),
    (err: Error) =>
      err instanceof StoreError &&
      err.message.includes(file) &&
      err.message.includes(`schema version ${MIGRATIONS.length + 7}`) &&
      /newer/.test(err.message),
  );
  const check = new Database(file);
  assert.equal(check.pragma('user_version', { simple: true }), MIGRATIONS.length + 7);
  assert.deepEqual(tables(check), []);
  check.close();
});

test('a file that is not a database is refused naming the file', () => {
  const file = join(tempDir(), 'not.db');
  writeFileSync(file, 'this is not sqlite, just some text long enough to have a header'.repeat(20));
  assert.throws(
    () => openDatabase(file),
    (err: Error) => err instanceof StoreError && err.message.includes(file),
  );
});

test('an empty path is refused', () => {
  assert.throws(() => openDatabase(''), StoreError);
});

test('a failing migration rolls back completely (no half-applied schema, version unchanged)', () => {
  const raw = new Database(':memory:');
  const broken = [
    ...MIGRATIONS,
    { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE half (x); CREATE TABLE oops (' },
  ];
  assert.throws(() => migrate(raw, 'mem', broken), /migration \d+ \(broken\) failed/);
  assert.equal(raw.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.ok(!tables(raw).includes('half'));
  raw.close();
});

test('misnumbered migrations are refused before touching the database', () => {
  const raw = new Database(':memory:');
  const bad = [MIGRATIONS[0], { version: 3, name: 'skips', sql: 'SELECT 1' }];
  assert.throws(() => migrate(raw, 'mem', bad), /misnumbered: entry 1 \('skips'\) has version 3, expected 2/);
  assert.equal(raw.pragma('user_version', { simple: true }), 0);
  raw.close();
});

test('defaultDbPath honours KDMRI_HOME, else ~/.kdmri', () => {
  const saved = process.env.KDMRI_HOME;
  try {
    process.env.KDMRI_HOME = '/srv/kdmri-home';
    assert.equal(defaultDbPath(), '/srv/kdmri-home/kdmri.db');
    delete process.env.KDMRI_HOME;
    assert.equal(defaultDbPath(), join(homedir(), '.kdmri', 'kdmri.db'));
    process.env.KDMRI_HOME = '';
    assert.equal(defaultDbPath(), join(homedir(), '.kdmri', 'kdmri.db'));
  } finally {
    if (saved === undefined) delete process.env.KDMRI_HOME;
    else process.env.KDMRI_HOME = saved;
  }
});

test('Db.transaction rolls back on error', () => {
  const db = openDatabase(':memory:');
  assert.throws(() =>
    db.transaction(() => {
      db.datasets.create({
        name: 'd',
        source: 'sample',
        task: 'sr',
        h: 4,
        w: 4,
        trainSlices: 1,
        valSlices: 1,
      });
      throw new Error('boom');
    }),
  );
  assert.equal(db.datasets.list().length, 0);
  db.close();
});

test('a refused newer database keeps its journal mode', () => {
  const file = join(tempDir(), 'future-journal.db');
  const raw = new Database(file);
  raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  raw.close();
  assert.throws(() => openDatabase(file), StoreError);
  const check = new Database(file);
  assert.equal(check.pragma('journal_mode', { simple: true }), 'delete');
  check.close();
});

test('opening an up-to-date database does not wait for another connection writing', () => {
  const file = join(tempDir(), 'busy.db');
  openDatabase(file).close();
  const writer = new Database(file);
  writer.prepare('BEGIN IMMEDIATE').run();
  writer
    .prepare(
      `INSERT INTO datasets (name, source, task, h, w, train_slices, val_slices, created_at) VALUES ('w', 'sample', 'recon', 1, 1, 0, 0, 0)`,
    )
    .run();
  try {
    const t0 = Date.now();
    const reader = openDatabase(file);
    assert.ok(Date.now() - t0 < 1000, 'opened without waiting for the busy timeout');
    assert.equal(reader.datasets.list().length, 0, 'WAL: readers see the last committed state');
    reader.close();
  } finally {
    writer.prepare('COMMIT').run();
    writer.close();
  }
  const after = openDatabase(file);
  assert.equal(after.datasets.list().length, 1);
  after.close();
});
