/**
 * The multi-threaded wasm path (src-main/compute/wasm-threads.ts) against the single-threaded one:
 * the same tiny DC-CNN trained for a few Adam steps (forward, data consistency, backward through the
 * KD-MRI convolution-gradient kernels) gives the same loss curve and weights. Each thread count runs
 * in its own process (a tfjs backend is process-wide); each process must also exit by itself, which
 * it would not if XNNPACK's pool workers held the event loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tinyDcCnnPrelude } from './tiny-dccnn.js';

const root = new URL('../..', import.meta.url).pathname;

interface Run {
  backend: string;
  threads: number;
  losses: number[];
  weightSum: number;
  ms: number;
}

function train(threads: number): Run {
  const code = `${tinyDcCnnPrelude({ backend: 'wasm', nf: 16, size: 48 })}
    const opt = tf.train.adam(1e-2);
    const losses = [];
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) {
      const loss = opt.minimize(() => l1(net.apply({ input, kspace }).out, target), true, net.variables);
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    const ms = performance.now() - t0;
    const weightSum = net.variables.reduce((s, v) => s + tf.sum(tf.abs(v)).dataSync()[0], 0);
    console.log('RESULT ' + JSON.stringify({ backend: info.name, threads: info.threads, losses, weightSum, ms }));
`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, KDMRI_WASM_THREADS: String(threads) },
  });
  assert.equal(r.status, 0, `threads=${threads}: exit ${r.status ?? r.signal}; ${r.stderr.slice(-800)}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `threads=${threads}: no result in ${r.stdout.slice(-400)}`);
  return JSON.parse(line.slice(7)) as Run;
}

test('wasm with two XNNPACK threads trains exactly like one thread, and the process exits by itself', () => {
  const one = train(1);
  const two = train(2);
  assert.equal(one.backend, 'wasm');
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2, 'the threaded wasm path did not start two threads');
  assert.ok(one.losses[3] < one.losses[0], `loss should fall: ${one.losses}`);
  for (let i = 0; i < one.losses.length; i++) {
    assert.ok(
      Math.abs(one.losses[i] - two.losses[i]) <= 1e-6 * Math.abs(one.losses[i]),
      `step ${i}: loss ${two.losses[i]} (2 threads) vs ${one.losses[i]} (1 thread)`,
    );
  }
  assert.ok(
    Math.abs(one.weightSum - two.weightSum) <= 1e-6 * one.weightSum,
    `Σ|w| ${two.weightSum} (2 threads) vs ${one.weightSum} (1 thread)`,
  );
});

test('KDMRI_WASM_THREADS is checked, and defaults to the machine’s cores', async () => {
  const { wantedWasmThreads } = await import('../../src-main/compute/wasm-threads.js');
  assert.equal(wantedWasmThreads({}), 1, 'one thread unless asked (the threaded path can hang: see wasm-threads.ts)');
  assert.equal(wantedWasmThreads({ KDMRI_WASM_THREADS: '3' }), 3);
  assert.throws(
    () => wantedWasmThreads({ KDMRI_WASM_THREADS: 'two' }),
    /KDMRI_WASM_THREADS must be an integer/,
  );
  assert.throws(() => wantedWasmThreads({ KDMRI_WASM_THREADS: '0' }), /KDMRI_WASM_THREADS/);
});
