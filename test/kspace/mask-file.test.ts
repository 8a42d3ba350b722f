/**
 * --mask-file: a mask written by `kdmri mask` (PNG) or by NumPy (.npy, several dtypes and orders)
 * reads back as the same sampled lines; wrong shapes and non-Cartesian masks are refused clearly.
 * The .npy files are written by numpy itself (/usr/bin/python3), the independent reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMask, maskPlane } from '../../src-main/kspace/masks.js';
import { readMaskFile } from '../../src-main/kspace/mask-file.js';
import { writeGrayPng } from '../../src-main/data/png.js';
import { kdmriIn } from '../cli/helpers.js';
import { degradationFor } from '../../src-main/cli/model-args.js';
import { configFromOptions, type DistillOptions } from '../../src-main/cli/commands/distill.js';
import { maskFileArg } from '../../src-main/cli/options.js';
import { card } from '../store/helpers.js';

const PY = '/usr/bin/python3';
const hasNumpy = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
const sampled = (l: Uint8Array) => [...l].flatMap((v, i) => (v ? [i] : []));

const dir = mkdtempSync(join(tmpdir(), 'kdmri-maskfile-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a PNG written by kdmri mask reads back as the same lines, shape and true acceleration', () => {
  const run = kdmriIn(join(dir, 'home'));
  const png = join(dir, 'm.png');
  const r = run('mask', '--shape', '24x32', '--acc', '4', '--seed', '7', '--center-lines', '4', '--out', png);
  assert.equal(r.code, 0, r.err);
  const original = buildMask({ kind: 'cartesian', acc: 4, axis: 'rows', seed: 7, centerLines: 4 }, 24, 32);
  const spec = readMaskFile(png);
  assert.equal(spec.kind, 'file');
  assert.equal(spec.axis, 'rows');
  assert.deepEqual(spec.lines, sampled(original.lines));
  assert.deepEqual(spec.fileShape, [24, 32]);
  assert.equal(spec.acc, original.acceleration);
  // the spec rebuilds the same plane
  assert.deepEqual(maskPlane(buildMask(spec, 24, 32)), maskPlane(original));
});

test('a column mask (knee-like) is read along its columns', () => {
  const original = buildMask({ kind: 'equispaced', acc: 4, axis: 'cols', seed: 1 }, 16, 40);
  const png = join(dir, 'cols.png');
  writeGrayPng(png, maskPlane(original), 16, 40, [0, 1]);
  const spec = readMaskFile(png);
  assert.equal(spec.axis, 'cols');
  assert.equal(spec.lineCount, 40);
  assert.deepEqual(spec.lines, sampled(original.lines));
});

test(
  '.npy masks written by numpy (bool, uint8, float32 big-endian, float64 Fortran order, 1×H×W)',
  { skip: hasNumpy ? false : 'numpy (python3-numpy) is not installed' },
  () => {
    const original = buildMask({ kind: 'random', acc: 4, axis: 'rows', seed: 3 }, 20, 24);
    const rows = sampled(original.lines);
    const script = `
import numpy as np, sys
m = np.zeros((20, 24)); m[${JSON.stringify(rows)}, :] = 1
d = sys.argv[1]
np.save(d + '/b.npy', m.astype(bool))
np.save(d + '/u8.npy', m.astype(np.uint8))
np.save(d + '/f4be.npy', m.astype('>f4'))
np.save(d + '/f8f.npy', np.asfortranarray(m))
np.save(d + '/batch.npy', m[None].astype(np.float32))
np.save(d + '/cube.npy', np.zeros((2, 20, 24), np.uint8))
`;
    const r = spawnSync(PY, ['-c', script, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['b', 'u8', 'f4be', 'f8f', 'batch']) {
      const spec = readMaskFile(join(dir, `${f}.npy`));
      assert.deepEqual(spec.lines, rows, f);
      assert.deepEqual(spec.fileShape, [20, 24], f);
      assert.equal(spec.axis, 'rows', f);
    }
    assert.throws(
      () => readMaskFile(join(dir, 'cube.npy')),
      /expected a 2-D H×W array, got shape \(2, 20, 24\)/,
    );
  },
);

test('bad mask files are refused naming the file and the problem', () => {
  const original = buildMask({ kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 }, 32, 32);
  const png = join(dir, 'm32.png');
  writeGrayPng(png, maskPlane(original), 32, 32, [0, 1]);
  // shape checked against the images, both when read and when built
  assert.throws(() => readMaskFile(png, { h: 16, w: 16 }), /m32\.png is 32×32 but the images are 16×16/);
  assert.throws(() => buildMask(readMaskFile(png), 32, 16), /is 32×32 but the images are 32×16/);
  // not 1-D Cartesian
  const checker = new Float32Array(16 * 16).map((_, i) => ((i + Math.floor(i / 16)) % 2 ? 1 : 0));
  const bad = join(dir, 'checker.png');
  writeGrayPng(bad, checker, 16, 16, [0, 1]);
  assert.throws(() => readMaskFile(bad), /checker\.png: not a 1-D Cartesian mask/);
  // empty, wrong type, garbage, missing
  const empty = join(dir, 'empty.png');
  writeGrayPng(empty, new Float32Array(64), 8, 8, [0, 1]);
  assert.throws(() => readMaskFile(empty), /samples no lines/);
  const txt = join(dir, 'mask.txt');
  writeFileSync(txt, '1 0 1');
  assert.throws(() => readMaskFile(txt), /expected a \.png or \.npy file/);
  const junk = join(dir, 'junk.npy');
  writeFileSync(junk, 'not numpy at all');
  assert.throws(() => readMaskFile(junk), /junk\.npy: not a valid \.npy file/);
  // a header that claims more values than the file holds
  const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4000, 4000), }";
  const pad = 64 - ((10 + header.length + 1) % 64);
  const h = Buffer.from(`${header}${' '.repeat(pad)}\n`, 'latin1');
  const buf = Buffer.concat([
    Buffer.from([0x93]),
    Buffer.from('NUMPY\x01\x00', 'latin1'),
    Buffer.alloc(2),
    h,
  ]);
  buf.writeUInt16LE(h.length, 8);
  const liar = join(dir, 'liar.npy');
  writeFileSync(liar, buf);
  assert.throws(
    () => readMaskFile(liar),
    /liar\.npy: not a valid \.npy file \(4000×4000 values of 8 bytes need/,
  );
  assert.throws(() => readMaskFile(join(dir, 'nope.png')), /mask file .*nope\.png: cannot read/);
});

test('--mask-file reaches the degradation of eval/reconstruct (a saved model) and of distill/study', () => {
  const original = buildMask({ kind: 'cartesian', acc: 4, axis: 'rows', seed: 5 }, 64, 64);
  const png = join(dir, 'm64.png');
  writeGrayPng(png, maskPlane(original), 64, 64, [0, 1]);
  const maskFile = maskFileArg(png);
  const d = degradationFor(card('kd'), { maskFile });
  assert.ok(d.kind === 'mask' && d.mask.kind === 'file');
  assert.deepEqual(d.mask.lines, sampled(original.lines));
  assert.throws(() => degradationFor(card('kd'), { maskFile, acc: 8 }), /--mask-file gives the whole mask/);
  const sr = { ...card('kd'), degradation: { kind: 'lowres' as const, keep: 0.25 } };
  assert.throws(() => degradationFor(sr, { maskFile }), /restoration model/);
  const o = {
    task: 'recon',
    acc: 4,
    mask: { kind: 'cartesian', axis: 'rows' },
    maskFile,
    maskSeed: 42,
    keep: 0.25,
    epochs: 1,
    lrStep: 40,
    batch: 4,
    seed: 1,
    alpha: 0.5,
    atNorm: 'batch',
    residual: false,
    studentInit: 'attention',
    json: false,
  } as DistillOptions;
  const config = configFromOptions(o);
  assert.ok(config.degradation.kind === 'mask' && config.degradation.mask.kind === 'file');
  assert.equal(config.degradation.mask.acc, original.acceleration);
  assert.throws(() => configFromOptions({ ...o, task: 'sr' }), /--mask-file is for reconstruction/);
});

test('CLI: a bad --mask-file is a one-line error before anything runs', () => {
  const run = kdmriIn(join(dir, 'home'));
  const r = run('distill', '--mask-file', join(dir, 'checker.png'), '--epochs', '1');
  assert.notEqual(r.code, 0);
  assert.match(r.err, /checker\.png: not a 1-D Cartesian mask/);
  assert.doesNotMatch(r.err, /at .*\.ts:\d+/);
});
