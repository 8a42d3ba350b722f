/**
 * The one typed API between the workstation's renderer and its main side (Electron main process or
 * the web-mode server). Both transports (IPC and HTTP + Server-Sent Events) carry exactly these
 * operations, requests validated with these zod schemas at the boundary, responses typed here.
 *
 * Pure types and zod schemas only (no Node or DOM APIs): imported by main, server, preload and renderer.
 *
 *  - `API[op].request`   zod schema of the request body (parsed on the main side; defaults applied);
 *  - `ApiResponse<op>`   the response type (phantom-typed, not validated at runtime: main side is trusted);
 *  - `ApiEvent`          streamed events: training progress keyed by job id, import progress, library changes;
 *  - `ApiError`          what every failure looks like on the wire: {code, message, where?}.
 *
 * Pixel data (`Pixels.data`, Float32Array) crosses IPC by structured clone and HTTP as base64 via
 * `encodeWire` / `decodeWire` below.
 */
import { z } from 'zod';
import {
  DegradationSchema,
  DistillConfigSchema,
  MaskSpecSchema,
  RUN_KINDS,
  RUN_STATUSES,
  type MetricRow,
  type ModelCard,
  type ProgressEvent,
  type RunKind,
  type RunStatus,
  type Task,
  type BackendName,
  type Degradation,
  type DistillConfig,
  type MaskSpec,
} from './domain.js';

// ---------------------------------------------------------------------------------------------------
// Errors.

export const API_ERROR_CODES = [
  'bad-request',
  'not-found',
  'unavailable',
  'conflict',
  'unauthorized',
  'too-large',
  'internal',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/** A failure as it travels: `where` names the offending field (bad-request) or what is unavailable. */
export interface ApiError {
  code: ApiErrorCode;
  message: string;
  where?: string;
}

/** Thrown by services and by the renderer's client; carries an ApiError. */
export class ApiFailure extends Error implements ApiError {
  readonly code: ApiErrorCode;
  readonly where?: string;
  constructor(code: ApiErrorCode, message: string, where?: string) {
    super(message);
    this.name = 'ApiFailure';
    this.code = code;
    if (where !== undefined) this.where = where;
  }
  toJSON(): ApiError {
    return this.where === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, where: this.where };
  }
}

export function isApiError(x: unknown): x is ApiError {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as ApiError).code === 'string' &&
    (API_ERROR_CODES as readonly string[]).includes((x as ApiError).code) &&
    typeof (x as ApiError).message === 'string'
  );
}

/** One line naming the first bad field of a zod error: "sliceIndex: expected number, received string". */
export function describeZodError(err: z.ZodError): { message: string; where: string } {
  const issue = err.issues[0];
  const where = issue && issue.path.length ? issue.path.map(String).join('.') : '(body)';
  return { message: `${where}: ${issue ? issue.message : 'invalid request'}`, where };
}

/** Every call's result on the wire: a value or an error, never a thrown exception across the boundary. */
export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

// ---------------------------------------------------------------------------------------------------
// Shared value types.

/** A row-major H×W float32 image (intensity roughly [0, 1]). */
export interface Pixels {
  h: number;
  w: number;
  data: Float32Array;
}

export interface AppInfo {
  version: string;
  mode: 'electron' | 'web';
  dataDir: string;
  dbPath: string;
  /** Versions of what runs the app: node, electron (desktop), tfjs, sqlite, schema (database version). */
  versions: Record<string, string>;
  /** The compute backend inference runs on in this process, once a model was loaded (else null). */
  backend: string | null;
}

export interface SeriesSummary {
  uid: string;
  number: number | null;
  description: string;
  modality: string;
  slices: number;
  rows: number;
  columns: number;
}
export interface StudySummary {
  uid: string;
  date: string;
  description: string;
  series: SeriesSummary[];
}
export interface PatientSummary {
  id: string;
  name: string;
  studies: StudySummary[];
}

export interface SeriesDetail extends SeriesSummary {
  studyUid: string;
  patientName: string;
  patientId: string;
  /** Voxel size in mm: [column, row, slice]. */
  spacing: [number, number, number] | null;
  /** DICOM attributes worth showing (keyword → value as text). */
  attributes: Record<string, string>;
  source: string;
}

export interface ImportFileResult {
  path: string;
  status: 'imported' | 'skipped' | 'failed';
  message: string;
  seriesUid?: string;
  /** What was repaired or derived while reading the file (e.g. a malformed Number of Frames). */
  warnings?: string[];
}
export interface ImportSummary {
  importId: string;
  files: ImportFileResult[];
  series: string[];
}

export interface DatasetInfo {
  id: number;
  name: string;
  source: string;
  task: Task;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  createdAt: string | null;
}

