// End to end, in Debian's Chromium driven by playwright-core, against web mode started in-process on a
// temporary KDMRI_HOME: import the sample, launch a tiny distillation and watch its progress arrive,
// compare five reconstructions with metrics, switch the mask and see them change. No console errors.
// Screenshots of every page go to test-artifacts/screenshots/.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Services } from '../../src-main/services/index.js';
import type { RunningServer } from '../../src-main/server/server.js';
import { e2e, root, skip, startWorkstation, type Workstation } from './harness.js';

const shots = join(root, 'test-artifacts', 'screenshots');

let ws: Workstation;
let services: Services;
let server: RunningServer;
let browser: Browser;
let page: Page;
let consoleErrors: string[] = [];

before(async () => {
  if (skip) return;
  ws = await startWorkstation(shots);
  ({ services, server, browser, page, consoleErrors } = ws);
});

after(async () => {
  await ws?.close();
});

const shot = (name: string) => ws.shot(name);

e2e('the one-time login link opens the app; the token never shows in the address bar', async () => {
  await page.getByTestId('nav-studies').waitFor();
  assert.equal(
    await page
      .getByTestId('app-mode')
      .textContent()
      .then((t) => t?.includes('Web mode')),
    true,
  );
  assert.equal(page.url(), `http://127.0.0.1:${server.port}/`, 'the login link redirected to the app');
  assert.ok(!page.url().includes(server.token));
  // another browser (no session cookie) cannot use the API, and is told how to log in
  const other = await browser.newPage();
  const status = await other.goto(`http://127.0.0.1:${server.port}/`).then(() =>
    other.evaluate(
      async () =>
        (
          await fetch('/api/appInfo', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: '{}',
          })
        ).status,
    ),
  );
  assert.equal(status, 401);
  await other.getByTestId('login-needed').waitFor();
  // the link the page was opened with is spent
  const reused = await other.goto(server.url);
  assert.equal(reused?.status(), 401);
  await other.close();
});

e2e('Studies: import the bundled sample; it becomes a dataset', async () => {
  await page.getByTestId('nav-studies').click();
  await page.getByTestId('import-sample').click();
  await page.getByTestId('import-results').locator('tr').first().waitFor({ timeout: 60_000 });
  await page.getByTestId('datasets-table').locator('tbody tr').first().waitFor({ timeout: 30_000 });
  const rows = await page.getByTestId('datasets-table').locator('tbody tr').count();
  assert.ok(rows >= 1);
  // the sample is also a study in the library: browse it, see its attributes and slices
  await page.getByTestId('series-item').first().click({ timeout: 30_000 });
  await page.getByTestId('dicom-attributes').waitFor();
  await page.locator('[data-testid=series-viewer] canvas').waitFor({ timeout: 30_000 });
  await page.waitForTimeout(300);
  // scanner-unit pixels are windowed sensibly (not a saturated blob): mid-grey tones are present
  const tones = await page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('[data-testid=series-viewer] canvas')!;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let white = 0;
    let mid = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > 250) white++;
      else if (d[i] > 40) mid++;
    }
    return { white: white / (d.length / 4), mid: mid / (d.length / 4) };
  });
  assert.ok(tones.white < 0.3 && tones.mid > 0.1, `series viewer tones ${JSON.stringify(tones)}`);
  await page.getByTestId('study-search').fill('zzz-no-such-patient');
  await page.getByText('The library is empty for this search').waitFor();
  await page.getByTestId('study-search').fill('');
  await page.getByTestId('series-item').first().waitFor();
  await shot('studies');
});

e2e('Distill: a tiny job (32×32, 1 epoch) streams progress into the UI', async () => {
  await page.getByTestId('nav-distill').click();
  await page.getByTestId('distill-size').fill('32');
  await page.getByTestId('distill-epochs').fill('1');
  // mask preview shows the true acceleration
  await page.getByTestId('true-acc').first().waitFor({ timeout: 30_000 });
  assert.match((await page.getByTestId('true-acc').first().textContent()) ?? '', /^\d+\.\d\d×$/);
  await page.getByTestId('launch').click();
  await page.getByTestId('job-progress').waitFor({ timeout: 30_000 });
  // progress events arrive (counter in the UI grows), then the job finishes
  await page
    .waitForFunction(
      () =>
        Number(document.querySelector('[data-testid=progress-events]')?.textContent?.split(' ')[0] ?? 0) > 3,
      null,
      { timeout: 120_000 },
    )
    .catch(async (e: Error) => {
      // say what the job did instead
      throw new Error(`${e.message}; jobs: ${JSON.stringify(await services.call('listJobs', {}))}`);
    });
  await shot('distill-running');
  await page.locator('[data-testid=job-progress] .tag.finished').waitFor({ timeout: 900_000 });
  await page.getByTestId('job-results').waitFor({ timeout: 30_000 });
  await shot('distill');
});

