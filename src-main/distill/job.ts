/**
 * A distillation job: the KD-MRI procedure as one resumable unit (method spec §3.3).
 *
 *   teacher   — train the teacher with L1 against the target;
 *   student   — the plain student baseline, trained from scratch the same way (for comparison only);
 *   attention — a fresh student learns the frozen teacher's attention maps (step 2);
 *   kd        — the student, initialised from step 2, fine-tunes with reconstruction + imitation (step 3).
 *
 * Then every model (and the zero-filled / low-resolution input) is evaluated per volume on the
 * validation split, and runs, epochs, models and evaluations are written to the store. A job that
 * crashed or was cancelled resumes: finished steps are loaded from their saved models, the
 * interrupted step continues from its last checkpoint.
 */
import { join, resolve } from 'node:path';
import {
  CsParamsSchema,
  degradationKey,
  degradationLabel,
  type BackendName,
  type DistillConfig,
  type MetricRow,
  type ModelCard,
  type EvalKind,
  type ProgressEvent,
  type RunKind,
} from '../contract/domain.js';
import { initBackend } from '../compute/backend.js';
import {
  createNetwork,
  encodeNetwork,
  namedWeights,
  setNamedWeights,
  type Network,
} from '../networks/index.js';
import { openDatabase, type Db, type EpochInput, type JsonValue } from '../store/db.js';
import { thisProcess } from '../store/lease.js';
import { describeWriteFailure } from '../store/model-files.js';
import { saveModelAtomically } from '../store/model-files.js';
import {
  loadCheckpoint,
  packTensors,
  removeCheckpoint,
  saveCheckpoint,
  unpackTensors,
  type TensorEntry,
} from '../store/checkpoints.js';
import { compactness } from './compactness.js';
import {
  bankHash,
  evaluatePrediction,
  evaluationFigures,
  metricRow,
  predict,
  type EvalResult,
} from './evaluate.js';
import { maskOfBank, runRecord, type RecordContext } from './records.js';
import { csSlices } from '../recon/cs/index.js';
import { loadModelDir, MODEL_JSON, WEIGHTS_BIN } from './infer.js';
import { buildSliceBank, type SliceBank } from './slice-bank.js';
import { trainRun, type TrainState } from './trainer.js';
import { loadJobData } from './job-data.js';
import type { JobRequest, JobResult } from './protocol.js';

export interface JobIO {
  onEvent(e: ProgressEvent): void;
  shouldStop(): boolean;
}

interface Trained {
  net: Network;
  modelId: number;
  dir: string;
  card: ModelCard;
}

/** Steps whose model reconstructs images and so appears in the results table. */
const EVALUATED: RunKind[] = ['teacher', 'student', 'kd'];

/** Entry point of the worker: never throws; failures come back as status 'failed' with the reason. */
export async function runJobRequest(req: JobRequest, jobId: string, io: JobIO): Promise<JobResult> {
  const t0 = Date.now();
  let backend: BackendName = req.backend ?? 'cpu';
  let db: Db | null = null;
  try {
    const info = await initBackend({ prefer: req.backend });
    backend = info.name;
    db = openDatabase(req.dbPath);
    return await runJob(db, req, jobId, backend, info.threads ?? 1, io, t0);
  } catch (err) {
    const message = markFailed(db, jobId, describeWriteFailure(err, req.dbPath));
    io.onEvent({ type: 'job-end', status: 'failed', error: message });
    return {
      jobId,
      status: 'failed',
      backend,
      params: { teacher: 0, student: 0 },
      rows: [],
      models: {},
      seconds: (Date.now() - t0) / 1000,
      error: message,
    };
  } finally {
    if (db?.open && db.jobs.get(jobId)) {
      try {
        db.jobs.releaseLease(jobId, thisProcess(''));
      } catch {
        // a full disk: the lease dies with this process anyway
      }
    }
    db?.close();
  }
}

