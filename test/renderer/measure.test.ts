// The Compare viewer's measurements (src-renderer/src/lib/measure.ts) against numpy / scipy on the
// same pixels: ROI mean, std (ddof 0), extremes, pixel count; line profiles against map_coordinates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lineProfile, rectFromDrag, roiStats } from '../../src-renderer/src/lib/measure.js';
import { Rng } from '../../src-main/util/random.js';
import { numpyMeasure, PYTHON } from './numpy-measure.js';

const skip = existsSync(PYTHON) ? false : `${PYTHON} (numpy reference) is not installed`;

/** A 24×32 image: a smooth ramp plus noise and a large offset (catches one-pass variance). */
function image() {
  const h = 24;
  const w = 32;
  const rng = new Rng(7);
  const data = new Float32Array(h * w);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) data[r * w + c] = 1000 + 0.01 * r + 0.02 * c + 0.05 * rng.next();
  return { h, w, data };
}

test('a dragged rectangle covers every pixel it touches, clipped to the image', () => {
  assert.deepEqual(rectFromDrag({ x: 3.2, y: 5.9 }, { x: 1.5, y: 2.1 }, 24, 32), {
    r0: 2,
    r1: 6,
    c0: 1,
    c1: 4,
  });
  assert.deepEqual(rectFromDrag({ x: -4, y: -4 }, { x: 40, y: 3 }, 24, 32), { r0: 0, r1: 3, c0: 0, c1: 32 });
  assert.equal(rectFromDrag({ x: -4, y: -4 }, { x: -1, y: 3 }, 24, 32), null);
  assert.throws(() => roiStats(image(), { r0: 0, r1: 25, c0: 0, c1: 2 }), /not inside a 24×32 image/);
});

test('ROI statistics equal numpy on the same pixels', { skip }, () => {
  const px = image();
  const rects = [
    { r0: 0, r1: 24, c0: 0, c1: 32 },
    { r0: 3, r1: 11, c0: 5, c1: 20 },
    { r0: 7, r1: 8, c0: 9, c1: 10 },
  ];
  const ref = numpyMeasure(px, rects);
  assert.ok(ref, 'numpy is available');
  rects.forEach((rect, i) => {
    const ours = roiStats(px, rect, 0.25);
    const np = ref.rois[i];
    assert.equal(ours.n, np.n);
    assert.equal(ours.area, np.n * 0.25);
    assert.ok(Math.abs(ours.mean - np.mean) <= 1e-12 * Math.abs(np.mean), `mean ${ours.mean} vs ${np.mean}`);
    assert.ok(Math.abs(ours.std - np.std) <= 1e-9 * Math.max(np.std, 1e-12), `std ${ours.std} vs ${np.std}`);
    assert.equal(ours.min, np.min);
    assert.equal(ours.max, np.max);
  });
});

test('line profiles equal scipy map_coordinates (bilinear) on the same pixels', { skip }, () => {
  const px = image();
  const lines: [{ x: number; y: number }, { x: number; y: number }][] = [
    [
      { x: 0.5, y: 0.5 },
      { x: 31.5, y: 23.5 },
    ],
    [
      { x: 2.25, y: 17.8 },
      { x: 20.1, y: 3.3 },
    ],
    [
      { x: -3, y: 4 },
      { x: 5, y: 4 },
    ],
  ];
  const ref = numpyMeasure(px, [], lines);
  assert.ok(ref);
  lines.forEach(([a, b], i) => {
    const ours = lineProfile(px, a, b);
    assert.equal(ours.value.length, ref.profiles[i].length);
    ours.value.forEach((v, k) =>
      assert.ok(Math.abs(v - ref.profiles[i][k]) < 1e-9, `sample ${k}: ${v} vs ${ref.profiles[i][k]}`),
    );
    assert.ok(Math.abs(ours.distance.at(-1)! - Math.hypot(b.x - a.x, b.y - a.y)) < 1e-12);
  });
});
