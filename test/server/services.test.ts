// The services on the real store and studies library, with typed stand-ins for the engine functions
// compare needs (their own tests live with them), given to the composition root: model selection per
// degradation, residues on a shared scale, metrics per viewport, exports, the job queue.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import dicomParser from 'dicom-parser';
import { createServices } from '../../src-main/services/index.js';
import { engine, type Engine } from '../../src-main/services/engine.js';
import { everyAccRow } from './doubles.js';
import { openDatabase } from '../../src-main/store/db.js';
import { writeNifti } from '../../src-main/data/nifti.js';
import type { Network } from '../../src-main/networks/index.js';
import { endedResult } from '../../src-main/distill/service.js';
import type { ApiEvent, CompareResult, JobInfo, PatientSummary } from '../../src-main/contract/api.js';
import {
  CsParamsSchema,
  defaultDistillConfig,
  degradationLabel,
  type Degradation,
  type ModelCard,
  type ProgressEvent,
  type Volume,
} from '../../src-main/contract/domain.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const H = 8;
const W = 8;

/** A volume whose slice s is a constant (s + 1) / 10 with one bright pixel. */
function phantom(slices: number, h = H, w = W): Volume {
  const data = new Float32Array(slices * h * w);
  for (let s = 0; s < slices; s++)
    for (let i = 0; i < h * w; i++) data[s * h * w + i] = i === 9 ? 1 : (s + 1) / 10;
  return { data, slices, h, w };
}

/**
 * Typed stand-ins: "zero-filled" = target · (1 − 1/acc); a "network" adds a fixed error depending on
 * its kind (compare never looks inside a network: it only hands it back to reconstructVolume).
 */
function fakes(): Engine {
  const err: Record<string, number> = { teacher: 0.01, student: 0.04, kd: 0.02 };
  const kindOf = new WeakMap<object, string>();
  return {
    ...engine,
    loadDataSplit: (_path, size) => ({
      train: [phantom(4, size, size)],
      val: [phantom(3, size, size)],
      description: 'x',
      valFirst: [0],
    }),
    buildSliceBank: (vols, d) => {
      const acc = d.kind === 'mask' ? d.mask.acc : 2;
      const target = vols[0].data.slice();
      const { h, w } = vols[0];
      return { target, input: target.map((v) => v * (1 - 1 / acc)), h, w, count: vols[0].slices };
    },
    volumeMetrics: (gt, pred) => {
      let se = 0;
      for (let i = 0; i < gt.data.length; i++) se += (gt.data[i] - pred.data[i]) ** 2;
      const mse = se / gt.data.length;
      return { psnr: 10 * Math.log10(1 / mse), ssim: 1 - mse, nmse: mse };
    },
    buildMask: everyAccRow,
    initBackend: async () => ({ name: 'cpu' }),
    loadModelDir: (dir) => {
      const card = JSON.parse(readFileSync(join(dir, 'card.json'), 'utf8')) as ModelCard;
      const net = { spec: card.spec, dispose: () => undefined } as unknown as Network;
      kindOf.set(net, card.kind);
      return { net, card };
    },
    reconstructVolume: (net, vol) => {
      const e = err[kindOf.get(net) ?? ''];
      return { output: { ...vol, data: vol.data.map((v) => v + e) } };
    },
    csReconstructVolume: (vol) => ({ output: { ...vol, data: vol.data.map((v) => v + 0.03) } }),
  };
}

