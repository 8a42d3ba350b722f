// One composition root with static imports: a broken engine module fails start-up (and so every test
// that starts the services) instead of making its operations answer 'unavailable'.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const hook = new URL('./fixtures/break-module.mjs', import.meta.url).pathname;
const script = new URL('./fixtures/start-services.ts', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'kdmri-root-'));
after(() => rmSync(home, { recursive: true, force: true }));

function start(broken: string | null) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', hook, script, home], {
    cwd: root,
    env: { ...process.env, KDMRI_BREAK: broken ?? '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the services start on a fresh library and report versions, not module availability', () => {
  const r = start(null);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out) as { ok: boolean; value: Record<string, unknown> };
  assert.ok(info.ok);
  assert.equal(info.value.modules, undefined);
  assert.equal((info.value.versions as Record<string, string>).node, process.versions.node);
});

// modules the services used to load lazily by string path (a failure answered 'unavailable')
for (const broken of [
  'src-main/distill/service',
  'src-main/distill/data-source',
  'src-main/compute/backend',
  'src-main/studies/import',
  'src-main/data/volume',
]) {
  test(`a broken ${broken} fails start-up, naming the failure`, () => {
    const r = start(broken);
    assert.notEqual(r.code, 0, `start-up must fail; it printed ${r.out}`);
    assert.match(r.err, new RegExp(`broken on purpose: ${broken}`));
    assert.equal(r.out, '', 'no appInfo: the services never started');
  });
}
