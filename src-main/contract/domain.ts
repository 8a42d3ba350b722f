/**
 * The domain contract shared by the engine, the store, the CLI, the server and the renderer.
 *
 * Pure types and zod schemas only (no Node APIs), so the renderer can import it too. Every request that
 * crosses a boundary (CLI arguments, HTTP/IPC requests, files on disk) is parsed with these schemas.
 *
 * Conventions used throughout the product:
 *  - images are row-major H×W float32, intensity normalised to [0, 1] per slice (method spec §4.2);
 *  - volumes are S×H×W (slice-major);
 *  - k-space is unshifted (DC at index 0) and orthonormal;
 *  - tensors inside the networks are NHWC with C = 1 for images.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------
// Degradations: an undersampling mask (reconstruction) or a low-resolution acquisition (restoration).

export const MASK_KINDS = ['cartesian', 'random', 'equispaced', 'preset', 'file'] as const;
export const MASK_PRESETS = ['cardiac', 'mrbrain', 'knee'] as const;

/** How to build a 1-D Cartesian mask. `axis` is the array axis whose lines are sampled. */
export const MaskSpecSchema = z.object({
  kind: z.enum(MASK_KINDS),
  /** Nominal acceleration (4, 5, 8, …); a mask file's true one, 1 when it samples every line. */
  acc: z.number().min(1).max(64),
  /** 'rows' samples whole rows (axis 0, constant along columns); 'cols' samples whole columns. */
  axis: z.enum(['rows', 'cols']).default('rows'),
  seed: z.number().int().nonnegative().default(42),
  /** cartesian: number of fully sampled centre lines (reference code: 10). */
  centerLines: z.number().int().positive().optional(),
  /** random / equispaced: fraction of lines in the fully sampled centre (fastMRI: 0.08 at 4x). */
  centerFraction: z.number().gt(0).lt(1).optional(),
  /** preset: which KD-MRI mask (the image must have the preset's exact shape). */
  preset: z.enum(MASK_PRESETS).optional(),
  /**
   * file: a mask read from a PNG or .npy (`--mask-file`), carried in full so that a record of it is
   * enough to rebuild it: the sampled line indices (unshifted, DC at index 0) out of `lineCount`
   * lines along `axis`, and the file's name for labels. `acc` is then its true acceleration.
   */
  lines: z.array(z.number().int().nonnegative()).max(4096).optional(),
  lineCount: z.number().int().min(2).max(4096).optional(),
  /** file: the file's H×W, checked against the images' (a row mask's width matters too). */
  fileShape: z.tuple([z.number().int().min(2).max(4096), z.number().int().min(2).max(4096)]).optional(),
  name: z.string().max(200).optional(),
});
export type MaskSpec = z.infer<typeof MaskSpecSchema>;

export const DegradationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('mask'), mask: MaskSpecSchema }),
  /** k-space truncated to its centre; `keep` is the kept fraction per axis (spec: 64/256 = 0.25). */
  z.object({ kind: z.literal('lowres'), keep: z.number().gt(0).lt(1).default(0.25) }),
]);
export type Degradation = z.infer<typeof DegradationSchema>;

/**
 * A short label for a degradation, as shown in table headers: "cartesian 4x", "preset:knee 8x",
 * "file:mask.png 4.2x", "lowres 0.25". Two different masks can share a label (seed, axis, centre):
 * identity is `degradationKey` (and, for the mask actually built, its hash).
 */
export function degradationLabel(d: Degradation): string {
  if (d.kind === 'lowres') return `lowres ${d.keep}`;
  const m = d.mask;
  if (m.kind === 'file') return `file:${m.name ?? 'mask'} ${Number(m.acc.toFixed(2))}x`;
  return `${m.kind === 'preset' ? `preset:${m.preset}` : m.kind} ${m.acc}x`;
}

/**
 * The full identity of a degradation as one canonical string: every field that changes the mask
 * (kind, acceleration, axis, seed, centre lines or fraction, preset, a file mask's lines). Equal keys
 * build equal masks on equal image shapes; the stored mask hash settles the rest.
 */