function setup(withModels: boolean, modelSize = H) {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-services-'));
  dirs.push(dir);
  const dbPath = join(dir, 'kdmri.db');
  const db = openDatabase(dbPath);
  const ds = db.datasets.create({
    name: 'phantom',
    source: '/tmp/p.nii',
    task: 'recon',
    h: H,
    w: W,
    trainSlices: 4,
    valSlices: 3,
  });
  if (withModels) {
    const degradation: Degradation = {
      kind: 'mask',
      mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
    };
    const config = defaultDistillConfig('recon', degradation);
    db.jobs.create({ id: 'job-a', datasetId: ds.id, config, status: 'finished' });
    for (const kind of ['teacher', 'student', 'kd'] as const) {
      const run = db.runs.create({ jobId: 'job-a', kind, config, epochsPlanned: 1 });
      const mdir = join(dir, 'models', kind);
      mkdirSync(mdir, { recursive: true });
      const card = {
        name: kind,
        kind,
        task: 'recon',
        spec: config.teacher,
        params: 1,
        degradation,
        degradationLabel: degradationLabel(degradation),
        acceleration: 4,
        data: { source: '/tmp/p.nii', h: modelSize, w: modelSize, trainSlices: 4, valSlices: 3 },
        training: { ...config.training, epochsDone: 1, bestEpoch: 0, bestValLoss: 0.1, seconds: 1 },
        teacher: null,
        backend: 'cpu',
        createdAt: new Date(0).toISOString(),
        metrics: null,
        compactness: null,
      } as ModelCard;
      writeFileSync(join(mdir, 'card.json'), JSON.stringify(card));
      db.models.create({
        runId: run.id,
        kind,
        name: kind,
        dir: mdir,
        paramCount: 1,
        spec: config.teacher,
        card,
      });
    }
  }
  db.close();
  return { dir, dbPath, datasetId: ds.id };
}

test('compare: six viewports (with CS), residues on a shared scale, metrics, models matched to the dataset', async () => {
  const { dir, dbPath, datasetId } = setup(true);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  const req = {
    source: { datasetId },
    sliceIndex: 1,
    degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
  };
  const r = await s.call('compare', req);
  assert.ok(r.ok, JSON.stringify(r));
  const c = r.value as CompareResult;
  assert.deepEqual(
    c.viewports.map((v) => v.name),
    ['zf', 'target', 'teacher', 'student', 'kd', 'cs'],
  );
  assert.equal(c.slices, 3);
  assert.equal(c.degradation, 'cartesian 4x');
  assert.deepEqual(c.mask?.lines, [0, 4]);
  assert.equal(c.mask?.acceleration, 4);
  const by = Object.fromEntries(c.viewports.map((v) => [v.name, v]));
  assert.equal(by.target.residue, null);
  assert.ok(Math.abs(by.teacher.residue!.data[0] - 0.01) < 1e-6);
  assert.ok(Math.abs(by.kd.residue!.data[0] - 0.02) < 1e-6);
  assert.ok(Math.abs(by.cs.residue!.data[0] - 0.03) < 1e-6);
  assert.equal(by.cs.modelId, null);
  // slice 1 is 0.2 everywhere but pixel 9: zero-filled at 4x loses a quarter
  assert.ok(Math.abs(by.zf.residue!.data[0] - 0.05) < 1e-6);
  assert.ok(Math.abs(c.residueMax - 0.25) < 1e-6, `residueMax ${c.residueMax}`);
  assert.ok(by.teacher.metrics!.psnr > by.kd.metrics!.psnr && by.kd.metrics!.psnr > by.student.metrics!.psnr);
  assert.equal(by.teacher.note, null);
  assert.equal(by.teacher.trainedOn, 'cartesian 4x');

  // another acceleration: ZF changes; the 4x models are used and say so
  const r8 = await s.call('compare', {
    ...req,
    degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 8 } },
  });
  assert.ok(r8.ok);
  const c8 = r8.value as CompareResult;
  assert.ok(
    c8.viewports[0].metrics!.psnr > c.viewports[0].metrics!.psnr,
    'zf at 8x loses less in this stand-in',
  );
  assert.equal(c8.viewports[2].note, 'trained on cartesian 4x');

  const past = await s.call('compare', { ...req, sliceIndex: 3 });
  assert.ok(!past.ok && past.error.code === 'bad-request' && past.error.where === 'sliceIndex');

  // exports: a PNG montage (2 rows × 6 columns of 8×8 with 4 px gaps) and one derived series per image
  const png = await s.call('exportComparison', { ...req, format: 'png' });
  assert.ok(png.ok);
  const [pngPath] = (png.value as { paths: string[] }).paths;
  const img = PNG.sync.read(readFileSync(pngPath));
  assert.deepEqual([img.width, img.height], [6 * W + 7 * 4, 2 * H + 3 * 4]);
  const dcm = await s.call('exportComparison', { ...req, format: 'dicom' });
  assert.ok(dcm.ok);
  const files = (dcm.value as { paths: string[] }).paths;
  assert.equal(files.length, 6);
  const bytes = readFileSync(files[0]);
  assert.equal(bytes.subarray(128, 132).toString('latin1'), 'DICM');
  // dicom-parser (what the viewer uses) reads it back: shape, 16-bit pixels, slope restores the floats
  const ds = dicomParser.parseDicom(new Uint8Array(bytes));
  assert.equal(ds.string('x00020010'), '1.2.840.10008.1.2.1');
  assert.equal(ds.uint16('x00280010'), H);
  assert.equal(ds.uint16('x00280011'), W);
  assert.equal(ds.uint16('x00280100'), 16);
  const slope = Number(ds.string('x00281053'));
  const intercept = Number(ds.string('x00281052'));
  const el = ds.elements.x7fe00010;
  const px = new Uint16Array(
    bytes.buffer.slice(bytes.byteOffset + el.dataOffset, bytes.byteOffset + el.dataOffset + el.length),
  );
  const zf = (dcm.value as { paths: string[] }).paths[0];
  assert.match(zf, /01-Zero-filled_cartesian_4x[\\/]IM0001\.dcm$/);
  assert.ok(Math.abs(px[0] * slope + intercept - by.zf.image!.data[0]) < 1e-4);
  assert.equal(ds.string('x00080008'), 'DERIVED\\SECONDARY');

  // a restoration request (low-resolution input) never borrows the reconstruction models
  const lr = await s.call('compare', { ...req, degradation: { kind: 'lowres', keep: 0.5 } });
  assert.ok(lr.ok, JSON.stringify(lr));
  const cl = lr.value as CompareResult;
  assert.equal(cl.mask, null);
  assert.equal(cl.degradation, 'lowres 0.5');
  assert.deepEqual(
    cl.viewports.slice(2).map((v) => v.image),
    [null, null, null, null],
  );
  assert.match(cl.viewports[5].note ?? '', /compressed sensing reconstructs from a mask/);
  await s.close();
});

