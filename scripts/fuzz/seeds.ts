/**
 * The fuzzer's seeds: every DICOM, NIfTI, HDF5 and PNG fixture of the repository, small files made by
 * the project's own writers (so that each type has a seed without optional system packages), and
 * hostile files crafted here (decompression bombs, declared sizes far past the data, malformed counts,
 * missing UIDs).
 *
 * The crafted DICOM files are encoded by hand (explicit VR little endian) because they must be wrong
 * in ways a conforming writer refuses to produce.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 as zcrc32, deflateRawSync, constants } from 'node:zlib';
import { writeNifti } from '../../src-main/data/nifti.js';
import { volumeToDicom } from '../../src-main/studies/export.js';
import { EXPECTED, PYDICOM_DATA } from '../../test/studies/helpers.js';
import { deflateZeros, pngChunk, type FileType } from './mutate.js';

export interface Seed {
  name: string;
  type: FileType;
  ext: string;
  bytes: Uint8Array;
}

const ROOT = new URL('../../', import.meta.url).pathname;

const extOf = (name: string) => (/\.nii\.gz$/i.test(name) ? '.nii.gz' : (/\.[^.]+$/.exec(name)?.[0] ?? ''));

function filesIn(dir: string, re: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n));
}

// DICOM by hand ----------------------------------------------------------------------------------------

const LONG = new Set(['OB', 'OW', 'OF', 'SQ', 'UN', 'UT']);

/** One explicit VR little endian element; `len` overrides the encoded length (for lies). */
function el(group: number, element: number, vr: string, value: Uint8Array | string, len?: number): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
  if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? [0] : vr === 'OB' ? [0] : [0x20])]);
  const long = LONG.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(len ?? v.length, 8);
  else h.writeUInt16LE(len ?? v.length, 6);
  return Buffer.concat([h, v]);
}

const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

function part10(transferSyntax: string, sopClass: string, sopUid: string, dataset: Buffer): Buffer {
  const metaBody = Buffer.concat([
    el(0x0002, 0x0001, 'OB', new Uint8Array([0, 1])),
    el(0x0002, 0x0002, 'UI', sopClass),
    el(0x0002, 0x0003, 'UI', sopUid),
    el(0x0002, 0x0010, 'UI', transferSyntax),
    el(0x0002, 0x0012, 'UI', '1.2.3.4.5.6.7'),
  ]);
  const groupLen = Buffer.alloc(4);
  groupLen.writeUInt32LE(metaBody.length);
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, el(0x0002, 0x0000, 'UL', groupLen), metaBody, dataset]);
}

const MR = '1.2.840.10008.5.1.4.1.1.4';
const RTDOSE = '1.2.840.10008.5.1.4.1.1.481.2';
const EXPLICIT = '1.2.840.10008.1.2.1';

/** Image attributes (group 0028) in tag order; `frames` as the raw IS text. */
function imagePixel(rows: number, cols: number, frames: string | null, bits = 16): Buffer[] {
  return [
    el(0x0028, 0x0002, 'US', us(1)),
    el(0x0028, 0x0004, 'CS', 'MONOCHROME2'),
    ...(frames === null ? [] : [el(0x0028, 0x0008, 'IS', frames)]),
    el(0x0028, 0x0010, 'US', us(rows)),
    el(0x0028, 0x0011, 'US', us(cols)),
    el(0x0028, 0x0100, 'US', us(bits)),
    el(0x0028, 0x0101, 'US', us(bits)),
    el(0x0028, 0x0102, 'US', us(bits - 1)),
    el(0x0028, 0x0103, 'US', us(0)),
  ];
}

function identity(
  sopClass: string,
  sopUid: string | null,
  seriesUid: string | null,
  modality: string,
): Buffer[] {
  return [
    el(0x0008, 0x0016, 'UI', sopClass),
    ...(sopUid ? [el(0x0008, 0x0018, 'UI', sopUid)] : []),
    el(0x0008, 0x0060, 'CS', modality),
    el(0x0010, 0x0010, 'PN', 'Fuzz^Crafted'),
    el(0x0010, 0x0020, 'LO', 'FUZZ1'),
    el(0x0020, 0x000d, 'UI', '1.2.826.0.1.3680043.8.498.1'),
    ...(seriesUid ? [el(0x0020, 0x000e, 'UI', seriesUid)] : []),
  ];
}

