// End to end in Chromium, web mode in-process: the Studies page against a real PACS (Orthanc +
// DICOMweb on 127.0.0.1, basic authentication). A PACS node is configured in the page (its password
// then lives in an owner-only file, not in the database nor in any answer); a query by name, date
// range and modality finds the seeded study; it is retrieved with progress and its pixels equal the
// seeded ones; the series is exported as DICOM, downloaded through the browser (a zip of Part 10
// files), and sent back (STOW-RS), where Orthanc lists the derived series. Files dropped into the
// browser (a synthesized DataTransfer) are uploaded and imported, per-file results shown, the
// temporary upload folder removed. The page's screenshot goes to readmeShots (harness.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import type { Volume } from '../../src-main/contract/domain.js';
import type { Services } from '../../src-main/services/index.js';
import { searchSeries, storeInstances } from '../../src-main/studies/dicomweb.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import {
  readmeShots,
  root as ROOT,
  skip as chromiumSkip,
  startWorkstation,
  type Workstation,
} from './harness.js';
import {
  orthancSkip,
  ORTHANC_PASS,
  ORTHANC_USER,
  startOrthanc,
  type RunningOrthanc,
} from '../studies/orthanc.js';

const skip = chromiumSkip || orthancSkip;
const e2e = (name: string, fn: () => Promise<void>) => test(name, { skip }, fn);

let ws: Workstation;
let home: string;
let services: Services;
let orthanc: RunningOrthanc;
let page: Page;
let consoleErrors: string[] = [];
let seeded: { studyUid: string; seriesUid: string; slope: number; volume: Volume };

function phantom(s: number, h: number, w: number, phase: number): Volume {
  const data = new Float32Array(s * h * w);
  for (let i = 0; i < data.length; i++) data[i] = Math.abs(Math.sin(i * 0.013 + phase)) * 900 + (i % 5);
  return { data, slices: s, h, w, spacing: [1, 1, 3] };
}

const identity = (id: string, name: string, date: string, description: string) => ({
  patient: { id, name, birthDate: '19700101', sex: 'F' },
  study: { uid: '', date, time: '101500', description, accession: `ACC${id}`, studyId: '1' },
});

before(async () => {
  if (skip) return;
  orthanc = await startOrthanc();
  // the PACS holds one MR study of Jane Doe (and one CT study of someone else)
  const volume = phantom(3, 32, 32, 0);
  const src = identity('E2E-001', 'Doe^Jane', '20240115', 'Knee MRI');
  src.study.uid = '1.2.826.0.1.3680043.8.498.424242.1';
  const exp = writeDicomSeries(volume, join(orthanc.dir, 'seed'), {
    source: src,
    seriesDescription: 'PD FSE',
  });
  const other = writeDicomSeries(phantom(1, 16, 16, 1), join(orthanc.dir, 'seed2'), {
    source: {
      ...identity('E2E-002', 'Roe^Richard', '20230301', 'Head'),
      study: {
        ...identity('E2E-002', 'Roe^Richard', '20230301', 'Head').study,
        uid: '1.2.826.0.1.3680043.8.498.424242.2',
      },
    },
  });
  for (const e of [exp, other]) {
    const r = await storeInstances(
      orthanc.settings,
      e.paths.map((p) => readFileSync(p)),
    );
    assert.equal(r.stored.length, e.paths.length);
  }
  seeded = { studyUid: exp.studyUid, seriesUid: exp.seriesUid, slope: exp.slope, volume };

  ws = await startWorkstation(join(ROOT, 'test-artifacts', 'screenshots-studies'));
  ({ home, services, page, consoleErrors } = ws);
  await page.getByTestId('nav-studies').click();
});

after(async () => {
  await ws?.close();
  await orthanc?.stop();
});

e2e(
  'PACS node configured in the page: the password is kept out of the database and every answer',
  async () => {
    await page.getByTestId('pacs-add').click();
    await page.getByTestId('pacs-name').fill('Orthanc');
    await page.getByTestId('pacs-url').fill(orthanc.settings.url);
    await page.getByTestId('pacs-auth').selectOption('basic');
    await page.getByTestId('pacs-user').fill(ORTHANC_USER);
    // a wrong URL scheme is refused naming the field
    await page.getByTestId('pacs-secret').fill(ORTHANC_PASS);
    await page.getByTestId('pacs-save').click();
    await page.getByTestId('pacs-node').waitFor();
    assert.equal(await page.getByTestId('pacs-node').locator('option:checked').textContent(), 'Orthanc');
    const answer = await page.evaluate(async () =>
      (
        await fetch('/api/listPacsNodes', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: '{}',
        })
      ).text(),
    );
    assert.match(answer, /"hasSecret":true/);
    assert.ok(!answer.includes(ORTHANC_PASS), answer);
    const file = join(home, 'pacs-secrets.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    for (const f of ['kdmri.db', 'kdmri.db-wal'].map((n) => join(home, n)).filter(existsSync))
      assert.ok(!readFileSync(f).includes(Buffer.from(ORTHANC_PASS)), `${f} holds the password`);
  },
);

