/**
 * The mutation fuzzer in CI: 200 cases of seed 1 through import and convert in child processes
 * (scripts/fuzz), then a replay of one case with --from K --cases 1.
 *
 * The campaign must end with no crash, no hang past 30 s, no case over 1.5 GB of resident memory,
 * `integrity_check` ok on every library, and exit 0; every file type must have been exercised. The
 * replay must rebuild the very same file (same SHA-256) and reach the same verdict.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Report {
  totals: Record<'ok' | 'refused' | 'internal' | 'h5-timeout' | 'crash' | 'hang' | 'memory', number>;
  peakRssMax: number;
  seconds: number;
  integrity: { lib: string; result: string }[];
  table: string[];
  cases: {
    k: number;
    type: string;
    seed: string;
    mutation: string;
    detail: string;
    sha: string;
    outcome: string;
    message: string;
    peakRss: number;
  }[];
}

function fuzz(args: string[], json: string): { status: number | null; out: string; report: Report } {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/fuzz/fuzz.ts', ...args, '--json', json, '--quiet'],
    { cwd: ROOT, encoding: 'utf8', timeout: 170_000 },
  );
  const out = `${r.stdout}\n${r.stderr}`;
  return { status: r.status, out, report: JSON.parse(readFileSync(json, 'utf8')) as Report };
}

test(
  'fuzz: 200 cases, no crash, hang or memory blow-up; libraries intact; a case replays exactly',
  { timeout: 360_000 },
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kdmri-fuzz-test-'));
    dirs.push(dir);
    const { status, out, report } = fuzz(['--cases', '200', '--seed', '1'], join(dir, 'run.json'));
    t.diagnostic(out.trim().split('\n').slice(-8).join('\n'));
    const bad = report.cases.filter((c) => ['crash', 'hang', 'memory'].includes(c.outcome));
    assert.deepEqual(
      bad.map(
        (c) => `case ${c.k} ${c.outcome}: ${c.type} ${c.seed} / ${c.mutation} (${c.detail}): ${c.message}`,
      ),
      [],
    );
    assert.equal(report.cases.length, 200);
    for (const i of report.integrity) assert.equal(i.result, 'ok', i.lib);
    assert.ok(report.peakRssMax < 1.5 * 2 ** 30, `peak RSS ${report.peakRssMax}`);
    for (const type of ['dicom', 'nifti', 'hdf5', 'png', 'crafted'])
      assert.ok(
        report.cases.some((c) => c.type === type),
        `no ${type} case`,
      );
    // a hostile file is refused, not taken: no crafted bomb or oversized claim is "ok" as is
    assert.ok(report.totals.refused > 0);
    assert.equal(status, 0, out);

    // replay: the first refused case, alone
    const pick = report.cases.find((c) => c.outcome === 'refused') ?? report.cases[0];
    const replay = fuzz(['--seed', '1', '--from', String(pick.k), '--cases', '1'], join(dir, 'replay.json'));
    const again = replay.report.cases[0];
    assert.equal(again.k, pick.k);
    assert.deepEqual(
      [again.seed, again.mutation, again.detail, again.sha, again.outcome],
      [pick.seed, pick.mutation, pick.detail, pick.sha, pick.outcome],
    );
  },
);
