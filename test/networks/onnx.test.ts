/**
 * ONNX export: teacher, student and KD models of both tasks, written from model folders as the app
 * saves them, run in ONNX Runtime (onnxruntime-node, CPU) on real slices of the bundled Colin27 sample
 * and matched against our own inference within 1e-4; every file passes Debian python3-onnx's
 * `onnx.checker.check_model(full_check=True)` (opset 17) and carries the model card as metadata.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import {
  degradationLabel,
  PRESET_NETWORKS,
  type Degradation,
  type ModelCard,
  type NetworkSpec,
  type RunKind,
} from '../../src-main/contract/domain.js';
import { createNetwork, encodeNetwork, type Network } from '../../src-main/networks/index.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { buildSliceBank, type SliceBank } from '../../src-main/distill/slice-bank.js';
import { predict } from '../../src-main/distill/evaluate.js';
import { writeModelOnnx } from '../../src-main/services/exports.js';
import { hwioToOihw } from '../../src-main/networks/onnx.js';

const PYTHON = '/usr/bin/python3';
const root = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'kdmri-onnx-'));

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

const MASK: Degradation = { kind: 'mask', mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 } };
const LOWRES: Degradation = { kind: 'lowres', keep: 0.25 };

/** Validation slices of the sample at `size`, as the app degrades them. */
function bank(size: number, degradation: Degradation, slices = 3): SliceBank {
  const val = loadDataSplit(undefined, size).val[0];
  const n = size * size;
  return buildSliceBank([{ ...val, data: val.data.slice(0, slices * n), slices }], degradation);
}

/** A model folder as the trainer writes it (model.json with the card, weights.bin). */
async function saveModel(
  net: Network,
  kind: RunKind,
  degradation: Degradation,
  size: number,
): Promise<string> {
  const card: ModelCard = {
    name: `${kind} ${net.spec.arch}`,
    kind,
    task: net.spec.arch === 'dccnn' ? 'recon' : 'sr',
    spec: net.spec,
    params: net.paramCount(),
    degradation,
    degradationLabel: degradationLabel(degradation),
    acceleration: degradation.kind === 'mask' ? 4 : null,
    data: { source: '/data/patients/Doe_John/t1.nii.gz', h: size, w: size, trainSlices: 30, valSlices: 10 },
    training: {
      epochs: 1,
      batchSize: 4,
      lr: 1e-3,
      lrStep: 40,
      lrGamma: 0.1,
      seed: 42,
      patience: null,
      epochsDone: 1,
      bestEpoch: 0,
      bestValLoss: 0.1,
      seconds: 1,
    },
    teacher: kind === 'kd' ? 'teacher dccnn' : null,
    backend: 'wasm',
    createdAt: new Date(0).toISOString(),
    metrics: null,
    compactness: null,
  };
  const { modelJson, weightData } = await encodeNetwork(net, card);
  const d = join(dir, `${kind}-${net.spec.arch}-${size}`);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'model.json'), JSON.stringify(modelJson));
  writeFileSync(join(d, 'weights.bin'), new Uint8Array(weightData));
  return d;
}

/** ONNX Runtime's output for the bank (all slices in one batch). */
async function runOnnx(file: string, b: SliceBank): Promise<{ out: Float32Array; zf?: Float32Array }> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2 });
  const n = b.count;
  const hw = b.h * b.w;
  let feeds: Record<string, ort.Tensor>;
  if (b.kre && b.kim && b.mask) {
    const k = new Float32Array(n * hw * 2);
    for (let i = 0; i < n * hw; i++) {
      k[2 * i] = b.kre[i];
      k[2 * i + 1] = b.kim[i];
    }
    feeds = {
      kspace: new ort.Tensor('float32', k, [n, b.h, b.w, 2]),
      mask: new ort.Tensor('float32', b.mask, [b.h, b.w]),
    };
  } else feeds = { input: new ort.Tensor('float32', b.input, [n, 1, b.h, b.w]) };
  const r = await s.run(feeds);
  await s.release();
  return { out: r.output.data as Float32Array, zf: r.zero_filled?.data as Float32Array | undefined };
}

