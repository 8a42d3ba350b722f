/** Backend selection under plain Node on this CPU-only machine, where tfjs-node cannot install. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;

/** Each case runs in a fresh process: a tfjs backend, once set, is process-wide. */
function run(code: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('automatic choice falls back past tfjs-node(-gpu) and a missing or software GPU to wasm, saying why', () => {
  const r = run(`
    import { initBackend } from './src-main/compute/backend.ts';
    const info = await initBackend();
    console.log(JSON.stringify(info));`);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out.trim().split('\n').at(-1)!);
  assert.equal(info.name, 'wasm');
  assert.equal(info.tfBackend, 'wasm');
  const byName = Object.fromEntries(
    info.tried.map((t: { name: string; reason: string }) => [t.name, t.reason]),
  );
  assert.match(byName['tensorflow-gpu'], /tfjs-node-gpu is not installed/);
  assert.match(byName['tensorflow'], /tfjs-node is not installed/);
  assert.ok(byName['webgpu'], 'webgpu was tried');
  assert.match(info.reason, /skipped/);
  assert.doesNotMatch(r.err + r.out, /looks like you are running TensorFlow\.js in Node/);
});

test('--backend cpu is honoured; an unavailable backend is a clear error', () => {
  const ok = run(`
    import { initBackend } from './src-main/compute/backend.ts';
    import * as tf from '@tensorflow/tfjs-core';
    const info = await initBackend({ prefer: 'cpu' });
    console.log(info.name, tf.getBackend());`);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /cpu cpu/);
  const bad = run(`
    import { initBackend } from './src-main/compute/backend.ts';
    try { await initBackend({ prefer: 'tensorflow' }); } catch (e) { console.log('ERR', e.message); }`);
  assert.match(
    bad.out,
    /ERR backend tensorflow is not available here: tensorflow: @tensorflow\/tfjs-node is not installed/,
  );
});
