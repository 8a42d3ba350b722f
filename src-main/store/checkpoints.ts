/**
 * Training checkpoints, so that a crashed or cancelled run resumes after its last completed epoch.
 *
 * Format-agnostic: a checkpoint is named byte blobs plus a JSON manifest. On disk, in the run's
 * checkpoint folder `dir`:
 *
 *   dir/checkpoint/manifest.json     format, epoch, best epoch/loss, file sizes + SHA-256, caller JSON
 *   dir/checkpoint/w.<name>          the weights files (ModelFiles: strings come back as strings)
 *   dir/checkpoint/optimizer.bin     optimizer state bytes (its layout described by optimizer.manifest)
 *   dir/checkpoint/b.<name>          extra named blobs (e.g. the best epoch's weights)
 *
 * Two generations are kept: `dir/checkpoint/` (the latest) and `dir/checkpoint.prev/` (the one
 * before). Saving writes `dir/checkpoint.tmp/`, fsyncs, then rotates: the previous generation is
 * dropped, `checkpoint` → `checkpoint.prev`, tmp → `checkpoint`. Loading takes the latest, and falls
 * back to the previous one when the latest is missing (a crash between the renames) or corrupt (a
 * torn write, a bad sector): a resume then repeats one more epoch instead of starting over. One writer
 * per run folder is assumed (the job's lease guarantees it).
 *
 * packTensors / unpackTensors turn named Float32Arrays into one blob + a JSON manifest (little-endian,
 * as on every platform the app runs on).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkName, writeFilesInto, type ModelFiles } from './model-files.js';
import { StoreError, type JsonValue } from './util.js';

export const CHECKPOINT_FORMAT = 'kdmri-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface Checkpoint {
  /** Last completed epoch (0-based). */
  epoch: number;
  weights: ModelFiles;
  optimizer: { data: ArrayBuffer | Uint8Array; manifest: JsonValue };
  /** Infinity / NaN allowed (no best yet). */
  bestValLoss: number;
  bestEpoch: number;
  rngState?: JsonValue;
  /** Extra named blobs. */
  blobs?: Record<string, Uint8Array>;
  /** Any further JSON the caller needs to restore its state. */
  meta?: JsonValue;
}

export interface LoadedCheckpoint {
  epoch: number;
  weights: ModelFiles;
  optimizer: { data: Uint8Array; manifest: JsonValue };
  bestValLoss: number;
  bestEpoch: number;
  rngState: JsonValue | null;
  blobs: Record<string, Uint8Array>;
  meta: JsonValue | null;
  /** Epoch ms when it was written. */
  savedAt: number;
  /** Set when the latest checkpoint could not be used and this is the previous one: why. */
  fellBack: string | null;
}

/** Thrown by loadCheckpoint for a checkpoint folder that exists but cannot be trusted. */
export class CheckpointError extends StoreError {
  override name = 'CheckpointError';
  /** Written by a newer version: not corrupt, so not a reason to fall back to an older one. */
  newer = false;
}

interface FileEntry {
  bytes: number;
  sha256: string;
}

interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  epoch: number;
  bestEpoch: number;
  /** JSON has no Infinity / NaN: those are kept as strings. */
  bestValLoss: number | 'Infinity' | '-Infinity' | 'NaN';
  savedAt: number;
  /** weights file name → whether it was given as text. */
  weights: Record<string, 'text' | 'bytes'>;
  blobs: string[];
  optimizerManifest: JsonValue;
  rngState: JsonValue | null;
  meta: JsonValue | null;
  files: Record<string, FileEntry>;
}

const MANIFEST = 'manifest.json';
const OPTIMIZER = 'optimizer.bin';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const asBytes = (d: ArrayBuffer | Uint8Array): Uint8Array =>
  d instanceof Uint8Array ? d : new Uint8Array(d);

