/**
 * The one place for input limits: every reader that turns a file into memory (NIfTI, DICOM, HDF5)
 * checks what the file DECLARES (dimensions, frame counts, dataset shapes) against these caps and
 * against what the file can actually hold BEFORE it allocates, and bounds every decompression.
 *
 * Conventions:
 *  - caps come from, in order: setInputLimits() (the CLI's --max-* options), the environment
 *    (KDMRI_MAX_VOXELS, KDMRI_MAX_BYTES, KDMRI_MAX_FRAMES, KDMRI_MAX_FILE_SIZE: so that worker threads
 *    and child processes started later inherit what the user asked for), then DEFAULT_LIMITS;
 *  - sizes are binary: "64M" voxels = 64·2^20, "1G" bytes = 2^30;
 *  - a refusal is a LimitError whose message names the thing, the cap, and the option that raises it.
 */
import { Gunzip, Inflate } from 'fflate';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface InputLimits {
  /** Voxels in one volume (a NIfTI volume, a DICOM series or multi-frame object, an HDF5 dataset). */
  maxVoxels: number;
  /** Bytes produced by one decompression, and bytes of declared pixel data read into memory. */
  maxBytes: number;
  /** Frames of one DICOM object. */
  maxFrames: number;
  /** Size of one input file read into memory. */
  maxFileBytes: number;
}

const Mi = 2 ** 20;
const Gi = 2 ** 30;

export const DEFAULT_LIMITS: Readonly<InputLimits> = Object.freeze({
  maxVoxels: 64 * Mi,
  maxBytes: 1 * Gi,
  maxFrames: 16384,
  maxFileBytes: 1 * Gi,
});

/** For each cap: its CLI option and environment variable (the error tells which one raises it). */
export const LIMIT_NAMES: Record<keyof InputLimits, { option: string; env: string; unit: string }> = {
  maxVoxels: { option: '--max-voxels', env: 'KDMRI_MAX_VOXELS', unit: 'voxel' },
  maxBytes: { option: '--max-bytes', env: 'KDMRI_MAX_BYTES', unit: 'byte' },
  maxFrames: { option: '--max-frames', env: 'KDMRI_MAX_FRAMES', unit: 'frame' },
  maxFileBytes: { option: '--max-file-size', env: 'KDMRI_MAX_FILE_SIZE', unit: 'byte' },
};

export class LimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LimitError';
  }
}