export interface JobInfo {
  id: string;
  datasetId: number | null;
  status: RunStatus;
  label: string;
  config: DistillConfig | null;
  backend: BackendName | null;
  startedAt: number | null;
  endedAt: number | null;
  error: string | null;
  /** True while this process runs the job (cancel applies); false for jobs from an earlier launch. */
  live: boolean;
}

/** A task's state: the executor's, then its database's; 'imported' once merged into the library. */
export const SWEEP_TASK_STATES = [
  'queued',
  'running',
  'finished',
  'failed',
  'cancelled',
  'imported',
] as const;
export type SweepTaskState = (typeof SWEEP_TASK_STATES)[number];

export interface SweepTaskInfo {
  /** Plan order; the Slurm array index. */
  idx: number;
  data: string;
  mask: string;
  acc: number | null;
  seed: number;
  jobId: string;
  /** The experiment (study) its runs form in the library once imported. */
  experimentId: string;
  dir: string;
  state: SweepTaskState;
  /** Slurm: "<array job>_<index>" of its last submission. */
  schedulerId: string | null;
  error: string | null;
}

export interface SweepInfo {
  id: string;
  name: string;
  executor: 'local' | 'slurm';
  workdir: string;
  createdAt: number;
  tasks: SweepTaskInfo[];
}

/** What `kdmri runs import` (or a sweep's import) did, per job. */
export interface ImportReport {
  imported: { jobId: string; source: string; runs: number; models: number; evaluations: number }[];
  /** Already in the library, or not finished. */
  skipped: { jobId: string; source: string; reason: string }[];
  /** Not imported: the library holds something else under the same id or folder. */
  conflicts: { jobId: string; source: string; reason: string }[];
}

export interface RunInfo {
  id: number;
  jobId: string | null;
  datasetId: number | null;
  kind: RunKind;
  status: RunStatus;
  degradation: string;
  backend: string | null;
  epochs: number | null;
  bestEpoch: number | null;
  bestValLoss: number | null;
  wallSeconds: number | null;
  startedAt: number | null;
}

export interface EpochRow {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  seconds: number | null;
}

export interface ModelInfo {
  id: number;
  runId: number | null;
  kind: RunKind;
  name: string;
  params: number;
  dir: string;
  degradation: string;
  datasetId: number | null;
  createdAt: string | null;
}

/** A figure of a results table: the mean and its spread over `n` values. */
export interface ResultsFigure {
  mean: number;
  /** 2·std over volumes (a job's table) or std over seeds (a study's); NaN when n < 2. */
  spread: number;
  n: number;
}

export interface ResultsCell {
  psnr: ResultsFigure;
  ssim: ResultsFigure;
  nmse: ResultsFigure;
  /** Validation volumes each mean is over (per seed in a study). */
  volumes: number;
  /** Seeds the study's figure is over (1 for a job). */
  seeds: number;
}

/** The paired comparison of two models over the same units (seed × volume, or seed × slice). */
export interface PairedComparison {
  a: string;
  b: string;
  /** 'volume', or 'slice' when there is a single validation volume. */
  unit: 'volume' | 'slice';
  units: number;
  seeds: number;
  /** Mean PSNR difference a − b in dB, with a 95 % two-stage bootstrap interval (seeds, then units). */
  meanDiff: number;
  low: number;
  high: number;
  /** Paired t-test on the per-seed mean differences (df = seeds − 1); NaN with one seed. */
  t: number;
  df: number;
  p: number;
  /** Share of units where a beats b. */
  wins: number;
}

/**
 * A paper-shaped results table built from one job's or one study's own validation evaluations:
 * rows are models (zf, cs, teacher, student, student-long, kd), columns degradations (accelerations).
 */
export interface ResultsTable {
  kind: 'job' | 'study';
  /** The job or study id. */
  id: string;
  datasetId: number | null;
  split: 'validation';
  /** What the ± means. */
  spread: '2std-volumes' | 'std-seeds';
  columns: { key: string; label: string; detail: string; acceleration: number | null }[];
  rows: { model: string; cells: (ResultsCell | null)[] }[];
  /** Study only, per column key: the share of the student→teacher PSNR gap that KD closes. */
  /** KD's share of the student→teacher PSNR gap, its 95 % interval, and the gap itself (dB; ≤ 0: no gap). */
  kdGain?: Record<string, { fraction: number; low: number; high: number; teacherMinusStudent: number }>;
  /** Study only, per column key: KD against the student and against student-long. */
  paired?: Record<string, PairedComparison[]>;
  notes: string[];
}

/** A study of many jobs (kdmri study), for choosing whose table to show. */
export interface ExperimentInfo {
  id: string;
  /** 'study' */
  kind: string;
  name: string;
  datasetId: number | null;
  status: RunStatus;
  /** Its accelerations and seeds, as planned. */
  accs: number[];
  seeds: number[];
  jobs: number;
  createdAt: number;
  endedAt: number | null;
}