function encodeNumber(x: number): Manifest['bestValLoss'] {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

/** Atomically replace the checkpoint in `dir` (created if needed). */
export function saveCheckpoint(dir: string, cp: Checkpoint): void {
  const w = `saveCheckpoint(${dir})`;
  if (!Number.isInteger(cp.epoch) || cp.epoch < 0) throw new StoreError(`${w}: epoch must be an integer ≥ 0`);
  if (!Number.isInteger(cp.bestEpoch)) throw new StoreError(`${w}: bestEpoch must be an integer`);
  if (typeof cp.bestValLoss !== 'number') throw new StoreError(`${w}: bestValLoss must be a number`);
  if (!cp.weights || typeof cp.weights !== 'object') throw new StoreError(`${w}: weights must be an object`);
  if (
    !cp.optimizer ||
    !(cp.optimizer.data instanceof ArrayBuffer || cp.optimizer.data instanceof Uint8Array)
  ) {
    throw new StoreError(`${w}: optimizer.data must be an ArrayBuffer or Uint8Array`);
  }
  const files: Record<string, Uint8Array> = {};
  const weightKinds: Record<string, 'text' | 'bytes'> = {};
  for (const name of Object.keys(cp.weights)) {
    checkName(name, `${w}: weights file`);
    const v = cp.weights[name];
    if (typeof v !== 'string' && !(v instanceof Uint8Array)) {
      throw new StoreError(`${w}: weights file ${name} must be a string or Uint8Array`);
    }
    weightKinds[name] = typeof v === 'string' ? 'text' : 'bytes';
    files[`w.${name}`] = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  }
  const blobs = cp.blobs ?? {};
  for (const name of Object.keys(blobs)) {
    checkName(name, `${w}: blob`);
    if (!(blobs[name] instanceof Uint8Array)) throw new StoreError(`${w}: blob ${name} must be a Uint8Array`);
    files[`b.${name}`] = blobs[name];
  }
  files[OPTIMIZER] = asBytes(cp.optimizer.data);
  const manifest: Manifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    epoch: cp.epoch,
    bestEpoch: cp.bestEpoch,
    bestValLoss: encodeNumber(cp.bestValLoss),
    savedAt: Date.now(),
    weights: weightKinds,
    blobs: Object.keys(blobs),
    optimizerManifest: cp.optimizer.manifest ?? null,
    rngState: cp.rngState ?? null,
    meta: cp.meta ?? null,
    files: Object.fromEntries(
      Object.entries(files).map(([n, b]) => [n, { bytes: b.byteLength, sha256: sha256(b) }]),
    ),
  };
  let manifestText: string;
  try {
    manifestText = JSON.stringify(manifest);
  } catch (err) {
    throw new StoreError(`${w}: manifest is not JSON-serialisable (${(err as Error).message})`);
  }

  const root = resolve(dir);
  const final = join(root, LATEST);
  const prev = join(root, PREVIOUS);
  const tmp = join(root, 'checkpoint.tmp');
  mkdirSync(root, { recursive: true });
  rmSync(tmp, { recursive: true, force: true }); // a previous save that crashed midway
  rmSync(join(root, LEGACY_OLD), { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    // The manifest goes last: a tmp folder with a manifest is complete.
    writeFilesInto(tmp, { ...files, [MANIFEST]: manifestText }, w);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true }); // a full disk gets its space back at once
    throw err;
  }
  // Rotate. A crash anywhere here leaves at least one complete generation behind.
  if (existsSync(final)) {
    rmSync(prev, { recursive: true, force: true });
    renameSync(final, prev);
  }
  renameSync(tmp, final);
}

const LATEST = 'checkpoint';
const PREVIOUS = 'checkpoint.prev';
/** Written by earlier versions between their two renames; read as a last resort, never written. */
const LEGACY_OLD = 'checkpoint.old';

/**
 * The newest usable checkpoint in `dir` (see the module comment), or null when there is none. Throws
 * CheckpointError when every generation present is corrupt (unreadable manifest, missing file, size or
 * checksum mismatch), naming the problem of each.
 */
export function loadCheckpoint(dir: string): LoadedCheckpoint | null {
  const root = resolve(dir);
  const folders = [LATEST, PREVIOUS, LEGACY_OLD].map((f) => join(root, f)).filter((f) => existsSync(f));
  if (folders.length === 0) return null;
  const problems: string[] = [];
  for (const folder of folders) {
    try {
      const cp = loadGeneration(folder);
      const fellBack = problems.length
        ? `${problems.join('; ')}; resuming from the previous checkpoint (epoch ${cp.epoch + 1}) instead`
        : null;
      return { ...cp, fellBack };
    } catch (err) {
      if (!(err instanceof CheckpointError) || (err as CheckpointError).newer) throw err;
      problems.push(err.message);
    }
  }
  throw new CheckpointError(problems.join('; '));
}