async function viewportMetrics(): Promise<string[]> {
  return Promise.all(
    ['zf', 'teacher', 'student', 'kd'].map(
      async (n) => (await page.getByTestId(`metrics-${n}`).textContent()) ?? '',
    ),
  );
}

e2e('Compare: five rendered viewports with metrics; switching the mask changes them', async () => {
  await page.getByTestId('nav-compare').click();
  for (const n of ['zf', 'target', 'teacher', 'student', 'kd']) {
    await page.locator(`[data-testid=viewport-${n}][data-rendered=yes] canvas`).waitFor({ timeout: 120_000 });
  }
  await page.getByTestId('metrics-kd').waitFor({ timeout: 60_000 });
  // every viewport really drew pixels (not a blank canvas)
  const drawn = await page.evaluate(() =>
    ['zf', 'target', 'teacher', 'student', 'kd'].map((n) => {
      const c = document.querySelector<HTMLCanvasElement>(`[data-testid=viewport-${n}] canvas`);
      if (!c) return 0;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 20) lit++;
      return lit / (d.length / 4);
    }),
  );
  for (const f of drawn) assert.ok(f > 0.05, `viewport drew pixels (${drawn.join(', ')})`);
  const before4 = await viewportMetrics();
  for (const m of before4) assert.match(m, /PSNR \d+\.\d+ dB · SSIM [01]\.\d{4} · NMSE \d/);
  const acc4 = await page.getByTestId('compare-true-acc').textContent();
  await shot('compare');

  // window/level by dragging on one viewport follows on all five; wheel zoom follows too
  const voi = () =>
    page.evaluate(() => {
      const w = window as unknown as {
        __kdmriViewport(e: Element): { voi: { windowWidth: number }; scale: number };
      };
      return ['zf', 'target', 'teacher', 'student', 'kd'].map((n) => {
        const v = w.__kdmriViewport(document.querySelector(`[data-testid=viewport-${n}] .vp`)!);
        return [Number(v.voi.windowWidth.toFixed(4)), Number(v.scale.toFixed(4))];
      });
    });
  const v0 = await voi();
  const box = (await page.getByTestId('viewport-target').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2 + 20, { steps: 8 });
  await page.mouse.up();
  await page.mouse.wheel(0, -400);
  await page.waitForTimeout(500);
  const v1 = await voi();
  assert.notDeepEqual(v1[1], v0[1], 'target W/L and zoom changed');
  for (const v of v1) assert.deepEqual(v, v1[1], `viewports in sync: ${JSON.stringify(v1)}`);
  await shot('compare-wl-zoom');

  // switch the mask: a new mask kind, then a higher acceleration; every viewport's numbers follow.
  // (At 32×32 the reference 'cartesian' mask keeps its 10 fully sampled centre lines, which already
  // exceed 32/8, so 4x and 8x sample the same lines there; the fastMRI-style masks scale with size.)
  const changed = async (prevMetrics: string[], prevAcc: string | null) => {
    await page.waitForFunction(
      (prev) => document.querySelector('[data-testid=compare-true-acc]')?.textContent !== prev,
      prevAcc,
      { timeout: 120_000 },
    );
    await page.waitForFunction(
      (prev) => {
        const now = ['zf', 'teacher', 'student', 'kd'].map(
          (n) => document.querySelector(`[data-testid=metrics-${n}]`)?.textContent ?? '',
        );
        return now.every((t, i) => t !== '' && t !== prev[i]);
      },
      prevMetrics,
      { timeout: 120_000 },
    );
    return {
      metrics: await viewportMetrics(),
      acc: await page.getByTestId('compare-true-acc').textContent(),
    };
  };
  await page.getByTestId('compare-mask-kind').selectOption('equispaced');
  const eq4 = await changed(before4, acc4);
  await page.getByTestId('compare-acc-8').click();
  const eq8 = await changed(eq4.metrics, eq4.acc);
  const psnr = (s: string) => Number(/PSNR ([\d.]+)/.exec(s)?.[1]);
  assert.ok(
    psnr(eq8.metrics[0]) < psnr(eq4.metrics[0]),
    `zero-filled PSNR drops from 4x to 8x (${eq4.metrics[0]} → ${eq8.metrics[0]})`,
  );
  await shot('compare-equispaced-8x');
  // the same comparison on a library series (all its slices) instead of a dataset's validation split
  const series = page.locator('[data-testid=compare-dataset] option[value^="s:"]').first();
  const value = await series.getAttribute('value');
  assert.ok(value, 'a library series is offered as a source');
  const prev = await viewportMetrics();
  await page.getByTestId('compare-dataset').selectOption(value!);
  await page.waitForFunction(
    (p) =>
      ['zf', 'teacher', 'student', 'kd'].every((n, i) => {
        const t = document.querySelector(`[data-testid=metrics-${n}]`)?.textContent ?? '';
        return t !== '' && t !== p[i];
      }),
    prev,
    { timeout: 120_000 },
  );
  assert.match((await page.getByTestId('slice-label').textContent()) ?? '', /^1\/40$/);
  await shot('compare-series');
  // keyboard: next slice
  await page.locator('[data-testid=compare-grid]').click({ position: { x: 5, y: 5 } });
  const sliceBefore = await page.getByTestId('slice-label').textContent();
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(
    (s) => document.querySelector('[data-testid=slice-label]')?.textContent !== s,
    sliceBefore,
  );
});