test('compare caches reconstructions and prepares the neighbouring slices while idle', async () => {
  const { dir, dbPath, datasetId } = setup(true);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  const req = {
    source: { datasetId },
    sliceIndex: 1,
    degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
  };
  const value = (r: Awaited<ReturnType<typeof s.call>>) => {
    assert.ok(r.ok, JSON.stringify(r));
    return r.value as CompareResult;
  };
  const inference = (r: Awaited<ReturnType<typeof s.call>>) =>
    Object.fromEntries(
      value(r)
        .viewports.filter((v) => v.inference)
        .map((v) => [v.name, v.inference!.cached]),
    );
  const first = await s.call('compare', req);
  assert.deepEqual(inference(first), { teacher: false, student: false, kd: false, cs: false });
  const again = await s.call('compare', req);
  assert.deepEqual(inference(again), { teacher: true, student: true, kd: true, cs: true });
  assert.deepEqual(
    value(again).viewports.map((v) => v.image?.data[0]),
    value(first).viewports.map((v) => v.image?.data[0]),
  );
  await new Promise((r) => setTimeout(r, 50)); // the idle prefetch of slices 2 and 0
  for (const sliceIndex of [0, 2]) {
    const n = await s.call('compare', { ...req, sliceIndex });
    assert.deepEqual(
      inference(n),
      { teacher: true, student: true, kd: true, cs: true },
      `slice ${sliceIndex}`,
    );
  }
  // another degradation is another reconstruction
  const r8 = await s.call('compare', {
    ...req,
    degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 8 } },
  });
  assert.deepEqual(inference(r8), { teacher: false, student: false, kd: false, cs: false });
  await s.close();
});

