/**
 * The compressed-sensing baseline against Debian's BART (`bart pics`, ℓ1-wavelet, unitary, -S) on
 * the same k-space and mask, on real brain slices (Colin27, the bundled sample): within 0.5 dB PSNR
 * of BART at its best λ of a few, and above zero-filled, at 4x and 8x.
 *
 * Layouts: ours is unshifted (DC at index 0); BART's FFT is centred, so k-space and mask are
 * fftshifted on the way in and its image fftshifted back. A .cfl file is complex64, interleaved,
 * column-major: dims [W, H] make its bytes our row-major H×W order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNifti } from '../../src-main/data/nifti.js';
import { resampleSlices, selectSlices } from '../../src-main/data/volume.js';
import { sampleDataPath } from '../../src-main/data/sample.js';
import { buildMask, maskPlane } from '../../src-main/kspace/masks.js';
import { undersampleSlice } from '../../src-main/kspace/undersample.js';
import { csReconstruct } from '../../src-main/recon/cs/index.js';
import { psnr } from '../../src-main/metrics/psnr.js';

const bart = spawnSync('bart', ['version'], { encoding: 'utf8' });
const skip = bart.error ? 'bart (Debian package bart) is not installed' : false;

const N = 128;
const SLICES = [20, 30];
const ITERATIONS = 100;
const OURS = [0.001, 0.002, 0.004];
const BART = [0.001, 0.002, 0.005, 0.01];

function shift2(a: ArrayLike<number>): Float32Array {
  // fftshift = ifftshift for even sizes
  const out = new Float32Array(N * N);
  for (let r = 0; r < N; r++)
    for (let c = 0; c < N; c++) out[((r + N / 2) % N) * N + ((c + N / 2) % N)] = a[r * N + c];
  return out;
}

function writeCfl(base: string, re: ArrayLike<number>, im: ArrayLike<number> | null): void {
  writeFileSync(`${base}.hdr`, `# Dimensions\n${N} ${N} ${'1 '.repeat(14).trim()}\n`);
  const buf = new Float32Array(2 * N * N);
  for (let i = 0; i < N * N; i++) {
    buf[2 * i] = re[i];
    buf[2 * i + 1] = im ? im[i] : 0;
  }
  writeFileSync(`${base}.cfl`, new Uint8Array(buf.buffer));
}

function readMagnitude(base: string): Float32Array {
  const b = readFileSync(`${base}.cfl`);
  const f = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return Float32Array.from({ length: N * N }, (_, i) => Math.hypot(f[2 * i], f[2 * i + 1]));
}

test('CS is within 0.5 dB of BART pics (ℓ1-wavelet) and above zero-filled at 4x and 8x', { skip }, () => {
  const vol = resampleSlices(readNifti(sampleDataPath()), N);
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-bart-'));
  execFileSync('bart', ['ones', '2', String(N), String(N), join(dir, 'sens')]);
  const report: string[] = [];
  for (const acc of [4, 8]) {
    const plane = maskPlane(buildMask({ kind: 'cartesian', acc, axis: 'rows', seed: 42 }, N, N));
    const zf: number[] = [];
    const ours = new Map<number, number[]>();
    const theirs = new Map<number, number[]>();
    for (const z of SLICES) {
      const src = selectSlices(vol, z, z + 1).data;
      let max = 0;
      for (const v of src) max = Math.max(max, v);
      const x = Float32Array.from(src, (v) => v / max);
      const u = undersampleSlice(x, N, N, plane);
      zf.push(psnr(x, u.zf, 1));
      for (const lambda of OURS) {
        const r = csReconstruct(u.kre, u.kim, plane, N, N, {
          lambda,
          iterations: ITERATIONS,
          wavelet: 'db4',
          levels: 4,
        });
        ours.set(lambda, [...(ours.get(lambda) ?? []), psnr(x, r, 1)]);
      }
      writeCfl(join(dir, 'k'), shift2(u.kre), shift2(u.kim));
      for (const lambda of BART) {
        execFileSync(
          'bart',
          [
            'pics',
            '-S',
            '-l1',
            '-r',
            String(lambda),
            '-i',
            String(ITERATIONS),
            join(dir, 'k'),
            join(dir, 'sens'),
            join(dir, 'o'),
          ],
          { stdio: 'ignore' },
        );
        const out = shift2(readMagnitude(join(dir, 'o')));
        theirs.set(lambda, [...(theirs.get(lambda) ?? []), psnr(x, out, 1)]);
      }
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const best = (m: Map<number, number[]>) => Math.max(...[...m.values()].map(mean));
    const o = best(ours);
    const b = best(theirs);
    const z = mean(zf);
    report.push(`${acc}x: zero-filled ${z.toFixed(2)}, ours ${o.toFixed(2)}, BART ${b.toFixed(2)} dB`);
    assert.ok(
      o >= b - 0.5,
      `${acc}x: CS ${o.toFixed(2)} dB is more than 0.5 dB below BART's ${b.toFixed(2)}`,
    );
    assert.ok(o > z + 0.5, `${acc}x: CS ${o.toFixed(2)} dB is not above zero-filled ${z.toFixed(2)}`);
  }
  process.stdout.write(`# ${report.join('; ')}\n`);
});