e2e('Runs and models: runs table, paper table, models', async () => {
  await page.getByTestId('nav-runs').click();
  await page.getByTestId('runs-table').waitFor();
  await page.getByTestId('paper-table').waitFor({ timeout: 30_000 });
  const paper = (await page.getByTestId('paper-table').textContent()) ?? '';
  for (const row of ['Zero-filled', 'Teacher', 'Student', 'KD student']) assert.ok(paper.includes(row), row);
  assert.ok((await page.getByTestId('models-table').locator('tbody tr').count()) >= 3);
  // select two runs: their curves side by side
  const boxes = page.getByTestId('runs-table').locator('tbody input[type=checkbox]');
  await boxes.nth(0).check();
  await boxes.nth(3).check();
  // two runs × (train, val) series, one point each after a 1-epoch run
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=runs-curves] circle').length >= 4);
  assert.equal(await page.getByTestId('runs-curves').locator('.legend span').count(), 4);
  // a model card
  await page.getByTestId('models-table').getByRole('button', { name: 'Card' }).first().click();
  await page.getByTestId('model-card').waitFor();
  assert.match((await page.getByTestId('model-card').textContent()) ?? '', /Parameters/);
  await shot('runs');
});

e2e('Distill: cancel a job, then resume it to the end', async () => {
  await page.getByTestId('nav-distill').click();
  await page.getByTestId('distill-size').fill('32');
  await page.getByTestId('distill-epochs').fill('1');
  await page.getByTestId('acc-4').uncheck();
  await page.getByTestId('acc-8').check();
  await page.getByTestId('launch').click();
  const row = page.getByTestId('job-row').filter({ hasText: 'cartesian 8x' });
  await row.getByTestId('cancel-job').click({ timeout: 30_000 });
  await row.locator('.tag.cancelled').waitFor({ timeout: 60_000 });
  await shot('distill-cancelled');
  await row.getByRole('button', { name: 'Resume job' }).click({ timeout: 30_000 });
  await row.locator('.tag.finished').waitFor({ timeout: 900_000 });
});

e2e(
  'Delete asks first and says what goes: a model on the Runs page, a study on the Studies page',
  async () => {
    /** The next confirmation dialog's text, answered yes or no as it opens (it blocks the page). */
    const dialog = (yes: boolean) =>
      new Promise<string>((ok) =>
        page.once('dialog', (d) => {
          ok(d.message());
          void (yes ? d.accept() : d.dismiss());
        }),
      );
    await page.getByTestId('nav-runs').click();
    const rows = page.getByTestId('models-table').locator('tbody tr');
    await rows.first().waitFor();
    const before = await rows.count();
    const name = (await rows.first().locator('td').nth(1).textContent())!.trim();
    // the question names the model and its folder; saying no keeps it
    let asked = dialog(false);
    await rows.first().getByRole('button', { name: 'Delete' }).click();
    let message = await asked;
    assert.match(
      message,
      new RegExp(`^delete ${name}:\\n {2}models \\(1\\): \\d+ ${name}\\n {2}files and folders \\(1\\): /`),
    );
    assert.match(message, /this cannot be undone/);
    assert.equal(await rows.count(), before);
    asked = dialog(true);
    await rows.first().getByRole('button', { name: 'Delete' }).click();
    await asked;
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=models-table] tbody tr').length === n,
      before - 1,
    );
    // the sample's study, with its pixels
    await page.getByTestId('nav-studies').click();
    await page.getByTestId('series-item').first().waitFor();
    asked = dialog(true);
    await page.getByTestId('delete-study').first().click();
    message = await asked;
    assert.match(message, /^delete study .*:\n {2}studies \(1\)/);
    assert.match(message, / {2}series \(1\)/);
    await page.getByText('The library is empty').waitFor();
    await shot('studies-deleted');
  },
);

e2e('every page renders; no console errors', async () => {
  for (const p of ['studies', 'distill', 'compare', 'runs']) {
    await page.getByTestId(`nav-${p}`).click();
    await page.waitForTimeout(300);
    if (!existsSync(join(shots, `${p}.png`))) await shot(p);
  }
  assert.deepEqual(consoleErrors, []);
});
