/**
 * The CS baseline's periodic Daubechies wavelet: orthonormal (‖Ψx‖ = ‖x‖, Ψᵀ = Ψ⁻¹) at every size
 * the levels allow, and equal to PyWavelets' periodization transform (fixture from
 * scripts/fixtures/make_wavelet_fixtures.py) up to its documented index offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { forward2d, inverse2d, maxLevels, waveletPlan } from '../../src-main/recon/cs/wavelet.js';

const root = new URL('../..', import.meta.url).pathname;
const ref = JSON.parse(readFileSync(`${root}test/fixtures/cs/pywt-periodization.json`, 'utf8')) as {
  h: number;
  w: number;
  x: number[][];
  cases: { wavelet: string; cA: number[][]; cH: number[][]; cV: number[][]; cD: number[][] }[];
};

test('one level equals PyWavelets periodization (LL, and the three detail bands)', () => {
  const { h, w } = ref;
  for (const c of ref.cases) {
    const p = waveletPlan(h, w, c.wavelet, 1);
    assert.equal(p.levels, 1);
    const y = Float64Array.from(ref.x.flat());
    forward2d(p, y);
    const at = (r: number, col: number) => y[r * w + col];
    let worst = 0;
    for (let r = 0; r < h / 2; r++)
      for (let k = 0; k < w / 2; k++) {
        // ours: rows → [low | high] along columns, then columns → [low ; high] along rows
        worst = Math.max(
          worst,
          Math.abs(at(r, k) - c.cA[r][k]),
          Math.abs(at(r, k + w / 2) - c.cV[r][k]),
          Math.abs(at(r + h / 2, k) - c.cH[r][k]),
          Math.abs(at(r + h / 2, k + w / 2) - c.cD[r][k]),
        );
      }
    assert.ok(worst < 1e-12, `${c.wavelet}: max difference ${worst}`);
  }
});

test('orthonormal and exactly invertible, several levels, non-square sizes', () => {
  for (const [h, w, name] of [
    [64, 48, 'db4'],
    [40, 40, 'db2'],
    [128, 128, 'db8'],
  ] as const) {
    const p = waveletPlan(h, w, name, 4);
    assert.equal(p.levels, maxLevels(h, w, p.lo.length, 4));
    const x = Float64Array.from({ length: h * w }, (_, i) => Math.sin(i * 0.731) + ((i * 7919) % 13) / 13);
    const y = Float64Array.from(x);
    forward2d(p, y);
    const norm = (a: Float64Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
    assert.ok(Math.abs(norm(y) - norm(x)) / norm(x) < 1e-12, `${name} ${h}×${w}: energy`);
    inverse2d(p, y);
    let err = 0;
    for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(y[i] - x[i]));
    assert.ok(err < 1e-12, `${name} ${h}×${w}: reconstruction error ${err}`);
  }
  // 150 = 2·75: one level only; 75 is odd
  assert.equal(maxLevels(150, 150, 8, 4), 1);
  assert.throws(() => waveletPlan(8, 8, 'db5', 1), /unknown wavelet 'db5'/);
});
