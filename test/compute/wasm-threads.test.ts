/**
 * The multi-threaded wasm path (src-main/compute/wasm-threads.ts) against the single-threaded one:
 * the same tiny DC-CNN trained for a few Adam steps (forward, data consistency, backward through the
 * KD-MRI convolution-gradient kernels; the last two steps on the attention maps alone, through the
 * attention-energy kernels) gives the same loss curve and weights. Each thread count runs
 * in its own process (a tfjs backend is process-wide); each process must also exit by itself, which
 * it would not if XNNPACK's pool workers held the event loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { tinyDcCnnPrelude } from './tiny-dccnn.js';
import { compiledTwin } from '../../src-main/workers/spawn.js';

const root = new URL('../..', import.meta.url).pathname;

interface Run {
  backend: string;
  threads: number;
  losses: number[];
  weightSum: number;
  ms: number;
}

/** Run an ES module snippet in a fresh Node (tsx) with KDMRI_WASM_THREADS set; its `RESULT {json}` line. */
function runScript<T>(code: string, threads: number, timeout: number): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, KDMRI_WASM_THREADS: String(threads) },
  });
  assert.equal(r.status, 0, `threads=${threads}: exit ${r.status ?? r.signal}; ${r.stderr.slice(-800)}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `threads=${threads}: no result in ${r.stdout.slice(-400)} ${r.stderr.slice(-400)}`);
  return JSON.parse(line.slice(7)) as T;
}

function train(threads: number): Run {
  const code = `${tinyDcCnnPrelude({ backend: 'wasm', nf: 16, size: 48 })}
    const opt = tf.train.adam(1e-2);
    const losses = [];
    const t0 = performance.now();
    // the last two steps train the attention maps alone (the attention step's path: energy kernels, forward and backward)
    const attention = () => tf.addN(net.attentionMaps({ input, kspace }).map((e) => tf.mean(tf.abs(tf.sub(e, 1)))));
    for (let i = 0; i < 4; i++) {
      const f = i >= 2 ? attention : () => l1(net.apply({ input, kspace }).out, target);
      const loss = opt.minimize(f, true, net.variables);
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    const ms = performance.now() - t0;
    const weightSum = net.variables.reduce((s, v) => s + tf.sum(tf.abs(v)).dataSync()[0], 0);
    console.log('RESULT ' + JSON.stringify({ backend: info.name, threads: info.threads, losses, weightSum, ms }));
`;
  return runScript<Run>(code, threads, 120_000);
}

test('wasm with two XNNPACK threads trains exactly like one thread, and the process exits by itself', () => {
  const one = train(1);
  const two = train(2);
  assert.equal(one.backend, 'wasm');
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2, 'the threaded wasm path did not start two threads');
  assert.ok(
    one.losses[1] < one.losses[0] && one.losses[3] < one.losses[2],
    `loss should fall: ${one.losses}`,
  );
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
  assert.equal(wantedWasmThreads({}), Math.min(availableParallelism(), 8));
  assert.equal(wantedWasmThreads({ KDMRI_WASM_THREADS: '3' }), 3);
  assert.throws(
    () => wantedWasmThreads({ KDMRI_WASM_THREADS: 'two' }),
    /KDMRI_WASM_THREADS must be an integer/,
  );
  assert.throws(() => wantedWasmThreads({ KDMRI_WASM_THREADS: '0' }), /KDMRI_WASM_THREADS/);
});

test('threaded backends started at once in several worker threads all become ready', () => {
  // The library builds the pool worker's script once per pool worker (8 per backend); rewriting the
  // script file each time let a starting worker read it truncated, run nothing and exit, and the
  // backend then waited for it for ever (about 1 start in 5 with three starting at once under load).
  // Eight concurrent starts would have hit that with near certainty.
  const source = new URL('../../src-main/compute/backend.ts', import.meta.url).href;
  const twin = compiledTwin(source);
  const load = twin
    ? `import(${JSON.stringify(twin)})`
    : `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}); })`;
  const code = `
    const { Worker } = await import('node:worker_threads');
    const body = ${JSON.stringify(`
      (async () => {
        const { parentPort } = await import('node:worker_threads');
        try {
          const { initBackend } = await ${load};
          parentPort.postMessage((await initBackend({ prefer: 'wasm' })).threads);
        } catch (e) {
          parentPort.postMessage(String(e));
        }
      })();
    `)};
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 8 }, () => new Promise((resolve) => {
      const w = new Worker(body, { eval: true });
      const t = setTimeout(() => { resolve('timed out'); w.terminate(); }, 90_000);
      w.once('message', (m) => { clearTimeout(t); resolve(m); w.terminate(); });
      w.once('error', (e) => { clearTimeout(t); resolve(String(e)); });
    })));
    console.log('RESULT ' + JSON.stringify({ results, ms: Date.now() - started }));
  `;
  const { results } = runScript<{ results: unknown[] }>(code, 2, 150_000);
  assert.deepEqual(results, Array(8).fill(2), `backends: ${JSON.stringify(results)}`);
});

test('the threaded backend writes each pool script once, before any pool worker can read it', () => {
  // The deterministic half of the test above: count the writes of the pool worker's script while a
  // threaded backend starts (8 pool workers). Rewriting it per worker was the cause of the hang.
  const code = `
    import fs from 'node:fs';
    import { syncBuiltinESMExports } from 'node:module';
    const writes = {};
    const real = fs.writeFileSync;
    fs.writeFileSync = (p, ...rest) => {
      const name = String(p).split('/').pop();
      writes[name] = (writes[name] ?? 0) + 1;
      return real(p, ...rest);
    };
    syncBuiltinESMExports();
    const { initBackend } = await import('./src-main/compute/backend.ts');
    const info = await initBackend({ prefer: 'wasm' });
    console.log('RESULT ' + JSON.stringify({ threads: info.threads, writes }));
  `;
  const { threads, writes } = runScript<{
    threads: number;
    writes: Record<string, number>;
  }>(code, 2, 120_000);
  assert.equal(threads, 2);
  assert.equal(writes['pthread-worker.cjs'], 1, `pool worker script writes: ${JSON.stringify(writes)}`);
  assert.equal(writes['module.cjs'], 1, `module script writes: ${JSON.stringify(writes)}`);
});
