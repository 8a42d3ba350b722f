/**
 * Exports through the services, checked with independent readers:
 *  - Compare's DICOM export is a derived series per viewport in the SOURCE's study: pydicom reads the
 *    source patient, study, frame of reference and slice geometry, DERIVED\SECONDARY, the viewer's
 *    window; a NIfTI source (the bundled sample) gets the patient/study the library gives that file;
 *  - de-identified exports (PS3.15 basic profile): pydicom finds no identifying value left, UIDs are
 *    replaced consistently (one study, one series, unique instances), the key map re-identifies;
 *  - downloads: the real web server streams a file or a zip (read back by Python's zipfile) behind a
 *    ticket; ids that try to leave the exports folder are refused; Electron's save dialog (faked).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiResult, CompareResult, DownloadResult, ExportResult } from '../../src-main/contract/api.js';
import type { Volume } from '../../src-main/contract/domain.js';
import { loadDataSplit } from '../../src-main/distill/data-source.js';
import { startServer, type RunningServer } from '../../src-main/server/server.js';
import { createServices, type Services } from '../../src-main/services/index.js';
import { openDatabase } from '../../src-main/store/db.js';
import { Deidentifier, unknownProfileKeywords } from '../../src-main/studies/deidentify.js';
import { writePart10 } from '../../src-main/studies/dicom/write.js';
import { writeDicomSeries } from '../../src-main/studies/export.js';
import { importPaths, listStudies } from '../../src-main/studies/index.js';
import { NO_PYDICOM, pyAvailable } from '../studies/helpers.js';

const PY = '/usr/bin/python3';
const skip = pyAvailable() ? false : NO_PYDICOM;

// The source: 6 real slices (bundled Colin27 sample, 32×32) as an MR series with identifying
// attributes and an oblique geometry, imported into the library.
const PATIENT = { id: 'MRN-0042', name: 'Doe^Jane', birthDate: '19700101', sex: 'F' };
const STUDY = {
  uid: '1.2.826.0.1.3680043.8.498.11',
  date: '20240315',
  time: '101500',
  description: 'Brain MRI Jane Doe',
  accession: 'ACC123',
  studyId: 'ST77',
};
const FRAME_UID = '1.2.826.0.1.3680043.8.498.12';
const ORIENTATION = [1, 0, 0, 0, 0.8, -0.6];
const NORMAL = [0, 0.6, 0.8];
const SPACING: [number, number, number] = [0.9, 0.8, 3];
const ORIGIN = [-10, 20, 30];
const IDENTIFIERS = [
  'Doe',
  'Jane',
  'MRN-0042',
  '19700101',
  '20240315',
  '101500',
  'ACC123',
  'ST77',
  STUDY.uid,
  FRAME_UID,
];

let dir: string;
let dbPath: string;
let services: Services;
let server: RunningServer;
let sourceSeries: string;
let sourceVolume: Volume;

function call<T>(op: string, body: unknown): Promise<T> {
  return services.call(op, body).then((r) => {
    assert.ok(r.ok, `${op}: ${JSON.stringify(!r.ok && r.error)}`);
    return r.value as T;
  });
}

interface El {
  tag: string;
  kw: string;
  vr: string;
  value: string | string[] | null;
  items?: El[][];
}
interface Dumped {
  file: string;
  meta: El[];
  ds: El[];
  pixels: number[];
}

/** Every element of each file as pydicom reads it (sequences recursively), and the rescaled pixels. */
function pydicomDump(files: string[]): Dumped[] {
  const r = spawnSync(
    PY,
    [
      '-c',
      `import json, sys, pydicom
from pydicom.multival import MultiValue
def val(el):
    v = el.value
    if v is None: return ""
    if isinstance(v, bytes): return v.hex()[:64]
    if isinstance(v, MultiValue): return [str(x) for x in v]
    return str(v)
def dump(ds):
    out = []
    for el in ds:
        e = {"tag": "%04X%04X" % (el.tag.group, el.tag.element), "kw": el.keyword, "vr": el.VR}
        if el.VR == "SQ": e["items"] = [dump(i) for i in el.value]; e["value"] = None
        elif el.tag == 0x7FE00010: e["value"] = None
        else: e["value"] = val(el)
        out.append(e)
    return out
res = []
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f)
    px = ds.pixel_array.astype(float) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    res.append({"file": f, "meta": dump(ds.file_meta), "ds": dump(ds), "pixels": px.ravel().tolist()})
print(json.dumps(res))`,
      ...files,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 28 },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Dumped[];
}

const get = (els: El[], kw: string) => els.find((e) => e.kw === kw)?.value;
const nums = (v: unknown) => (Array.isArray(v) ? v : [v]).map(Number);
const close = (a: number[], b: number[], tol = 1e-4) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kdmri-exports-'));
  dbPath = join(dir, 'kdmri.db');
  const val = loadDataSplit(undefined, 32).val[0];
  const n = 32 * 32;
  sourceVolume = { data: val.data.slice(0, 6 * n), slices: 6, h: 32, w: 32, spacing: SPACING };
  const positions = Array.from(
    { length: 6 },
    (_, k) => ORIGIN.map((o, i) => o + NORMAL[i] * k * SPACING[2]) as [number, number, number],
  );
  const written = writeDicomSeries(sourceVolume, join(dir, 'source'), {
    source: {
      patient: PATIENT,
      study: STUDY,
      positions,
      orientation: ORIENTATION,
      frameOfReferenceUid: FRAME_UID,
    },
    seriesDescription: 'T1 axial Jane Doe',
    seriesNumber: 3,
  });
  sourceSeries = written.seriesUid;
  const db = openDatabase(dbPath);
  const res = await importPaths(db, [join(dir, 'source')]);
  assert.ok(
    res.every((r) => r.status === 'imported'),
    JSON.stringify(res),
  );
  db.close();
  services = createServices({ dbPath, dataDir: dir });
  const staticDir = join(dir, 'renderer');
  mkdirSync(staticDir);
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
  server = await startServer({ services, staticDir });
});