test('compare without models: images for zero-filled, target and CS, with a note for the models', async () => {
  const { dir, dbPath, datasetId } = setup(false);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  const r = await s.call('compare', {
    source: { datasetId },
    sliceIndex: 0,
    degradation: { kind: 'mask', mask: { kind: 'random', acc: 5 } },
  });
  assert.ok(r.ok);
  const c = r.value as CompareResult;
  assert.deepEqual(
    c.viewports.map((v) => v.image !== null),
    [true, true, false, false, false, true],
  );
  assert.match(c.viewports[4].note ?? '', /no KD student model/);
  await s.close();
});

test('compare: the CS viewport is the real ℓ1-wavelet reconstruction of the slice, cached', async () => {
  const { dir, dbPath, datasetId } = setup(false);
  const s = createServices({
    dbPath,
    dataDir: dir,
    engine: {
      ...fakes(),
      buildSliceBank: engine.buildSliceBank,
      csReconstructVolume: engine.csReconstructVolume,
    },
  });
  const degradation = {
    kind: 'mask',
    mask: { kind: 'equispaced', acc: 2, axis: 'rows', seed: 1, centerFraction: 0.25 },
  } as const;
  const req = { source: { datasetId }, sliceIndex: 1, degradation };
  const first = await s.call('compare', req);
  assert.ok(first.ok, JSON.stringify(first));
  const cs = (first.value as CompareResult).viewports.find((v) => v.name === 'cs')!;
  const slice = phantom(3);
  const one = { data: slice.data.slice(W * H, 2 * W * H), slices: 1, h: H, w: W };
  const expected = engine.csReconstructVolume(one, degradation, CsParamsSchema.parse({})).output.data;
  assert.deepEqual(Array.from(cs.image!.data), Array.from(expected));
  assert.equal(cs.inference?.cached, false);
  const again = await s.call('compare', req);
  assert.ok(again.ok);
  assert.equal(
    (again.value as CompareResult).viewports.find((v) => v.name === 'cs')!.inference?.cached,
    true,
  );
  await s.close();
});

test('models: list, card, export, delete; paper table; runs and epochs', async () => {
  const { dir, dbPath, datasetId } = setup(true);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  const models = await s.call('listModels', { datasetId });
  assert.ok(models.ok);
  const list = models.value as { id: number; kind: string; datasetId: number }[];
  assert.deepEqual(list.map((m) => m.kind).sort(), ['kd', 'student', 'teacher']);
  assert.ok(list.every((m) => m.datasetId === datasetId));
  const card = await s.call('getModelCard', { modelId: list[0].id });
  assert.ok(card.ok);
  const ex = await s.call('exportModel', { modelId: list[0].id });
  assert.ok(ex.ok && existsSync(join((ex.value as { path: string }).path, 'card.json')));
  const del = await s.call('deleteModel', { modelId: list[0].id });
  assert.ok(del.ok);
  const again = await s.call('getModelCard', { modelId: list[0].id });
  assert.ok(!again.ok && again.error.code === 'not-found');
  const table = await s.call('paperTable', { jobId: 'job-a', format: 'csv' });
  assert.ok(table.ok, JSON.stringify(table));
  assert.match((table.value as { text: string }).text, /^model,column,metric,mean,two_std,n,volumes,seeds/);
  const both = await s.call('paperTable', { jobId: 'job-a', studyId: 'x' });
  assert.ok(!both.ok && both.error.code === 'bad-request');
  const missing = await s.call('paperTable', { jobId: 'job-zz' });
  assert.ok(!missing.ok && missing.error.code === 'not-found');
  const runs = await s.call('listRuns', { datasetId, kind: 'teacher' });
  assert.ok(runs.ok && (runs.value as unknown[]).length === 1);
  const none = await s.call('listRuns', { datasetId: datasetId + 1 });
  assert.ok(none.ok && (none.value as unknown[]).length === 0);
  const epochs = await s.call('runEpochs', { runId: 1 });
  assert.ok(epochs.ok);
  await s.close();
});

