/**
 * The services load src-main/studies/library.ts and import.ts directly (not index.ts): importing
 * through them must still read HDF5 and compressed DICOM (the readers register as side effects).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { openDatabase } from '../../src-main/store/db.js';
import { importPaths } from '../../src-main/studies/import.js';
import { getSeries, getSeriesSlice, listStudies } from '../../src-main/studies/library.js';
import { NO_PYDICOM, PYDICOM_DATA } from './helpers.js';

test('import.ts alone imports HDF5 and JPEG-LS files', async () => {
  const db = openDatabase(':memory:');
  const paths = [fileURLToPath(new URL('../fixtures/hdf5/kdmri_volume.h5', import.meta.url))];
  if (PYDICOM_DATA) paths.push(join(PYDICOM_DATA, 'MR_small_jpeg_ls_lossless.dcm'));
  else console.log(`JPEG-LS part skipped: ${NO_PYDICOM}`);
  const res = await importPaths(db, paths);
  assert.ok(
    res.every((r) => r.status === 'imported'),
    JSON.stringify(res),
  );
  const uid = res[0].seriesUid!;
  assert.equal(getSeries(db, uid)!.slices, 3);
  assert.deepEqual([getSeriesSlice(db, uid, 2)!.h, getSeriesSlice(db, uid, 2)!.w], [6, 5]);
  assert.equal(listStudies(db).length, PYDICOM_DATA ? 2 : 1);
  db.close();
});