/** "64M", "1.5G", "2048", "512k" → a positive integer (binary multiples); null when not such a size. */
export function parseSize(v: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$/.exec(v);
  if (!m) return null;
  const mult = { '': 1, k: 2 ** 10, m: Mi, g: Gi, t: 2 ** 40 }[
    m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'
  ];
  const n = Math.floor(Number(m[1]) * mult);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** A count or byte size the way the errors print it: 64 M, 1 G, 1.5 G, 12345. */
export function formatSize(n: number): string {
  for (const [unit, k] of [
    ['T', 2 ** 40],
    ['G', Gi],
    ['M', Mi],
    ['k', 2 ** 10],
  ] as const) {
    if (n >= k) {
      const v = n / k;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return String(n);
}

let overrides: Partial<InputLimits> = {};

function fromEnv(key: keyof InputLimits): number | undefined {
  const raw = process.env[LIMIT_NAMES[key].env];
  if (raw === undefined || raw === '') return undefined;
  const n = parseSize(raw);
  if (n === null) throw new LimitError(`${LIMIT_NAMES[key].env}=${raw} is not a size (e.g. 64M, 2G, 1000)`);
  return n;
}

/** The caps in force now. */
export function inputLimits(): InputLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(LIMIT_NAMES) as (keyof InputLimits)[]) {
    out[key] = overrides[key] ?? fromEnv(key) ?? DEFAULT_LIMITS[key];
  }
  return out;
}

/**
 * Raise or lower caps for this process and for the workers and child processes it starts later
 * (through the environment). Undefined fields are left as they are.
 */
export function setInputLimits(p: Partial<InputLimits>): void {
  for (const key of Object.keys(LIMIT_NAMES) as (keyof InputLimits)[]) {
    const v = p[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new LimitError(`${LIMIT_NAMES[key].option} must be a positive size`);
    overrides[key] = v;
    process.env[LIMIT_NAMES[key].env] = String(v);
  }
}

/** Back to the defaults and the environment as it was before any setInputLimits (tests). */
export function resetInputLimits(): void {
  for (const key of Object.keys(overrides) as (keyof InputLimits)[]) delete process.env[LIMIT_NAMES[key].env];
  overrides = {};
}

function over(key: keyof InputLimits, what: string, limit: number): LimitError {
  const { option, unit } = LIMIT_NAMES[key];
  return new LimitError(`${what} is over the ${formatSize(limit)} ${unit} limit; raise it with ${option}`);
}

/**
 * Refuse a volume of `dims` (fastest axis first as the format declares them, e.g. NIfTI nx×ny×nz,
 * DICOM columns×rows×frames) over the voxel cap, or whose bytes (× bytesPerVoxel) are over the byte
 * cap. Non-finite or non-integer dimensions are refused too: they come from a corrupt header.
 */
export function checkVolume(
  dims: number[],
  bytesPerVoxel: number,
  what = 'volume',
  limits: InputLimits = inputLimits(),
): number {
  const shape = dims.join('×');
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new LimitError(`${what} ${shape} has an invalid dimension`);
  const voxels = dims.reduce((a, b) => a * b, 1);
  if (voxels > limits.maxVoxels) throw over('maxVoxels', `${what} ${shape}`, limits.maxVoxels);
  const bytes = voxels * bytesPerVoxel;
  if (bytes > limits.maxBytes)
    throw over('maxBytes', `${what} ${shape} (${formatSize(bytes)} bytes)`, limits.maxBytes);
  return voxels;
}

export function checkFrames(frames: number, what = 'object', limits: InputLimits = inputLimits()): void {
  if (frames > limits.maxFrames) throw over('maxFrames', `${what} with ${frames} frames`, limits.maxFrames);
}

/** Refuse a file over the file-size cap; returns its size. */
export function checkFileSize(path: string, size: number, limits: InputLimits = inputLimits()): number {
  if (size > limits.maxFileBytes)
    throw over('maxFileBytes', `${path} (${formatSize(size)} bytes)`, limits.maxFileBytes);
  return size;
}

/** A whole file into memory, after the file-size cap (the size is read from the open descriptor). */
export function readFileBounded(path: string, limits: InputLimits = inputLimits()): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = checkFileSize(path, fstatSync(fd).size, limits);
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function inflatedTooMuch(what: string, maxOut: number): LimitError {
  return new LimitError(
    `${what} inflates to more than ${formatSize(maxOut)} bytes, over the byte limit; raise it with ${LIMIT_NAMES.maxBytes.option}`,
  );
}

/** Input is fed to the inflater in pieces this small so that one piece can expand by at most ~16 MiB. */
const INFLATE_PIECE = 16 * 1024;

/**
 * Raw DEFLATE (RFC 1951) stream → bytes, stopping with a LimitError as soon as the output passes
 * `maxOut` (default: the byte cap): a decompression bomb costs at most maxOut + one piece of memory.
 * `what` names the stream in errors ("Deflated Explicit VR data set").
 */
export function inflateRawBounded(
  input: Uint8Array,
  what: string,
  maxOut: number = inputLimits().maxBytes,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  let done = false;
  const inf = new Inflate((chunk, final) => {
    total += chunk.length;
    if (total > maxOut) throw inflatedTooMuch(what, maxOut);
    parts.push(chunk);
    if (final) done = true;
  });
  try {
    for (let o = 0; o < input.length && !done; o += INFLATE_PIECE) {
      const end = Math.min(input.length, o + INFLATE_PIECE);
      inf.push(input.subarray(o, end), end === input.length);
    }
  } catch (e) {
    if (e instanceof LimitError) throw e;
    throw new LimitError(`${what}: corrupt deflate stream (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!done) throw new LimitError(`${what}: deflate stream ends early (truncated)`);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The first `n` bytes a raw DEFLATE stream inflates to (fewer when it is shorter or corrupt there):
 * enough to read a header before deciding whether the rest may be inflated at all.
 */
export function inflateRawHead(input: Uint8Array, n: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const enough = new Error('enough');
  const inf = new Inflate((chunk) => {
    parts.push(chunk);
    total += chunk.length;
    if (total >= n) throw enough;
  });
  try {
    for (let o = 0; o < input.length && total < n; o += INFLATE_PIECE) {
      const end = Math.min(input.length, o + INFLATE_PIECE);
      inf.push(input.subarray(o, end), end === input.length);
    }
  } catch {
    // enough, or a corrupt stream: the caller reads what there is
  }
  const out = new Uint8Array(Math.min(total, n));
  let o = 0;
  for (const p of parts) {
    if (o >= out.length) break;
    out.set(p.subarray(0, out.length - o), o);
    o += p.length;
  }
  return out;
}

/** A file read front to back, gunzipped on the fly when it starts with the gzip magic. */
export interface ByteStream {
  readonly compressed: boolean;
  /** Size of the file on disk. */
  readonly fileSize: number;
  /** The next `n` bytes; fewer only at the end of the (decompressed) data. */
  read(n: number): Uint8Array;
  /** Skip `n` bytes (read and dropped piecewise: never buffered whole). */
  skip(n: number): number;
  close(): void;
}

/**
 * Open `path` as a ByteStream after the file-size cap. A gzip file is inflated by fflate's streaming
 * Gunzip as far as the reader asks and no further, and never past `maxOut` bytes in total (default:
 * the byte cap): reading the header of a 2 GiB bomb inflates a few kilobytes.
 */
export function openByteStream(
  path: string,
  limits: InputLimits = inputLimits(),
  maxOut: number = limits.maxBytes,
): ByteStream {
  const fd = openSync(path, 'r');
  let fileSize: number;
  const magic = Buffer.alloc(2);
  try {
    fileSize = checkFileSize(path, fstatSync(fd).size, limits);
    readSync(fd, magic, 0, 2, 0);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  let pos = 0;
  const close = () => closeSync(fd);
  if (!(magic[0] === 0x1f && magic[1] === 0x8b)) {
    const read = (n: number): Uint8Array => {
      const b = Buffer.allocUnsafe(Math.max(0, Math.min(n, fileSize - pos)));
      let got = 0;
      while (got < b.length) {
        const k = readSync(fd, b, got, b.length - got, pos);
        if (k === 0) break;
        got += k;
        pos += k;
      }
      return b.subarray(0, got);
    };
    const skip = (n: number) => {
      const k = Math.max(0, Math.min(n, fileSize - pos));
      pos += k;
      return k;
    };
    return { compressed: false, fileSize, read, skip, close };
  }
  const queue: Uint8Array[] = [];
  let queued = 0;
  let produced = 0;
  const gz = new Gunzip((chunk) => {
    produced += chunk.length;
    if (produced > maxOut) throw inflatedTooMuch(`${path}: gzip stream`, maxOut);
    if (chunk.length > 0) {
      queue.push(chunk);
      queued += chunk.length;
    }
  });
  const piece = Buffer.allocUnsafe(INFLATE_PIECE);
  const pump = () => {
    const k = readSync(fd, piece, 0, INFLATE_PIECE, pos);
    pos += k;
    try {
      gz.push(piece.slice(0, k), k === 0 || pos >= fileSize);
    } catch (e) {
      if (e instanceof LimitError) throw e;
      throw new LimitError(`${path}: corrupt gzip stream (${e instanceof Error ? e.message : String(e)})`);
    }
  };
  const fill = (n: number) => {
    while (queued < n && pos < fileSize) pump();
  };
  const take = (n: number, keep: boolean): Uint8Array | number => {
    fill(n);
    const k = Math.min(n, queued);
    const out = keep ? new Uint8Array(k) : null;
    let o = 0;
    while (o < k) {
      const head = queue[0];
      const use = Math.min(head.length, k - o);
      out?.set(head.subarray(0, use), o);
      if (use === head.length) queue.shift();
      else queue[0] = head.subarray(use);
      o += use;
    }
    queued -= k;
    return out ?? k;
  };
  const skip = (n: number) => {
    let left = n;
    while (left > 0) {
      const k = take(Math.min(left, 4 * Mi), false) as number;
      if (k === 0) break;
      left -= k;
    }
    return n - left;
  };
  return { compressed: true, fileSize, read: (n) => take(n, true) as Uint8Array, skip, close };
}
