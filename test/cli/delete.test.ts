/**
 * `kdmri delete` as a user runs it: it says what will go, asks (and refuses to act unasked when not on
 * a terminal), needs --cascade for what depends on the target, and leaves the library without it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNifti } from '../../src-main/data/nifti.js';
import { openDatabase } from '../../src-main/store/db.js';
import { createDatasetFromSeries } from '../../src-main/studies/library.js';
import { kdmriIn } from './helpers.js';

const home = mkdtempSync(join(tmpdir(), 'kdmri-cli-delete-'));
after(() => rmSync(home, { recursive: true, force: true }));
const kdmri = kdmriIn(home);

test('kdmri delete: asks first, needs --cascade for what depends on it, then removes it', () => {
  const file = join(home, 'phantom.nii.gz');
  writeNifti(file, { data: new Float32Array(6 * 8 * 8).fill(0.25), slices: 6, h: 8, w: 8 });
  const imp = kdmri('import', file, '--json');
  assert.equal(imp.code, 0, imp.err);
  const uid = JSON.parse(imp.out)[0].seriesUid as string;
  const db = openDatabase(join(home, 'kdmri.db'));
  const ds = createDatasetFromSeries(db, uid);
  db.close();

  const unasked = kdmri('delete', 'series', uid, '--cascade');
  assert.equal(unasked.code, 2);
  assert.match(
    unasked.err,
    /delete series 1 NIfTI volume:\n {2}series \(1\): 1 NIfTI volume\n {2}datasets \(1\)/,
  );
  assert.match(
    unasked.err,
    /kdmri: not a terminal, so nothing was deleted: add --yes to delete without asking/,
  );

  const noCascade = kdmri('delete', 'series', uid, '--yes');
  assert.equal(noCascade.code, 1);
  assert.match(
    noCascade.err,
    /is used by 1 dataset built from it: delete them with it \(cascade\): add --cascade/,
  );

  const bad = kdmri('delete', 'dataset', 'first');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /a dataset is named by its number/);
  const unknown = kdmri('delete', 'study', '1.2.3', '--yes');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /kdmri: no study 1\.2\.3 in the library/);

  const done = kdmri('delete', 'series', uid, '--cascade', '--yes', '--json');
  assert.equal(done.code, 0, done.err);
  const outcome = JSON.parse(done.out);
  assert.equal(outcome.deleted, true);
  assert.deepEqual(outcome.plan.datasets, [{ id: ds.id, name: ds.name }]);
  assert.match(kdmri('studies').out, /the library is empty/);
  const check = openDatabase(join(home, 'kdmri.db'));
  assert.equal(check.datasets.get(ds.id), null);
  check.close();
});
