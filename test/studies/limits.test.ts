/**
 * No silent loss, no memory sized by a header claim, for DICOM: a malformed Number of Frames is
 * derived from the Pixel Data (compared with pydicom's pixel_array) with a warning; files without
 * UIDs convert and import with stable derived UIDs; DICOMDIR references outside the media folder
 * are refused; Rows×Columns claims past the Pixel Data, RLE segments and deflate bombs are refused
 * before allocating. The files are built here (pydicom for the UID-less file and the DICOMDIR).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { readNifti } from '../../src-main/data/nifti.js';
import { resetInputLimits, setInputLimits } from '../../src-main/data/limits.js';
import { openDatabase } from '../../src-main/store/db.js';
import { importPathsSync } from '../../src-main/studies/import.js';
import { existingInstances, listStudies } from '../../src-main/studies/library.js';
import { readDicomVolumes } from '../../src-main/studies/volumes.js';
import { retrieveSeries } from '../../src-main/studies/dicomweb.js';
import { codestreamSize } from '../../src-main/studies/dicom/codecs.js';
import { decodeStoredFrames } from '../../src-main/studies/dicom/decode.js';
import { parseDicom } from '../../src-main/studies/dicom/parse.js';
import { NO_PYDICOM, PYDICOM_DATA, runKdmri } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kdmri-dicom-limits-'));
const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const data = (f: string) => join(PYDICOM_DATA as string, f);

const kdmri = runKdmri;

function python(script: string, ...args: string[]): string {
  const r = spawnSync('/usr/bin/python3', ['-c', script, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Replace the value of the first element with this (group, element) tag, same length (little endian). */
function patchValue(bytes: Buffer, group: number, element: number, value: Buffer, implicit: boolean): Buffer {
  const tag = Buffer.from([group & 0xff, group >> 8, element & 0xff, element >> 8]);
  const at = bytes.indexOf(tag, 132);
  assert.ok(at > 0, 'tag found');
  const len = implicit ? bytes.readUInt32LE(at + 4) : bytes.readUInt16LE(at + 6);
  assert.equal(len, value.length, 'same value length');
  const out = Buffer.from(bytes);
  value.copy(out, at + 8);
  return out;
}

const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

test('RTDOSE with Number of Frames "1A": 15 frames as pydicom reads them, with a warning', { skip }, () => {
  const file = join(dir, 'rtdose_1A.dcm');
  // rtdose.dcm: implicit VR LE, 15 frames of 10×10 uint32; "15" → "1A" (an invalid IS)
  writeFileSync(file, patchValue(readFileSync(data('rtdose.dcm')), 0x0028, 0x0008, Buffer.from('1A'), true));
  const ref = JSON.parse(
    python(
      'import sys, json, pydicom; a = pydicom.dcmread(sys.argv[1]).pixel_array; print(json.dumps([list(a.shape), a.astype("int64").ravel().tolist()]))',
      data('rtdose.dcm'),
    ),
  ) as [number[], number[]];
  assert.deepEqual(ref[0], [15, 10, 10]);

  const obj = parseDicom(readFileSync(file));
  assert.equal(obj.pixel?.frames, 15);
  assert.match(
    obj.warnings.join('\n'),
    /Number of Frames "1A" is not a valid integer: 15 frames of 10×10 read/,
  );
  assert.deepEqual(Array.from(decodeStoredFrames(obj), (f) => Array.from(f)).flat(), ref[1]);

  const home = mkdtempSync(join(dir, 'home-'));
  const out = join(dir, 'rtdose.nii.gz');
  const r = kdmri(home, 'convert', file, out, '--json');
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out) as { slices: number; warnings: string[] };
  assert.equal(summary.slices, 15);
  assert.match(summary.warnings.join('\n'), /rtdose_1A\.dcm: Number of Frames "1A" is not a valid integer/);
  const v = readNifti(out);
  assert.deepEqual([v.slices, v.h, v.w], [15, 10, 10]);
  assert.deepEqual(Array.from(v.data), ref[1]);

  // encapsulated (RLE, explicit VR): one frame per fragment, compared with pydicom's reading
  const rle = patchValue(readFileSync(data('rtdose_rle.dcm')), 0x0028, 0x0008, Buffer.from('1A'), false);
  const robj = parseDicom(rle);
  assert.equal(robj.pixel?.frames, 15);
  assert.match(robj.warnings.join('\n'), /"1A" is not a valid integer: 15 frames read, one per fragment/);
  assert.deepEqual(Array.from(decodeStoredFrames(robj), (f) => Array.from(f)).flat(), ref[1]);

  // a malformed count the data cannot explain (not a whole number of frames) is refused with a reason
  const bad = join(dir, 'rtdose_1A_cut.dcm');
  const bytes = readFileSync(file);
  writeFileSync(bad, bytes.subarray(0, bytes.length - 200));
  assert.throws(
    () => parseDicom(readFileSync(bad)),
    /Number of Frames "1A" is not a valid integer, and the Pixel Data/,
  );
});