after(async () => {
  await server?.close();
  await services?.close();
  rmSync(dir, { recursive: true, force: true });
});

const compareReq = (sliceIndex: number) => ({
  source: { seriesUid: sourceSeries },
  sliceIndex,
  degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
});

test(
  'Compare DICOM export: a derived series per image in the source study, with its patient and geometry',
  { skip },
  async () => {
    const slice = 2;
    const c = await call<CompareResult>('compare', compareReq(slice));
    const e = await call<ExportResult>('exportComparison', { ...compareReq(slice), format: 'dicom' });
    assert.equal(e.kind, 'folder');
    assert.ok(e.exportId && !e.exportId.startsWith('/'));
    const images = c.viewports.filter((v) => v.image);
    assert.equal(e.paths.length, images.length, 'one file per image shown (no models: zero-filled, target)');
    const files = pydicomDump(e.paths);
    const target = c.viewports.find((v) => v.name === 'target')!.image!.data;
    const lo = Math.min(...target);
    const hi = Math.max(...target);
    const series = new Set<string>();
    files.forEach((f, i) => {
      const ds = f.ds;
      assert.equal(get(ds, 'PatientName'), 'Doe^Jane');
      assert.equal(get(ds, 'PatientID'), 'MRN-0042');
      assert.equal(get(ds, 'PatientBirthDate'), '19700101');
      assert.equal(get(ds, 'StudyInstanceUID'), STUDY.uid);
      assert.equal(get(ds, 'StudyDate'), STUDY.date);
      assert.equal(get(ds, 'AccessionNumber'), STUDY.accession);
      assert.equal(get(ds, 'FrameOfReferenceUID'), FRAME_UID);
      assert.deepEqual(get(ds, 'ImageType'), ['DERIVED', 'SECONDARY']);
      assert.equal(get(ds, 'SOPClassUID'), '1.2.840.10008.5.1.4.1.1.4');
      const pos = ORIGIN.map((o, k) => o + NORMAL[k] * slice * SPACING[2]);
      assert.ok(
        close(nums(get(ds, 'ImagePositionPatient')), pos),
        `position ${get(ds, 'ImagePositionPatient')}`,
      );
      assert.ok(close(nums(get(ds, 'ImageOrientationPatient')), ORIENTATION));
      assert.ok(close(nums(get(ds, 'PixelSpacing')), [SPACING[1], SPACING[0]]));
      // the viewer's default tones (the target's range), the same for every image
      assert.ok(Math.abs(Number(get(ds, 'WindowCenter')) - (lo + hi) / 2) < 1e-6);
      assert.ok(Math.abs(Number(get(ds, 'WindowWidth')) - (hi - lo)) < 1e-6);
      series.add(String(get(ds, 'SeriesInstanceUID')));
      const img = images[i].image!.data;
      const step = (Math.max(...img) - Math.min(...img)) / 65535;
      assert.ok(
        f.pixels.every((x, j) => Math.abs(x - img[j]) <= step / 2 + 1e-6),
        'pixels restore the image within half a quantisation step',
      );
      assert.ok(!JSON.stringify(f).includes('KDMRI^Comparison'));
    });
    assert.equal(series.size, files.length, 'one series per image');
    assert.ok(!series.has(sourceSeries));

    // the window the technician set in the viewer travels with the files
    const w = await call<ExportResult>('exportComparison', {
      ...compareReq(slice),
      format: 'dicom',
      window: { center: 0.4, width: 0.6 },
    });
    const [f0] = pydicomDump([w.paths[0]]);
    assert.deepEqual([get(f0.ds, 'WindowCenter'), get(f0.ds, 'WindowWidth')], ['0.4', '0.6']);

    // compared at another size: spacing scales, the first pixel centre moves with the resampling
    const r = await call<ExportResult>('exportComparison', {
      ...compareReq(slice),
      size: 16,
      format: 'dicom',
    });
    const [g] = pydicomDump([r.paths[0]]);
    assert.ok(close(nums(get(g.ds, 'PixelSpacing')), [SPACING[1] * 2, SPACING[0] * 2]));
    const shift = [0, 1, 2].map(
      (k) =>
        ORIGIN[k] +
        NORMAL[k] * slice * SPACING[2] +
        ORIENTATION[k] * 0.5 * SPACING[0] +
        ORIENTATION[3 + k] * 0.5 * SPACING[1],
    );
    assert.ok(
      close(nums(get(g.ds, 'ImagePositionPatient')), shift),
      `${get(g.ds, 'ImagePositionPatient')} vs ${shift}`,
    );
  },
);

