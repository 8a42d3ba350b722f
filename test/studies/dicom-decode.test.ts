/**
 * DICOM pixel decoding against pydicom: the NEMA-derived files shipped with python3-pydicom decode to
 * the same stored integers (sha256 of the int32 array made by scripts/fixtures/make_dicom_fixtures.py)
 * and the same values after RescaleSlope/Intercept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDicom, DicomError } from '../../src-main/studies/dicom/parse.js';
import { decodeFrames, decodeStoredFrames } from '../../src-main/studies/dicom/decode.js';
import '../../src-main/studies/dicom/codecs.js';
import { EXPECTED, NO_PYDICOM, PYDICOM_DATA } from './helpers.js';

const skip = PYDICOM_DATA ? false : NO_PYDICOM;

function sha256Int32(frames: Float64Array[]): string {
  const n = frames.reduce((a, f) => a + f.length, 0);
  const buf = Buffer.alloc(n * 4);
  let o = 0;
  for (const f of frames)
    for (const v of f) {
      buf.writeInt32LE(v, o);
      o += 4;
    }
  return createHash('sha256').update(buf).digest('hex');
}

for (const exp of EXPECTED.files.filter((e) => e.verified)) {
  test(`${exp.file} (${exp.transferSyntax}) decodes as pydicom reads it`, { skip }, (t) => {
    const obj = parseDicom(readFileSync(join(PYDICOM_DATA as string, exp.file)));
    let stored: Float64Array[];
    try {
      stored = decodeStoredFrames(obj);
    } catch (e) {
      if (e instanceof DicomError && /no decoder installed/.test(e.message)) return t.skip(e.message);
      throw e;
    }
    const px = obj.pixel!;
    assert.deepEqual([px.frames, px.rows, px.columns], exp.shape);
    assert.equal(sha256Int32(stored), exp.sha256Int32, 'stored integers differ from pydicom');
    const values = decodeFrames(obj);
    const flat = new Float32Array(values.reduce((a, f) => a + f.length, 0));
    values.reduce((o, f) => (flat.set(f, o), o + f.length), 0);
    for (const [i, v] of exp.rescaled.samples)
      assert.ok(Math.abs(flat[i] - v) <= 1e-6 * Math.max(1, Math.abs(v)), `value ${i}: ${flat[i]} vs ${v}`);
    let min = Infinity,
      max = -Infinity,
      sum = 0;
    for (const v of flat) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    assert.ok(Math.abs(min - exp.rescaled.min) < 1e-3 && Math.abs(max - exp.rescaled.max) < 1e-3);
    assert.ok(
      Math.abs(sum - exp.rescaled.sum) <= 1e-6 * Math.max(1, Math.abs(exp.rescaled.sum)) + 1e-3,
      `sum ${sum} vs ${exp.rescaled.sum}`,
    );
  });
}

test('a data set without preamble and File Meta is parsed (explicit VR LE guessed)', { skip }, () => {
  const obj = parseDicom(readFileSync(join(PYDICOM_DATA as string, 'ExplVR_LitEndNoMeta.dcm')));
  assert.equal(obj.part10, false);
  assert.equal(obj.str('x00080016'), '1.2.840.10008.5.1.4.1.1.481.8'); // RT Ion Plan: no pixels
  assert.equal(obj.pixel, null);
});

test('bad files give one-line reasons', { skip }, () => {
  const reason = (f: string) => {
    try {
      const o = parseDicom(readFileSync(join(PYDICOM_DATA as string, f)));
      decodeFrames(o);
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof DicomError, String(e));
      return `${e.kind}: ${e.message}`;
    }
  };
  assert.match(reason('MR_truncated.dcm'), /^fail: truncated/);
  assert.match(reason('rtplan.dcm'), /^skip: no Pixel Data/);
  assert.match(reason('test-SR.dcm'), /^skip: no Pixel Data/);
  assert.match(reason('SC_rgb_rle.dcm'), /^skip: colour image/);
  assert.match(reason('README.txt'), /^fail: not a DICOM file/);
  assert.match(reason('rtplan_truncated.dcm'), /^fail: truncated or corrupt DICOM file/);
  assert.match(reason('meta_missing_tsyntax.dcm'), /^fail: File Meta without Transfer Syntax UID/);
});

test(
  "JPEG-LS and JPEG 2000 lossless copies of MR_small decode to pydicom's MR_small pixels",
  { skip },
  () => {
    const ref = EXPECTED.files.find((e) => e.file === 'MR_small.dcm')!;
    for (const f of ['MR_small_jpeg_ls_lossless.dcm', 'MR_small_jp2klossless.dcm']) {
      const obj = parseDicom(readFileSync(join(PYDICOM_DATA as string, f)));
      assert.equal(sha256Int32(decodeStoredFrames(obj)), ref.sha256Int32, f);
    }
  },
);

test('12-bit JPEG Extended is refused with a reason (8-bit decoder only)', { skip }, () => {
  const obj = parseDicom(readFileSync(join(PYDICOM_DATA as string, 'JPGExtended.dcm')));
  assert.throws(() => decodeFrames(obj), /JPEG with 12-bit samples is not supported/);
});
