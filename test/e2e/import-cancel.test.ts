// End to end in Chromium, web mode in-process: a large import (400 generated DICOM slices in two
// series, typed as server paths) is cancelled from the Studies page's Cancel button. The panel says it
// was cancelled, and the library holds no partial series: every series in it has all its slices (in
// practice none is there: the test holds the library's write lock until the click, so the cancel
// lands before the first series is stored). A screenshot of the panel
// with the button goes to test-artifacts/screenshots-import-cancel/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Volume } from '../../src-main/contract/domain.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import { root as ROOT, skip, startWorkstation, type Workstation } from './harness.js';

const e2e = (name: string, fn: () => Promise<void>) => test(name, { skip }, fn);
const shots = join(ROOT, 'test-artifacts', 'screenshots-import-cancel');

let ws: Workstation;
const SLICES = 200;
const uids: string[] = [];

function phantom(s: number, phase: number): Volume {
  const data = new Float32Array(s * 32 * 32);
  for (let i = 0; i < data.length; i++) data[i] = Math.abs(Math.sin(i * 0.011 + phase)) * 700;
  return { data, slices: s, h: 32, w: 32, spacing: [1, 1, 2] };
}

before(async () => {
  if (skip) return;
  ws = await startWorkstation(shots);
  // threads ready, so that the cancel reaches a running import (not one still queued for a thread)
  await ws.services.warmUp();
  for (const k of [1, 2]) {
    const e = writeDicomSeries(phantom(SLICES, k), join(ws.home, 'big', `series-${k}`), {
      source: {
        patient: { id: 'E2E-CANCEL', name: 'Cancel^Test', birthDate: '19700101', sex: 'M' },
        study: {
          uid: '1.2.826.0.1.3680043.8.498.424242.9',
          date: '20240601',
          time: '090000',
          description: 'Cancelled import',
          accession: 'ACC9',
          studyId: '9',
        },
      },
      seriesDescription: `Big ${k}`,
    });
    assert.equal(e.paths.length, SLICES);
    uids.push(e.seriesUid);
  }
  await ws.page.getByTestId('nav-studies').click();
});

after(async () => {
  await ws?.close();
});

e2e('Cancel on a running import: the panel says so and no partial series is in the library', async () => {
  const { page, services } = ws;
  await page.getByTestId('import-paths').fill(join(ws.home, 'big'));
  // The library's write lock, held from here until Cancel is clicked: the import reads its headers,
  // then waits (SQLite's busy timeout, 5 s) to store the first series, so the click lands while it
  // runs however fast this machine imports 400 small slices (unheld, a quiet machine could finish
  // the import before the click).
  const lock = new Database(join(ws.home, 'kdmri.db'));
  lock.exec('BEGIN IMMEDIATE');
  const cancel = page.getByTestId('import-cancel');
  try {
    await page.getByTestId('import-button').click();
    await cancel.waitFor({ timeout: 4_000 });
    await ws.shot('import-running');
    await cancel.click({ timeout: 3_000 });
  } finally {
    lock.exec('ROLLBACK');
    lock.close();
  }
  const message = page.getByTestId('import-message');
  await page
    .getByText(/Import cancelled: nothing of an unfinished series was stored/)
    .waitFor({ timeout: 60_000 });
  await ws.shot('import-cancelled');
  // the button goes once the import has ended
  assert.equal(await cancel.count(), 0);
  const text = await message.textContent();
  const stored = (await services.handlers.listStudies({ search: 'Cancel' })).flatMap((p) =>
    p.studies.flatMap((s) => s.series),
  );
  for (const s of stored) {
    assert.ok(uids.includes(s.uid), s.uid);
    assert.equal(s.slices, SLICES, `series ${s.uid} is partial: ${s.slices} of ${SLICES} slices`);
  }
  // what the panel says stayed is what the library holds
  const kept = /the (\d+) files imported before/.exec(text ?? '');
  assert.equal(kept ? Number(kept[1]) : 0, stored.length * SLICES, text ?? '');
  // nothing hidden half-written either: no pending slices left behind
  const db = new Database(join(ws.home, 'kdmri.db'), { readonly: true });
  try {
    const n = (q: string) => (db.prepare(q).get() as { n: number }).n;
    assert.equal(n(`SELECT COUNT(*) AS n FROM series WHERE import_pid IS NOT NULL`), 0);
    assert.equal(n(`SELECT COUNT(*) AS n FROM instances WHERE slice_index < 0`), 0);
  } finally {
    db.close();
  }
  assert.deepEqual(ws.consoleErrors, []);
});