test(
  "Compare DICOM export of the bundled NIfTI sample: one patient and study, the library's",
  { skip },
  async () => {
    await call('importSample', {});
    const ds = (await call<{ id: number; source: string }[]>('listDatasets', {})).find(
      (d) => d.source === 'sample',
    )!;
    const req = {
      source: { datasetId: ds.id },
      sliceIndex: 3,
      degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
      format: 'dicom',
    };
    const a = pydicomDump((await call<ExportResult>('exportComparison', req)).paths);
    const b = pydicomDump((await call<ExportResult>('exportComparison', { ...req, sliceIndex: 4 })).paths);
    const db = openDatabase(dbPath);
    const sample = listStudies(db).find((p) => p.id.startsWith('nifti:colin27'))!;
    db.close();
    assert.ok(sample, 'the sample is in the library');
    for (const f of [...a, ...b]) {
      assert.equal(get(f.ds, 'PatientID'), sample.id);
      assert.equal(get(f.ds, 'PatientName'), sample.name);
      assert.equal(get(f.ds, 'StudyInstanceUID'), sample.studies[0].uid);
    }
    // validation slices of the sample start at slice 30: positions follow the source's slice index
    const z = (f: Dumped) => nums(get(f.ds, 'ImagePositionPatient'))[2];
    const thick = Number(get(a[0].ds, 'SliceThickness'));
    assert.ok(Math.abs(z(a[0]) - 33 * thick) < 1e-4 && Math.abs(z(b[0]) - 34 * thick) < 1e-4);
  },
);

