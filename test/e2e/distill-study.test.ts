// End to end in Chromium (web mode, temporary KDMRI_HOME): a study launched from the Distill page.
// The "Run as a study" switch with two seeds turns one acceleration into 4 jobs (each main job and
// its student-long control), says what a study adds and estimates the student-long jobs too; Launch
// calls startStudy, the page points to the study's table, which after the jobs finish shows both
// seeds' mean ± std, the student-long row and the paired comparisons on the Runs page. The switch is
// off limits for restoration (SR), with the reason. Screenshots go to test-artifacts.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ExperimentInfo } from '../../src-main/contract/api.js';
import { e2e, root, skip, startWorkstation, type Workstation } from './harness.js';

let ws: Workstation;

before(async () => {
  if (skip) return;
  ws = await startWorkstation(join(root, 'test-artifacts', 'screenshots-distill-study'));
  const imported = await ws.services.call('importSample', {});
  assert.ok(imported.ok, JSON.stringify(imported));
  await ws.page.reload();
});

after(async () => {
  await ws?.close();
});

e2e(
  'Distill: a tiny study (1 acceleration × 2 seeds) launched with the study switch, its table on the Runs page',
  async () => {
    const { page } = ws;
    await page.getByTestId('nav-distill').click();
    // restoration cannot run as a study: the switch is off limits, saying why
    await page.getByTestId('distill-task').selectOption('sr');
    assert.equal(await page.getByTestId('study-switch').isDisabled(), true);
    assert.match(
      (await page.getByTestId('study-unavailable').textContent()) ?? '',
      /Not for restoration: a study compares reconstructions under undersampling masks/,
    );
    await page.getByTestId('distill-task').selectOption('recon');

    await page.getByTestId('distill-size').fill('16');
    await page.getByTestId('distill-epochs').fill('1');
    // tiny networks: seconds per job
    for (const [label, v] of [
      ['Teacher cascades', '2'],
      ['Teacher convolutions', '3'],
      ['Teacher filters', '8'],
      ['Student cascades', '2'],
      ['Student convolutions', '2'],
      ['Student filters', '4'],
    ])
      await page.getByLabel(label, { exact: true }).fill(v);
    assert.equal((await page.getByTestId('launch').textContent())?.trim(), 'Launch 1 job');
    await page.getByText('Run as a study').click();
    assert.equal(await page.getByTestId('study-switch').isChecked(), true);
    await page.getByTestId('study-seeds').fill('1,1');
    assert.match((await page.getByTestId('study-seeds-error').textContent()) ?? '', /seed 1 is given twice/);
    assert.equal(await page.getByTestId('launch').isDisabled(), true);
    // the student-long control trains 2 × the epochs: a study keeps within a job's maximum
    await page.getByTestId('distill-epochs').fill('6000');
    assert.match(
      (await page.getByTestId('study-epochs-error').textContent()) ?? '',
      /at most 5000 epochs in a study/,
    );
    await page.getByTestId('distill-epochs').fill('1');
    await page.getByTestId('study-seeds').fill('1,2');
    assert.equal(await page.getByTestId('study-seeds-error').count(), 0);
    assert.equal((await page.getByTestId('launch').textContent())?.trim(), 'Launch a study of 4 jobs');
    assert.match(
      (await page.getByTestId('study-about').textContent()) ?? '',
      /student-long control .* mean ± std over seeds and the paired KD − student/s,
    );
    // both figures estimated: the main job (measured here) and its student-long control
    await page
      .getByTestId('estimate-long')
      .waitFor({ timeout: 180_000 })
      .catch(async (e: Error) => {
        throw new Error(`${e.message}; estimate: ${await page.getByTestId('estimate').textContent()}`);
      });
    const main = Number(await page.getByTestId('estimate-value').getAttribute('data-seconds'));
    const long = Number(await page.getByTestId('estimate-long').getAttribute('data-seconds'));
    assert.ok(main > 0 && long > 0, `main ${main} s, student-long ${long} s`);
    const study = (await page.getByTestId('study-estimate').textContent()) ?? '';
    assert.match(study, /2 main jobs \(1 acceleration × 2 seeds\)/);
    assert.match(study, /2 student-long: ≈ .* each\. .* in all, one after another/s);
    await page.getByTestId('study').scrollIntoViewIfNeeded();
    await ws.shot('distill-study');

    const accepted = page.waitForResponse((r) => r.url().endsWith('/api/startStudy'));
    await page.getByTestId('launch').click();
    assert.equal((await accepted).status(), 200);
    await page.getByTestId('study-launched').waitFor();
    assert.match(
      (await page.getByTestId('study-launched').textContent()) ?? '',
      /Study launched: 4 jobs \(4× × seeds 1, 2\)/,
    );
    const studies = async () => {
      const r = await ws.services.call('listExperiments', {});
      assert.ok(r.ok);
      return r.value as ExperimentInfo[];
    };
    const [launched] = await studies();
    assert.deepEqual([launched.accs, launched.seeds, launched.jobs], [[4], [1, 2], 4]);
    // sent to its table while it runs: the Runs page shows it (filling in as jobs finish)
    await page.getByTestId('open-study-table').click();
    await page.getByTestId('results-source').waitFor();
    await page.waitForFunction(
      (id) =>
        (document.querySelector('[data-testid=results-source]') as HTMLSelectElement | null)?.value === id,
      `study:${launched.id}`,
      { timeout: 30_000 },
    );
    const t0 = Date.now();
    for (;;) {
      const s = (await studies()).find((e) => e.id === launched.id)!;
      if (s.status === 'finished') break;
      assert.ok(s.status === 'queued' || s.status === 'running', `study ${s.status}`);
      assert.ok(Date.now() - t0 < 600_000, 'the study finished within 10 minutes');
      await new Promise((r) => setTimeout(r, 500));
    }
    await page.getByTestId('paired-table').waitFor({ timeout: 60_000 });
    const table = (await page.getByTestId('paper-table').textContent()) ?? '';
    for (const row of [
      'Zero-filled',
      'CS (ℓ1-wavelet)',
      'Teacher',
      'Student',
      'Student (long)',
      'KD student',
    ])
      assert.ok(table.includes(row), `row ${row}: ${table}`);
    assert.match(table, /\d+\.\d\d ± \d+\.\d\d/, 'mean ± std over the seeds');
    const paired = (await page.getByTestId('paired-table').textContent()) ?? '';
    assert.match(paired, /KD student − Student\b/);
    assert.match(paired, /KD student − Student \(long\)/);
    assert.match(
      (await page.locator('section', { has: page.getByTestId('paper-table') }).textContent()) ?? '',
      /mean ± std \(sample std\) over 2 seeds/,
    );
    await ws.shot('runs-study');
    assert.deepEqual(ws.consoleErrors, []);
  },
);