function loadGeneration(folder: string): Omit<LoadedCheckpoint, 'fellBack'> {
  const bad = (why: string) => new CheckpointError(`corrupt checkpoint ${folder}: ${why}`);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(join(folder, MANIFEST), 'utf8')) as Manifest;
  } catch (err) {
    throw bad(`cannot read ${MANIFEST} (${(err as Error).message})`);
  }
  if (typeof m !== 'object' || m === null || m.format !== CHECKPOINT_FORMAT)
    throw bad('not a KD-MRI checkpoint');
  if (m.version > CHECKPOINT_VERSION) {
    const e = new CheckpointError(
      `checkpoint ${folder} has format version ${m.version}, newer than this application understands`,
    );
    e.newer = true;
    throw e;
  }
  if (!Number.isInteger(m.epoch) || !m.files || typeof m.files !== 'object' || !m.weights) {
    throw bad('manifest is incomplete');
  }
  const read = (name: string): Buffer => {
    const entry = m.files[name];
    if (!entry) throw bad(`${name} is not listed in the manifest`);
    let b: Buffer;
    try {
      b = readFileSync(join(folder, name));
    } catch (err) {
      throw bad(`cannot read ${name} (${(err as Error).message})`);
    }
    if (b.byteLength !== entry.bytes) throw bad(`${name} has ${b.byteLength} bytes, expected ${entry.bytes}`);
    if (sha256(b) !== entry.sha256) throw bad(`${name} does not match its checksum`);
    return b;
  };
  const weights: ModelFiles = {};
  for (const [name, kind] of Object.entries(m.weights)) {
    const b = read(`w.${name}`);
    weights[name] = kind === 'text' ? b.toString('utf8') : new Uint8Array(b);
  }
  const blobs: Record<string, Uint8Array> = {};
  for (const name of m.blobs ?? []) blobs[name] = new Uint8Array(read(`b.${name}`));
  return {
    epoch: m.epoch,
    bestEpoch: m.bestEpoch,
    bestValLoss: typeof m.bestValLoss === 'string' ? Number(m.bestValLoss) : m.bestValLoss,
    weights,
    optimizer: { data: new Uint8Array(read(OPTIMIZER)), manifest: m.optimizerManifest ?? null },
    rngState: m.rngState ?? null,
    blobs,
    meta: m.meta ?? null,
    savedAt: m.savedAt,
  };
}

/** Remove the run's checkpoint (e.g. once the run finished and its model is saved). */
export function removeCheckpoint(dir: string): void {
  const root = resolve(dir);
  for (const f of [LATEST, PREVIOUS, 'checkpoint.tmp', LEGACY_OLD]) {
    rmSync(join(root, f), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Named float32 tensors ↔ one blob + a JSON manifest.

/** A type alias (not an interface) so that a manifest is assignable to JsonValue without a cast. */
export type TensorEntry = {
  name: string;
  shape: number[];
  /** Offset and length in float32 elements. */
  offset: number;
  length: number;
};

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Concatenate tensors into one little-endian float32 blob, with a manifest to split it again. */
export function packTensors(tensors: readonly NamedTensor[]): { data: Uint8Array; manifest: TensorEntry[] } {
  const total = tensors.reduce((n, t) => n + t.data.length, 0);
  const out = new Float32Array(total);
  const manifest: TensorEntry[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw new StoreError(
        `packTensors: ${t.name} has ${t.data.length} values but shape [${t.shape}] needs ${size}`,
      );
    }
    out.set(t.data, offset);
    manifest.push({ name: t.name, shape: [...t.shape], offset, length: t.data.length });
    offset += t.data.length;
  }
  return { data: new Uint8Array(out.buffer), manifest };
}

/** Inverse of packTensors; each tensor gets its own (aligned) copy. */
export function unpackTensors(data: Uint8Array, manifest: readonly TensorEntry[]): NamedTensor[] {
  if (data.byteLength % 4 !== 0)
    throw new StoreError(`unpackTensors: ${data.byteLength} bytes is not whole float32s`);
  const n = data.byteLength / 4;
  return manifest.map((e) => {
    if (
      !Number.isInteger(e.offset) ||
      !Number.isInteger(e.length) ||
      e.offset < 0 ||
      e.offset + e.length > n
    ) {
      throw new StoreError(`unpackTensors: ${e.name} lies outside the ${n}-value blob`);
    }
    const start = data.byteOffset + e.offset * 4;
    // slice() copies, so the result is aligned whatever the source buffer's offset.
    const copy = data.buffer.slice(start, start + e.length * 4) as ArrayBuffer;
    return { name: e.name, shape: [...e.shape], data: new Float32Array(copy) };
  });
}
