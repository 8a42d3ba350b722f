/**
 * The GPU code path, tested on a CPU-only machine: WebGPU through Dawn's OpenGL ES backend on Mesa's
 * llvmpipe (Debian libegl1, libgles2, libegl-mesa0). A tiny DC-CNN (with the data-consistency kernel)
 * trains a few Adam steps there (forward, DC, backward through the webgpu backend's own conv
 * gradients and our DC gradient) and its loss curve must match wasm's. Each backend runs in its own
 * process (a tfjs backend is process-wide).
 *
 * Until 2026-12-01 these runs crashed inside Dawn more often than not: src-main/compute/webgpu.ts let
 * the garbage collector take the Dawn instance behind the adapter. Real GPUs were not available here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tinyDcCnnPrelude } from './tiny-dccnn.js';

const root = new URL('../..', import.meta.url).pathname;

function train(backend: 'webgpu' | 'wasm'): {
  backend: string;
  adapter?: { isSoftware: boolean; description: string };
  losses: number[];
} {
  const code = `${tinyDcCnnPrelude({ backend, nf: 4, size: 16 })}
    const opt = tf.train.adam(1e-2);
    const losses = [];
    for (let i = 0; i < 5; i++) {
      const loss = opt.minimize(() => l1(net.apply({ input, kspace }).out, target), true, net.variables);
      losses.push((await loss.data())[0]);
      loss.dispose();
    }
    losses.push((await tf.sum(net.apply({ input, kspace }).out).data())[0]);
    // Written synchronously: Dawn on llvmpipe may crash while the process tears down, which would lose
    // an asynchronous pipe write.
    (await import('node:fs')).writeSync(1, 'RESULT ' + JSON.stringify({ backend: info.name, adapter: info.adapter, losses }) + '\\n');
`;
  // A crash of Dawn or the driver is retried (twice at most) so that the test is about our code;
  // measured after the fix in webgpu.ts: 16 of 16 training runs completed.
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: root,
      encoding: 'utf8',
      timeout: 240_000,
    });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (line) return JSON.parse(line.slice(7));
    last = `exit ${r.status ?? r.signal}: ${r.stderr.split('\n').slice(-5).join(' | ')}`;
  }
  assert.fail(`${backend} run failed three times (${last})`);
}

test('a tiny DC-CNN with data consistency trains on WebGPU (llvmpipe) like on wasm: same loss curve', () => {
  const gpu = train('webgpu');
  const cpu = train('wasm');
  assert.equal(gpu.backend, 'webgpu');
  assert.equal(
    gpu.adapter?.isSoftware,
    true,
    'this CI machine has no GPU: the adapter must be recognised as software',
  );
  assert.equal(cpu.backend, 'wasm');
  assert.ok(cpu.losses[4] < cpu.losses[0], `the loss should fall: ${cpu.losses}`);
  gpu.losses.forEach((l, i) =>
    assert.ok(
      Math.abs(l - cpu.losses[i]) / cpu.losses[i] < 1e-3,
      `${i < 5 ? `step ${i} loss` : 'Σ output after training'}: webgpu ${l} vs wasm ${cpu.losses[i]}`,
    ),
  );
});

test('without a GPU device, automatic selection does not even probe WebGPU and says why', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      "import { initWebGpu } from './src-main/compute/webgpu.ts'; console.log(JSON.stringify(await initWebGpu({ allowSoftware: false })));",
    ],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(res.ok, false);
  assert.match(res.reason, /no GPU device|software adapter/);
});
