/**
 * Input limits on NIfTI: a decompression bomb is refused by `kdmri convert` from its header (time and
 * peak RSS measured with GNU time), declared sizes beyond the file are refused, the gzip inflater
 * stops at the cap, and the caps are configurable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip, deflateRawSync, gzipSync } from 'node:zlib';
import { readNifti, writeNifti } from '../../src-main/data/nifti.js';
import {
  LimitError,
  inflateRawBounded,
  inputLimits,
  openByteStream,
  parseSize,
  resetInputLimits,
  setInputLimits,
} from '../../src-main/data/limits.js';

const root = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'kdmri-limits-'));

/** A NIfTI-1 header (352 bytes with the extension flag) declaring nx×ny×nz of `datatype`. */
function header(nx: number, ny: number, nz: number, datatype = 4, bitpix = 16): Buffer {
  const b = Buffer.alloc(352);
  b.writeInt32LE(348, 0);
  [3, nx, ny, nz, 1, 1, 1, 1].forEach((d, i) => b.writeInt16LE(d, 40 + 2 * i));
  b.writeInt16LE(datatype, 70);
  b.writeInt16LE(bitpix, 72);
  [1, 1, 1, 1, 1, 1, 1, 1].forEach((v, i) => b.writeFloatLE(v, 76 + 4 * i));
  b.writeFloatLE(352, 108);
  b.write('n+1\0', 344, 'latin1');
  return b;
}

/** header + `zeroBytes` zeros as ONE gzip stream (level 1, like a careless writer; ~4.5 MB per GiB). */
async function gzipBomb(path: string, head: Buffer, zeroBytes: number): Promise<void> {
  const gz = createGzip({ level: 1 });
  const out = createWriteStream(path);
  gz.pipe(out);
  gz.write(head);
  const zeros = Buffer.alloc(64 * 2 ** 20);
  for (let left = zeroBytes; left > 0; left -= zeros.length) {
    if (!gz.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) await once(gz, 'drain');
  }
  gz.end();
  await once(out, 'close');
}

const bomb = join(dir, 'bomb.nii.gz');

test('a 9 MB .nii.gz declaring 1024×1024×512 int16 over 2 GiB of zeros: convert refuses it fast, in little memory', async () => {
  await gzipBomb(bomb, header(1024, 1024, 512), 2 * 2 ** 30);
  const size = statSync(bomb).size;
  assert.ok(size > 5e6 && size < 15e6, `bomb is ${size} bytes`);
  // in process: the refusal itself, without the CLI's start-up (module loading dominates the CLI figures)
  const rss0 = process.resourceUsage().maxRSS;
  const t = process.hrtime.bigint();
  assert.throws(
    () => readNifti(bomb),
    /volume 1024×1024×512 is over the 64 M voxel limit; raise it with --max-voxels/,
  );
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(
    `readNifti(bomb) refused in ${ms.toFixed(1)} ms, maxRSS +${process.resourceUsage().maxRSS - rss0} kB`,
  );
  assert.ok(ms < 2000);
  const hasTime = existsSync('/usr/bin/time');
  const cmd = [
    process.execPath,
    '--import',
    'tsx',
    'src-main/cli/entry.ts',
    'convert',
    bomb,
    join(dir, 'out.nii.gz'),
  ];
  const t0 = Date.now();
  const r = hasTime
    ? spawnSync('/usr/bin/time', ['-v', ...cmd], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    : spawnSync(cmd[0], cmd.slice(1), { cwd: root, encoding: 'utf8', timeout: 60_000 });
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /volume 1024×1024×512 is over the 64 M voxel limit; raise it with --max-voxels/);
  assert.ok(!existsSync(join(dir, 'out.nii.gz')), 'no output file');
  assert.ok(seconds < 30, `${seconds} s`);
  if (hasTime) {
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
    console.log(
      `bomb ${(size / 1e6).toFixed(1)} MB: refused in ${seconds.toFixed(2)} s, peak RSS ${(kb / 1024).toFixed(0)} MiB`,
    );
    assert.ok(kb > 0 && kb < 1.5e6, `peak RSS ${kb} kB`);
  }
});