/** No identifying value anywhere in a de-identified file (recursively), by pydicom's reading. */
function assertDeidentified(f: Dumped, pseudonym: string) {
  const text = JSON.stringify(f.ds) + JSON.stringify(f.meta);
  for (const id of IDENTIFIERS) assert.ok(!text.includes(id), `${f.file} still contains ${id}`);
  // PS3.15 Table E.1-1 attributes (those an MR export can carry): absent or empty
  const profile = [
    'PatientBirthDate',
    'PatientSex',
    'PatientAge',
    'OtherPatientIDs',
    'OtherPatientIDsSequence',
    'OtherPatientNames',
    'PatientAddress',
    'StudyDate',
    'StudyTime',
    'SeriesDate',
    'SeriesTime',
    'AcquisitionDate',
    'AcquisitionTime',
    'AcquisitionDateTime',
    'ContentDate',
    'ContentTime',
    'InstanceCreationDate',
    'AccessionNumber',
    'StudyID',
    'StudyDescription',
    'ReferringPhysicianName',
    'PerformingPhysicianName',
    'OperatorsName',
    'InstitutionName',
    'InstitutionAddress',
    'StationName',
    'DeviceSerialNumber',
    'ProtocolName',
    'ImageComments',
    'ReferencedStudySequence',
    'ReferencedPatientSequence',
    'RequestAttributesSequence',
  ];
  for (const kw of profile) {
    const v = get(f.ds, kw);
    assert.ok(
      v === undefined || v === '' || (Array.isArray(v) && v.length === 0),
      `${kw} = ${JSON.stringify(v)}`,
    );
  }
  assert.equal(get(f.ds, 'PatientName'), pseudonym);
  assert.equal(get(f.ds, 'PatientID'), pseudonym);
  assert.equal(get(f.ds, 'PatientIdentityRemoved'), 'YES');
  const codes = f.ds.find((e) => e.kw === 'DeidentificationMethodCodeSequence')?.items ?? [];
  assert.ok(
    codes.some((item) => get(item, 'CodeValue') === '113100'),
    'basic profile code 113100',
  );
  assert.ok(
    f.ds.every((e) => parseInt(e.tag.slice(0, 4), 16) % 2 === 0),
    'no private attributes',
  );
  assert.equal(get(f.meta, 'MediaStorageSOPInstanceUID'), get(f.ds, 'SOPInstanceUID'));
}

test(
  'de-identified exports: pydicom finds no identifying attribute; UIDs replaced consistently; key map re-identifies',
  { skip },
  async () => {
    const s1 = await call<ExportResult>('exportSeries', {
      uid: sourceSeries,
      format: 'dicom',
      deidentify: true,
      window: { center: 0.5, width: 1 },
    });
    const s2 = await call<ExportResult>('exportSeries', {
      uid: sourceSeries,
      format: 'dicom',
      deidentify: true,
    });
    const cmp = await call<ExportResult>('exportComparison', {
      ...compareReq(1),
      format: 'dicom',
      deidentify: true,
    });
    assert.ok(s1.deidentified && cmp.deidentified);
    assert.equal(s1.paths.length, 6);
    const a = pydicomDump(s1.paths);
    const b = pydicomDump(s2.paths);
    const c = pydicomDump(cmp.paths);
    const pseudonym = String(get(a[0].ds, 'PatientName'));
    assert.match(pseudonym, /^ANON-[0-9A-F]{8}$/);
    for (const f of [...a, ...b, ...c]) assertDeidentified(f, pseudonym);
    // one study for every export of the source study, one series per export, every instance its own
    const uids = (fs: Dumped[], kw: string) => new Set(fs.map((f) => String(get(f.ds, kw))));
    assert.equal(uids([...a, ...b, ...c], 'StudyInstanceUID').size, 1);
    assert.equal(uids([...a, ...b, ...c], 'FrameOfReferenceUID').size, 1);
    assert.equal(uids(a, 'SeriesInstanceUID').size, 1);
    assert.equal(uids(c, 'SeriesInstanceUID').size, c.length);
    assert.equal(uids([...a, ...b], 'SOPInstanceUID').size, 12);
    const study = [...uids(a, 'StudyInstanceUID')][0];
    assert.match(study, /^2\.25\.\d+$/);
    // dates are emptied alike in every instance; the viewer's window and the pixels stay
    assert.equal(uids(a, 'ContentDate').size, 1);
    assert.deepEqual([get(a[0].ds, 'WindowCenter'), get(a[0].ds, 'WindowWidth')], ['0.5', '1']);
    assert.ok(a[2].pixels.every((x, j) => Math.abs(x - sourceVolume.data[2 * 1024 + j]) < 1e-3));
    // generated descriptions are kept (Clean Descriptors Option), never the source's
    assert.match(String(get(c[0].ds, 'SeriesDescription')), /^Zero-filled cartesian 4x/);

    // the key map, private to the library, gives the originals back
    const db = openDatabase(dbPath);
    try {
      assert.equal(db.pseudonyms.reveal(pseudonym)?.original, 'MRN-0042\\Doe^Jane');
      assert.equal(db.pseudonyms.reveal(study)?.original, STUDY.uid);
      assert.equal(db.pseudonyms.get('uid', FRAME_UID), [...uids(a, 'FrameOfReferenceUID')][0]);
    } finally {
      db.close();
    }

    // … and so does `kdmri pseudonyms --reveal`
    const cli = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src-main/cli/entry.ts',
        'pseudonyms',
        '--reveal',
        pseudonym,
        '--db',
        dbPath,
        '--json',
      ],
      { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal((JSON.parse(cli.stdout) as { original: string }).original, 'MRN-0042\\Doe^Jane');

    // NIfTI: nothing but voxels and spacing, and a file name without the source's identifiers
    const nii = await call<ExportResult>('exportSeries', {
      uid: sourceSeries,
      format: 'nifti',
      deidentify: true,
    });
    assert.ok(nii.path.includes(pseudonym) && !nii.path.includes(sourceSeries));
    const hdr = spawnSync(
      PY,
      [
        '-c',
        'import sys, nibabel as nib; h = nib.load(sys.argv[1]).header; print("|".join(str(h[k]) for k in ("descrip", "aux_file", "intent_name", "db_name")))',
        nii.path,
      ],
      { encoding: 'utf8' },
    );
    if (hdr.status === 0) for (const id of IDENTIFIERS) assert.ok(!hdr.stdout.includes(id), hdr.stdout);

    // PNG montage: pixels only (no text chunks)
    const png = await call<ExportResult>('exportComparison', {
      ...compareReq(1),
      format: 'png',
      deidentify: true,
    });
    const bytes = readFileSync(png.path);
    for (const chunk of ['tEXt', 'iTXt', 'zTXt', 'eXIf']) assert.ok(!bytes.includes(chunk), chunk);
  },
);

