// End to end in Chromium (web mode, temporary KDMRI_HOME): restoration launched from the Distill page
// with its duration estimated before launch (and checked against the job's measured duration),
// compared on the Compare page with residues; every mask kind, axis and seed on Compare; an ROI and
// a line profile measured on all five viewports, the ROI statistics equal to numpy's on the same
// pixels. The Distill and Compare screenshots for the README go to readmeShots (harness.ts).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { CompareResult } from '../../src-main/contract/api.js';
import { numpyMeasure } from '../renderer/numpy-measure.js';
import { e2e, readmeShots as readme, root, skip, startWorkstation, type Workstation } from './harness.js';

let ws: Workstation;
let datasetId = 0;

before(async () => {
  if (skip) return;
  ws = await startWorkstation(join(root, 'test-artifacts', 'screenshots-distill-compare'));
  const imported = await ws.services.call('importSample', {});
  assert.ok(imported.ok, JSON.stringify(imported));
  const ds = await ws.services.call('listDatasets', {});
  assert.ok(ds.ok && Array.isArray(ds.value) && ds.value.length);
  datasetId = (ds.value as { id: number }[])[0].id;
  await ws.page.reload();
});

after(async () => {
  await ws?.close();
});

e2e(
  'Distill: an SR job from the GUI, its duration estimated before launch within 50 % of the measured one',
  async () => {
    const { page } = ws;
    await page.getByTestId('nav-distill').click();
    await page.getByTestId('distill-task').selectOption('sr');
    await page.getByTestId('distill-size').fill('32');
    await page.getByTestId('distill-epochs').fill('1');
    await page.getByTestId('distill-keep').fill('0.25');
    // small VDSR networks keep the job (and its measurement) short
    await page.getByTestId('teacher-depth').fill('5');
    await page.getByTestId('teacher-filters').fill('16');
    await page.getByTestId('student-depth').fill('3');
    await page.getByTestId('student-filters').fill('16');
    // the estimate of exactly this job, shown before launch
    await page.waitForFunction(
      () => {
        const d = document.querySelector('[data-testid=estimate-detail]')?.textContent ?? '';
        const busy = document.querySelector('[data-testid=estimate]')?.textContent?.includes('updating…');
        return d.includes('32×32') && / 1 epoch per step/.test(d) && !busy;
      },
      null,
      { timeout: 180_000 },
    );
    const estimated = Number(await page.getByTestId('estimate-value').getAttribute('data-seconds'));
    assert.ok(estimated > 0, `estimate ${estimated} s`);
    assert.match(
      (await page.getByTestId('estimate-detail').textContent()) ?? '',
      /30 training \/ 10 validation slices/,
    );
    // the job's duration counts from its acceptance: a launch first waits for a measurement still
    // running (a preset's) to stop, which is no part of the job
    const accepted = page.waitForResponse((r) => r.url().endsWith('/api/startDistillation'));
    await page.getByTestId('launch').click();
    assert.equal((await accepted).status(), 200);
    const launched = Date.now();
    const row = page.getByTestId('job-row').filter({ hasText: 'lowres 0.25' });
    await row
      .locator('.tag.finished')
      .waitFor({ timeout: 300_000 })
      .catch(async (e: Error) => {
        // say what the job did instead
        throw new Error(`${e.message}; jobs: ${JSON.stringify(await ws.services.call('listJobs', {}))}`);
      });
    const measured = (Date.now() - launched) / 1000;
    process.stderr.write(
      `SR job (32×32, 1 epoch): estimated ${estimated.toFixed(1)} s, measured ${measured.toFixed(1)} s\n`,
    );
    assert.ok(
      Math.abs(estimated - measured) <= 0.5 * measured,
      `estimate ${estimated.toFixed(1)} s within 50 % of the measured ${measured.toFixed(1)} s`,
    );
    await row.click();
    await page.getByTestId('job-results').waitFor({ timeout: 30_000 });
    const results = (await page.getByTestId('job-results').textContent()) ?? '';
    for (const m of ['lr', 'teacher', 'student', 'kd'])
      assert.ok(results.includes(m), `results row ${m}: ${results}`);
    await ws.shot('distill', readme);
    // the same networks for 10000 epochs: estimated from the kept timings (no new measurement); the
    // page warns exactly when that is more than an hour on this machine
    await page.getByTestId('distill-epochs').fill('10000');
    await page.waitForFunction(
      () =>
        /10000 epochs per step/.test(
          document.querySelector('[data-testid=estimate-detail]')?.textContent ?? '',
        ),
      null,
      { timeout: 60_000 },
    );
    assert.match(
      (await page.getByTestId('estimate-detail').textContent()) ?? '',
      /kept from an earlier measurement/,
    );
    const long = Number(await page.getByTestId('estimate-value').getAttribute('data-seconds'));
    assert.ok(long > estimated, `10000 epochs: ${long} s, 1 epoch: ${estimated} s`);
    assert.equal(await page.getByTestId('estimate-warning').isVisible(), long > 3600, `warning at ${long} s`);
  },
);