function pixelWords(n: number): Buffer {
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeUInt16LE((i * 37) % 4096, 2 * i);
  return b;
}

// gzip by hand: a header inside the same deflate stream as a run of zeros ------------------------------

/** One gzip member: `head` followed by `zeros` zero bytes, in bounded memory. */
function gzipHeadAndZeros(head: Uint8Array, zeros: number): Buffer {
  const gzHeader = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  const first = deflateRawSync(head, { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  const rest = deflateZeros(zeros, true);
  let crc = zcrc32(head);
  const chunk = Buffer.alloc(Math.min(zeros, 64 * 2 ** 20));
  for (let left = zeros; left > 0; left -= chunk.length)
    crc = zcrc32(chunk.subarray(0, Math.min(left, chunk.length)), crc);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE((head.length + zeros) % 2 ** 32, 4);
  return Buffer.concat([gzHeader, first, rest, trailer]);
}

function niftiHeader(dims: number[], datatype: number, bitpix: number): Uint8Array {
  const b = new Uint8Array(352);
  const dv = new DataView(b.buffer);
  dv.setInt32(0, 348, true);
  [dims.length, ...dims, 1, 1, 1, 1, 1, 1, 1].slice(0, 8).forEach((d, i) => dv.setInt16(40 + 2 * i, d, true));
  dv.setInt16(70, datatype, true);
  dv.setInt16(72, bitpix, true);
  [1, 1, 1, 1, 1, 1, 1, 1].forEach((v, i) => dv.setFloat32(76 + 4 * i, v, true));
  dv.setFloat32(108, 352, true);
  b.set([0x6e, 0x2b, 0x31, 0], 344);
  return b;
}

/** Hostile files: each named for what it claims and what it holds. */
function crafted(): Seed[] {
  const out: Seed[] = [];
  const add = (name: string, ext: string, bytes: Uint8Array) =>
    out.push({ name, type: 'crafted', ext, bytes });
  const GiB = 2 ** 30;

  // the 9 MB file: 1024×1024×512 int16 declared, a gzip stream inflating to 2 GiB of zeros
  add('nifti-gzip-bomb-2GiB', '.nii.gz', gzipHeadAndZeros(niftiHeader([1024, 1024, 512], 4, 16), 2 * GiB));
  // a small declared volume over a large inflated stream (data far past the declared size)
  add(
    'nifti-small-header-512MiB-stream',
    '.nii.gz',
    gzipHeadAndZeros(niftiHeader([64, 64, 1], 4, 16), GiB / 2),
  );
  // declared 4096³ float32 over 1 KiB of data, uncompressed
  add(
    'nifti-declared-4096cubed',
    '.nii',
    Buffer.concat([niftiHeader([4096, 4096, 4096], 16, 32), Buffer.alloc(1024)]),
  );

  // DICOM: Rows×Columns×Frames far past 128 bytes of Pixel Data
  add(
    'dicom-declared-65535x65535x100000',
    '.dcm',
    part10(
      EXPLICIT,
      MR,
      '1.2.826.0.1.3680043.8.498.10',
      Buffer.concat([
        ...identity(MR, '1.2.826.0.1.3680043.8.498.10', '1.2.826.0.1.3680043.8.498.11', 'MR'),
        ...imagePixel(65535, 65535, '100000'),
        el(0x7fe0, 0x0010, 'OW', pixelWords(64)),
      ]),
    ),
  );
  // deflated transfer syntax: a data set whose Pixel Data inflates to 512 MiB (Rows×Columns 16384²)
  {
    const sop = '1.2.826.0.1.3680043.8.498.20';
    const head = Buffer.concat([
      ...identity(MR, sop, '1.2.826.0.1.3680043.8.498.21', 'MR'),
      ...imagePixel(16384, 16384, null),
    ]);
    const pxHeader = Buffer.alloc(12);
    pxHeader.writeUInt16LE(0x7fe0, 0);
    pxHeader.writeUInt16LE(0x0010, 2);
    pxHeader.write('OW', 4, 'latin1');
    pxHeader.writeUInt32LE(GiB / 2, 8);
    const stream = Buffer.concat([
      deflateRawSync(Buffer.concat([head, pxHeader]), { level: 9, finishFlush: constants.Z_FULL_FLUSH }),
      deflateZeros(GiB / 2, true),
    ]);
    add('dicom-deflate-bomb-512MiB', '.dcm', part10('1.2.840.10008.1.2.1.99', MR, sop, stream));
  }
  // RLE: 65535×65535×1000 declared, one tiny fragment
  {
    const sop = '1.2.826.0.1.3680043.8.498.30';
    const rleHeader = Buffer.alloc(64 + 4);
    rleHeader.writeUInt32LE(1, 0);
    rleHeader.writeUInt32LE(64, 4);
    rleHeader.writeInt8(-127, 64); // a replicate run of 128 bytes (a run shorter than the frame)
    const item = (b: Buffer) => {
      const h = Buffer.alloc(8);
      h.writeUInt16LE(0xfffe, 0);
      h.writeUInt16LE(0xe000, 2);
      h.writeUInt32LE(b.length, 4);
      return Buffer.concat([h, b]);
    };
    const seqEnd = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    const px = Buffer.alloc(12);
    px.writeUInt16LE(0x7fe0, 0);
    px.writeUInt16LE(0x0010, 2);
    px.write('OB', 4, 'latin1');
    px.writeUInt32LE(0xffffffff, 8);
    add(
      'dicom-rle-65535x65535x1000',
      '.dcm',
      part10(
        '1.2.840.10008.1.2.5',
        MR,
        sop,
        Buffer.concat([
          ...identity(MR, sop, '1.2.826.0.1.3680043.8.498.31', 'MR'),
          ...imagePixel(65535, 65535, '1000', 8),
          px,
          item(Buffer.alloc(0)),
          item(rleHeader),
          seqEnd,
        ]),
      ),
    );
  }
  // the RT dose: NumberOfFrames "1A" over 15 frames of 10×10
  {
    const sop = '1.2.826.0.1.3680043.8.498.40';
    add(
      'dicom-rtdose-frames-1A',
      '.dcm',
      part10(
        EXPLICIT,
        RTDOSE,
        sop,
        Buffer.concat([
          ...identity(RTDOSE, sop, '1.2.826.0.1.3680043.8.498.41', 'RTDOSE'),
          ...imagePixel(10, 10, '1A'),
          el(0x7fe0, 0x0010, 'OW', pixelWords(15 * 100)),
        ]),
      ),
    );
  }
  // an image without Series and SOP Instance UIDs
  add(
    'dicom-without-uids',
    '.dcm',
    part10(
      EXPLICIT,
      MR,
      '1.2.826.0.1.3680043.8.498.50',
      Buffer.concat([
        ...identity(MR, null, null, 'MR'),
        ...imagePixel(16, 16, null),
        el(0x7fe0, 0x0010, 'OW', pixelWords(256)),
      ]),
    ),
  );
  // an element claiming 0xFFFFFFF0 bytes in the middle of the header
  {
    const sop = '1.2.826.0.1.3680043.8.498.60';
    add(
      'dicom-element-length-4GiB',
      '.dcm',
      part10(
        EXPLICIT,
        MR,
        sop,
        Buffer.concat([
          ...identity(MR, sop, '1.2.826.0.1.3680043.8.498.61', 'MR'),
          el(0x0018, 0x0015, 'UT', 'HEAD', 0xfffffff0),
          ...imagePixel(16, 16, null),
          el(0x7fe0, 0x0010, 'OW', pixelWords(256)),
        ]),
      ),
    );
  }

  // PNG: IHDR 100000×100000 over a tiny IDAT, and an IDAT inflating to 256 MiB
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = (w: number, h: number) => {
    const d = Buffer.alloc(13);
    d.writeUInt32BE(w, 0);
    d.writeUInt32BE(h, 4);
    d[8] = 8; // bit depth
    d[9] = 0; // gray
    return pngChunk('IHDR', d);
  };
  const iend = pngChunk('IEND', new Uint8Array(0));
  add(
    'png-ihdr-100000x100000',
    '.png',
    Buffer.concat([sig, ihdr(100000, 100000), pngChunk('IDAT', deflateRawSync(Buffer.alloc(16))), iend]),
  );
  {
    const zhead = Buffer.from([0x78, 0xda]);
    const idat = Buffer.concat([zhead, deflateZeros(256 * 2 ** 20, true), Buffer.alloc(4)]);
    add(
      'png-idat-bomb-256MiB',
      '.png',
      Buffer.concat([sig, ihdr(16384, 16383), pngChunk('IDAT', idat), iend]),
    );
  }

  // HDF5: every small dims tuple of the KD-MRI volume fixture declared 65536 long
  const h5 = join(ROOT, 'test/fixtures/hdf5/kdmri_volume.h5');
  if (existsSync(h5)) {
    const b = Uint8Array.from(readFileSync(h5));
    const dv = new DataView(b.buffer);
    const small = (o: number) =>
      dv.getUint32(o + 4, true) === 0 && dv.getUint32(o, true) >= 2 && dv.getUint32(o, true) <= 512;
    for (let o = 0; o + 24 <= b.length; o++)
      if (small(o) && small(o + 8) && small(o + 16))
        for (let k = 0; k < 3; k++) dv.setBigUint64(o + 8 * k, 65536n, true);
    add('hdf5-dims-65536-cubed', '.h5', b);
  }
  return out;
}

/** Seeds made by the project's writers: a 2-slice DICOM series file, a small NIfTI (plain and gzip). */
function generated(dir: string): Seed[] {
  const vol = {
    data: new Float32Array(3 * 16 * 16).map((_, i) => (i * 7) % 100),
    slices: 3,
    h: 16,
    w: 16,
    spacing: [1, 1, 2] as [number, number, number],
  };
  const dcm = volumeToDicom(vol, {
    seriesUid: '1.2.826.0.1.3680043.8.498.90',
    studyUid: '1.2.826.0.1.3680043.8.498.91',
  });
  const out: Seed[] = [
    { name: 'generated-dicom-slice', type: 'dicom', ext: '.dcm', bytes: dcm.files[0].bytes },
  ];
  for (const ext of ['.nii', '.nii.gz']) {
    const p = join(dir, `generated${ext}`);
    writeNifti(p, vol);
    out.push({ name: `generated${ext}`, type: 'nifti', ext, bytes: readFileSync(p) });
  }
  return out;
}

/** Every seed, in a fixed order (case k's seed depends only on the seed list and the Rng). */
export function loadSeeds(workDir: string): Seed[] {
  mkdirSync(workDir, { recursive: true });
  const seeds: Seed[] = [];
  const fromFile = (type: FileType, p: string) =>
    seeds.push({ name: p.slice(ROOT.length), type, ext: extOf(p), bytes: readFileSync(p) });
  if (PYDICOM_DATA) {
    // the DICOM files the decoding tests use (pydicom's test files, listed with their expectations)
    for (const f of EXPECTED.files) {
      const p = join(PYDICOM_DATA, f.file);
      if (existsSync(p))
        seeds.push({ name: `pydicom:${f.file}`, type: 'dicom', ext: '.dcm', bytes: readFileSync(p) });
    }
  }
  for (const p of filesIn(join(ROOT, 'test/fixtures/dicom'), /\.dcm$/i)) fromFile('dicom', p);
  for (const p of filesIn(join(ROOT, 'resources/sample'), /\.nii(\.gz)?$/i)) fromFile('nifti', p);
  for (const p of filesIn(join(ROOT, 'test/fixtures/hdf5'), /\.(h5|hdf5)$/i)) fromFile('hdf5', p);
  for (const p of [
    ...filesIn(join(ROOT, 'resources/icons'), /\.png$/i),
    ...filesIn(join(ROOT, 'src-renderer/public'), /\.png$/i),
  ])
    fromFile('png', p);
  seeds.push(...generated(workDir), ...crafted());
  writeFileSync(
    join(workDir, 'seeds.txt'),
    seeds.map((s) => `${s.type}\t${s.name}\t${s.bytes.length}`).join('\n') + '\n',
  );
  return seeds;
}