test(
  'the generic de-identifier: dcmjs list + Table E.1-1 extras, sequences, private tags (pydicom check)',
  { skip },
  () => {
    assert.deepEqual(unknownProfileKeywords(), [], "every extra keyword is in dcmjs's dictionary");
    const keys = new Map<string, string>();
    const deid = new Deidentifier({
      obtain: (kind, original, make) => {
        const k = `${kind}:${original}`;
        if (!keys.has(k)) keys.set(k, make());
        return keys.get(k)!;
      },
    });
    const file = join(dir, 'rich.dcm');
    const bytes = writePart10(
      {
        SOPClassUID: '1.2.840.10008.5.1.4.1.1.4',
        SOPInstanceUID: '1.2.826.0.1.3680043.8.498.13',
        StudyInstanceUID: STUDY.uid,
        SeriesInstanceUID: '1.2.826.0.1.3680043.8.498.14',
        PatientName: 'Doe^Jane',
        PatientID: 'MRN-0042',
        PatientBirthDate: '19700101',
        PatientAge: '054Y',
        StudyDate: '20240315',
        AcquisitionDateTime: '20240315101500',
        InstitutionName: 'Jane Doe Clinic',
        OperatorsName: 'Doe^John',
        ReferringPhysicianName: 'Doe^Jim',
        StationName: 'ACC123-MR',
        OtherPatientIDs: 'MRN-0042-B',
        ImageComments: 'Jane Doe follow-up',
        Modality: 'MR',
        Rows: 2,
        Columns: 2,
        SamplesPerPixel: 1,
        PhotometricInterpretation: 'MONOCHROME2',
        BitsAllocated: 16,
        BitsStored: 16,
        HighBit: 15,
        PixelRepresentation: 0,
      },
      new Uint16Array([1, 2, 3, 4]),
      { deidentify: deid },
    );
    writeFileSync(file, bytes);
    const [f] = pydicomDump([file]);
    assertDeidentified(f, String(get(f.ds, 'PatientName')));
    assert.equal(get(f.ds, 'Modality'), 'MR');
    assert.equal(get(f.ds, 'SOPClassUID'), '1.2.840.10008.5.1.4.1.1.4', 'standard UIDs stay');
    assert.equal(get(f.ds, 'StudyInstanceUID'), keys.get(`uid:${STUDY.uid}`));
  },
);