export const TABLE_FORMATS = ['text', 'json', 'csv', 'markdown', 'latex'] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

export const DELETE_KINDS = ['model', 'dataset', 'series', 'study', 'patient'] as const;
export type DeleteKind = (typeof DELETE_KINDS)[number];

/** What to delete: a model or dataset by id; a series or study by UID; a patient by PatientID (or "ID\\Name"). */
export const DeleteTargetSchema = z.object({
  kind: z.enum(DELETE_KINDS),
  id: z.union([z.number().int().nonnegative(), z.string().min(1).max(256)]),
});
export type DeleteTarget = z.infer<typeof DeleteTargetSchema>;

/** Everything a deletion removes, so the user can confirm it knowingly. */
export interface DeletePlan {
  target: { kind: DeleteKind; id: string; label: string };
  patients: string[];
  studies: string[];
  series: string[];
  datasets: { id: number; name: string }[];
  jobs: string[];
  /** Studies of several jobs (kdmri study) on the datasets, which go with them. */
  experiments: string[];
  models: { id: number; name: string }[];
  /** Evaluations removed with the datasets and models. */
  evaluations: number;
  /** Files and folders removed from disk. */
  files: string[];
  /** Set when the deletion must also remove dependents: what they are (ask before cascading). */
  dependents: string | null;
  /** Set when it cannot happen now: why (a job that uses it is training). */
  blockedBy: string | null;
}

export interface DeleteOutcome {
  plan: DeletePlan;
  deleted: boolean;
}

/** A deletion plan as the lines a person reads before saying yes (the CLI's prompt, the app's dialog). */
export function describeDeletePlan(p: DeletePlan): string[] {
  const list = (what: string, items: string[]) =>
    items.length
      ? [`  ${what} (${items.length}): ${items.slice(0, 8).join(', ')}${items.length > 8 ? ', …' : ''}`]
      : [];
  return [
    `delete ${p.target.label}:`,
    ...list('patients', p.patients),
    ...list('studies', p.studies),
    ...list('series', p.series),
    ...list(
      'datasets',
      p.datasets.map((d) => `${d.id} ${d.name}`),
    ),
    ...list(
      'jobs',
      p.jobs.map((j) => j.slice(0, 8)),
    ),
    ...list(
      'kdmri studies',
      p.experiments.map((e) => e.slice(0, 8)),
    ),
    ...list(
      'models',
      p.models.map((m) => `${m.id} ${m.name}`),
    ),
    ...(p.evaluations ? [`  evaluations: ${p.evaluations}`] : []),
    ...list('files and folders', p.files),
  ];
}

/** The Compare grid, in order; 'cs' is the ℓ1-wavelet compressed-sensing baseline (masks only). */
export const VIEWPORTS = ['zf', 'target', 'teacher', 'student', 'kd', 'cs'] as const;
export type ViewportName = (typeof VIEWPORTS)[number];

export interface SliceMetrics {
  psnr: number;
  ssim: number;
  nmse: number;
}

export interface CompareViewport {
  name: ViewportName;
  image: Pixels | null;
  /** |target − image|, null for the target itself or when image is null. */
  residue: Pixels | null;
  metrics: SliceMetrics | null;
  /** Model that produced it, and the degradation that model was trained on. */
  modelId: number | null;
  trainedOn: string | null;
  /** Why image is null ("no KD model for this dataset yet"). */
  note: string | null;
  /**
   * For a model's (or CS's) viewport: the reconstruction's wall time in ms, and whether it came from the cache
   * that the compare service fills ahead of the technician's scrolling (then ms is the original time).
   */
  inference?: { ms: number; cached: boolean };
}

export interface CompareResult {
  source: string;
  slices: number;
  sliceIndex: number;
  h: number;
  w: number;
  degradation: string;
  /** Sampled lines of the mask (when the degradation is a mask) and its true acceleration. */
  mask: { lines: number[]; axis: 'rows' | 'cols'; acceleration: number } | null;
  viewports: CompareViewport[];
  /** max residue over all viewports: the shared colour scale's top. */
  residueMax: number;
}

/**
 * How long a distillation job will take on this machine, before it runs: from a short measurement of
 * its networks at its size, batch and backend (kept in the library; measured once per network, size,
 * batch and backend) and a cost model of the job's steps (distill/estimate.ts).
 */
export interface DistillEstimate {
  seconds: number;
  steps: { step: RunKind; seconds: number }[];
  /** Start-up, data loading and the baselines. */
  overheadSeconds: number;
  backend: BackendName;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
  epochs: number;
  /** Ms per training batch of the teacher and of the student. */
  teacherStepMs: number;
  studentStepMs: number;
  /** What this request measured now; empty when every figure came from the library. */
  measured: string[];
}

export interface MaskPreview {
  lines: number[];
  axis: 'rows' | 'cols';
  h: number;
  w: number;
  acceleration: number;
}