/**
 * Record a failure on the job and its running run. On a full disk this write may fail too (then the
 * job stays as it was under this process, and the next start marks it interrupted): the failure
 * still reaches the caller through the job's end event, which then says both.
 */
function markFailed(db: Db | null, jobId: string, message: string): string {
  if (!db) return message;
  try {
    db.failJob(jobId, message);
    return message;
  } catch (err) {
    return `${message} (and the library could not record it: ${err instanceof Error ? err.message : String(err)})`;
  }
}

function trueAcceleration(bank: SliceBank): number | null {
  return bank.maskInfo ? bank.maskInfo.acceleration : null;
}

async function runJob(
  db: Db,
  req: JobRequest,
  jobId: string,
  backend: BackendName,
  threads: number,
  io: JobIO,
  t0: number,
): Promise<JobResult> {
  const existingJob = db.jobs.get(jobId);
  if (req.resume && !existingJob) throw new Error(`no job ${jobId} to resume`);
  // one process trains a job: refused while another live process holds it (the services that queued
  // this job hold its lease already: same process, renewed)
  const holder = thisProcess(req.holder ?? 'training worker');
  if (existingJob) {
    const lease = db.jobs.acquireLease(jobId, holder);
    if (!lease.ok) throw new Error(lease.message);
  }
  const config: DistillConfig = existingJob ? existingJob.config : req.config;
  const data = loadJobData(
    db,
    existingJob ? { kind: 'dataset', datasetId: existingJob.datasetId } : req.data,
    config.task,
  );
  const train = buildSliceBank(data.split.train, config.degradation);
  const val = buildSliceBank(data.split.val, config.degradation);
  const label = degradationLabel(config.degradation);
  // a job keeps its folder: a resume (from any process, with any --out) continues its checkpoints
  const modelsRoot = existingJob?.modelsRoot ?? storedRoot(db, jobId) ?? req.modelsRoot;
  const ds = db.datasets.get(data.datasetId);
  const recordContext: RecordContext = {
    config,
    data: {
      source: data.source,
      size: req.data.size ?? (typeof ds?.meta?.size === 'number' ? ds.meta.size : null),
      slab: req.data.slab ?? (typeof ds?.meta?.slab === 'number' ? ds.meta.slab : null),
      datasetId: data.datasetId,
      description: data.split.description,
    },
    train,
    val,
    backend,
    threads,
  };
  const evalContext: EvalContext = { db, datasetId: data.datasetId, jobId, config, bank: val, backend };

  if (!existingJob) {
    db.jobs.create({
      id: jobId,
      datasetId: data.datasetId,
      config,
      status: 'running',
      backend,
      modelsRoot,
      lease: holder,
    });
  } else if (existingJob.modelsRoot === null) db.jobs.update(jobId, { modelsRoot });
  db.jobs.update(jobId, { status: 'running', backend, startedAt: Date.now(), error: null });
  io.onEvent({ type: 'job-start', jobId, steps: config.steps, backend });

  const trained: Partial<Record<RunKind, Trained>> = {};
  const priorRuns = db.runs.list({ jobId });

  for (const kind of config.steps) {
    const prior = priorRuns.filter((r) => r.kind === kind).at(-1);
    const priorModel = prior ? db.models.list({ runId: prior.id }).at(-1) : undefined;
    if (prior?.status === 'finished' && priorModel) {
      const m = loadModelDir(priorModel.dir);
      trained[kind] = { net: m.net, modelId: priorModel.id, dir: priorModel.dir, card: m.card };
      continue;
    }
    const spec = kind === 'teacher' ? config.teacher : config.student;
    const net = createNetwork(spec, config.training.seed);
    let teacher: Trained | undefined;
    if (kind === 'attention' || kind === 'kd') {
      teacher = trained.teacher;
      if (!teacher)
        throw new Error(`the ${kind} step needs a trained teacher: include 'teacher' before it in the steps`);
    }
    if (kind === 'kd' && config.studentInit === 'attention') {
      const at = trained.attention;
      if (!at)
        throw new Error(
          `the kd step starts from the attention step's student: include 'attention' before it`,
        );
      setNamedWeights(net, namedWeights(at.net));
    }
    const checkpointDir = prior?.checkpointDir ?? join(modelsRoot, 'checkpoints', jobId, kind);
    const runId =
      prior && prior.status !== 'finished'
        ? prior.id
        : db.runs.create({
            jobId,
            kind,
            status: 'running',
            config,
            backend,
            epochsPlanned: config.training.epochs,
            parentRunId: teacher ? (db.models.get(teacher.modelId)?.runId ?? null) : null,
            checkpointDir,
          }).id;
    db.runs.update(runId, { status: 'running', backend, startedAt: Date.now(), error: null });
    db.runRecords.write(runRecord(runId, recordContext));

    const recordEpoch = (row: EpochInput, state: TrainState) => {
      db.epochs.record(row);
      db.runs.update(runId, {
        epochsDone: row.epoch + 1,
        bestEpoch: state.bestEpoch,
        bestValLoss: state.bestValLoss,
      });
    };
    const result = await trainRun(
      { kind, runId, net, teacher: teacher?.net, train, val, config, cacheDir: checkpointDir },
      {
        onEvent: io.onEvent,
        shouldStop: io.shouldStop,
        loadCheckpoint: async () => {
          const cp = readTrainState(checkpointDir, io);
          // the checkpoint is written before its epoch's row: a process killed between the two left
          // the row out, and the resumed run would never write it; the checkpoint carries it
          if (cp?.epochRow && !db.epochs.forRun(runId).some((e) => e.epoch === cp.epochRow!.epoch))
            recordEpoch({ ...cp.epochRow, runId }, cp.state);
          return cp?.state ?? null;
        },
        onEpoch: async (rec, state) => {
          const row: EpochInput = {
            runId,
            epoch: rec.epoch,
            trainLoss: rec.trainLoss,
            valLoss: rec.valLoss,
            lr: rec.lr,
            seconds: rec.seconds,
            createdAt: Date.now(),
          };
          writeTrainState(checkpointDir, state, row);
          db.jobs.heartbeat(jobId, holder);
          recordEpoch(row, state);
        },
      },
    );
    if (result.status === 'cancelled') {
      db.runs.update(runId, { status: 'cancelled', endedAt: Date.now() });
      db.runRecords.setStopReason(runId, 'cancelled');
      db.jobs.update(jobId, { status: 'cancelled', endedAt: Date.now() });
      io.onEvent({ type: 'job-end', status: 'cancelled' });
      return summary('cancelled');
    }
    setNamedWeights(net, result.bestWeights);
    const metrics = EVALUATED.includes(kind)
      ? evaluatePrediction(val, predict(net, val, config.training.batchSize))
      : null;
    const card: ModelCard = {
      name: `${kind}-${jobId.slice(0, 8)}`,
      kind,
      task: config.task,
      spec: net.spec,
      params: net.paramCount(),
      degradation: config.degradation,
      degradationLabel: label,
      acceleration: trueAcceleration(train),
      data: { source: data.source, h: train.h, w: train.w, trainSlices: train.count, valSlices: val.count },
      training: {
        ...config.training,
        epochsDone: result.epochsDone,
        bestEpoch: result.bestEpoch,
        bestValLoss: result.bestValLoss,
        seconds: result.seconds,
      },
      teacher: teacher ? teacher.card.name : null,
      backend,
      createdAt: new Date().toISOString(),
      metrics: metrics ? metricRow(kind, label, metrics) : null,
      compactness: null,
    };
    const encoded0 = await encodeNetwork(net, card);
    card.compactness = compactness(net, encoded0.weightData.byteLength, backend);
    const encoded = await encodeNetwork(net, card);
    const model = saveModelAtomically(
      db,
      modelsRoot,
      `${jobId}-${kind}`,
      {
        [MODEL_JSON]: JSON.stringify(encoded.modelJson, null, 1),
        [WEIGHTS_BIN]: new Uint8Array(encoded.weightData),
      },
      {
        runId,
        kind,
        name: card.name,
        paramCount: card.params,
        spec: net.spec,
        card,
        teacherModelId: teacher?.modelId ?? null,
      },
    );
    if (metrics) recordEvaluation(evalContext, model.id, kind, metrics);
    db.runs.update(runId, { status: 'finished', endedAt: Date.now(), wallSeconds: result.seconds });
    db.runRecords.setStopReason(runId, result.stoppedEarly ? 'patience' : 'completed');
    // The saved model now carries the step; its checkpoint is only needed while the step is unfinished.
    removeCheckpoint(checkpointDir);
    trained[kind] = { net, modelId: model.id, dir: model.dir, card };
    io.onEvent({
      type: 'step-end',
      step: kind,
      runId,
      bestEpoch: result.bestEpoch,
      bestValLoss: result.bestValLoss,
      modelId: model.id,
    });
  }

  // The baseline row: the degraded input itself (zero-filled for recon, low-resolution for SR).
  const baseline = evaluatePrediction(val, val.input);
  const baseKind = config.task === 'sr' ? 'lr' : 'zf';
  recordEvaluation(evalContext, null, baseKind, baseline);
  const rows: MetricRow[] = [metricRow(baseKind, label, baseline)];
  // The classical baseline: ℓ1-wavelet compressed sensing on the same k-space and mask.
  const cs = config.cs === undefined ? CsParamsSchema.parse({}) : config.cs;
  if (cs && val.kre && val.kim && val.mask) {
    const csResult = evaluatePrediction(
      val,
      csSlices(val.kre, val.kim, val.mask, val.count, val.h, val.w, cs),
    );
    recordEvaluation(evalContext, null, 'cs', csResult, { ...cs });
    rows.push(metricRow('cs', label, csResult));
  }
  for (const kind of EVALUATED) {
    const m = trained[kind]?.card.metrics;
    if (m) rows.push(m);
  }
  io.onEvent({ type: 'eval', rows });
  db.jobs.update(jobId, { status: 'finished', endedAt: Date.now() });
  io.onEvent({ type: 'job-end', status: 'finished' });
  return summary('finished', rows);

  function summary(status: JobResult['status'], resultRows: MetricRow[] = []): JobResult {
    const models: JobResult['models'] = {};
    for (const [k, t] of Object.entries(trained)) models[k as RunKind] = { id: t.modelId, dir: t.dir };
    const params = {
      teacher: createParamCount(config.teacher),
      student: createParamCount(config.student),
    };
    return { jobId, status, backend, params, rows: resultRows, models, seconds: (Date.now() - t0) / 1000 };
  }
}

