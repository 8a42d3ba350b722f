import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CheckpointError,
  loadCheckpoint,
  packTensors,
  removeCheckpoint,
  saveCheckpoint,
  unpackTensors,
  type Checkpoint,
} from '../../src-main/store/checkpoints.js';
import { tempDir } from './helpers.js';

const FIXTURE = new URL('./fixtures/crash-writer.ts', import.meta.url).pathname;

function sample(epoch: number): Checkpoint {
  return {
    epoch,
    bestEpoch: epoch - 1,
    bestValLoss: 0.25,
    weights: { 'model.json': `{"epoch":${epoch}}`, 'weights.bin': new Uint8Array([epoch, 1, 2, 3]) },
    optimizer: { data: new Float32Array([1.5, -2]).buffer, manifest: [{ name: 'm0', shape: [2] }] },
    rngState: { seed: 42, step: epoch },
    blobs: { 'best.bin': new Uint8Array([7, 7]) },
    meta: { format: 'tfjs', note: 'resume me' },
  };
}

test('loadCheckpoint returns null when there is none', () => {
  const dir = tempDir();
  assert.equal(loadCheckpoint(join(dir, 'never-created')), null);
  assert.equal(loadCheckpoint(dir), null);
});

test('save / load round-trips every field; strings stay strings, bytes stay bytes', () => {
  const dir = join(tempDir(), 'run-1');
  saveCheckpoint(dir, sample(3));
  const cp = loadCheckpoint(dir)!;
  assert.equal(cp.epoch, 3);
  assert.equal(cp.bestEpoch, 2);
  assert.equal(cp.bestValLoss, 0.25);
  assert.equal(cp.weights['model.json'], '{"epoch":3}');
  assert.deepEqual(cp.weights['weights.bin'], new Uint8Array([3, 1, 2, 3]));
  assert.deepEqual([...new Float32Array(cp.optimizer.data.slice().buffer)], [1.5, -2]);
  assert.deepEqual(cp.optimizer.manifest, [{ name: 'm0', shape: [2] }]);
  assert.deepEqual(cp.rngState, { seed: 42, step: 3 });
  assert.deepEqual(cp.blobs, { 'best.bin': new Uint8Array([7, 7]) });
  assert.deepEqual(cp.meta, { format: 'tfjs', note: 'resume me' });
  assert.ok(cp.savedAt > 1_600_000_000_000);
  assert.deepEqual(readdirSync(dir), ['checkpoint'], 'no tmp or old folder left');
});

test('a newer checkpoint replaces the older one; Infinity / NaN best losses survive JSON', () => {
  const dir = tempDir();
  saveCheckpoint(dir, {
    ...sample(1),
    bestValLoss: Infinity,
    bestEpoch: -1,
    rngState: undefined,
    blobs: undefined,
    meta: undefined,
  });
  const first = loadCheckpoint(dir)!;
  assert.equal(first.bestValLoss, Infinity);
  assert.equal(first.rngState, null);
  assert.deepEqual(first.blobs, {});
  saveCheckpoint(dir, { ...sample(2), bestValLoss: NaN });
  const second = loadCheckpoint(dir)!;
  assert.equal(second.epoch, 2);
  assert.ok(Number.isNaN(second.bestValLoss));
});

