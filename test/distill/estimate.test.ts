// Duration estimates: the cost model against a hand count of what a job does, and the service's
// measure-once behaviour (timings kept in the library per network, size, batch and backend), with a
// typed stand-in for the measuring worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultDistillConfig, type DistillConfig } from '../../src-main/contract/domain.js';
import { estimateDuration, networkKey } from '../../src-main/distill/estimate.js';
import { createServices } from '../../src-main/services/index.js';
import { engine, type Engine } from '../../src-main/services/engine.js';

const T = { trainMs: 100, inferMs: 30, warmupMs: 500, latencyMs: 2000 };
const S = { trainMs: 40, inferMs: 10, warmupMs: 200, latencyMs: 800 };

function recon(
  epochs: number,
  batchSize: number,
  imitation: DistillConfig['imitation'] = 'off',
): DistillConfig {
  const c = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
  });
  return { ...c, imitation, training: { ...c.training, epochs, batchSize } };
}

test('the cost model counts what the job does, step by step', () => {
  // 30 training slices in batches of 4: 8 batches; 10 validation slices: 3 batches
  const e = estimateDuration({
    config: recon(2, 4),
    trainSlices: 30,
    valSlices: 10,
    teacher: T,
    student: S,
    csMsPerSlice: 50,
    startupMs: 3000,
    dataMs: 1000,
  });
  const epochs = (n: typeof T) => 2 * (8 * n.trainMs + 3 * n.inferMs) + n.warmupMs + n.latencyMs;
  const want = {
    teacher: epochs(T) + 3 * T.inferMs, // + scoring the validation split
    student: epochs(S) + 3 * S.inferMs,
    attention: epochs(S) + (8 + 3) * T.inferMs, // + the teacher cache, training and validation
    kd: epochs(S) + 3 * S.inferMs, // imitation off: no teacher outputs
  };
  assert.deepEqual(
    e.steps.map((s) => [s.step, Math.round(s.seconds * 1000)]),
    Object.entries(want),
  );
  assert.equal(Math.round(e.overheadSeconds * 1000), 3000 + 1000 + 50 * 10);
  const total = Object.values(want).reduce((a, b) => a + b, 0) + 4500;
  assert.ok(Math.abs(e.seconds * 1000 - total) < 1e-6);
  // with imitation the KD step runs the teacher over the training slices once (cached)
  const kd = estimateDuration({
    config: recon(2, 4, 'unit'),
    trainSlices: 30,
    valSlices: 10,
    teacher: T,
    student: S,
    csMsPerSlice: null,
    startupMs: 0,
    dataMs: 0,
  });
  assert.equal(Math.round(kd.steps[3].seconds * 1000), want.kd + 8 * T.inferMs);
});

test('a network is measured once per size, batch and backend; the figures come from the library after', async () => {
  const home = mkdtempSync(join(tmpdir(), 'kdmri-estimate-'));
  const calls: number[] = [];
  const measureJob: Engine['measureJob'] = async (init) => {
    calls.push(init.config.training.batchSize);
    const key = (spec: DistillConfig['teacher']) => ({
      what: networkKey(spec),
      h: 16,
      w: 16,
      batch: init.config.training.batchSize,
      backend: 'cpu',
    });
    return {
      backend: 'cpu',
      h: 16,
      w: 16,
      trainSlices: 30,
      valSlices: 10,
      dataMs: 1000,
      startupMs: 3000,
      teacher: T,
      student: S,
      csMsPerSlice: null,
      measured: ['teacher', 'student'],
      fresh: [
        { ...key(init.config.teacher), ...T },
        { ...key(init.config.student), ...S },
      ],
    };
  };
  const services = createServices({
    dbPath: join(home, 'kdmri.db'),
    dataDir: home,
    engine: { ...engine, measureJob },
  });
  try {
    const ds = services.db.datasets.create({
      name: 'x',
      source: 'sample',
      task: 'recon',
      h: 16,
      w: 16,
      trainSlices: 30,
      valSlices: 10,
      meta: {},
    });
    const config = { ...recon(1, 4), cs: null };
    const ask = async (c: DistillConfig, measure = true) => {
      const r = await services.call('estimateDistillation', { datasetId: ds.id, config: c, measure });
      assert.ok(r.ok, JSON.stringify(r));
      return (r.value as { estimate: { seconds: number; measured: string[] } | null }).estimate;
    };
    // without measuring, nothing is known yet
    assert.equal(await ask(config, false), null);
    assert.deepEqual(calls, []);
    const first = (await ask(config))!;
    assert.deepEqual(first.measured, ['teacher', 'student']);
    const again = (await ask({ ...config, training: { ...config.training, epochs: 150 } }, false))!;
    assert.deepEqual(again.measured, [], 'the second estimate needs no measurement (and asks for none)');
    assert.deepEqual(calls, [4]);
    // 149 more epochs of (8 training + 3 validation batches) per step: teacher 890 ms, the others 350 ms
    assert.ok(Math.abs(again.seconds - first.seconds - 149 * (0.89 + 3 * 0.35)) < 1e-9);
    assert.equal(
      services.db.timings.get({ what: networkKey(config.teacher), h: 16, w: 16, batch: 4, backend: 'cpu' })
        ?.trainMs,
      100,
    );
    // another batch size is another measurement
    await ask({ ...config, training: { ...config.training, batchSize: 8 } });
    assert.deepEqual(calls, [4, 8]);
    // an unknown dataset is named
    const bad = await services.call('estimateDistillation', { datasetId: 999, config });
    assert.ok(!bad.ok && bad.error.code === 'not-found' && /no dataset 999/.test(bad.error.message));
  } finally {
    await services.close();
    rmSync(home, { recursive: true, force: true });
  }
});
