/**
 * `kdmri reconstruct --method cs`: with a fully sampled mask the output is the input itself (data
 * consistency keeps every measured coefficient: analytic), in the input's intensity scale; the output
 * has the input's affine, qform and sform as nibabel reads them; undersampled, CS beats the zero-filled
 * input it also writes. The input is written by nibabel (an oblique sform/qform, slope-scaled int16).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeGrayPng } from '../../src-main/data/png.js';
import { buildMask, maskPlane } from '../../src-main/kspace/masks.js';
import { kdmriIn } from '../cli/helpers.js';

const PY = '/usr/bin/python3';
const hasNibabel = spawnSync(PY, ['-c', 'import nibabel, numpy'], { encoding: 'utf8' }).status === 0;
const skip = hasNibabel ? false : 'nibabel (python3-nibabel) is not installed';

const dir = mkdtempSync(join(tmpdir(), 'kdmri-cs-recon-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const run = kdmriIn(join(dir, 'home'));

// 3 slices of 24 rows × 32 columns: x = 32 (i), y = 24 (j); a smooth blob plus an edge, int16 with
// scl_slope 0.5 so that "the input's scale" is not the stored integers
const MAKE = `
import numpy as np, nibabel as nib, sys
i, j = np.meshgrid(np.arange(32), np.arange(24), indexing='ij')
vol = np.stack([1000 * np.exp(-((i - 16 - k) ** 2 + (j - 12) ** 2) / 60.0) + 300 * (i > 20) + 50 * k for k in range(3)], axis=2)
a = np.array([[0.9, 0.1, 0, -10], [-0.1, 0.8, 0.2, 20], [0, -0.2, 3.0, 30], [0, 0, 0, 1]])
img = nib.Nifti1Image(np.round(vol * 2).astype(np.int16), a)
img.header.set_slope_inter(0.5, 0)
img.set_qform(a, code=1)
img.set_sform(a, code=2)
nib.save(img, sys.argv[1])
`;

/** nibabel's view of a file: affine, codes, shape, data (float, slope applied). */
function nib(path: string) {
  const r = spawnSync(
    PY,
    [
      '-c',
      `import nibabel as nib, json, sys
img = nib.load(sys.argv[1]); h = img.header
print(json.dumps({"affine": img.affine.tolist(), "qform": h.get_qform().tolist(), "sform": h.get_sform().tolist(),
  "codes": [int(h["qform_code"]), int(h["sform_code"])], "shape": list(img.shape),
  "data": img.get_fdata().transpose(2, 1, 0).ravel().tolist()}))`,
      path,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    affine: number[][];
    qform: number[][];
    sform: number[][];
    codes: number[];
    shape: number[];
    data: number[];
  };
}

const close = (a: number[][], b: number[][], tol: number) =>
  a.every((row, r) => row.every((v, c) => Math.abs(v - b[r][c]) <= tol));

test('a fully sampled mask gives back the input, in its scale, with its affine (nibabel)', { skip }, () => {
  const input = join(dir, 'in.nii.gz');
  const made = spawnSync(PY, ['-c', MAKE, input], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const full = join(dir, 'full.png');
  writeGrayPng(full, new Float32Array(24 * 32).fill(1), 24, 32, [0, 1]);
  const out = join(dir, 'cs-full.nii.gz');
  const r = run(
    'reconstruct',
    '--method',
    'cs',
    '--input',
    input,
    '--mask-file',
    full,
    '--out',
    out,
    '--iterations',
    '3',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).method, 'cs');
  const a = nib(input);
  const b = nib(out);
  assert.deepEqual(b.shape, a.shape);
  assert.deepEqual(b.codes, [1, 2]);
  assert.ok(
    close(b.affine, a.affine, 1e-5),
    `affine ${JSON.stringify(b.affine)} vs ${JSON.stringify(a.affine)}`,
  );
  assert.ok(close(b.qform, a.qform, 1e-5) && close(b.sform, a.sform, 1e-5));
  // every k-space coefficient measured: the reconstruction is the input (float32 FFT round trip)
  let maxErr = 0;
  let peak = 0;
  a.data.forEach((v, i) => {
    maxErr = Math.max(maxErr, Math.abs(v - b.data[i]));
    peak = Math.max(peak, v);
  });
  assert.ok(peak > 1000, `input peak ${peak}`);
  assert.ok(maxErr <= 1e-4 * peak, `max |out − in| = ${maxErr} of ${peak}`);
});

test(
  'undersampled 4x: CS is closer to the input than the zero-filled image it writes beside it',
  { skip },
  () => {
    const input = join(dir, 'in.nii.gz');
    const out = join(dir, 'cs4.nii.gz');
    const zf = join(dir, 'zf4.nii.gz');
    const r = run(
      'reconstruct',
      '--method',
      'cs',
      '--input',
      input,
      '--acc',
      '4',
      '--mask',
      'equispaced',
      '--out',
      out,
      '--degraded',
      zf,
      '--iterations',
      '60',
    );
    assert.equal(r.code, 0, r.err);
    const [a, c, z] = [nib(input), nib(out), nib(zf)];
    const err = (x: number[]) => Math.sqrt(x.reduce((s, v, i) => s + (v - a.data[i]) ** 2, 0));
    assert.ok(err(c.data) < err(z.data), `CS error ${err(c.data)} vs ZF ${err(z.data)}`);
    assert.ok(close(c.affine, a.affine, 1e-5) && close(z.affine, a.affine, 1e-5));
  },
);

test('a mask file of another shape, or CS without a mask, is a one-line error', { skip }, () => {
  const input = join(dir, 'in.nii.gz');
  const m = join(dir, 'm16.png');
  writeGrayPng(
    m,
    maskPlane(buildMask({ kind: 'cartesian', acc: 4, axis: 'rows', seed: 1, centerLines: 4 }, 16, 16)),
    16,
    16,
    [0, 1],
  );
  const r = run(
    'reconstruct',
    '--method',
    'cs',
    '--input',
    input,
    '--mask-file',
    m,
    '--out',
    join(dir, 'x.nii.gz'),
  );
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /mask file m16\.png is 16×16 but the images are 24×32/);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
});
