// Deleting from the library through the services: a series with the datasets, jobs, models,
// checkpoints and evaluations built on it, and its DICOM copies; asked first (a plan), refused while a
// job that uses it trains, cascading only when told; files outside the library are never touched; the
// deleted patient's data does not linger in the database file; a crash between rows and files is
// finished at the next start.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServices, type Services } from '../../src-main/services/index.js';
import { defaultDistillConfig, type ModelCard } from '../../src-main/contract/domain.js';
import type { DeleteOutcome, PatientSummary } from '../../src-main/contract/api.js';
import { writeNifti } from '../../src-main/data/nifti.js';
import { processStart, thisProcess } from '../../src-main/store/lease.js';
import { NO_PYDICOM, PYDICOM_DATA } from '../studies/helpers.js';

const skip = PYDICOM_DATA ? false : NO_PYDICOM;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
const CT5N = ['2062', '2392', '2693', '3023', '3353'];
const ct = (f: string) => join(PYDICOM_DATA as string, 'dicomdirtests', '98892001', 'CT5N', f);
const config = defaultDistillConfig('recon', {
  kind: 'mask',
  mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 42 },
});

/** A finished job on `datasetId` with a teacher model folder, a checkpoint folder, epochs and an evaluation. */
function job(s: Services, datasetId: number, name: string) {
  const { db } = s;
  const jobId = `job-${name}`;
  const models = s.paths.modelsRoot;
  db.jobs.create({ id: jobId, datasetId, config, status: 'finished', modelsRoot: models });
  const cp = join(models, 'checkpoints', jobId, 'teacher');
  const run = db.runs.create({ jobId, kind: 'teacher', config, epochsPlanned: 1, checkpointDir: cp });
  db.epochs.record({ runId: run.id, epoch: 0, trainLoss: 1, valLoss: 1, lr: 1e-3, seconds: 1 });
  mkdirSync(join(cp, 'checkpoint'), { recursive: true });
  writeFileSync(join(cp, 'checkpoint', 'manifest.json'), '{}');
  const dir = join(models, `${jobId}-teacher`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.json'), '{}');
  const model = db.models.create({
    runId: run.id,
    kind: 'teacher',
    name: `teacher-${name}`,
    dir,
    paramCount: 1,
    spec: config.teacher,
    card: { name } as unknown as ModelCard,
  });
  db.evaluations.record({
    modelId: model.id,
    runKind: 'teacher',
    datasetId,
    jobId,
    split: 'validation',
    degradation: 'cartesian 4x',
    psnr: 30,
    ssim: 0.9,
    nmse: 0.01,
    psnrStd2: 0,
    ssimStd2: 0,
    nmseStd2: 0,
    volumes: 1,
  });
  return { jobId, model, dir, checkpoints: join(models, 'checkpoints', jobId) };
}

test(
  'delete a series: a plan first, refused while its job trains, cascades only when told, removes rows, files and traces',
  { skip },
  async () => {
    const home = tmp('kdmri-delete-');
    const s = createServices({ dbPath: join(home, 'kdmri.db'), dataDir: home });
    // a CT series retrieved into the library's DICOM folder (as PACS retrievals are)
    const copies = join(home, 'dicom', 'ct5n');
    mkdirSync(copies, { recursive: true });
    for (const f of CT5N) copyFileSync(ct(f), join(copies, f));
    const files = await s.studies.importNow([copies]);
    const uid = files[0].seriesUid!;
    // a NIfTI from outside the library (another patient): never touched
    const outside = join(tmp('kdmri-outside-'), 'brain.nii.gz');
    writeNifti(outside, { data: new Float32Array(4 * 8 * 8).fill(0.5), slices: 4, h: 8, w: 8 });
    const [nifti] = await s.studies.importNow([outside]);
    const patients = await s.handlers.listStudies({});
    const ctPatient = patients.find((p) => p.studies.some((st) => st.series.some((se) => se.uid === uid)))!;
    assert.ok(ctPatient.name.length > 3, `patient name ${ctPatient.name}`);

    const ds = await s.handlers.createDatasetFromSeries({ seriesUids: [uid] });
    const built = job(s, ds.id, 'ct');
    const target = { kind: 'series' as const, id: uid };

    // 1. the plan: everything that goes, nothing gone yet
    const dry = await s.handlers.deleteItem({ target, cascade: false, dryRun: true });
    assert.equal(dry.deleted, false);
    assert.deepEqual(
      dry.plan.datasets.map((d) => d.id),
      [ds.id],
    );
    assert.deepEqual(dry.plan.jobs, [built.jobId]);
    assert.deepEqual(
      dry.plan.models.map((m) => m.id),
      [built.model.id],
    );
    assert.equal(dry.plan.evaluations, 1);
    assert.deepEqual(
      [...dry.plan.files].sort(),
      [built.dir, built.checkpoints, ...CT5N.map((f) => join(copies, f))].sort(),
    );
    assert.match(
      dry.plan.dependents ?? '',
      /is used by 1 dataset built from it \(1 jobs, 1 models\): delete them with it/,
    );
    assert.equal(dry.plan.blockedBy, null);
    assert.ok(existsSync(built.dir) && existsSync(join(copies, CT5N[0])));

    // 2. without cascade: refused, naming the dependents
    const refused = await s.call('deleteItem', { target });
    assert.ok(!refused.ok && refused.error.code === 'conflict', JSON.stringify(refused));
    assert.match(refused.error.message, /1 dataset built from it/);

    // 3. while its job trains in another live process: refused, naming it
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const holder = { ...thisProcess('kdmri distill'), pid: child.pid!, start: processStart(child.pid!) };
      s.db.jobs.update(built.jobId, { status: 'running' });
      assert.ok(s.db.jobs.acquireLease(built.jobId, holder).ok);
      const busy = await s.call('deleteItem', { target, cascade: true });
      assert.ok(!busy.ok && busy.error.code === 'conflict');
      assert.match(
        busy.error.message,
        new RegExp(`job ${built.jobId} is training in process ${child.pid} \\(kdmri distill\\)`),
      );
      s.db.jobs.releaseLease(built.jobId, holder);
      s.db.jobs.update(built.jobId, { status: 'finished' });
    } finally {
      child.kill('SIGKILL');
    }

    // the patient's name and the series UID are in the library's files now
    const fileBytes = () =>
      Buffer.concat(
        ['kdmri.db', 'kdmri.db-wal']
          .filter((f) => existsSync(join(home, f)))
          .map((f) => readFileSync(join(home, f))),
      );
    assert.ok(fileBytes().indexOf(Buffer.from(ctPatient.name)) >= 0);
    assert.ok(fileBytes().indexOf(Buffer.from(uid)) >= 0);

    // 4. with cascade: all of it goes
    const done = await s.call('deleteItem', { target, cascade: true });
    assert.ok(done.ok, JSON.stringify(done));
    assert.equal((done.value as DeleteOutcome).deleted, true);
    const { db } = s;
    assert.equal(db.datasets.get(ds.id), null);
    assert.equal(db.jobs.get(built.jobId), null);
    assert.equal(db.models.get(built.model.id), null);
    assert.deepEqual(db.epochs.forRun(1), []);
    assert.equal(db.evaluations.list({ datasetId: ds.id }).length, 0);
    const count = (t: string) =>
      (db.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    assert.deepEqual(
      ['instances', 'series_slices', 'series', 'studies', 'patients', 'pending_deletes'].map(count),
      [4, 4, 1, 1, 1, 0],
      'only the NIfTI series is left',
    );
    for (const p of [built.dir, built.checkpoints, copies]) assert.equal(existsSync(p), false, p);
    assert.deepEqual(readdirSync(join(home, 'dicom')), []);
    assert.ok(existsSync(outside), 'a file imported from outside the library stays');
    const left = (await s.handlers.listStudies({})) as PatientSummary[];
    assert.deepEqual(
      left.flatMap((p) => p.studies.flatMap((st) => st.series.map((se) => se.uid))),
      [nifti.seriesUid],
    );
    // the deleted patient's data does not linger in the database file (secure delete, WAL checkpointed)
    await s.close();
    const bytes = Buffer.concat(
      ['kdmri.db', 'kdmri.db-wal']
        .filter((f) => existsSync(join(home, f)))
        .map((f) => readFileSync(join(home, f))),
    );
    assert.equal(bytes.indexOf(Buffer.from(ctPatient.name)), -1, `"${ctPatient.name}" is still in the file`);
    assert.equal(bytes.indexOf(Buffer.from(uid)), -1, 'the series UID is still in the file');
  },
);

test('delete a model: its folder goes, its row stays marked deleted; a crash between rows and files is finished at start', async () => {
  const home = tmp('kdmri-delete-model-');
  const dbPath = join(home, 'kdmri.db');
  let s = createServices({ dbPath, dataDir: home });
  const ds = s.db.datasets.create({
    name: 'd',
    source: '/x.nii',
    task: 'recon',
    h: 8,
    w: 8,
    trainSlices: 3,
    valSlices: 1,
  });
  const built = job(s, ds.id, 'solo');
  const r = await s.call('deleteModel', { modelId: built.model.id });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(existsSync(built.dir), false);
  assert.ok(s.db.models.get(built.model.id)!.deletedAt, 'marked deleted');
  assert.ok(existsSync(built.checkpoints), 'the job (and its checkpoints) stay');
  const again = await s.call('deleteModel', { modelId: built.model.id });
  assert.ok(!again.ok && again.error.code === 'not-found');
  // a deletion whose process died after committing its rows: its files are still listed
  const orphan = join(home, 'models', 'orphan');
  mkdirSync(orphan);
  s.db.sqlite.prepare('INSERT INTO pending_deletes (path, created_at) VALUES (?, ?)').run(orphan, Date.now());
  await s.close();
  s = createServices({ dbPath, dataDir: home });
  assert.ok(s.recovered.swept.includes(orphan));
  assert.equal(existsSync(orphan), false);
  await s.close();
});