/**
 * What every export operation answers. Exports are written on the main side's disk (the data folder's
 * exports/ unless a destination is given); `downloadExport({ exportId })` hands one to the user.
 */
export interface ExportResult {
  /** Handle for downloadExport: the export's path relative to exports/ ('/'-separated); null when written elsewhere. */
  exportId: string | null;
  /** Absolute path of the file, or of the folder holding the files. */
  path: string;
  kind: 'file' | 'folder';
  /** Every file written. */
  paths: string[];
  bytes: number;
  deidentified: boolean;
}

/**
 * How an export reached the user: web mode answers a one-time URL on the same server (open it, e.g.
 * with an <a download> click: it streams the file, or a zip of a folder, as an attachment); Electron
 * asks where to save it in a native dialog and copies it there.
 */
export type DownloadResult =
  | { delivered: 'url'; url: string; filename: string; expiresAt: number }
  | { delivered: 'saved'; path: string }
  | { delivered: 'cancelled' };

// ---------------------------------------------------------------------------------------------------
// PACS (DICOMweb) and uploads.

export const PACS_AUTH = ['none', 'basic', 'bearer'] as const;
export type PacsAuthKind = (typeof PACS_AUTH)[number];

/** A configured PACS node. Its password or token is write-only: never sent back, only whether one is set. */
export interface PacsNodeInfo {
  id: number;
  name: string;
  url: string;
  auth: PacsAuthKind;
  /** Basic authentication's user name. */
  user: string | null;
  hasSecret: boolean;
  /** Where the secret is kept: 'safeStorage' (desktop keyring), 'file' (owner-only file) or 'environment'. */
  secretIn: 'safeStorage' | 'file' | 'environment' | null;
}

/** A study a PACS answered to a query (QIDO-RS). */
export interface PacsStudyInfo {
  uid: string;
  patientName: string;
  patientId: string;
  /** YYYYMMDD as the PACS holds it. */
  date: string;
  description: string;
  accession: string;
  modalities: string[];
  series: number | null;
  instances: number | null;
}

export interface PacsSeriesInfo {
  uid: string;
  studyUid: string;
  modality: string;
  description: string;
  number: number | null;
  instances: number | null;
}

/** What a STOW-RS store answered. */
export interface PacsSendResult {
  /** Instances sent. */
  total: number;
  /** SOP Instance UIDs the PACS stored. */
  stored: string[];
  failed: { sopUid: string; reason: string }[];
  /** 'original files' or 'derived series' (a series without its original DICOM files is exported first). */
  sent: string;
}

/** An export in the library's exports/ folder. */
export interface ExportEntry {
  exportId: string;
  kind: 'file' | 'folder';
  files: number;
  bytes: number;
  /** Epoch ms. */
  modifiedAt: number;
  /** Holds DICOM Part 10 files (can be sent to a PACS). */
  dicom: boolean;
}

/**
 * Web mode's uploads: files from the browser stream to a temporary folder in the library
 * (PUT /api/upload/<uploadId>?path=<relative path>, raw bytes), then `finishUpload` imports them through
 * the import service and removes the folder. A file over `maxFileBytes` (the input file-size cap,
 * KDMRI_MAX_FILE_SIZE), or an upload whose files add up to more than `maxTotalBytes`, is refused with
 * HTTP 413 naming the file and the limit.
 */
export const UPLOAD_LIMITS = {
  maxTotalBytes: 16 * 1024 ** 3,
  maxFiles: 20000,
} as const;
export interface UploadLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
  maxFiles: number;
}

/** One file's upload outcome (PUT /api/upload/...). */
export interface UploadFileResult {
  path: string;
  bytes: number;
}

// ---------------------------------------------------------------------------------------------------
// Request schemas.

const Empty = z.object({}).strict();
const Id = z.number().int().nonnegative();
const Uid = z.string().min(1).max(128);

const CompareSource = z.union([z.object({ datasetId: Id }).strict(), z.object({ seriesUid: Uid }).strict()]);

export const CompareRequestSchema = z.object({
  source: CompareSource,
  sliceIndex: z.number().int().nonnegative(),
  degradation: DegradationSchema,
  /** Resample slices to size×size; default: the size the dataset's newest model was trained at. */
  size: z.number().int().min(8).max(2048).optional(),
});
export type CompareRequest = z.infer<typeof CompareRequestSchema>;

/** Options every export takes. */
const ExportOptions = {
  /** De-identify (DICOM PS3.15 basic profile; pseudonyms from the library's private key map). */
  deidentify: z.boolean().default(false),
  /** A folder on the main side's disk; default: the data folder's exports/. */
  destination: z.string().min(1).max(4096).optional(),
};

/** Window centre/width (the image's own units) written into exported DICOM: the viewer's tones. */
export const DisplayWindowSchema = z
  .object({ center: z.number().finite(), width: z.number().finite().positive() })
  .strict();