e2e('PACS query by name, date range and modality; retrieve with progress; pixels as seeded', async () => {
  await page.getByTestId('pacs-q-name').fill('doe');
  await page.getByTestId('pacs-q-from').fill('2024-01-01');
  await page.getByTestId('pacs-q-to').fill('2024-01-31');
  await page.getByTestId('pacs-q-modality').selectOption('MR');
  await page.getByTestId('pacs-query').click();
  await page.getByTestId('pacs-study').first().waitFor();
  assert.equal(await page.getByTestId('pacs-study').count(), 1);
  const studyText = (await page.getByTestId('pacs-study').textContent()) ?? '';
  assert.match(studyText, /Doe\^Jane.*E2E-001.*2024-01-15.*Knee MRI.*MR/);
  // the other study is outside the date range
  await page.getByTestId('pacs-q-from').fill('2023-01-01');
  await page.getByTestId('pacs-q-name').fill('');
  await page.getByTestId('pacs-query').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=pacs-study]').length === 2);
  await page.getByTestId('pacs-q-name').fill('doe');
  await page.getByTestId('pacs-query').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=pacs-study]').length === 1);
  await page.getByTestId('pacs-series-toggle').click();
  await page.getByTestId('pacs-retrieve-series').waitFor();
  assert.match((await page.locator('.sub').textContent()) ?? '', /PD FSE.*3 images/);

  await page.getByTestId('pacs-retrieve').click();
  await page.getByTestId('pacs-progress').waitFor();
  await page.getByTestId('pacs-retrieved').waitFor({ timeout: 60_000 });
  assert.match(
    (await page.getByTestId('pacs-retrieved').textContent()) ?? '',
    /Retrieved 1 series: 3 imported/,
  );
  // the study is in the library tree
  await page.getByTestId('series-item').first().waitFor();
  assert.match((await page.getByTestId('study-tree').textContent()) ?? '', /Doe\^Jane/);
  const back = await services.handlers.getSeriesSlice({ uid: seeded.seriesUid, index: 1 });
  const n = back.h * back.w;
  let err = 0;
  for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(back.data[i] - seeded.volume.data[n + i]));
  assert.ok(err <= seeded.slope / 2 + 1e-3, `max error ${err}`);
});

