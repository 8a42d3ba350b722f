/** Shared test helpers: where pydicom's test files are, and the committed expectations. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function findPydicomData(): string | null {
  const r = spawnSync(
    '/usr/bin/python3',
    ['-c', 'import pydicom, os; print(os.path.dirname(pydicom.__file__))'],
    { encoding: 'utf8' },
  );
  const dir = r.status === 0 ? join(r.stdout.trim(), 'data', 'test_files') : '';
  if (dir && existsSync(dir)) return dir;
  const fallback = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
  return existsSync(fallback) ? fallback : null;
}

/** pydicom's data/test_files folder, or null (tests then skip with this reason). */
export const PYDICOM_DATA = findPydicomData();
export const NO_PYDICOM =
  'python3-pydicom is not installed (apt-get install python3-pydicom): its test files are the reference';

export interface Stats {
  min: number;
  max: number;
  sum: number;
  samples: [number, number][];
}
export interface Expected {
  file: string;
  verified: boolean;
  reason?: string;
  transferSyntax: string | null;
  shape: [number, number, number];
  dtype: string;
  sha256Int32: string;
  raw: Stats;
  rescaled: Stats;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

export const EXPECTED = JSON.parse(
  readFileSync(new URL('../fixtures/dicom/pydicom-expected.json', import.meta.url), 'utf8'),
) as { files: Expected[]; dicomdir: { DICOMDIR: { images: string[]; series: number } } };

export function pyAvailable(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import pydicom'], { encoding: 'utf8' }).status === 0;
}