/**
 * Bounds of a study launched from the app (startStudy): each acceleration × seed is two jobs (the
 * protocol and its student-long control), run one after another; beyond these a study is days long
 * (kdmri study takes larger grids). Accelerations and seeds as `kdmri study --accs / --seeds` take them.
 */
export const STUDY_LIMITS = {
  maxAccs: 8,
  maxSeeds: 10,
  /** The student-long control trains 2 × the epochs, within a job's 10000. */
  maxEpochs: 5000,
  acc: { min: 1.01, max: 64 },
  seed: { min: 0, max: 2 ** 31 },
} as const;

/** Values of a list that occur more than once. */
const repeated = (xs: number[]) => [...new Set(xs.filter((x, i) => xs.indexOf(x) !== i))];
const distinct = (what: string) => (xs: number[], ctx: z.RefinementCtx) => {
  const r = repeated(xs);
  if (r.length) ctx.addIssue({ code: 'custom', message: `${what} repeat a value: ${r.join(', ')}` });
};

export const StartStudyRequestSchema = z
  .object({
    datasetId: Id,
    /** The base configuration: its mask's acceleration and its training seed are set per job. */
    config: DistillConfigSchema,
    accs: z
      .array(z.number().min(STUDY_LIMITS.acc.min).max(STUDY_LIMITS.acc.max))
      .min(1, 'a study needs at least one acceleration')
      .max(STUDY_LIMITS.maxAccs, `at most ${STUDY_LIMITS.maxAccs} accelerations in a study`)
      .superRefine(distinct('accelerations')),
    seeds: z
      .array(z.number().int('seeds are integers').min(STUDY_LIMITS.seed.min).max(STUDY_LIMITS.seed.max))
      .min(1, 'a study needs at least one seed')
      .max(STUDY_LIMITS.maxSeeds, `at most ${STUDY_LIMITS.maxSeeds} seeds in a study`)
      .superRefine(distinct('seeds')),
    size: z.number().int().min(8).max(2048).optional(),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.config.task !== 'recon' || r.config.degradation.kind !== 'mask')
      ctx.addIssue({
        code: 'custom',
        path: ['config', 'task'],
        message:
          'a study compares reconstructions under undersampling masks (task recon): a restoration (sr) job cannot run as a study',
      });
    if (r.config.training.epochs > STUDY_LIMITS.maxEpochs)
      ctx.addIssue({
        code: 'custom',
        path: ['config', 'training', 'epochs'],
        message: `a study's student-long control trains 2 × the epochs: at most ${STUDY_LIMITS.maxEpochs} epochs in a study`,
      });
  });

/** An operation: its request schema and (phantom) response type. */
export interface Op<Req extends z.ZodType, Res> {
  request: Req;
  /** Never read: carries the response type. */
  response?: Res;
  /** One line for the docs / the menu. */
  doc: string;
}
function op<Res>() {
  return <Req extends z.ZodType>(request: Req, doc: string): Op<Req, Res> => ({ request, doc });
}

