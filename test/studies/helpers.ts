/** Shared test helpers: where pydicom's test files are, and the committed expectations. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { SeriesRecord } from '../../src-main/studies/library.js';

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

const ROOT = new URL('../..', import.meta.url).pathname;

/** `kdmri ARGS` as a user runs it (through tsx), with its library in `home` (KDMRI_HOME). */
export function runKdmri(home: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src-main/cli/entry.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, KDMRI_HOME: home },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

export function pyAvailable(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import pydicom'], { encoding: 'utf8' }).status === 0;
}

/**
 * A synthetic one-series record: `slices` 64×64 slices, slice k filled with `from + k`, 1 mm apart
 * along z (SOP UIDs `<uid>.<from + k>`).
 */
export function syntheticSeries(uid: string, slices: number, from = 0): SeriesRecord {
  return {
    patient: { id: 'P1', name: 'Test^Patient', birthDate: '', sex: '' },
    study: { uid: `${uid}.1`, date: '', time: '', description: 'study', accession: '', studyId: '' },
    series: {
      uid,
      modality: 'MR',
      description: 'synthetic',
      number: 1,
      rows: 64,
      cols: 64,
      spacingRow: 1,
      spacingCol: 1,
      sliceThickness: 1,
      sliceSpacing: 1,
      sourceKind: 'dicom',
      source: '/nowhere',
      attributes: {},
    },
    instances: Array.from({ length: slices }, (_, k) => ({
      sopUid: `${uid}.${from + k}`,
      sopClassUid: '',
      path: '/nowhere',
      frame: 0,
      instanceNumber: from + k + 1,
      position: [0, 0, from + k] as [number, number, number],
    })),
    slices: Array.from({ length: slices }, (_, k) => new Float32Array(64 * 64).fill(from + k)),
    normal: [0, 0, 1],
  };
}
