/**
 * HDF5 files with absurd sizes are refused quickly, with the file and the object named, through
 * `kdmri convert` and `kdmri import` (spawned with a 30 s timeout, so that a loop inside h5wasm fails
 * the test instead of hanging it).
 *
 * The files are the fixtures with 8-byte values overwritten the way the fuzzer's "dims" mutation
 * does (scripts/fuzz/mutate.ts hdf5Dims): 2^31 or 2^40 written over a pair of small little-endian
 * uint64 values. In a fastMRI fixture such pairs are the dataspace dimensions of "kspace" and the
 * {index, size} words of the global heap objects holding h5py's string attributes; the five fuzz
 * timeouts of seed 1 (cases 347, 1549, 2498, 6197, 9483) were all of the second kind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { checkGlobalHeaps } from '../../src-main/studies/hdf5/gheap.js';
import { readHdf5 } from '../../src-main/studies/hdf5/index.js';
import { kdmriIn } from '../cli/helpers.js';

const root = new URL('../..', import.meta.url).pathname;
const fixture = (f: string) => readFileSync(join(root, 'test/fixtures/hdf5', f));
const home = mkdtempSync(join(tmpdir(), 'kdmri-h5-corrupt-'));
const dir = join(home, 'in');
mkdirSync(dir);
const kdmri = kdmriIn(home, 30_000);

function withU64(src: Buffer, at: number[], v: bigint): Buffer {
  const b = Buffer.from(src);
  for (const o of at) b.writeBigUInt64LE(v, o);
  return b;
}

const single = fixture('fastmri_singlecoil.h5');
const multi = fixture('fastmri_multicoil.h5');
const gcolS = single.indexOf('GCOL');
const gcolM = multi.indexOf('GCOL');
// kspace (2, 8, 6): its dataspace message holds dims then max dims
const dims = Buffer.alloc(24);
[2n, 8n, 6n].forEach((d, i) => dims.writeBigUInt64LE(d, 8 * i));
const dimsAt = [single.indexOf(dims), single.indexOf(dims, single.indexOf(dims) + 1)];

/** A KD-MRI volfs 8×6×2 stored CHUNKED (HDF5 then opens it whatever its dims), version-0 headers. */
async function chunkedVolfs(): Promise<Buffer> {
  await h5wasm.ready;
  const p = join(home, 'chunked-src.h5');
  const f = new h5wasm.File(p, 'w', { libver: ['earliest', 'v108'] });
  f.create_dataset({
    name: 'volfs',
    data: new Float32Array(96).map((_, i) => i),
    shape: [8, 6, 2],
    chunks: [8, 6, 1],
  });
  f.close();
  assert.deepEqual(
    readHdf5(p).map((v) => [v.volume.slices, v.volume.h, v.volume.w]),
    [[2, 8, 6]],
  );
  const src = readFileSync(p);
  const d = Buffer.alloc(24);
  [8n, 6n, 2n].forEach((x, i) => d.writeBigUInt64LE(x, 8 * i));
  return withU64(src, [src.indexOf(d), src.indexOf(d, src.indexOf(d) + 1)], 2n ** 40n);
}

interface Case {
  file: string;
  bytes: Buffer;
  message: RegExp;
}

const cases: Case[] = [];

test('the crafted files: where the fuzzer’s values land', async () => {
  assert.equal(gcolS, 2944);
  assert.equal(gcolM, 5248);
  assert.ok(dimsAt[0] > 0 && dimsAt[1] > dimsAt[0], `kspace dims at ${dimsAt.join(', ')}`);
  cases.push(
    {
      // object 1's size (the acquisition string) = 2^31: the walk jumps past the collection
      file: 'heap-size-2e31.h5',
      bytes: withU64(single, [gcolS + 24], 2n ** 31n),
      message:
        /heap-size-2e31\.h5: HDF5 global heap collection at byte 2944 is corrupt: object 1 at byte 2960 declares 2147483648 bytes, past the collection's end at byte 7040/,
    },
    {
      // both words of object 1 = 2^40 (case 6197): index 0 (free space) of size 2^40, 0 in wasm32
      file: 'heap-both-2e40.h5',
      bytes: withU64(single, [gcolS + 16, gcolS + 24], 2n ** 40n),
      message:
        /heap-both-2e40\.h5: HDF5 global heap collection at byte 2944 is corrupt: its free-space object at byte 2960 declares 1099511627776 bytes/,
    },
    {
      // the 8 bytes from the collection size's last byte over object 1's index = 2^31 (case 1549)
      file: 'heap-index-2e31.h5',
      bytes: withU64(multi, [gcolM + 15], 2n ** 31n),
      message:
        /heap-index-2e31\.h5: HDF5 global heap collection at byte 5248 is corrupt: its free-space object at byte 5264 declares 4 bytes/,
    },
    {
      // kspace's first dimension (and max dimension) = 2^31 on contiguous storage: HDF5 refuses it
      file: 'kspace-dims-2e31.h5',
      bytes: withU64(single, dimsAt, 2n ** 31n),
      message: /kspace-dims-2e31\.h5: dataset "kspace" cannot be opened: HDF5 refuses its header as corrupt/,
    },
    {
      // chunked storage: HDF5 opens it; the shape check refuses it before any read
      file: 'volfs-dims-2e40.h5',
      bytes: await chunkedVolfs(),
      message:
        /volfs-dims-2e40\.h5: HDF5 dataset "volfs" 1099511627776×6×2 is over the 64 M voxel limit; raise it with --max-voxels/,
    },
  );
  for (const c of cases) writeFileSync(join(dir, c.file), c.bytes);
});

test('the unmodified fixtures pass the heap check (fastMRI files hold one collection)', () => {
  assert.equal(checkGlobalHeaps(join(root, 'test/fixtures/hdf5/fastmri_singlecoil.h5')), 1);
  assert.equal(checkGlobalHeaps(join(root, 'test/fixtures/hdf5/fastmri_multicoil.h5')), 1);
  assert.equal(checkGlobalHeaps(join(root, 'test/fixtures/hdf5/kdmri_volume.h5')), 0);
});

test('kdmri convert refuses each crafted file quickly, naming the file and what is wrong', () => {
  assert.equal(cases.length, 5);
  for (const c of cases) {
    const t0 = performance.now();
    const r = kdmri('convert', join(dir, c.file), join(home, 'out.nii'), '--index', '0');
    const s = (performance.now() - t0) / 1000;
    assert.notEqual(r.code, null, `${c.file}: convert did not finish within 30 s`);
    assert.notEqual(r.code, 0, `${c.file}: convert succeeded`);
    assert.match(r.err, c.message);
    // the CLI's own start (tsx, tfjs) is most of this on a loaded machine
    assert.ok(s < 20, `${c.file}: ${s.toFixed(1)} s`);
  }
});

test('kdmri import refuses each crafted file with the same reason and imports nothing', () => {
  const t0 = performance.now();
  const r = kdmri('import', dir, '--json');
  const s = (performance.now() - t0) / 1000;
  assert.notEqual(r.code, null, 'import did not finish within 30 s');
  assert.ok(s < 20, `${s.toFixed(1)} s`);
  const res = JSON.parse(r.out) as { path: string; status: string; message: string }[];
  assert.equal(res.length, cases.length);
  for (const c of cases) {
    const x = res.find((y) => y.path.endsWith(c.file));
    assert.ok(x, c.file);
    assert.equal(x.status, 'failed');
    assert.match(x.message, c.message);
  }
  const st = kdmri('studies', '--json');
  assert.equal(st.code, 0, st.err);
  assert.deepEqual(JSON.parse(st.out), []);
});