test('jobs: one trains at a time, the rest wait in the queue; a queued job can be cancelled', async () => {
  const { dir, dbPath, datasetId } = setup(false);
  const started: string[] = [];
  const finishers: (() => void)[] = [];
  const s = createServices({
    dbPath,
    dataDir: dir,
    engine: {
      ...fakes(),
      startJob: (req, onEvent) => {
        const jobId = req.jobId!;
        started.push(jobId);
        const ev: ProgressEvent = { type: 'job-start', jobId, steps: ['teacher'], backend: 'cpu' };
        onEvent(ev);
        return {
          jobId,
          cancel: () => undefined,
          done: new Promise((ok) => finishers.push(() => ok(endedResult(jobId, 'finished')))),
        };
      },
    },
  });
  const config = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 1 },
  });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await s.call('startDistillation', { datasetId, config });
    assert.ok(r.ok);
    ids.push((r.value as { jobId: string }).jobId);
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(started, [ids[0]]);
  const jobs = await s.call('listJobs', {});
  assert.ok(jobs.ok);
  const queued = (jobs.value as JobInfo[]).filter((j) => j.status === 'queued').map((j) => j.id);
  assert.deepEqual(queued.sort(), [ids[1], ids[2]].sort());
  const c = await s.call('cancelJob', { jobId: ids[2] });
  assert.ok(c.ok && (c.value as { cancelled: boolean }).cancelled);
  finishers[0]();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(started, [ids[0], ids[1]]);
  finishers[1]();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(started, [ids[0], ids[1]], 'the cancelled job never starts');
  const missing = await s.call('startDistillation', { datasetId: 99, config });
  assert.ok(!missing.ok && missing.error.code === 'not-found');
  await s.close();
});

test("compare runs at the size the dataset's models were trained at", async () => {
  const { dir, dbPath, datasetId } = setup(true, 6);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  const r = await s.call('compare', {
    source: { datasetId },
    sliceIndex: 0,
    degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
  });
  assert.ok(r.ok, JSON.stringify(r));
  const c = r.value as CompareResult;
  assert.deepEqual([c.h, c.w], [6, 6]);
  assert.ok(c.viewports.every((v) => v.image !== null && v.image.data.length === 36));
  await s.close();
});

test('importing paths: per-file results as import events, series in the library', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdmri-import-'));
  dirs.push(dir);
  const s = createServices({ dbPath: join(dir, 'kdmri.db'), dataDir: dir });
  const events: ApiEvent[] = [];
  s.subscribe((e) => events.push(e));
  const notes = join(dir, 'notes.txt');
  writeFileSync(notes, 'not an image');
  const r = await s.call('importPaths', {
    paths: [engine.sampleDataPath(), join(dir, 'missing.nii.gz'), notes],
  });
  assert.ok(r.ok);
  const importId = (r.value as { importId: string }).importId;
  for (let i = 0; i < 200 && !events.some((e) => e.channel === 'import' && e.event.type === 'end'); i++) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const mine = events.filter((e) => e.channel === 'import' && e.importId === importId);
  const progress = mine.filter((e) => e.channel === 'import' && e.event.type === 'progress');
  assert.equal(progress.length, 3);
  const end = mine.find((e) => e.channel === 'import' && e.event.type === 'end');
  assert.ok(end && end.channel === 'import' && end.event.type === 'end');
  const byPath = Object.fromEntries(end.event.summary.files.map((f) => [f.path, f.status]));
  assert.deepEqual(byPath, {
    [engine.sampleDataPath()]: 'imported',
    [join(dir, 'missing.nii.gz')]: 'failed',
    [notes]: 'failed',
  });
  const studies = await s.call('listStudies', {});
  assert.ok(studies.ok);
  const series = (studies.value as PatientSummary[]).flatMap((p) => p.studies.flatMap((st) => st.series));
  assert.deepEqual(
    series.map((x) => [x.slices, x.rows, x.columns]),
    [[40, 160, 160]],
  );
  await s.close();
});