/** GET a path on the test server: status, headers, body bytes. */
function fetchRaw(path: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((ok, ko) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: 'GET',
        headers: { host: `127.0.0.1:${server.port}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', ko);
      },
    );
    req.on('error', ko);
    req.end();
  });
}

test('downloads in web mode: a ticket URL streams the file or a zip; ids outside the exports folder are refused', async () => {
  const series = await call<ExportResult>('exportSeries', { uid: sourceSeries, format: 'dicom' });
  const d = await call<DownloadResult>('downloadExport', { exportId: series.exportId });
  assert.equal(d.delivered, 'url');
  if (d.delivered !== 'url') return;
  assert.match(d.url, /^\/api\/download\/[0-9a-f]{48}$/);
  assert.ok(d.filename.endsWith('.zip'));
  const zip = await fetchRaw(d.url);
  assert.equal(zip.status, 200);
  assert.equal(zip.headers['content-type'], 'application/zip');
  assert.match(
    String(zip.headers['content-disposition']),
    new RegExp(`^attachment; filename="${d.filename}"`),
  );
  const zipFile = join(dir, 'download.zip');
  writeFileSync(zipFile, zip.body);
  // Python's zipfile reads it: the export's files, byte for byte
  const py = spawnSync(
    PY,
    [
      '-c',
      'import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps({n: z.read(n).hex() for n in z.namelist()}))',
      zipFile,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 28 },
  );
  assert.equal(py.status, 0, py.stderr);
  const entries = JSON.parse(py.stdout) as Record<string, string>;
  assert.deepEqual(
    Object.keys(entries).sort(),
    series.paths.map((p) => p.slice(series.path.length + 1)).sort(),
  );
  for (const p of series.paths)
    assert.equal(entries[p.slice(series.path.length + 1)], readFileSync(p).toString('hex'));

  // one file: the bytes as they are, with its name
  const nii = await call<ExportResult>('exportSeries', { uid: sourceSeries, format: 'nifti' });
  const dn = await call<DownloadResult>('downloadExport', { exportId: nii.exportId });
  assert.ok(dn.delivered === 'url');
  const got = await fetchRaw(dn.url);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(readFileSync(nii.path)));
  assert.equal(Number(got.headers['content-length']), got.body.length);

  // escapes: '..', absolute paths, a symbolic link out of the folder; unknown tickets
  symlinkSync(dbPath, join(dir, 'exports', 'db-link'));
  for (const exportId of ['../kdmri.db', 'x/../../kdmri.db', dbPath, 'db-link', '..\\kdmri.db']) {
    const r = await services.call('downloadExport', { exportId });
    assert.ok(
      !r.ok && r.error.code === 'bad-request' && r.error.where === 'exportId',
      `${exportId}: ${JSON.stringify(r)}`,
    );
  }
  const none = await services.call('downloadExport', { exportId: 'no-such-export' });
  assert.ok(!none.ok && none.error.code === 'not-found');
  for (const path of [
    '/api/download/..%2F..%2Fkdmri.db',
    `/api/download/${'0'.repeat(48)}`,
    '/api/download/',
    '/api/download/../../kdmri.db',
  ]) {
    const r = await fetchRaw(path);
    assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
    assert.ok(!r.body.includes('SQLite format'), 'the database never leaves');
  }
});

test('downloads in Electron: the save dialog chooses where; cancel writes nothing', async () => {
  const chosen: string[] = [];
  let answer: string | null = join(dir, 'saved.zip');
  const electronLike = createServices({
    dbPath,
    dataDir: dir,
    mode: 'electron',
    saveAs: async ({ name, kind }) => {
      chosen.push(`${kind}:${name}`);
      return answer;
    },
  });
  try {
    const png = await call<ExportResult>('exportComparison', { ...compareReq(0), format: 'png' });
    const r = (await electronLike.call('downloadExport', {
      exportId: png.exportId,
    })) as ApiResult<DownloadResult>;
    assert.ok(r.ok && r.value.delivered === 'saved');
    assert.ok(readFileSync(answer!).equals(readFileSync(png.path)));
    const folder = await call<ExportResult>('exportSeries', { uid: sourceSeries, format: 'png' });
    answer = join(dir, 'slices.zip');
    const z = (await electronLike.call('downloadExport', {
      exportId: folder.exportId,
    })) as ApiResult<DownloadResult>;
    assert.ok(
      z.ok && z.value.delivered === 'saved' && readFileSync(answer).subarray(0, 2).toString() === 'PK',
    );
    answer = null;
    const c = (await electronLike.call('downloadExport', {
      exportId: png.exportId,
    })) as ApiResult<DownloadResult>;
    assert.ok(c.ok && c.value.delivered === 'cancelled');
    assert.deepEqual(
      chosen.map((x) => x.split(':')[0]),
      ['file', 'folder', 'file'],
    );
    assert.ok(!existsSync(join(dir, 'null')));
  } finally {
    await electronLike.close();
  }
});
