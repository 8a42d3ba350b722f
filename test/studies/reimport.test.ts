/**
 * The library only ever adds: re-importing a series whose original files moved keeps every slice it
 * had; a dataset built from a series keeps its slices when the series grows; an import commits in
 * batches (another writer gets the lock between them), and one cut short by a kill leaves nothing
 * half-added behind once the library is opened again.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src-main/store/db.js';
import {
  createDatasetFromSeries,
  importPaths,
  loadSeriesSource,
  loadSeriesVolume,
  seriesInstances,
} from '../../src-main/studies/index.js';
import { recoverImports, storeSeries } from '../../src-main/studies/library.js';
import { NO_PYDICOM, PYDICOM_DATA, syntheticSeries } from './helpers.js';

const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kdmri-reimport-'));
  dirs.push(d);
  return d;
};
/** A CT series of five slices, 2.5 mm apart (pydicom's dicomdirtests/98892001/CT5N). */
const CT5N = ['2062', '2392', '2693', '3023', '3353'];
const ct = (f: string) => join(PYDICOM_DATA as string, 'dicomdirtests', '98892001', 'CT5N', f);

test(
  're-import only adds: slices whose files moved stay, a dataset keeps its slices when the series grows',
  { skip },
  async () => {
    const home = tmp();
    const db = openDatabase(join(home, 'kdmri.db'));
    // the whole series, once, as the reference for pixels and order
    const ref = openDatabase(':memory:');
    const [all] = await importPaths(ref, CT5N.map(ct));
    const uid = all.seriesUid!;
    const whole = loadSeriesVolume(ref, uid);
    const order = seriesInstances(ref, uid).map((i) => i.sopUid);
    const n = whole.h * whole.w;
    const sliceOf = (v: { data: Float32Array }, i: number) => v.data.subarray(i * n, (i + 1) * n);

    // slices 0, 2 and 4 from a folder that then disappears (a USB stick, a temporary download)
    const first = join(home, 'first');
    mkdirSync(first);
    for (const f of [CT5N[0], CT5N[2], CT5N[4]]) copyFileSync(ct(f), join(first, f));
    const r1 = await importPaths(db, [first]);
    assert.deepEqual(
      r1.map((r) => r.status),
      ['imported', 'imported', 'imported'],
    );
    const ds = createDatasetFromSeries(db, uid);
    const before = loadSeriesSource(db, ds.source, ds.meta)![0];
    assert.equal(before.slices, 3);
    rmSync(first, { recursive: true });

    // the other two slices arrive later, from elsewhere; one of the first three comes again
    const second = join(home, 'second');
    mkdirSync(second);
    for (const f of [CT5N[1], CT5N[3], CT5N[4]]) copyFileSync(ct(f), join(second, f));
    const r2 = await importPaths(db, [second]);
    const status = Object.fromEntries(r2.map((r) => [r.path.slice(second.length + 1), r.status]));
    assert.deepEqual(status, { [CT5N[1]]: 'imported', [CT5N[3]]: 'imported', [CT5N[4]]: 'skipped' });

    // the series has all five slices, in geometric order, with the reference pixels
    const grown = loadSeriesVolume(db, uid);
    assert.equal(grown.slices, 5);
    assert.deepEqual(
      seriesInstances(db, uid).map((i) => i.sopUid),
      order,
    );
    for (let i = 0; i < 5; i++) assert.deepEqual(sliceOf(grown, i), sliceOf(whole, i), `slice ${i}`);

    // the dataset still has exactly its three slices, in their order
    const after = loadSeriesSource(db, ds.source, db.datasets.get(ds.id)!.meta)![0];
    assert.equal(after.slices, 3);
    assert.deepEqual(after.data, before.data);
    db.close();
    ref.close();
  },
);

test('an import commits in batches: another writer gets the lock between them (busy timeout 0)', () => {
  const home = tmp();
  const file = join(home, 'kdmri.db');
  const db = openDatabase(file);
  const other = new Database(file);
  other.pragma('busy_timeout = 0');
  other.exec('CREATE TABLE IF NOT EXISTS probe (t INTEGER)');
  let wrote = 0;
  // 40 slices of 16 KiB in batches of 64 KiB: 10 batches
  const stored = storeSeries(db, syntheticSeries('2.25.1', 40), {
    batchBytes: 64 << 10,
    between: () => {
      other.prepare('INSERT INTO probe VALUES (?)').run(Date.now()); // throws SQLITE_BUSY if the lock is held
      wrote++;
    },
  });
  assert.deepEqual(stored, { added: 40, created: true });
  assert.equal(wrote, 9, 'the lock was free between every two batches');
  assert.equal(loadSeriesVolume(db, '2.25.1').slices, 40);
  other.close();
  db.close();
});

test('an import killed between batches leaves nothing half-added once the library opens again', () => {
  const home = tmp();
  const file = join(home, 'kdmri.db');
  const db = openDatabase(file);
  storeSeries(db, syntheticSeries('2.25.2', 4)); // a series in the library
  db.close();
  // children add 20 slices to it, and make a new series, each killed after two batches
  for (const mode of ['grow', 'new']) {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', new URL('./fixtures/killed-import.ts', import.meta.url).pathname, file, mode],
      { encoding: 'utf8' },
    );
    assert.equal(child.signal, 'SIGKILL', child.stderr);
  }
  const raw = new Database(file);
  const pending = raw.prepare('SELECT COUNT(*) AS n FROM series_slices WHERE slice_index < 0').get() as {
    n: number;
  };
  assert.ok(pending.n > 0, 'the child died with slices not in place');
  raw.close();
  const again = openDatabase(file);
  assert.deepEqual(recoverImports(again).sort(), ['2.25.2', '2.25.3']);
  const grown = loadSeriesVolume(again, '2.25.2');
  assert.equal(grown.slices, 4, 'the stored series is as it was');
  assert.deepEqual([...new Set(grown.data)], [0, 1, 2, 3]);
  assert.throws(() => loadSeriesVolume(again, '2.25.3'), /no series 2\.25\.3/);
  assert.equal(
    (
      again.sqlite.prepare('SELECT COUNT(*) AS n FROM series_slices WHERE slice_index < 0').get() as {
        n: number;
      }
    ).n,
    0,
  );
  again.close();
});
