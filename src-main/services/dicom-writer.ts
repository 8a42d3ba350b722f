/**
 * A minimal DICOM Part 10 writer for exporting comparison images: Secondary Capture, Explicit VR
 * Little Endian, 16-bit unsigned MONOCHROME2 with a rescale slope that maps back to the float values.
 */
import { randomBytes } from 'node:crypto';
import type { Pixels } from '../contract/api.js';

const SC_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPL_CLASS = '2.25.302517640214937498221186411262437013';
const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR']);

export function newUid(): string {
  return `2.25.${BigInt('0x' + randomBytes(16).toString('hex')).toString()}`;
}

function element(group: number, elem: number, vr: string, value: Uint8Array | string | number[]): Buffer {
  let bytes: Buffer;
  if (typeof value === 'string') {
    bytes = Buffer.from(value, 'latin1');
    if (bytes.length % 2) bytes = Buffer.concat([bytes, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
  } else if (Array.isArray(value)) {
    const size = vr === 'UL' ? 4 : 2;
    bytes = Buffer.alloc(value.length * size);
    value.forEach((v, i) => (size === 4 ? bytes.writeUInt32LE(v, i * 4) : bytes.writeUInt16LE(v, i * 2)));
  } else {
    bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (bytes.length % 2) bytes = Buffer.concat([bytes, Buffer.from([0])]);
  }
  const long = LONG_VRS.has(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elem, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(bytes.length, 8);
  else head.writeUInt16LE(bytes.length, 6);
  return Buffer.concat([head, bytes]);
}

export interface ScOptions {
  studyUid: string;
  seriesUid: string;
  instanceNumber: number;
  seriesDescription: string;
  imageComment: string;
}

export function writeSecondaryCapture(img: Pixels, o: ScOptions): Buffer {
  const sopUid = newUid();
  let max = 0;
  for (const v of img.data) if (v > max) max = v;
  const slope = max > 0 ? max / 65535 : 1;
  const px = new Uint16Array(img.h * img.w);
  for (let i = 0; i < px.length; i++) px[i] = Math.max(0, Math.min(65535, Math.round(img.data[i] / slope)));
  const meta = Buffer.concat([
    element(0x0002, 0x0001, 'OB', new Uint8Array([0, 1])),
    element(0x0002, 0x0002, 'UI', SC_SOP_CLASS),
    element(0x0002, 0x0003, 'UI', sopUid),
    element(0x0002, 0x0010, 'UI', EXPLICIT_LE),
    element(0x0002, 0x0012, 'UI', IMPL_CLASS),
  ]);
  const ds = Buffer.concat([
    element(0x0008, 0x0016, 'UI', SC_SOP_CLASS),
    element(0x0008, 0x0018, 'UI', sopUid),
    element(0x0008, 0x0060, 'CS', 'OT'),
    element(0x0008, 0x0064, 'CS', 'WSD'),
    element(0x0008, 0x103e, 'LO', o.seriesDescription.slice(0, 64)),
    element(0x0010, 0x0010, 'PN', 'KDMRI^Comparison'),
    element(0x0010, 0x0020, 'LO', 'KDMRI'),
    element(0x0020, 0x000d, 'UI', o.studyUid),
    element(0x0020, 0x000e, 'UI', o.seriesUid),
    element(0x0020, 0x0011, 'IS', '1'),
    element(0x0020, 0x0013, 'IS', String(o.instanceNumber)),
    element(0x0020, 0x4000, 'LT', o.imageComment.slice(0, 10240)),
    element(0x0028, 0x0002, 'US', [1]),
    element(0x0028, 0x0004, 'CS', 'MONOCHROME2'),
    element(0x0028, 0x0010, 'US', [img.h]),
    element(0x0028, 0x0011, 'US', [img.w]),
    element(0x0028, 0x0100, 'US', [16]),
    element(0x0028, 0x0101, 'US', [16]),
    element(0x0028, 0x0102, 'US', [15]),
    element(0x0028, 0x0103, 'US', [0]),
    element(0x0028, 0x1052, 'DS', '0'),
    element(0x0028, 0x1053, 'DS', slope.toPrecision(10).slice(0, 16)),
    element(0x7fe0, 0x0010, 'OW', new Uint8Array(px.buffer)),
  ]);
  const groupLength = element(0x0002, 0x0000, 'UL', [meta.length]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, meta, ds]);
}