test(
  'a DICOM without Series and SOP Instance UID converts, and imports twice with the same derived UIDs',
  { skip },
  () => {
    const file = join(dir, 'nouid.dcm');
    python(
      `import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
del ds.SeriesInstanceUID
del ds.SOPInstanceUID
del ds.file_meta.MediaStorageSOPInstanceUID
ds.save_as(sys.argv[2])`,
      data('MR_small.dcm'),
      file,
    );
    assert.equal(
      python(
        'import sys, pydicom; ds = pydicom.dcmread(sys.argv[1]); print("SOPInstanceUID" in ds, ds.pixel_array.shape)',
        file,
      ).trim(),
      'False (64, 64)',
    );
    // convert reads it as `kdmri convert` does (the CLI path is exercised by the RTDOSE test)
    const read = readDicomVolumes(file)!;
    const v = read.volumes[0];
    assert.deepEqual([v.slices, v.h, v.w], [1, 64, 64]);
    assert.match(read.warnings.join('\n'), /no SOP Instance UID/);

    const home = mkdtempSync(join(dir, 'home-'));
    const a = kdmri(home, 'import', file, '--json');
    assert.equal(a.code, 0, a.err);
    const first = (JSON.parse(a.out) as { status: string; seriesUid: string; warnings?: string[] }[])[0];
    assert.equal(first.status, 'imported');
    assert.match(first.seriesUid, /^2\.25\.\d+$/);
    assert.match(
      first.warnings!.join('\n'),
      /no SOP Instance UID: 2\.25\.\d+ derived from the file's content/,
    );
    assert.match(
      first.warnings!.join('\n'),
      /no Series Instance UID: 2\.25\.\d+ derived from the series attributes/,
    );
    // a copy elsewhere has the same content: the same UIDs, and nothing is added
    const copy = join(mkdtempSync(join(dir, 'copy-')), 'again.dcm');
    copyFileSync(file, copy);
    const b = kdmri(home, 'import', copy, '--json');
    assert.equal(b.code, 0, b.err);
    const second = (JSON.parse(b.out) as { status: string; seriesUid: string; message: string }[])[0];
    assert.equal(second.status, 'skipped');
    assert.equal(second.seriesUid, first.seriesUid);
    assert.match(second.message, /already in the library/);
    const db = openDatabase(join(home, 'kdmri.db'));
    try {
      const series = listStudies(db).flatMap((p) => p.studies.flatMap((x) => x.series));
      assert.deepEqual(
        series.map((x) => x.uid),
        [first.seriesUid],
        'one series, no duplicate',
      );
      assert.equal(existingInstances(db, first.seriesUid).size, 1);
    } finally {
      db.close();
    }
  },
);

test(
  'DICOMDIR references that leave its folder are refused with a reason; the inside one imports',
  { skip },
  () => {
    const media = join(dir, 'media');
    mkdirSync(join(media, 'IMG'), { recursive: true });
    copyFileSync(data('CT_small.dcm'), join(media, 'IMG', 'CT1'));
    copyFileSync(data('MR_small.dcm'), join(dir, 'OUTSIDE'));
    python(
      `import sys, pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
fm = FileMetaDataset()
fm.MediaStorageSOPClassUID = '1.2.840.10008.1.3.10'
fm.MediaStorageSOPInstanceUID = '1.2.826.0.1.3680043.8.498.1'
fm.TransferSyntaxUID = '1.2.840.10008.1.2.1'
ds = Dataset()
ds.file_meta = fm
ds.is_little_endian = True
ds.is_implicit_VR = False
ds.FileSetID = 'TEST'
recs = []
for ref in (['IMG', 'CT1'], ['..', 'OUTSIDE'], ['IMG', '..', '..', 'OUTSIDE'], ['', 'etc', 'passwd']):
    r = Dataset()
    r.DirectoryRecordType = 'IMAGE'
    r.ReferencedFileID = ref
    recs.append(r)
ds.DirectoryRecordSequence = Sequence(recs)
ds.save_as(sys.argv[1], write_like_original=False)`,
      join(media, 'DICOMDIR'),
    );
    const db = openDatabase(':memory:');
    try {
      const res = importPathsSync(db, [join(media, 'DICOMDIR')]);
      const refused = res.filter((r) => r.status === 'failed');
      assert.equal(refused.length, 3, JSON.stringify(res, null, 1));
      assert.ok(refused.some((r) => /"..\/OUTSIDE", outside its folder: not followed/.test(r.message)));
      assert.ok(refused.some((r) => /"IMG\/..\/..\/OUTSIDE", outside its folder/.test(r.message)));
      assert.ok(refused.some((r) => /"\/etc\/passwd", an absolute path/.test(r.message)));
      assert.ok(
        res.some(
          (r) =>
            r.status === 'skipped' &&
            /1 referenced files followed, 3 outside its folder refused/.test(r.message),
        ),
      );
      assert.ok(res.some((r) => r.status === 'imported' && r.path.endsWith('CT1')));
      assert.ok(!res.some((r) => r.path.endsWith('OUTSIDE') && r.status === 'imported'));
      const modalities = listStudies(db).flatMap((p) =>
        p.studies.flatMap((s) => s.series.map((x) => x.modality)),
      );
      assert.deepEqual(modalities, ['CT']);
    } finally {
      db.close();
    }
  },
);

