/**
 * Run records: `kdmri runs --show ID` prints what reproduces a run, and `kdmri distill --like ID`
 * repeats it — the repetition's record (config, seeds, mask and its hash, data hashes, backend,
 * threads, versions) equals the original's except its ids and times. Tiny: 16×16, one epoch, the
 * teacher step only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src-main/store/db.js';
import type { RunRecord } from '../../src-main/store/db.js';
import { kdmriIn } from '../cli/helpers.js';

const home = mkdtempSync(join(tmpdir(), 'kdmri-like-'));
test.after(() => rmSync(home, { recursive: true, force: true }));
const kdmri = kdmriIn(home);

function records(): RunRecord[] {
  const db = openDatabase(join(home, 'kdmri.db'));
  try {
    return db.runs.list({}).map((r) => db.runRecords.get(r.id)!);
  } finally {
    db.close();
  }
}

test('runs --show prints the record; distill --like repeats it with an equal record', () => {
  const first = kdmri(
    'distill',
    '--size',
    '16',
    '--epochs',
    '1',
    '--steps',
    'teacher',
    '--acc',
    '5',
    '--mask',
    'random',
    '--mask-seed',
    '9',
    '--seed',
    '3',
    '--json',
  );
  assert.equal(first.code, 0, first.err);
  const [orig] = records();
  assert.ok(orig, 'the run has a record');

  const shown = kdmri('runs', '--show', String(orig.runId));
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, /seeds\s+weights 3, shuffle 3, mask 9/);
  assert.match(shown.out, new RegExp(`mask hash\\s+${orig.maskHash}`));
  assert.match(shown.out, new RegExp(`train hash\\s+${orig.trainHash}`));
  assert.match(shown.out, /backend\s+wasm, \d+ threads?/);
  assert.match(shown.out, /versions\s+app [\d.]+, TensorFlow\.js [\d.]+, Node v/);
  assert.match(shown.out, /"kind": "random"/);

  // --like takes no config options: it repeats the run's own
  const refused = kdmri('distill', '--like', String(orig.runId), '--epochs', '2');
  assert.equal(refused.code, 2);
  assert.match(refused.err, /--like repeats the run's own config: leave out --epochs/);

  const again = kdmri('distill', '--like', String(orig.runId), '--json');
  assert.equal(again.code, 0, again.err);
  const j = JSON.parse(again.out);
  assert.equal(j.repeated.of, orig.runId);
  assert.deepEqual(j.repeated.differences, []);

  const all = records();
  assert.equal(all.length, 2);
  const rep = all.find((r) => r.runId !== orig.runId)!;
  const strip = ({ runId, createdAt, ...rest }: RunRecord) => (void runId, void createdAt, rest);
  assert.deepEqual(strip(rep), strip(orig));
  assert.notEqual(rep.runId, orig.runId);

  const missing = kdmri('runs', '--show', '999');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /no run 999/);
});