test('with the voxel cap raised, the byte cap still refuses the bomb before inflating it', () => {
  setInputLimits({ maxVoxels: 2 ** 30 });
  try {
    const before = process.memoryUsage().rss;
    assert.throws(
      () => readNifti(bomb),
      /volume 1024×1024×512 \(2 G bytes\) is over the 1 G byte limit; raise it with --max-bytes/,
    );
    assert.ok(process.memoryUsage().rss - before < 200 * 2 ** 20);
  } finally {
    resetInputLimits();
  }
});

test('a bomb whose header declares a small volume: only the voxels needed are inflated', async () => {
  const p = join(dir, 'small-over-bomb.nii.gz');
  await gzipBomb(p, header(64, 64, 4), 512 * 2 ** 20);
  const before = process.resourceUsage().maxRSS;
  const v = readNifti(p);
  assert.deepEqual([v.slices, v.h, v.w], [4, 64, 64]);
  assert.ok(v.data.every((x) => x === 0));
  // 512 MiB inflated would show here; a few pieces of 16 KiB input do not
  assert.ok(process.resourceUsage().maxRSS - before < 100 * 1024, 'maxRSS grew by more than 100 MiB');
});

test('declared voxels beyond what the file holds are refused before allocating', () => {
  const plain = join(dir, 'short.nii');
  writeFileSync(plain, Buffer.concat([header(512, 512, 200), Buffer.alloc(1000)]));
  assert.throws(
    () => readNifti(plain),
    /short\.nii: truncated: the header declares 512×512×200 int16 \(100 M bytes after offset 352\), more than the file of .* can hold/,
  );
  // a gzip file cannot hold more than 1032 × its size
  const gz = join(dir, 'short.nii.gz');
  writeFileSync(gz, gzipSync(Buffer.concat([header(4096, 4096, 2), Buffer.alloc(100)])));
  assert.throws(() => readNifti(gz), /short\.nii\.gz: truncated: the header declares 4096×4096×2 int16/);
  // within the deflate bound but the stream ends early: refused when the data runs out
  const gz2 = join(dir, 'short2.nii.gz');
  writeFileSync(gz2, gzipSync(Buffer.concat([header(64, 64, 64), Buffer.alloc(100)]), { level: 0 }));
  assert.throws(() => readNifti(gz2), /truncated/);
});

test('the inflater stops at the cap; the stream reader stops at the byte cap; caps parse and configure', () => {
  const raw = deflateRawSync(Buffer.alloc(64 * 2 ** 20));
  assert.throws(
    () => inflateRawBounded(raw, 'test stream', 2 ** 20),
    (e: unknown) => {
      assert.ok(e instanceof LimitError);
      assert.match(e.message, /test stream inflates to more than 1 M bytes.*--max-bytes/);
      return true;
    },
  );
  assert.equal(inflateRawBounded(raw, 'test stream', 64 * 2 ** 20).length, 64 * 2 ** 20);
  // one 16 KiB piece of input inflates to a few MiB at most: the cap is checked after every piece
  const s = openByteStream(bomb, inputLimits(), 16 * 2 ** 20);
  try {
    assert.equal(s.read(1000).length, 1000);
    assert.throws(() => s.read(32 * 2 ** 20), /gzip stream inflates to more than 16 M bytes/);
  } finally {
    s.close();
  }
  assert.equal(parseSize('64M'), 64 * 2 ** 20);
  assert.equal(parseSize('1.5G'), 1.5 * 2 ** 30);
  assert.equal(parseSize('1000'), 1000);
  assert.equal(parseSize('-1'), null);
  assert.equal(parseSize('lots'), null);
  setInputLimits({ maxVoxels: 1000 });
  try {
    assert.equal(process.env.KDMRI_MAX_VOXELS, '1000', 'workers started later inherit the cap');
    const small = join(dir, 'small.nii');
    writeNifti(small, { data: new Float32Array(16 * 16 * 4), slices: 4, h: 16, w: 16 });
    assert.throws(
      () => readNifti(small),
      /volume 16×16×4 is over the 1000 voxel limit; raise it with --max-voxels/,
    );
  } finally {
    resetInputLimits();
  }
  assert.equal(inputLimits().maxVoxels, 64 * 2 ** 20);
});