test('corrupt checkpoints raise CheckpointError naming the folder and the problem', () => {
  const dir = tempDir();
  const folder = join(dir, 'checkpoint');
  const expectCorrupt = (why: RegExp) =>
    assert.throws(
      () => loadCheckpoint(dir),
      (e: Error) => e instanceof CheckpointError && e.message.includes(folder) && why.test(e.message),
    );

  saveCheckpoint(dir, sample(1));
  writeFileSync(join(folder, 'w.weights.bin'), new Uint8Array([9, 9, 9, 9])); // same size, other bytes
  expectCorrupt(/w\.weights\.bin does not match its checksum/);

  saveCheckpoint(dir, sample(1));
  writeFileSync(join(folder, 'optimizer.bin'), new Uint8Array(3));
  expectCorrupt(/optimizer\.bin has 3 bytes, expected 8/);

  saveCheckpoint(dir, sample(1));
  rmSync(join(folder, 'b.best.bin'));
  expectCorrupt(/cannot read b\.best\.bin/);

  saveCheckpoint(dir, sample(1));
  writeFileSync(join(folder, 'manifest.json'), '{"format": "kdmri-checkp');
  expectCorrupt(/cannot read manifest\.json/);

  writeFileSync(join(folder, 'manifest.json'), '{"format": "something-else"}');
  expectCorrupt(/not a KD-MRI checkpoint/);

  rmSync(join(folder, 'manifest.json'));
  expectCorrupt(/cannot read manifest\.json/);

  // a fresh save repairs it
  saveCheckpoint(dir, sample(4));
  assert.equal(loadCheckpoint(dir)!.epoch, 4);
});

test('two generations are kept; a corrupt latest checkpoint falls back to the previous one', () => {
  const dir = tempDir();
  saveCheckpoint(dir, sample(1));
  saveCheckpoint(dir, sample(2));
  saveCheckpoint(dir, sample(3));
  assert.deepEqual(readdirSync(dir).sort(), ['checkpoint', 'checkpoint.prev']);
  const latest = loadCheckpoint(dir)!;
  assert.deepEqual([latest.epoch, latest.fellBack], [3, null]);
  // a torn write of the latest generation: same size, other bytes
  writeFileSync(join(dir, 'checkpoint', 'optimizer.bin'), new Uint8Array(8).fill(1));
  const cp = loadCheckpoint(dir)!;
  assert.equal(cp.epoch, 2);
  assert.deepEqual(cp.weights['weights.bin'], new Uint8Array([2, 1, 2, 3]));
  assert.match(cp.fellBack ?? '', /checkpoint\/?: optimizer\.bin does not match its checksum/);
  assert.match(cp.fellBack ?? '', /resuming from the previous checkpoint \(epoch 3\)/);
  // both generations corrupt: an error naming both
  writeFileSync(join(dir, 'checkpoint.prev', 'manifest.json'), '{');
  assert.throws(
    () => loadCheckpoint(dir),
    (e: Error) =>
      e instanceof CheckpointError &&
      /checkpoint:.*checksum/.test(e.message) &&
      /checkpoint\.prev:/.test(e.message),
  );
});

test('a checkpoint from a newer format version is refused clearly', () => {
  const dir = tempDir();
  saveCheckpoint(dir, sample(1));
  const manifest = join(dir, 'checkpoint', 'manifest.json');
  writeFileSync(manifest, JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), version: 99 }));
  assert.throws(() => loadCheckpoint(dir), /format version 99, newer than this application understands/);
});

test('crash leftovers: a partial checkpoint.tmp is ignored and cleaned; checkpoint.old is used when the swap was cut short', () => {
  const dir = tempDir();
  saveCheckpoint(dir, sample(5));
  // crash while writing the next one: a tmp folder without manifest
  mkdirSync(join(dir, 'checkpoint.tmp'));
  writeFileSync(join(dir, 'checkpoint.tmp', 'w.model.json'), '{"half":');
  assert.equal(loadCheckpoint(dir)!.epoch, 5);
  // crash between "checkpoint → checkpoint.old" and "checkpoint.tmp → checkpoint"
  renameSync(join(dir, 'checkpoint'), join(dir, 'checkpoint.old'));
  assert.equal(loadCheckpoint(dir)!.epoch, 5, 'falls back to checkpoint.old');
  saveCheckpoint(dir, sample(6));
  assert.equal(loadCheckpoint(dir)!.epoch, 6);
  assert.deepEqual(readdirSync(dir), ['checkpoint']);
});