test(
  'Rows×Columns claims past the Pixel Data are refused before anything large is allocated',
  { skip },
  () => {
    const mr = readFileSync(data('MR_small.dcm')); // explicit VR LE, 64×64 16-bit
    const rss0 = process.resourceUsage().maxRSS;
    // over the voxel cap: refused from the header
    const huge = patchValue(
      patchValue(mr, 0x0028, 0x0010, us(60000), false),
      0x0028,
      0x0011,
      us(60000),
      false,
    );
    assert.throws(
      () => parseDicom(huge),
      /image 60000×60000×1 is over the 64 M voxel limit; raise it with --max-voxels/,
    );
    // under the cap but past the 8 KiB of Pixel Data: refused by length
    const big = patchValue(patchValue(mr, 0x0028, 0x0010, us(4096), false), 0x0028, 0x0011, us(4096), false);
    assert.throws(
      () => parseDicom(big),
      /truncated Pixel Data: 1 frames of 4096×4096 × 16 bits need 33554432 bytes, 8192 present/,
    );
    // RLE: a segment far too short for the claimed plane
    const rle = readFileSync(data('MR_small_RLE.dcm'));
    const rleBig = patchValue(
      patchValue(rle, 0x0028, 0x0010, us(4096), false),
      0x0028,
      0x0011,
      us(4096),
      false,
    );
    assert.throws(
      () => decodeStoredFrames(parseDicom(rleBig)),
      /corrupt RLE frame: segment 1 \(\d+ bytes\) cannot hold 4096×4096 pixels/,
    );
    // JPEG-LS and JPEG 2000: the codestream's own size is read from its markers and compared
    // before the codec is asked to allocate
    for (const [file, name] of [
      ['MR_small_jpeg_ls_lossless.dcm', 'JPEG-LS'],
      ['MR_small_jp2klossless.dcm', 'JPEG 2000'],
    ]) {
      const claim = patchValue(
        patchValue(readFileSync(data(file)), 0x0028, 0x0010, us(4096), false),
        0x0028,
        0x0011,
        us(4096),
        false,
      );
      const obj = parseDicom(claim);
      assert.deepEqual(codestreamSize(obj.frameBytes(0)), { width: 64, height: 64 });
      assert.throws(
        () => decodeStoredFrames(obj),
        new RegExp(`${name}: frame is 64×64, the header says 4096×4096`),
      );
    }
    // the same through import: one failed result with the reason
    const f = join(dir, 'big.dcm');
    writeFileSync(f, big);
    const db = openDatabase(':memory:');
    try {
      const [r] = importPathsSync(db, [f]);
      assert.equal(r.status, 'failed');
      assert.match(r.message, /truncated Pixel Data/);
    } finally {
      db.close();
    }
    const grown = (process.resourceUsage().maxRSS - rss0) / 1024;
    assert.ok(grown < 64, `maxRSS grew by ${grown.toFixed(0)} MiB`);
  },
);

/** Explicit VR little endian element (short or long form by VR). */
function el(group: number, element: number, vr: string, value: Buffer, length = value.length): Buffer {
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(length, 8);
  else h.writeUInt16LE(length, 6);
  return Buffer.concat([h, value]);
}
const ui = (s: string) => Buffer.from(s.length % 2 ? `${s}\0` : s, 'latin1');

