/**
 * The work-thread pool: a task runs in a thread and gives the same result as in this thread; errors
 * keep their kind across the thread boundary; import progress arrives as events; a queued task that
 * is cancelled never runs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiFailure } from '../../src-main/contract/api.js';
import { readNifti, writeNifti } from '../../src-main/data/nifti.js';
import { openDatabase } from '../../src-main/store/db.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import { createWorkerPool } from '../../src-main/workers/pool.js';
import type { ImportProgressEvent } from '../../src-main/workers/protocol.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test(
  'work threads: convert, errors, import progress, cancel of a queued task',
  { timeout: 180_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-pool-'));
    dirs.push(dir);
    // a 3×4×5 volume with distinct values: the thread's NIfTI must hold exactly these
    const data = Float32Array.from({ length: 60 }, (_, i) => i * 1.5 - 7);
    writeNifti(join(dir, 'in.nii'), { data, slices: 3, h: 4, w: 5, spacing: [1, 2, 3] });
    const pool = createWorkerPool(1);
    try {
      const s = await pool.run('convert', { input: join(dir, 'in.nii'), out: join(dir, 'out.nii.gz') });
      assert.deepEqual([s.slices, s.h, s.w], [3, 4, 5]);
      const back = readNifti(join(dir, 'out.nii.gz'));
      assert.deepEqual(Array.from(back.data), Array.from(data));
      assert.deepEqual(back.spacing, [1, 2, 3]);

      // the contract's refusal stays an ApiFailure with its code
      await assert.rejects(
        pool.run('convert', { input: join(dir, 'missing.nii'), out: join(dir, 'x.nii') }),
        (e: unknown) => e instanceof ApiFailure && e.code === 'not-found' && /no such file/.test(e.message),
      );

      // import: one progress event per file, the series in the library the main thread reads
      const vol = { data: new Float32Array(4 * 8 * 8).map((_, i) => i % 50), slices: 4, h: 8, w: 8 };
      const series = writeDicomSeries(vol, join(dir, 'dicom'), {});
      const dbPath = join(dir, 'kdmri.db');
      openDatabase(dbPath).close();
      const events: ImportProgressEvent[] = [];
      const files = await pool.run(
        'import',
        { dbPath, paths: [join(dir, 'dicom')] },
        { onProgress: (p) => events.push(p) },
      );
      assert.equal(files.filter((f) => f.status === 'imported').length, 4);
      assert.deepEqual(
        events.map((e) => [e.done, e.total]),
        [
          [1, 4],
          [2, 4],
          [3, 4],
          [4, 4],
        ],
      );
      const db = openDatabase(dbPath);
      try {
        assert.deepEqual(
          db.sqlite.prepare('SELECT COUNT(*) AS n FROM series WHERE series_uid = ?').get(series.seriesUid),
          { n: 1 },
        );
      } finally {
        db.close();
      }

      // one thread: the second task waits in the queue, and leaves it when cancelled
      const abort = new AbortController();
      const first = pool.run('convert', { input: join(dir, 'in.nii'), out: join(dir, 'a.nii') });
      const second = pool.run(
        'convert',
        { input: join(dir, 'in.nii'), out: join(dir, 'b.nii') },
        { signal: abort.signal },
      );
      abort.abort();
      await assert.rejects(second, (e: unknown) => e instanceof ApiFailure && /cancelled/.test(e.message));
      assert.equal((await first).slices, 3);
    } finally {
      await pool.close();
    }
  },
);