export const API = {
  appInfo: op<AppInfo>()(
    Empty,
    'Version, transport, library folder, component versions and compute backend.',
  ),

  // Studies
  listStudies: op<PatientSummary[]>()(
    z.object({ search: z.string().max(200).optional() }).strict(),
    'Patients → studies → series in the library, filtered by a free-text search.',
  ),
  getSeries: op<SeriesDetail>()(
    z.object({ uid: Uid }).strict(),
    'Metadata and DICOM attributes of one series.',
  ),
  getSeriesSlice: op<Pixels>()(
    z.object({ uid: Uid, index: z.number().int().nonnegative() }).strict(),
    'One slice of a series as float32 pixels.',
  ),
  importPaths: op<{ importId: string }>()(
    z.object({ paths: z.array(z.string().min(1).max(4096)).min(1).max(10000) }).strict(),
    'Import files or folders into the library; progress arrives as import events.',
  ),
  cancelImport: op<{ cancelled: boolean }>()(
    z.object({ importId: z.string().min(1).max(100) }).strict(),
    'Stop a running import before its next file, or after the series it is storing (stored series stay whole; nothing of an unfinished one is stored); false when it already ended.',
  ),
  importSample: op<ImportSummary>()(
    Empty,
    'Put the bundled sample study in the library (and a dataset from it).',
  ),

  // Datasets
  listDatasets: op<DatasetInfo[]>()(Empty, 'Datasets in the library.'),
  createDatasetFromSeries: op<DatasetInfo>()(
    z
      .object({
        seriesUids: z.array(Uid).min(1),
        name: z.string().min(1).max(200).optional(),
        size: z.number().int().min(8).max(2048).optional(),
      })
      .strict(),
    'A training dataset from one or more series (split by slice range / by series).',
  ),

  // Masks
  previewMask: op<MaskPreview>()(
    z
      .object({
        mask: MaskSpecSchema,
        h: z.number().int().min(8).max(2048),
        w: z.number().int().min(8).max(2048),
      })
      .strict(),
    'The lines a mask samples and its true acceleration.',
  ),
  readMaskFile: op<{ mask: MaskSpec; preview: MaskPreview }>()(
    z
      .object({
        /** A PNG or .npy mask on the machine the services run on (unshifted, as `kdmri mask` writes). */
        path: z.string().min(1).max(4096),
      })
      .strict(),
    'A mask file as a mask of kind "file" (for distillation, evaluation and Compare) and its preview.',
  ),

  // Jobs
  startDistillation: op<{ jobId: string }>()(
    z
      .object({
        datasetId: Id,
        config: DistillConfigSchema,
        size: z.number().int().min(8).max(2048).optional(),
      })
      .strict(),
    'Start one distillation job (teacher, student, attention, KD) in a worker.',
  ),
  startStudy: op<{ studyId: string; jobIds: string[] }>()(
    StartStudyRequestSchema,
    "Start a study (as kdmri study): for every acceleration × seed the protocol's job and its student-long control, queued in that order as one experiment whose table (paperTable studyId) gives mean ± std over seeds.",
  ),
  estimateDistillation: op<{ estimate: DistillEstimate | null; note: string | null }>()(
    z
      .object({
        datasetId: Id,
        config: DistillConfigSchema,
        size: z.number().int().min(8).max(2048).optional(),
        /** false: answer only from timings already measured (else estimate null), never measure. */
        measure: z.boolean().default(true),
      })
      .strict(),
    "How long startDistillation with this request would take here (measured on this machine's backend); null with a note when not measured (measure false) or superseded by a newer request.",
  ),
  cancelJob: op<{ jobId: string; cancelled: boolean }>()(
    z.object({ jobId: Uid }).strict(),
    'Cancel a running job.',
  ),
  resumeJob: op<{ jobId: string }>()(z.object({ jobId: Uid }).strict(), 'Resume a cancelled or crashed job.'),
  listJobs: op<JobInfo[]>()(Empty, 'Jobs, newest first.'),

  // Runs and models
  listRuns: op<RunInfo[]>()(
    z
      .object({
        datasetId: Id.optional(),
        kind: z.enum(RUN_KINDS).optional(),
        status: z.enum(RUN_STATUSES).optional(),
        jobId: Uid.optional(),
      })
      .strict(),
    'Runs matching a filter.',
  ),
  runEpochs: op<EpochRow[]>()(z.object({ runId: Id }).strict(), 'Per-epoch losses of a run.'),
  listModels: op<ModelInfo[]>()(z.object({ datasetId: Id.optional() }).strict(), 'Saved models.'),
  getModelCard: op<ModelCard>()(z.object({ modelId: Id }).strict(), "A model's card."),
  deleteModel: op<{ deleted: boolean }>()(
    z.object({ modelId: Id }).strict(),
    'Delete a model and its files.',
  ),
  deleteItem: op<DeleteOutcome>()(
    z
      .object({
        target: DeleteTargetSchema,
        /** Also delete what depends on the target (datasets of a series, jobs and models of a dataset). */
        cascade: z.boolean().default(false),
        /** Only say what would be deleted (the confirmation dialog's text). */
        dryRun: z.boolean().default(false),
      })
      .strict(),
    'Delete a model, dataset, series, study or patient with its files (pixels, DICOM copies, model folders, checkpoints); dryRun says what would go.',
  ),
  exportModel: op<ExportResult>()(
    z
      .object({
        modelId: Id,
        /** 'folder': the model folder (weights + card); 'onnx': one ONNX file (opset 17, DC layers inside). */
        format: z.enum(['folder', 'onnx']).default('folder'),
        ...ExportOptions,
      })
      .strict(),
    'Export a model as its folder or as an ONNX file (de-identified card on request).',
  ),
  listExperiments: op<ExperimentInfo[]>()(
    z.object({ datasetId: Id.optional() }).strict(),
    'The studies (kdmri study or the Distill page), newest first, optionally of one dataset.',
  ),
  listSweeps: op<SweepInfo[]>()(Empty, "Sweeps (kdmri sweep), newest first, with their tasks' states."),
  importSweep: op<ImportReport>()(
    z.object({ sweepId: Uid }).strict(),
    "Merge a sweep's finished tasks into the library (runs, models, evaluations); idempotent.",
  ),
  paperTable: op<{ table: ResultsTable; text: string | null }>()(
    z
      .object({
        jobId: Uid.optional(),
        studyId: Uid.optional(),
        /** Also render the table as text in this format (for export). */
        format: z.enum(TABLE_FORMATS).optional(),
      })
      .strict()
      .refine((r) => (r.jobId === undefined) !== (r.studyId === undefined), {
        message: 'give exactly one of jobId and studyId',
      }),
    "One job's or one study's validation results: rows ZF/CS/teacher/student/KD × accelerations.",
  ),

  // Compare
  compare: op<CompareResult>()(
    CompareRequestSchema,
    'Target, zero-filled and the three reconstructions of one slice.',
  ),
  exportComparison: op<ExportResult>()(
    CompareRequestSchema.extend({
      format: z.enum(['png', 'dicom']),
      /** DICOM: the viewer's window (default: the target's range, the viewer's own default). */
      window: DisplayWindowSchema.optional(),
      ...ExportOptions,
    }).strict(),
    "Export the comparison as a PNG montage or a DICOM series per viewport in the source's study.",
  ),
  exportSeries: op<ExportResult>()(
    z
      .object({
        uid: Uid,
        format: z.enum(['dicom', 'nifti', 'png']),
        window: DisplayWindowSchema.optional(),
        ...ExportOptions,
      })
      .strict(),
    'Export a library series as a DICOM derived series, a float32 NIfTI or PNG slices.',
  ),
  downloadExport: op<DownloadResult>()(
    z.object({ exportId: z.string().min(1).max(4096) }).strict(),
    'Hand an export to the user: a download URL in web mode, a save dialog in Electron.',
  ),

  // PACS (DICOMweb)
  listPacsNodes: op<PacsNodeInfo[]>()(Empty, 'The configured PACS nodes (secrets never included).'),
  savePacsNode: op<PacsNodeInfo>()(
    z
      .object({
        /** Absent: a new node. */
        id: Id.optional(),
        name: z.string().trim().min(1).max(64),
        url: z
          .string()
          .trim()
          .max(2048)
          .regex(/^https?:\/\/[^\s]+$/i, 'must be an http:// or https:// URL'),
        auth: z.enum(PACS_AUTH),
        user: z.string().max(256).optional(),
        /** Password (basic) or token (bearer); absent keeps the stored one. Write-only. */
        secret: z.string().min(1).max(8192).optional(),
      })
      .strict(),
    'Add or change a PACS node; its password or token goes to the secret store, never the database.',
  ),
  deletePacsNode: op<{ deleted: boolean }>()(
    z.object({ id: Id }).strict(),
    'Remove a PACS node and its stored secret.',
  ),
  pacsQuery: op<PacsStudyInfo[]>()(
    z
      .object({
        nodeId: Id,
        patientName: z.string().max(200).optional(),
        patientId: z.string().max(200).optional(),
        /** Study date range, inclusive: YYYY-MM-DD or YYYYMMDD; either end may be open. */
        dateFrom: z
          .string()
          .regex(/^\d{4}-?\d{2}-?\d{2}$/, 'expected YYYY-MM-DD')
          .optional(),
        dateTo: z
          .string()
          .regex(/^\d{4}-?\d{2}-?\d{2}$/, 'expected YYYY-MM-DD')
          .optional(),
        modality: z
          .string()
          .regex(/^[A-Z0-9]{0,16}$/, 'expected a DICOM modality such as MR')
          .optional(),
        limit: z.number().int().min(1).max(1000).default(100),
      })
      .strict(),
    'Studies on a PACS matching patient name/ID, date range and modality (QIDO-RS).',
  ),
  pacsSeries: op<PacsSeriesInfo[]>()(
    z.object({ nodeId: Id, studyUid: Uid }).strict(),
    'The series of one study on a PACS (QIDO-RS).',
  ),
  pacsRetrieve: op<{ importId: string }>()(
    z.object({ nodeId: Id, studyUid: Uid, seriesUids: z.array(Uid).min(1).max(1000).optional() }).strict(),
    'Retrieve a study (or some of its series) into the library (WADO-RS); progress arrives as import events.',
  ),
  pacsSend: op<PacsSendResult>()(
    z
      .object({
        nodeId: Id,
        source: z.union([
          z.object({ seriesUid: Uid }).strict(),
          z.object({ exportId: z.string().min(1).max(4096) }).strict(),
        ]),
      })
      .strict(),
    'Send a library series or a DICOM export (a derived series, a comparison) to a PACS (STOW-RS).',
  ),

  // Exports and uploads
  listExports: op<ExportEntry[]>()(Empty, "The exports in the library's exports folder, newest first."),
  beginUpload: op<{ uploadId: string; limits: UploadLimits }>()(
    Empty,
    'Web mode: open an upload (files then stream to PUT /api/upload/<uploadId>?path=…).',
  ),
  finishUpload: op<{ importId: string; files: number; bytes: number }>()(
    z.object({ uploadId: z.string().regex(/^[0-9a-f-]{36}$/, 'not an upload id') }).strict(),
    "Import an upload's files (progress as import events); its temporary folder is removed afterwards.",
  ),
  discardUpload: op<{ discarded: boolean }>()(
    z.object({ uploadId: z.string().regex(/^[0-9a-f-]{36}$/, 'not an upload id') }).strict(),
    "Drop an upload's files without importing them.",
  ),
} as const;