/** The models root of a job made before it was recorded: its checkpoint folders say where. */
function storedRoot(db: Db, jobId: string): string | null {
  const dir = db.runs.list({ jobId }).find((r) => r.checkpointDir)?.checkpointDir;
  // <root>/checkpoints/<jobId>/<kind>
  return dir ? resolve(dir, '..', '..', '..') : null;
}

function createParamCount(spec: DistillConfig['teacher']): number {
  const net = createNetwork(spec, 0);
  const n = net.paramCount();
  net.dispose();
  return n;
}

interface EvalContext {
  db: Db;
  datasetId: number;
  jobId: string;
  config: DistillConfig;
  /** The validation bank: a job scores its validation split only. */
  bank: SliceBank;
  backend: BackendName;
}

function recordEvaluation(
  c: EvalContext,
  modelId: number | null,
  runKind: EvalKind,
  r: EvalResult,
  method: Record<string, string | number> | null = null,
): void {
  c.db.evaluations.record({
    modelId,
    runKind,
    datasetId: c.datasetId,
    jobId: c.jobId,
    split: 'validation',
    degradation: degradationLabel(c.config.degradation),
    degradationJson: c.config.degradation,
    degradationKey: degradationKey(c.config.degradation),
    maskHash: maskOfBank(c.bank).hash,
    acceleration: trueAcceleration(c.bank),
    dataHash: bankHash(c.bank),
    method,
    ...evaluationFigures(r),
    backend: c.backend,
  });
}