e2e(
  'Export the retrieved series as DICOM, download it through the browser, send it back to the PACS',
  async () => {
    await page.getByTestId('series-item').first().click();
    await page.getByTestId('export-format').selectOption('dicom');
    await page.getByTestId('export-series').click();
    await page.getByTestId('series-download').waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('series-download').click(),
    ]);
    const saved = join(home, 'downloaded.zip');
    await download.saveAs(saved);
    assert.match(download.suggestedFilename(), /^series-.*-dicom-.*\.zip$/);
    const zip = unzipSync(readFileSync(saved));
    const names = Object.keys(zip).sort();
    assert.equal(names.length, 3, names.join());
    for (const nme of names)
      assert.equal(Buffer.from(zip[nme].subarray(128, 132)).toString('latin1'), 'DICM', nme);

    // the export (a derived series in the source's study) goes back from the Exports list
    const row = page.getByTestId('export-row').first();
    await row.getByTestId('export-send').click();
    await row.getByTestId('export-status').filter({ hasText: 'stored' }).waitFor({ timeout: 60_000 });
    assert.match(
      (await row.getByTestId('export-status').textContent()) ?? '',
      /Orthanc stored 3 of 3 instances/,
    );
    const series = await searchSeries(orthanc.settings, seeded.studyUid);
    assert.equal(series.length, 2, JSON.stringify(series));
    assert.ok(series.some((s) => s.uid !== seeded.seriesUid && s.instances === 3));

    // a de-identified export: the download holds none of the patient's identifiers
    await page.getByTestId('export-deidentify').check();
    await page.getByTestId('export-series').click();
    await page.getByTestId('series-exported').filter({ hasText: 'de-identified' }).waitFor();
    const [deid] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('series-download').click(),
    ]);
    const deidZip = unzipSync(readFileSync(await deid.path()));
    assert.equal(Object.keys(deidZip).length, 3);
    for (const [name, bytes] of Object.entries(deidZip))
      for (const id of ['Doe^Jane', 'E2E-001', seeded.studyUid, seeded.seriesUid])
        assert.ok(!Buffer.from(bytes).includes(Buffer.from(id, 'latin1')), `${name} holds ${id}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=export-row]').length === 2);

    // and the library series itself (its original retrieved files)
    await page.getByTestId('send-series').click();
    await page.getByTestId('send-status').filter({ hasText: 'stored' }).waitFor({ timeout: 60_000 });
    assert.match(
      (await page.getByTestId('send-status').textContent()) ?? '',
      /stored 3 of 3 instances \(original files\)/,
    );
  },
);

e2e(
  'Files dropped into the browser are uploaded and imported, one result per file; the upload folder is removed',
  async () => {
    const vol = phantom(2, 24, 24, 2);
    const exp = writeDicomSeries(vol, join(home, 'to-drop'), {
      source: {
        ...identity('E2E-DROP', 'Drop^Test', '20240201', 'Dropped'),
        study: {
          ...identity('E2E-DROP', 'Drop^Test', '20240201', 'Dropped').study,
          uid: '1.2.826.0.1.3680043.8.498.424242.3',
        },
      },
    });
    const files = [
      ...exp.paths.map((p, i) => ({ name: `IM${i + 1}.dcm`, b64: readFileSync(p).toString('base64') })),
      { name: 'notes.txt', b64: Buffer.from('not an image').toString('base64') },
    ];
    await page.evaluate((list) => {
      const dt = new DataTransfer();
      for (const f of list) {
        const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
        dt.items.add(new File([bytes], f.name));
      }
      const zone = document.querySelector('[data-testid=drop-zone]')!;
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, files);
    await page.getByTestId('import-progress').waitFor();
    await page.getByText(/Imported 2 of 3 files/).waitFor({ timeout: 60_000 });
    const rows = await page.getByTestId('import-results').locator('tr').allTextContents();
    assert.equal(rows.length, 3, rows.join('\n'));
    assert.equal(rows.filter((r) => /^imported\s*IM[12]\.dcm/.test(r)).length, 2, rows.join('\n'));
    assert.ok(
      rows.some((r) => /notes\.txt/.test(r) && !/^imported/.test(r)),
      rows.join('\n'),
    );
    await page.getByText('Drop^Test').waitFor();
    const uploads = join(home, 'uploads');
    assert.deepEqual(existsSync(uploads) ? readdirSync(uploads) : [], []);
    const drop = (await services.handlers.listStudies({ search: 'Drop' }))[0];
    assert.equal(drop.studies[0].series[0].slices, 2);
  },
);

e2e('A folder chosen with the folder picker uploads with its layout and imports', async () => {
  const folder = join(home, 'picked', 'knee-study');
  writeDicomSeries(phantom(2, 16, 16, 3), join(folder, 'series 7'), {
    source: {
      ...identity('E2E-PICK', 'Pick^Folder', '20240301', 'Picked'),
      study: {
        ...identity('E2E-PICK', 'Pick^Folder', '20240301', 'Picked').study,
        uid: '1.2.826.0.1.3680043.8.498.424242.4',
      },
    },
  });
  await page.getByTestId('upload-folder').setInputFiles(folder);
  await page.getByText(/Imported 2 of 2 files/).waitFor({ timeout: 60_000 });
  const rows = await page.getByTestId('import-results').locator('tr').allTextContents();
  assert.equal(rows.length, 2, rows.join('\n'));
  for (const r of rows) assert.match(r, /^imported\s*IM000[12]\.dcm/);
  assert.deepEqual(
    await page
      .getByTestId('import-results')
      .locator('td[title]')
      .evaluateAll((tds) => tds.map((t) => t.getAttribute('title'))),
    ['knee-study/series 7/IM0001.dcm', 'knee-study/series 7/IM0002.dcm'],
  );
  await page.getByText('Pick^Folder').waitFor();
});

e2e('Studies page screenshot; no console errors', async () => {
  await page.getByTestId('series-item').first().click();
  await page.locator('[data-testid=series-viewer] canvas').waitFor({ timeout: 30_000 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(readmeShots, 'studies.png'), fullPage: true });
  assert.deepEqual(consoleErrors, []);
});