export function degradationKey(d: Degradation): string {
  if (d.kind === 'lowres') return `lowres keep=${d.keep}`;
  const m = d.mask;
  const parts = [`mask ${m.kind}`, `acc=${m.acc}`, `axis=${m.axis}`];
  if (m.kind === 'preset') parts.push(`preset=${m.preset}`);
  else if (m.kind === 'file') parts.push(`lines=${m.lineCount}:${(m.lines ?? []).join(',')}`);
  else {
    parts.push(`seed=${m.seed}`);
    if (m.centerLines !== undefined) parts.push(`centre=${m.centerLines}`);
    if (m.centerFraction !== undefined) parts.push(`cf=${m.centerFraction}`);
  }
  return parts.join(' ');
}

/** The label with what else identifies the mask, for tooltips and reports: "cartesian 4x, rows, seed 42". */
export function degradationDetail(d: Degradation): string {
  if (d.kind === 'lowres') return degradationLabel(d);
  const m = d.mask;
  const extra: string[] = [m.axis];
  if (m.kind === 'file') extra.push(`${m.lines?.length ?? 0}/${m.lineCount} lines`);
  else if (m.kind !== 'preset') {
    extra.push(`seed ${m.seed}`);
    if (m.centerLines !== undefined) extra.push(`${m.centerLines} centre lines`);
    if (m.centerFraction !== undefined) extra.push(`centre fraction ${m.centerFraction}`);
  }
  return `${degradationLabel(d)}, ${extra.join(', ')}`;
}

// ---------------------------------------------------------------------------------------------------
// Networks.

export const DcCnnSpecSchema = z.object({
  arch: z.literal('dccnn'),
  /** cascades */
  nc: z.number().int().min(1).max(20).default(5),
  /** convolutions per cascade */
  nd: z.number().int().min(2).max(20).default(5),
  /** filters per hidden convolution */
  nf: z.number().int().min(1).max(256).default(32),
  /** false reproduces the reference code (no skip); true the paper's figure (x_u ⊕ CNN output). */
  residual: z.boolean().default(false),
  /** data consistency: hard replacement (reference code) or λ-weighted (Schlemper's noisy DC). */
  dcLambda: z.number().positive().nullable().default(null),
  /** 1-based index of the convolution whose post-ReLU output feeds attention transfer. */
  atLayer: z.number().int().min(1),
});
export type DcCnnSpec = z.infer<typeof DcCnnSpecSchema>;

export const VdsrSpecSchema = z.object({
  arch: z.literal('vdsr'),
  /** number of convolutions (teacher 11, student 7) */
  depth: z.number().int().min(2).max(40),
  nf: z.number().int().min(1).max(256).default(64),
  atLayer: z.number().int().min(1),
});
export type VdsrSpec = z.infer<typeof VdsrSpecSchema>;

export const NetworkSpecSchema = z.discriminatedUnion('arch', [DcCnnSpecSchema, VdsrSpecSchema]);
export type NetworkSpec = z.infer<typeof NetworkSpecSchema>;

/** The method spec's networks. */
export const PRESET_NETWORKS = {
  dccnnTeacher: { arch: 'dccnn', nc: 5, nd: 5, nf: 32, residual: false, dcLambda: null, atLayer: 3 },
  dccnnStudent: { arch: 'dccnn', nc: 5, nd: 3, nf: 32, residual: false, dcLambda: null, atLayer: 2 },
  vdsrTeacher: { arch: 'vdsr', depth: 11, nf: 64, atLayer: 6 },
  vdsrStudent: { arch: 'vdsr', depth: 7, nf: 64, atLayer: 4 },
} as const satisfies Record<string, NetworkSpec>;

// ---------------------------------------------------------------------------------------------------
// Distillation job.