// Checkpoint layout: weights.bin (current weights), the optimizer blob, best.bin (best epoch's weights);
// the manifests that split the blobs back into named tensors travel in the checkpoint's meta.
const WEIGHTS_FILE = 'weights.bin';
const BEST_BLOB = 'best';

function pack(weights: Map<string, Float32Array>) {
  return packTensors([...weights].map(([name, data]) => ({ name, shape: [data.length], data })));
}

function unpack(data: Uint8Array, manifest: TensorEntry[]): Map<string, Float32Array> {
  return new Map(unpackTensors(data, manifest).map((t) => [t.name, t.data]));
}

/** NaN (a loss that was not finite) as null in the checkpoint's JSON, and back. */
const toJson = (v: number) => (Number.isNaN(v) ? null : v);
const fromJson = (v: number | null) => (v === null ? NaN : v);

/** A checkpoint with its epoch's metrics row (written to the database after it). */
function writeTrainState(dir: string, state: TrainState, row: EpochInput): void {
  const current = pack(state.weights);
  const best = pack(state.bestWeights);
  const opt = packTensors(state.optimizer.map((s) => ({ name: s.name, shape: s.shape, data: s.data })));
  saveCheckpoint(dir, {
    epoch: state.epoch,
    weights: { [WEIGHTS_FILE]: current.data },
    optimizer: { data: opt.data, manifest: opt.manifest as unknown as JsonValue },
    bestValLoss: state.bestValLoss,
    bestEpoch: state.bestEpoch,
    blobs: { [BEST_BLOB]: best.data },
    meta: {
      weights: current.manifest,
      best: best.manifest,
      epochRow: {
        epoch: row.epoch,
        trainLoss: toJson(row.trainLoss),
        valLoss: toJson(row.valLoss),
        lr: toJson(row.lr),
        seconds: toJson(row.seconds),
        createdAt: row.createdAt ?? Date.now(),
      },
    } as unknown as JsonValue,
  });
}

