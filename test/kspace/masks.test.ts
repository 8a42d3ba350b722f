/** Masks: the exact KD-MRI presets, and the generators' documented properties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMask, maskPlane } from '../../src-main/kspace/masks.js';
import type { MaskSpec } from '../../src-main/contract/domain.js';

const spec = (s: Partial<MaskSpec>): MaskSpec => ({
  kind: 'cartesian',
  acc: 4,
  axis: 'rows',
  seed: 42,
  ...s,
});
const sampled = (l: Uint8Array) => [...l].flatMap((v, i) => (v ? [i] : []));

test('KD-MRI presets have the spec line counts and true accelerations', () => {
  const expect: [MaskSpec['preset'], number, number, number, number[]][] = [
    ['cardiac', 150, 150, 0, [37, 30, 18]],
    ['mrbrain', 240, 240, 0, [60, 48, 30]],
    ['knee', 640, 368, 1, [94, 74, 50]],
  ];
  for (const [preset, h, w, axisIdx, counts] of expect) {
    [4, 5, 8].forEach((acc, i) => {
      const m = buildMask(spec({ kind: 'preset', preset, acc }), h, w);
      assert.equal(m.axis, axisIdx ? 'cols' : 'rows');
      assert.equal(sampled(m.lines).length, counts[i], `${preset} ${acc}x`);
      assert.ok(Math.abs(m.acceleration - (axisIdx ? w : h) / counts[i]) < 1e-12);
    });
  }
  const cardiac8 = buildMask(spec({ kind: 'preset', preset: 'cardiac', acc: 8 }), 150, 150);
  assert.deepEqual(
    sampled(cardiac8.lines),
    [0, 1, 2, 3, 4, 8, 10, 12, 14, 26, 34, 132, 143, 145, 146, 147, 148, 149],
  );
  // knee masks are nested: the same random draw thresholded at three probabilities
  const knee = [8, 5, 4].map(
    (acc) => new Set(sampled(buildMask(spec({ kind: 'preset', preset: 'knee', acc }), 640, 368).lines)),
  );
  assert.ok([...knee[0]].every((i) => knee[1].has(i)) && [...knee[1]].every((i) => knee[2].has(i)));
});

test('a preset on the wrong image size is refused, naming both shapes', () => {
  assert.throws(
    () => buildMask(spec({ kind: 'preset', preset: 'mrbrain', acc: 4 }), 64, 64),
    /240×240 but the images are 64×64/,
  );
  assert.throws(
    () => buildMask(spec({ kind: 'preset', preset: 'cardiac', acc: 6 }), 150, 150),
    /4x, 5x and 8x/,
  );
});

test('cartesian (reference code) mask: floor(N/acc) lines, 10 centre lines at both ends, unshifted, seeded', () => {
  for (const [n, acc] of [
    [150, 4],
    [240, 8],
    [64, 4],
  ] as const) {
    const m = buildMask(spec({ acc }), n, n);
    assert.equal(sampled(m.lines).length, Math.floor(n / acc));
    for (const i of [0, 1, 2, 3, 4, n - 5, n - 4, n - 3, n - 2, n - 1])
      assert.equal(m.lines[i], 1, `line ${i} of ${n}`);
  }
  const a = buildMask(spec({ seed: 1 }), 150, 150);
  const b = buildMask(spec({ seed: 1 }), 150, 150);
  const c = buildMask(spec({ seed: 2 }), 150, 150);
  assert.deepEqual(a.lines, b.lines);
  assert.notDeepEqual(a.lines, c.lines);
});

test('random (fastMRI) mask: centre fraction block, expected acceleration near nominal over seeds', () => {
  const n = 368;
  let total = 0;
  for (let seed = 0; seed < 50; seed++) {
    const m = buildMask(spec({ kind: 'random', axis: 'cols', seed, centerFraction: 0.08 }), 640, n);
    for (let i = 0; i < 15; i++) assert.equal(m.lines[i], 1);
    for (let i = n - 14; i < n; i++) assert.equal(m.lines[i], 1);
    total += sampled(m.lines).length;
  }
  assert.ok(Math.abs(total / 50 - n / 4) < 4, `mean lines ${total / 50}`);
});

test('equispaced mask: every acc-th line plus the centre; the plane is constant along the other axis', () => {
  const m = buildMask(spec({ kind: 'equispaced', acc: 4, centerFraction: 0.08 }), 100, 30);
  const p = maskPlane(m);
  for (let r = 0; r < 100; r++) for (let c = 0; c < 30; c++) assert.equal(p[r * 30 + c], m.lines[r]);
  assert.ok(m.acceleration > 2.5 && m.acceleration < 4);
});