const maxAbs = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** python3-onnx's checker (full check: shape inference) and the metadata it reads back. */
function pythonCheck(
  file: string,
): { ok: boolean; opset: number; ir: number; meta: Record<string, string>; inputs: string[] } | null {
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync(
    PYTHON,
    [
      '-c',
      `import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print(json.dumps({"ok": True, "opset": m.opset_import[0].version, "ir": m.ir_version,
  "meta": {p.key: p.value for p in m.metadata_props}, "inputs": [i.name for i in m.graph.input]}))`,
      file,
    ],
    { encoding: 'utf8' },
  );
  if (/No module named 'onnx'/.test(r.stderr)) return null;
  assert.equal(r.status, 0, `onnx.checker rejected ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const CASES: { kind: RunKind; spec: NetworkSpec; degradation: Degradation }[] = [
  { kind: 'teacher', spec: PRESET_NETWORKS.dccnnTeacher, degradation: MASK },
  { kind: 'student', spec: PRESET_NETWORKS.dccnnStudent, degradation: MASK },
  { kind: 'kd', spec: PRESET_NETWORKS.dccnnStudent, degradation: MASK },
  { kind: 'teacher', spec: PRESET_NETWORKS.vdsrTeacher, degradation: LOWRES },
  { kind: 'student', spec: PRESET_NETWORKS.vdsrStudent, degradation: LOWRES },
  { kind: 'kd', spec: PRESET_NETWORKS.vdsrStudent, degradation: LOWRES },
];

test('ONNX Runtime matches our inference within 1e-4 on real slices: teacher, student, KD of both tasks', async (t) => {
  const size = 64;
  const banks = { mask: bank(size, MASK), lowres: bank(size, LOWRES) };
  let checked = 0;
  for (const [i, c] of CASES.entries()) {
    const net = createNetwork(c.spec, 100 + i);
    const modelDir = await saveModel(net, c.kind, c.degradation, size);
    const file = join(dir, `${c.kind}-${c.spec.arch}.onnx`);
    const w = writeModelOnnx(modelDir, file, { version: 'test' });
    assert.ok(w.bytes > 4 * net.paramCount(), 'the weights are in the file');
    const b = banks[c.degradation.kind];
    const ours = predict(net, b);
    const theirs = await runOnnx(file, b);
    const d = maxAbs(theirs.out, ours);
    assert.ok(d < 1e-4, `${c.kind} ${c.spec.arch}: max |ONNX Runtime − ours| = ${d}`);
    t.diagnostic(`${c.kind} ${c.spec.arch}: max |ONNX Runtime − ours| = ${d.toExponential(2)}`);
    if (theirs.zf) assert.ok(maxAbs(theirs.zf, b.input) < 1e-5, 'the graph computes the zero-filled input');
    const py = pythonCheck(file);
    if (py) {
      checked++;
      assert.equal(py.opset, 17);
      assert.equal(py.ir, 8);
      assert.deepEqual(py.inputs, c.spec.arch === 'dccnn' ? ['kspace', 'mask'] : ['input']);
      const card = JSON.parse(py.meta['kdmri.card']) as ModelCard;
      assert.equal(card.kind, c.kind);
      assert.deepEqual(card.spec, net.spec);
      assert.equal(card.data.source, '/data/patients/Doe_John/t1.nii.gz');
    }
    net.dispose();
  }
  if (!checked) process.stderr.write('onnx.checker not run: Debian python3-onnx is not installed\n');
});

test('DC variants (soft λ, residual) and a non-power-of-two size, batch and size free in one file', async (t) => {
  const spec: NetworkSpec = {
    arch: 'dccnn',
    nc: 3,
    nd: 3,
    nf: 16,
    residual: true,
    dcLambda: 0.5,
    atLayer: 2,
  };
  const net = createNetwork(spec, 7);
  const modelDir = await saveModel(net, 'student', MASK, 48);
  const file = join(dir, 'soft.onnx');
  writeModelOnnx(modelDir, file, { version: 'test' });
  for (const [size, slices] of [
    [48, 2],
    [40, 3],
  ]) {
    const b = bank(size, MASK, slices);
    const d = maxAbs((await runOnnx(file, b)).out, predict(net, b));
    assert.ok(d < 1e-4, `${size}×${size}: max |ONNX Runtime − ours| = ${d}`);
    t.diagnostic(`soft DC, residual, ${size}×${size}: max |ONNX Runtime − ours| = ${d.toExponential(2)}`);
  }
  pythonCheck(file);
  net.dispose();
});

test('de-identified ONNX export: the card names a pseudonym, not the data source', async () => {
  const net = createNetwork(PRESET_NETWORKS.vdsrStudent, 3);
  const modelDir = await saveModel(net, 'kd', LOWRES, 32);
  const keys = new Map<string, string>();
  const { Deidentifier } = await import('../../src-main/studies/deidentify.js');
  const deid = new Deidentifier({
    obtain: (kind, original, make) => {
      const k = `${kind}:${original}`;
      if (!keys.has(k)) keys.set(k, make());
      return keys.get(k)!;
    },
  });
  const file = join(dir, 'deid.onnx');
  writeModelOnnx(modelDir, file, { version: 'test', deidentify: deid });
  const bytes = readFileSync(file);
  assert.ok(!bytes.includes('Doe_John'), 'no trace of the source path in the file');
  const py = pythonCheck(file);
  if (py) assert.match((JSON.parse(py.meta['kdmri.card']) as ModelCard).data.source, /^source-[0-9A-F]{8}$/);
  net.dispose();
});

test('HWIO → OIHW keeps every weight at its place', () => {
  const cin = 2;
  const cout = 3;
  const w = Float32Array.from({ length: 9 * cin * cout }, (_, i) => i);
  const o = hwioToOihw(w, cin, cout);
  for (let kh = 0; kh < 3; kh++)
    for (let kw = 0; kw < 3; kw++)
      for (let i = 0; i < cin; i++)
        for (let j = 0; j < cout; j++)
          assert.equal(o[((j * cin + i) * 3 + kh) * 3 + kw], w[((kh * 3 + kw) * cin + i) * cout + j]);
  assert.throws(() => hwioToOihw(w, 3, 3), /expected 3×3×3×3/);
});

test('kdmri export --model DIR --format onnx: a file ONNX Runtime runs; bad folders fail in one line', async () => {
  const net = createNetwork(PRESET_NETWORKS.dccnnStudent, 11);
  const modelDir = await saveModel(net, 'kd', MASK, 32);
  const out = join(dir, 'cli.onnx');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
      cwd: root,
      env: { ...process.env, KDMRI_HOME: dir },
      encoding: 'utf8',
      timeout: 120_000,
    });
  const r = cli('export', '--model', modelDir, '--format', 'onnx', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { files: string[]; opset: number; kind: string };
  assert.deepEqual([j.files, j.opset, j.kind], [[out], 17, 'kd']);
  const b = bank(32, MASK, 2);
  assert.ok(maxAbs((await runOnnx(out, b)).out, predict(net, b)) < 1e-4);

  const notModel = cli('export', '--model', dir, '--format', 'onnx', '--out', join(dir, 'x.onnx'));
  assert.notEqual(notModel.status, 0);
  assert.match(notModel.stderr, /not a model folder/);
  writeFileSync(join(modelDir, 'weights.bin'), new Uint8Array(10));
  const cut = cli('export', '--model', modelDir, '--format', 'onnx', '--out', join(dir, 'y.onnx'));
  assert.notEqual(cut.status, 0);
  assert.match(cut.stderr, /weights\.bin has 10 bytes/);
  assert.ok(!existsSync(join(dir, 'y.onnx')), 'no half-written file');
  const wrong = cli('export', '--model', modelDir, '--format', 'dicom', '--out', dir);
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /does not apply to a model/);
  assert.doesNotMatch(cut.stderr + notModel.stderr + wrong.stderr, /\n\s+at /, 'no stack trace');
  net.dispose();
});