/** Wait until every metrics overlay shows and differs from `prev` (a new comparison arrived). */
async function metricsChanged(prev: string[], names = ['zf']) {
  await ws.page.waitForFunction(
    ({ prev, names }) =>
      names.every((n, i) => {
        const t = document.querySelector(`[data-testid=metrics-${n}]`)?.textContent ?? '';
        return t !== '' && t !== prev[i];
      }),
    { prev, names },
    { timeout: 120_000 },
  );
}

e2e(
  'Compare: the SR models (low resolution, target, teacher, student, KD student) with residues',
  async () => {
    const { page } = ws;
    await page.getByTestId('nav-compare').click();
    await page.getByTestId('compare-mask-kind').selectOption('lowres');
    await page.getByTestId('compare-acc-4').click();
    for (const n of ['zf', 'target', 'teacher', 'student', 'kd'])
      await page
        .locator(`[data-testid=viewport-${n}][data-rendered=yes] canvas`)
        .waitFor({ timeout: 120_000 })
        .catch(async (e: Error) => {
          // say what the page says instead
          const direct = await Promise.race([
            ws.services
              .call('compare', {
                source: { datasetId },
                sliceIndex: 0,
                degradation: { kind: 'lowres', keep: 0.25 },
              })
              .then((r) => (r.ok ? 'answers' : JSON.stringify(r.error))),
            new Promise((ok) => setTimeout(() => ok('no answer in 20 s'), 20_000)),
          ]);
          throw new Error(
            `${e.message}; status: ${await page.getByTestId('compare-status').textContent()}; the service itself: ${String(direct)}`,
          );
        });
    await page.getByTestId('metrics-kd').waitFor({ timeout: 60_000 });
    assert.match((await page.getByTestId('viewport-zf').textContent()) ?? '', /Low resolution/);
    // the models of the SR job, trained on exactly this degradation (no "trained on …" note)
    for (const n of ['teacher', 'student', 'kd']) {
      const text = (await page.getByTestId(`viewport-${n}`).textContent()) ?? '';
      assert.ok(!/trained on/.test(text), `${n}: ${text}`);
      assert.match((await page.getByTestId(`metrics-${n}`).textContent()) ?? '', /PSNR \d+\.\d+ dB/);
    }
    for (const n of ['zf', 'teacher', 'student', 'kd'])
      await page.locator(`[data-testid=residue-${n}] canvas`).waitFor();
    assert.match((await page.getByTestId('residue-zf').textContent()) ?? '', /\|target − low resolution\|/);
  },
);