export type API = typeof API;
export type OpName = keyof API;
export const OP_NAMES = Object.keys(API) as OpName[];

/** The request as the caller writes it (defaults optional). */
export type ApiRequestIn<K extends OpName> = z.input<API[K]['request']>;
/** The request as the service receives it (defaults applied). */
export type ApiRequest<K extends OpName> = z.output<API[K]['request']>;
export type ApiResponse<K extends OpName> = NonNullable<API[K]['response']>;

/** What the main side implements: one async function per operation. */
export type ApiHandlers = { [K in OpName]: (req: ApiRequest<K>) => Promise<ApiResponse<K>> };

/** What the renderer calls. */
export type ApiClient = { [K in OpName]: (req: ApiRequestIn<K>) => Promise<ApiResponse<K>> };

export function isOpName(x: string): x is OpName {
  return Object.prototype.hasOwnProperty.call(API, x);
}

// ---------------------------------------------------------------------------------------------------
// Events.

export type ImportEvent =
  | { type: 'progress'; done: number; total: number; file: ImportFileResult }
  /** A step before files are imported (a PACS retrieve receiving series `done` of `total`). */
  | { type: 'stage'; message: string; done: number; total: number }
  | { type: 'end'; summary: ImportSummary }
  | { type: 'error'; error: ApiError };