test('a deflated data set whose image is past the byte cap is refused before its pixels are inflated', () => {
  const n = 8192; // 8192×8192 16-bit: 64 M voxels (at the voxel cap), 128 MiB of zero pixels
  const body = Buffer.concat([
    el(0x0008, 0x0016, 'UI', ui('1.2.840.10008.5.1.4.1.1.4')),
    el(0x0008, 0x0018, 'UI', ui('1.2.3.4')),
    el(0x0020, 0x000e, 'UI', ui('1.2.3.5')),
    el(0x0028, 0x0002, 'US', us(1)),
    el(0x0028, 0x0004, 'CS', Buffer.from('MONOCHROME2 ')),
    el(0x0028, 0x0010, 'US', us(n)),
    el(0x0028, 0x0011, 'US', us(n)),
    el(0x0028, 0x0100, 'US', us(16)),
    el(0x0028, 0x0101, 'US', us(16)),
    el(0x0028, 0x0102, 'US', us(15)),
    el(0x0028, 0x0103, 'US', us(0)),
    el(0x7fe0, 0x0010, 'OW', Buffer.alloc(n * n * 2)),
  ]);
  const deflated = deflateRawSync(body, { level: 1 });
  const metaBody = Buffer.concat([
    el(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    el(0x0002, 0x0002, 'UI', ui('1.2.840.10008.5.1.4.1.1.4')),
    el(0x0002, 0x0003, 'UI', ui('1.2.3.4')),
    el(0x0002, 0x0010, 'UI', ui('1.2.840.10008.1.2.1.99')),
  ]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(metaBody.length);
  const file = Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM'),
    el(0x0002, 0x0000, 'UL', len),
    metaBody,
    deflated,
  ]);
  setInputLimits({ maxBytes: 32 * 2 ** 20 });
  try {
    assert.throws(
      () => parseDicom(file),
      // the image size, read from the first inflated bytes, is refused before its pixels are inflated
      /image 8192×8192×1 \(256 M bytes\) is over the 32 M byte limit; raise it with --max-bytes/,
    );
  } finally {
    resetInputLimits();
  }
  // within the default caps the same file reads (64 M voxels is allowed)
  const obj = parseDicom(file, { untilPixels: true });
  assert.equal(obj.pixel?.rows, n);
});

const h5py =
  spawnSync('/usr/bin/python3', ['-c', 'import h5py'], { encoding: 'utf8' }).status === 0
    ? false
    : 'python3-h5py is not installed (apt-get install python3-h5py): it writes the HDF5 files';

test('HDF5 dataset shapes are checked against the caps before anything is read', { skip: h5py }, () => {
  const file = join(dir, 'huge.h5');
  // chunked and compressed with nothing written: a few kB on disk declaring 100000×640×368 complex
  python(
    `import sys, h5py
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('kspace', shape=(100000, 640, 368), dtype='complex64', chunks=(1, 64, 368), compression='gzip')
with h5py.File(sys.argv[2], 'w') as f:
    f.create_dataset('volfs', shape=(4096, 4096, 64), dtype='float32', chunks=(64, 64, 1), compression='gzip')`,
    file,
    join(dir, 'huge-kd.h5'),
  );
  const rss0 = process.resourceUsage().maxRSS;
  const db = openDatabase(':memory:');
  try {
    const [a] = importPathsSync(db, [file]);
    assert.equal(a.status, 'failed');
    assert.match(
      a.message,
      /HDF5 dataset "kspace" 100000×640×368 is over the 64 M voxel limit; raise it with --max-voxels/,
    );
    const [b] = importPathsSync(db, [join(dir, 'huge-kd.h5')]);
    assert.equal(b.status, 'failed');
    assert.match(b.message, /HDF5 dataset "volfs" 4096×4096×64 is over the 64 M voxel limit/);
  } finally {
    db.close();
  }
  const grown = (process.resourceUsage().maxRSS - rss0) / 1024;
  assert.ok(grown < 64, `maxRSS grew by ${grown.toFixed(0)} MiB`);
});

test('a WADO-RS response past the byte cap is refused while it downloads', async () => {
  // a server that streams 64 MiB of multipart with no Content-Length
  const srv = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=b' });
    const chunk = Buffer.alloc(2 ** 20);
    let sent = 0;
    const pump = () => {
      while (sent < 64 && res.write(chunk)) sent++;
      if (sent >= 64) res.end();
      else res.once('drain', pump);
    };
    pump();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  setInputLimits({ maxBytes: 4 * 2 ** 20 });
  try {
    await assert.rejects(
      retrieveSeries({ url: `http://127.0.0.1:${port}` }, '1.2', '1.2.3'),
      /WADO-RS response for series 1\.2\.3 is over the 4 M byte limit; raise it with --max-bytes/,
    );
  } finally {
    resetInputLimits();
    srv.closeAllConnections();
    srv.close();
  }
});