e2e(
  'Measure: an ROI drawn on one viewport is measured on all five (equal to numpy); a profile across all five',
  async () => {
    const { page } = ws;
    await page.getByTestId('measure-roi').click();
    const box = (await page.getByTestId('viewport-target').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.35);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.62, box.y + box.height * 0.7, { steps: 6 });
    await page.mouse.up();
    await page.locator('[data-testid=roi-table] tbody tr').nth(4).waitFor();
    const b = page.getByTestId('roi-bounds');
    const rect = {
      r0: Number(await b.getAttribute('data-r0')),
      r1: Number(await b.getAttribute('data-r1')),
      c0: Number(await b.getAttribute('data-c0')),
      c1: Number(await b.getAttribute('data-c1')),
    };
    assert.ok(rect.r1 - rect.r0 >= 5 && rect.c1 - rect.c0 >= 5, `ROI ${JSON.stringify(rect)}`);
    // the same comparison the page shows, its pixels measured by numpy
    const r = await ws.services.call('compare', {
      source: { datasetId },
      sliceIndex: 0,
      degradation: { kind: 'lowres', keep: 0.25 },
    });
    assert.ok(r.ok);
    const cmp = r.value as CompareResult;
    // restoration has no compressed-sensing baseline (CS undersamples k-space): its viewport is empty
    assert.equal(cmp.viewports.find((v) => v.name === 'cs')?.image ?? null, null, 'no CS for SR');
    for (const v of cmp.viewports.filter((x) => x.name !== 'cs')) {
      assert.ok(v.image, `${v.name} has an image`);
      const ref = numpyMeasure(v.image, [rect]);
      if (!ref) {
        process.stderr.write(
          'ROI statistics not checked against numpy: /usr/bin/python3 with numpy is missing\n',
        );
        break;
      }
      const rowEl = page.getByTestId(`roi-stats-${v.name}`);
      const mean = Number(await rowEl.getAttribute('data-mean'));
      const std = Number(await rowEl.getAttribute('data-std'));
      const n = Number(await rowEl.getAttribute('data-n'));
      const np = ref.rois[0];
      assert.equal(n, np.n, `${v.name} pixel count`);
      assert.ok(
        Math.abs(mean - np.mean) <= 1e-9 * Math.abs(np.mean),
        `${v.name} mean ${mean} vs numpy ${np.mean}`,
      );
      assert.ok(
        Math.abs(std - np.std) <= 1e-9 * Math.max(np.std, 1e-12),
        `${v.name} std ${std} vs numpy ${np.std}`,
      );
      assert.match((await rowEl.textContent()) ?? '', new RegExp(`${n} px²`));
    }
    // the ROI is drawn on every viewport
    for (const n of ['zf', 'target', 'teacher', 'student', 'kd'])
      await page.locator(`[data-testid=measure-overlay-${n}] rect.roi`).waitFor();
    // a line profile drawn on the KD viewport: one curve per image on one plot
    await page.getByTestId('measure-line').click();
    const kd = (await page.getByTestId('viewport-kd').boundingBox())!;
    await page.mouse.move(kd.x + kd.width * 0.15, kd.y + kd.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(kd.x + kd.width * 0.85, kd.y + kd.height * 0.55, { steps: 6 });
    await page.mouse.up();
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=profile-chart] path').length === 5,
    );
    assert.equal(await page.getByTestId('profile-chart').locator('.legend span').count(), 5);
    for (const n of ['zf', 'target', 'teacher', 'student', 'kd'])
      await page.locator(`[data-testid=measure-overlay-${n}] line.line`).waitFor();
    await page.getByTestId('measure-view').click();
    await ws.shot('compare', readme);
  },
);

e2e('Compare: every mask kind (the KD-MRI presets too), axis and seed', async () => {
  const { page } = ws;
  const acc = () => page.getByTestId('compare-true-acc').textContent();
  await page.getByTestId('compare-mask-kind').selectOption('random');
  await page.getByTestId('compare-true-acc').waitFor({ timeout: 60_000 });
  await page.getByTestId('metrics-zf').waitFor();
  // only the SR job trained here: the mask comparisons have zero-filled images and no models
  const zf = async () => [(await page.getByTestId('metrics-zf').textContent()) ?? ''];
  let prev = await zf();
  // another seed draws another random mask
  await page.getByTestId('compare-seed').fill('7');
  await metricsChanged(prev);
  prev = await zf();
  // columns instead of rows
  await page.getByTestId('compare-axis').selectOption('cols');
  await metricsChanged(prev);
  // the KD-MRI cardiac mask (150×150: the slices are resampled to it) at 4x: 37 of 150 lines
  const before = await acc();
  await page.getByTestId('compare-mask-kind').selectOption('preset');
  await page.getByTestId('compare-preset').selectOption('cardiac');
  await page.waitForFunction(
    (b) => {
      const t = document.querySelector('[data-testid=compare-true-acc]')?.textContent;
      return t && t !== b && t.includes('4.05×');
    },
    before,
    { timeout: 120_000 },
  );
  assert.match((await page.getByTestId('slice-label').textContent()) ?? '', /^1\/\d+$/);
  await page.getByTestId('compare-acc-8').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid=compare-true-acc]')?.textContent?.includes('8.33×'),
    null,
    { timeout: 120_000 },
  );
  assert.deepEqual(ws.consoleErrors, []);
});

e2e("Runs: the model card's Export ONNX button downloads the model as an ONNX file", async () => {
  const { page } = ws;
  await page.getByTestId('nav-runs').click();
  await page.getByTestId('models-table').getByRole('button', { name: 'Card' }).first().click();
  await page.getByTestId('model-card').waitFor();
  const download = page.waitForEvent('download', { timeout: 60_000 });
  await page.getByTestId('export-onnx').click();
  const d = await download;
  assert.match(d.suggestedFilename(), /\.onnx$/);
  const path = await d.path();
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(path);
  // an ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08
  assert.ok(bytes.length > 1000 && bytes[0] === 0x08, `ONNX file of ${bytes.length} bytes`);
  assert.deepEqual(ws.consoleErrors, []);
});