export type ApiEvent =
  | { channel: 'job'; jobId: string; event: ProgressEvent }
  | { channel: 'import'; importId: string; event: ImportEvent }
  | { channel: 'library'; what: 'studies' | 'datasets' | 'jobs' | 'models' };

export type { ProgressEvent, Degradation, MetricRow, ModelCard };

// ---------------------------------------------------------------------------------------------------
// Wire codec for JSON transports: Float32Array ⇄ {"$f32": base64}. Works in Node and browsers.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function bytesToBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63] + '==';
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + '=';
  }
  return out;
}

const B64_INDEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

function base64ToBytes(s: string): Uint8Array {
  const clean = s.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < clean.length; i += 4) {
    const a = B64_INDEX[clean.charCodeAt(i)];
    const b = B64_INDEX[clean.charCodeAt(i + 1)];
    const c = i + 2 < clean.length ? B64_INDEX[clean.charCodeAt(i + 2)] : 0;
    const d = i + 3 < clean.length ? B64_INDEX[clean.charCodeAt(i + 3)] : 0;
    if (a < 0 || b < 0 || c < 0 || d < 0) throw new Error('invalid base64');
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    if (o < out.length) out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

/** JSON.stringify with Float32Arrays as {"$f32": base64 of little-endian bytes}. */
export function encodeWire(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Float32Array) {
      return { $f32: bytesToBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
    }
    return v;
  });
}

/** JSON.parse restoring Float32Arrays written by encodeWire. */
export function decodeWire<T = unknown>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v && typeof v === 'object' && typeof (v as { $f32?: unknown }).$f32 === 'string') {
      const bytes = base64ToBytes((v as { $f32: string }).$f32);
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      return new Float32Array(copy.buffer, 0, copy.length >> 2);
    }
    return v;
  }) as T;
}

/** Parse a request for `name`; returns the parsed value or a bad-request ApiError naming the field. */
export function parseRequest<K extends OpName>(name: K, body: unknown): ApiResult<ApiRequest<K>> {
  const r = API[name].request.safeParse(body ?? {});
  if (r.success) return { ok: true, value: r.data as ApiRequest<K> };
  const { message, where } = describeZodError(r.error);
  return { ok: false, error: { code: 'bad-request', message, where } };
}

/** Turn anything thrown by a handler into an ApiError (never leaks stacks). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiFailure) return err.toJSON();
  if (isApiError(err))
    return { code: err.code, message: err.message, ...(err.where ? { where: err.where } : {}) };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message };
}

// ---------------------------------------------------------------------------------------------------
// The Electron preload's bridge: `window.kdmri`. The renderer builds its ApiClient on top of it.

export interface KdmriBridge {
  /** Run an operation; the main side validates `body` with the contract. */
  call(op: OpName, body: unknown): Promise<ApiResult<unknown>>;
  /** Receive every ApiEvent; returns an unsubscribe function. */
  onEvent(listener: (e: ApiEvent) => void): () => void;
  /** Native file/folder picker for imports (Electron only). */
  pickPaths(): Promise<string[]>;
  /** Native menu commands: a page name or 'import'. */
  onMenu?(listener: (cmd: string) => void): () => void;
  /** The file-system path of a dropped File (Electron's webUtils.getPathForFile). */
  pathForFile?(file: File): string;
}
