/**
 * numpy's (and scipy's) answer for the Compare viewer's measurements on the same pixels: ROI mean,
 * population std (ddof 0), min, max and pixel count of img[r0:r1, c0:c1] in float64, and line
 * profiles by scipy.ndimage.map_coordinates (order 1, edges clamped), pixel centres at integer indices.
 * Shared by the unit test and the end-to-end test. Null when /usr/bin/python3 with numpy is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pixels } from '../../src-main/contract/api.js';
import type { PixelRect, Point } from '../../src-renderer/src/lib/measure.js';

export const PYTHON = '/usr/bin/python3';

export interface NumpyRoi {
  n: number;
  mean: number;
  std: number;
  min: number;
  max: number;
}

const SCRIPT = `
import json, sys
import numpy as np
spec = json.load(open(sys.argv[2]))
img = np.fromfile(sys.argv[1], dtype='<f4').reshape(spec['h'], spec['w']).astype(np.float64)
out = {'rois': [], 'profiles': []}
for r in spec['rects']:
    a = img[r['r0']:r['r1'], r['c0']:r['c1']]
    out['rois'].append({'n': int(a.size), 'mean': float(a.mean()), 'std': float(a.std()),
                        'min': float(a.min()), 'max': float(a.max())})
if spec['lines']:
    from scipy.ndimage import map_coordinates
for (a, b) in spec['lines']:
    length = float(np.hypot(b['x'] - a['x'], b['y'] - a['y']))
    steps = max(1, int(np.ceil(length)))
    t = np.arange(steps + 1) / steps
    xs = a['x'] + t * (b['x'] - a['x']) - 0.5
    ys = a['y'] + t * (b['y'] - a['y']) - 0.5
    xs = np.clip(xs, 0, spec['w'] - 1)
    ys = np.clip(ys, 0, spec['h'] - 1)
    out['profiles'].append(map_coordinates(img, [ys, xs], order=1, mode='nearest').tolist())
print(json.dumps(out))
`;

export function numpyMeasure(
  px: Pixels,
  rects: PixelRect[],
  lines: [Point, Point][] = [],
): { rois: NumpyRoi[]; profiles: number[][] } | null {
  if (!existsSync(PYTHON)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-measure-'));
  try {
    const raw = join(dir, 'img.f32');
    const spec = join(dir, 'spec.json');
    writeFileSync(raw, Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength));
    writeFileSync(spec, JSON.stringify({ h: px.h, w: px.w, rects, lines }));
    const r = spawnSync(PYTHON, ['-c', SCRIPT, raw, spec], { encoding: 'utf8' });
    if (/No module named 'numpy'/.test(r.stderr)) return null;
    if (r.status !== 0) throw new Error(`numpy reference failed: ${r.stderr.trim().split('\n').at(-1)}`);
    return JSON.parse(r.stdout) as { rois: NumpyRoi[]; profiles: number[][] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