test('a process killed while saving leaves the previous checkpoint loadable', () => {
  const dir = tempDir();
  saveCheckpoint(dir, sample(8));
  const res = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, 'checkpoint', dir], {
    encoding: 'utf8',
  });
  assert.equal(res.signal, 'SIGKILL', `child should die by SIGKILL: ${res.stderr}`);
  const cp = loadCheckpoint(dir)!;
  assert.equal(cp.epoch, 8);
});

test('bad input is refused before anything is written', () => {
  const dir = join(tempDir(), 'run');
  assert.throws(() => saveCheckpoint(dir, { ...sample(1), epoch: -1 }), /epoch must be an integer ≥ 0/);
  assert.throws(
    () => saveCheckpoint(dir, { ...sample(1), weights: { '../x': 'a' } }),
    /weights file: invalid name/,
  );
  assert.throws(
    () => saveCheckpoint(dir, { ...sample(1), optimizer: { data: [1, 2] as never, manifest: null } }),
    /optimizer\.data/,
  );
  assert.throws(
    () => saveCheckpoint(dir, { ...sample(1), meta: { big: 10n } as never }),
    /not JSON-serialisable/,
  );
  assert.equal(existsSync(dir), false);
});

test('removeCheckpoint removes every trace', () => {
  const dir = tempDir();
  saveCheckpoint(dir, sample(1));
  mkdirSync(join(dir, 'checkpoint.tmp'));
  removeCheckpoint(dir);
  assert.deepEqual(readdirSync(dir), []);
  assert.equal(loadCheckpoint(dir), null);
});

test('packTensors / unpackTensors round-trip, whatever the byte offset of the blob', () => {
  const tensors = [
    { name: 'conv1/kernel', shape: [3, 3, 1, 2], data: Float32Array.from({ length: 18 }, (_, i) => i / 3) },
    { name: 'conv1/bias', shape: [2], data: new Float32Array([0.5, -0.5]) },
    { name: 'scalar', shape: [], data: new Float32Array([42]) },
  ];
  const { data, manifest } = packTensors(tensors);
  assert.equal(data.byteLength, 21 * 4);
  assert.deepEqual(
    manifest.map((m) => [m.name, m.offset, m.length]),
    [
      ['conv1/kernel', 0, 18],
      ['conv1/bias', 18, 2],
      ['scalar', 20, 1],
    ],
  );
  // a blob that starts at an odd offset inside a larger buffer (as Buffer pools do)
  const shifted = new Uint8Array(data.byteLength + 1);
  shifted.set(data, 1);
  const back = unpackTensors(shifted.subarray(1), manifest);
  assert.deepEqual(back, tensors);
  // and through a checkpoint
  const dir = tempDir();
  saveCheckpoint(dir, { ...sample(1), optimizer: { data, manifest: manifest as never } });
  const cp = loadCheckpoint(dir)!;
  assert.deepEqual(unpackTensors(cp.optimizer.data, cp.optimizer.manifest as never), tensors);

  assert.throws(
    () => packTensors([{ name: 'w', shape: [2, 2], data: new Float32Array(3) }]),
    /w has 3 values but shape \[2,2\] needs 4/,
  );
  assert.throws(
    () => unpackTensors(new Uint8Array(8), [{ name: 'w', shape: [4], offset: 0, length: 4 }]),
    /w lies outside the 2-value blob/,
  );
  assert.throws(() => unpackTensors(new Uint8Array(6), []), /not whole float32s/);
});

test('a tensor manifest is JSON for the checkpoint without casts', () => {
  const { data, manifest } = packTensors([{ name: 'w', shape: [1], data: new Float32Array([1]) }]);
  const dir = tempDir();
  saveCheckpoint(dir, { ...sample(1), optimizer: { data, manifest }, meta: { weights: manifest } });
  assert.deepEqual(loadCheckpoint(dir)!.meta, { weights: manifest });
});