export const RUN_KINDS = ['teacher', 'student', 'attention', 'kd'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

export const TASKS = ['recon', 'sr'] as const;
export type Task = (typeof TASKS)[number];

export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export const TrainingSchema = z.object({
  epochs: z.number().int().min(1).max(10000).default(150),
  batchSize: z.number().int().min(1).max(256).default(4),
  lr: z.number().positive().default(1e-3),
  /** StepLR: lr is multiplied by lrGamma every lrStep epochs (lr = lr0 · γ^floor(epoch / step)). */
  lrStep: z.number().int().positive().default(40),
  lrGamma: z.number().positive().default(0.1),
  /** Weights are drawn from this seed; the shuffle of epoch e from seed·100003 + e. */
  seed: z.number().int().nonnegative().default(42),
  /**
   * Early stopping: end the run after this many epochs without a new best validation loss. null
   * (the reference code) trains every epoch.
   */
  patience: z.number().int().positive().nullable().default(null),
});
export type Training = z.infer<typeof TrainingSchema>;

/**
 * The ℓ1-wavelet compressed-sensing baseline (src-main/recon/cs): FISTA on
 * ½‖M·F·x − y‖² + λ‖Ψx‖₁ with Ψ an orthonormal Daubechies wavelet (periodic extension) and F the
 * orthonormal unshifted DFT; `lambda` is relative to the largest zero-filled magnitude of the slice,
 * so one value suits every intensity scale.
 */
export const CsParamsSchema = z.object({
  lambda: z.number().positive().max(1).default(0.003),
  iterations: z.number().int().min(1).max(5000).default(150),
  /** Daubechies wavelet by number of vanishing moments: db1 (Haar) … db8. */
  wavelet: z.enum(['db1', 'db2', 'db3', 'db4', 'db6', 'db8']).default('db4'),
  /** Decomposition levels; fewer are used when a side cannot be halved that often. */
  levels: z.number().int().min(1).max(8).default(4),
});
export type CsParams = z.infer<typeof CsParamsSchema>;

export const DistillConfigSchema = z.object({
  task: z.enum(TASKS).default('recon'),
  degradation: DegradationSchema,
  teacher: NetworkSpecSchema,
  student: NetworkSpecSchema,
  training: TrainingSchema.default(TrainingSchema.parse({})),
  /** Attention map normalisation: 'batch' (reference code's F.normalize over dim 0) or 'spatial' (Zagoruyko). */
  atNorm: z.enum(['batch', 'spatial']).default('batch'),
  /**
   * Step-3 loss. 'off': L1(S, GT) only (the recon shell script). 'numel': L1(S,GT) + L1(S,T)/numel
   * (recon code with --imitation_required). 'unit': L1(S,GT) + L1(S,T) (SR code). 'alpha': the paper,
   * α·L1(S,GT) + (1−α)·L1(S,T).
   */
  imitation: z.enum(['off', 'numel', 'unit', 'alpha']).default('off'),
  alpha: z.number().min(0).max(1).default(0.5),
  /** Step 3 starts from the attention-step student (reference default) or from random weights. */
  studentInit: z.enum(['attention', 'random']).default('attention'),
  /** Which steps to run, in this order; 'student' is the plain baseline, for comparison only. */
  steps: z.array(z.enum(RUN_KINDS)).min(1).default(['teacher', 'student', 'attention', 'kd']),
  /** The compressed-sensing baseline every reconstruction job scores next to zero-filled (null: none). */
  cs: CsParamsSchema.nullable().default(() => CsParamsSchema.parse({})),
});
export type DistillConfig = z.infer<typeof DistillConfigSchema>;

/** Defaults that reproduce the reference code, per task. */
export function defaultDistillConfig(task: Task, degradation: Degradation): DistillConfig {
  const recon = task === 'recon';
  return DistillConfigSchema.parse({
    task,
    degradation,
    teacher: recon ? PRESET_NETWORKS.dccnnTeacher : PRESET_NETWORKS.vdsrTeacher,
    student: recon ? PRESET_NETWORKS.dccnnStudent : PRESET_NETWORKS.vdsrStudent,
    imitation: recon ? 'off' : 'unit',
    cs: recon ? undefined : null,
  });
}

// ---------------------------------------------------------------------------------------------------
// Progress events, emitted by the training worker and forwarded unchanged to CLI, IPC and web clients.

export type ProgressEvent =
  | { type: 'job-start'; jobId: string; steps: RunKind[]; backend: BackendName }
  | { type: 'step-start'; step: RunKind; runId: number; epochs: number; startEpoch: number }
  | { type: 'batch'; step: RunKind; epoch: number; batch: number; batches: number; loss: number }
  | {
      type: 'epoch';
      step: RunKind;
      runId: number;
      epoch: number;
      epochs: number;
      trainLoss: number;
      valLoss: number;
      lr: number;
      best: boolean;
      slicesPerSecond: number;
      etaSeconds: number;
    }
  | {
      type: 'step-end';
      step: RunKind;
      runId: number;
      bestEpoch: number;
      bestValLoss: number;
      modelId: number;
    }
  | { type: 'eval'; rows: MetricRow[] }
  | { type: 'job-end'; status: 'finished' | 'cancelled' | 'failed'; error?: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string };

// ---------------------------------------------------------------------------------------------------
// Metrics.

/**
 * mean ± 2·std (sample std, ddof 1) over volumes, the reference report format. `twoStd` is NaN when
 * n < 2: one volume says nothing about spread, and shows as "n = 1", never as "± 0".
 */
export interface Summary {
  mean: number;
  twoStd: number;
  n: number;
}

export interface VolumeMetrics {
  psnr: number;
  ssim: number;
  nmse: number;
}

/** What an evaluation scores: a model of a run kind, or a baseline that needs no training. */
export const EVAL_KINDS = ['zf', 'lr', 'cs', ...RUN_KINDS] as const;
export type EvalKind = (typeof EVAL_KINDS)[number];

/** Which slices an evaluation scored: the validation split (the only one tables use), training, or both. */
export const EVAL_SPLITS = ['validation', 'train', 'all'] as const;
export type EvalSplit = (typeof EVAL_SPLITS)[number];

/** One row of the paper-style table: a model (or the zero-filled / low-resolution input) on a degradation. */
export interface MetricRow {
  model: EvalKind;
  degradation: string;
  psnr: number;
  ssim: number;
  nmse: number;
  psnrStd2: number;
  ssimStd2: number;
  nmseStd2: number;
  volumes: number;
}

export const RUN_STATUSES = ['queued', 'running', 'finished', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

// ---------------------------------------------------------------------------------------------------
// Volumes: what every reader produces and every engine stage consumes.

/**
 * A stack of 2-D magnitude slices, slice-major: voxel (s, r, c) is data[s·H·W + r·W + c].
 * Readers return physical intensities; the engine normalises each slice to [0, 1] (divide by its max)
 * before training or evaluation.
 */
export interface Volume {
  data: Float32Array;
  slices: number;
  h: number;
  w: number;
  /** Voxel size in mm: [column spacing, row spacing, slice spacing], when known. */
  spacing?: [number, number, number];
  /**
   * Acquired k-space for raw-data studies (fastMRI, KD-MRI HDF5): unshifted, orthonormal, S×H×W real and
   * imaginary parts, already multiplied by `mask` (H×W, 1 = sampled). When present, zero-filled images
   * and data consistency use it instead of k-space simulated from `data`.
   */
  kspace?: { re: Float32Array; im: Float32Array; mask: Float32Array };
}

// ---------------------------------------------------------------------------------------------------
// Models.

/**
 * What distillation buys, per model: parameters, weights on disk, forward convolution FLOPs (2 per
 * multiply-add) per size×size slice, and latency per slice on the backend it was measured on (warm:
 * median of repeated calls; first: the first call at that size, with allocation and compilation).
 */
export interface Compactness {
  params: number;
  bytesOnDisk: number;
  flopsPerSlice: number;
  size: number;
  latencyMsWarm: number;
  latencyMsCold: number;
  backend: BackendName;
}

/** What a saved model says about itself (stored in model.json and in the models table). */
export interface ModelCard {
  name: string;
  kind: RunKind;
  task: Task;
  spec: NetworkSpec;
  params: number;
  degradation: Degradation;
  degradationLabel: string;
  /** True acceleration of the mask the model was trained with (recon), else null. */
  acceleration: number | null;
  data: { source: string; h: number; w: number; trainSlices: number; valSlices: number };
  training: Training & { epochsDone: number; bestEpoch: number; bestValLoss: number; seconds: number };
  teacher: string | null;
  backend: BackendName;
  createdAt: string;
  metrics: MetricRow | null;
  compactness: Compactness | null;
}