interface StoredEpochRow {
  epoch: number;
  trainLoss: number | null;
  valLoss: number | null;
  lr: number | null;
  seconds: number | null;
  createdAt: number;
}

/** The last checkpoint's state and its epoch's row (absent in checkpoints written before it was kept). */
function readTrainState(
  dir: string,
  io: JobIO,
): { state: TrainState; epochRow: Omit<EpochInput, 'runId'> | null } | null {
  const cp = loadCheckpoint(dir);
  if (!cp) return null;
  if (cp.fellBack) io.onEvent({ type: 'log', level: 'warn', message: cp.fellBack });
  const meta = cp.meta as unknown as {
    weights: TensorEntry[];
    best: TensorEntry[];
    epochRow?: StoredEpochRow;
  };
  const w = cp.weights[WEIGHTS_FILE];
  const weightBytes = typeof w === 'string' ? new TextEncoder().encode(w) : w;
  const r = meta.epochRow;
  return {
    state: {
      epoch: cp.epoch,
      weights: unpack(weightBytes, meta.weights),
      optimizer: unpackTensors(cp.optimizer.data, cp.optimizer.manifest as unknown as TensorEntry[]),
      bestEpoch: cp.bestEpoch,
      bestValLoss: cp.bestValLoss,
      bestWeights: unpack(cp.blobs[BEST_BLOB], meta.best),
    },
    epochRow:
      r && r.epoch === cp.epoch
        ? {
            epoch: r.epoch,
            trainLoss: fromJson(r.trainLoss),
            valLoss: fromJson(r.valLoss),
            lr: fromJson(r.lr),
            seconds: fromJson(r.seconds),
            createdAt: r.createdAt,
          }
        : null,
  };
}