test('compare on a library series: all its slices, models of any dataset at their size', async () => {
  const { dir, dbPath } = setup(true, 6);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  const file = join(dir, 'phantom.nii.gz');
  writeNifti(file, phantom(5, 10, 10));
  const [imported] = await s.studies.importNow([file]);
  assert.equal(imported.status, 'imported', imported.message);
  const uid = imported.seriesUid!;
  const r = await s.call('compare', {
    source: { seriesUid: uid },
    sliceIndex: 4,
    degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
  });
  assert.ok(r.ok, JSON.stringify(r));
  const c = r.value as CompareResult;
  assert.equal(c.slices, 5);
  assert.deepEqual([c.h, c.w], [6, 6]);
  assert.ok(c.viewports.every((v) => v.image !== null));
  assert.equal(c.source, `series ${uid}`);
  await s.close();
});

test('start-up sweeps what dead writers left: half-written model folders, checkpoints, exports, temporaries', async () => {
  const { dir, dbPath } = setup(false);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const models = join(dir, 'models');
  const leftovers = [
    join(models, `.tmp-${dead}-0a1b2c`), // a model folder cut short
    join(models, 'checkpoints', 'job-x', 'teacher', 'checkpoint.tmp'), // a checkpoint save cut short
    join(dir, 'exports', `teacher-1.tmp-${dead}-abcdef`), // a model export cut short
    join(dir, 'exports', `compare.png.tmp-${dead}-123456`), // an atomic file write cut short
  ];
  for (const p of leftovers) {
    mkdirSync(join(p, '..'), { recursive: true });
    if (p.endsWith('.png.tmp-' + dead + '-123456')) writeFileSync(p, 'half');
    else mkdirSync(p);
  }
  const aside = join(models, `.old-${dead}-fedcba.kd-model`); // moved aside, replacement never came
  mkdirSync(aside);
  writeFileSync(join(aside, 'model.json'), '{}');
  const mine = join(models, `.tmp-${process.pid}-999999`); // a live writer's: left alone
  mkdirSync(mine);
  const complete = join(models, 'checkpoints', 'job-x', 'teacher', 'checkpoint');
  mkdirSync(complete);
  const s = createServices({ dbPath, dataDir: dir, engine: fakes() });
  assert.deepEqual([...s.recovered.swept].sort(), [...leftovers, aside].sort());
  for (const p of leftovers) assert.equal(existsSync(p), false, p);
  assert.equal(readFileSync(join(models, 'kd-model', 'model.json'), 'utf8'), '{}', 'restored');
  assert.ok(existsSync(mine) && existsSync(complete));
  await s.close();
});

test('the library is private to its user: home 0700, database (and its WAL) 0600, also an older library', async () => {
  const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
  // a new library, whatever the umask
  const fresh = join(mkdtempSync(join(tmpdir(), 'kdmri-private-')), 'home');
  dirs.push(dirname(fresh));
  const s1 = createServices({ dbPath: join(fresh, 'kdmri.db'), dataDir: fresh });
  await s1.call('listDatasets', {});
  assert.deepEqual(
    [mode(fresh), mode(join(fresh, 'kdmri.db')), mode(join(fresh, 'kdmri.db-wal'))],
    ['700', '600', '600'],
  );
  await s1.close();
  // a library an earlier version left readable by everyone: made private when the home opens it
  const older = mkdtempSync(join(tmpdir(), 'kdmri-older-'));
  dirs.push(older);
  openDatabase(join(older, 'kdmri.db')).close();
  chmodSync(older, 0o755);
  chmodSync(join(older, 'kdmri.db'), 0o644);
  const saved = process.env.KDMRI_HOME;
  process.env.KDMRI_HOME = older;
  try {
    const s2 = createServices({ dbPath: join(older, 'kdmri.db'), dataDir: older });
    assert.deepEqual([mode(older), mode(join(older, 'kdmri.db'))], ['700', '600']);
    await s2.close();
  } finally {
    if (saved === undefined) delete process.env.KDMRI_HOME;
    else process.env.KDMRI_HOME = saved;
  }
});
