/**
 * A typed adapter over h5wasm (Node build, files read in place through NODEFS): open a file, list
 * datasets, read real or complex (compound {r, i}, as h5py writes complex numbers) datasets, whole or
 * by hyperslab, and attributes. h5wasm's WebAssembly module is loaded once (top-level await), so the
 * functions below are synchronous.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { basename } from 'node:path';
import h5wasm from 'h5wasm/node';
import { checkGlobalHeaps, findSuperblock } from './gheap.js';

await h5wasm.ready;

/** [start, stop) per axis; [] means the whole axis. */
export type Range = [] | [number, number];

export interface H5Dataset {
  shape: number[];
  kind: 'real' | 'complex' | 'string' | 'other';
}

export interface H5File {
  /** Dataset names at the root. */
  keys(): string[];
  dataset(name: string): H5Dataset | null;
  /** A real dataset (or hyperslab) as float64, row-major. */
  readReal(name: string, ranges?: Range[]): Float64Array;
  /** A complex compound {r, i} dataset (or hyperslab) as two float64 planes, row-major. */
  readComplex(name: string, ranges?: Range[]): { re: Float64Array; im: Float64Array };
  readString(name: string): string;
  attrs(): Record<string, string | number>;
  close(): void;
}

type Dtype = string | [string, string][] | unknown;

function isComplexDtype(d: Dtype): boolean {
  if (!Array.isArray(d) || d.length !== 2) return false;
  const names = d.map((m) => (Array.isArray(m) ? String(m[0]) : ''));
  return names[0] === 'r' && names[1] === 'i';
}

/** Whether the file has an HDF5 superblock (checked before h5wasm sees the file). */
function hasSignature(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    return findSuperblock(fd, fstatSync(fd).size) !== null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether reading a value of this type goes through the file's global heap: variable-length strings
 * and sequences (class 9, or a string with vlen set) and references (class 7).
 */
function usesGlobalHeap(md: { type: number; vlen?: boolean }): boolean {
  return md.vlen === true || md.type === 9 || md.type === 7;
}

export function openH5(path: string): H5File {
  if (!hasSignature(path)) throw new Error('not a readable HDF5 file (no HDF5 signature)');
  let f: InstanceType<typeof h5wasm.File>;
  try {
    f = new h5wasm.File(path, 'r');
  } catch (e) {
    throw new Error(`not a readable HDF5 file: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!f.file_id || f.file_id < 0n) throw new Error('not a readable HDF5 file');
  // The object, with its metadata read (h5wasm reads it lazily). h5wasm reports an object header
  // HDF5 refuses (e.g. a contiguous dataset whose declared dimensions need more bytes than the file
  // holds: "invalid dataset size, likely file corruption") as "error - name not defined!".
  const open = (name: string) => {
    try {
      const d = f.get(name);
      if (d instanceof h5wasm.Dataset) void d.metadata;
      return d;
    } catch {
      throw new Error(
        `${basename(path)}: dataset "${name}" cannot be opened: HDF5 refuses its header as corrupt (e.g. declared dimensions past the data it stores)`,
      );
    }
  };
  const get = (name: string) => {
    const d = open(name);
    if (!(d instanceof h5wasm.Dataset)) throw new Error(`no dataset "${name}"`);
    return d;
  };
  let heapsChecked = false;
  const heapsOk = () => {
    if (!heapsChecked) checkGlobalHeaps(path);
    heapsChecked = true;
  };
  const read = (name: string, ranges?: Range[]): unknown => {
    const d = get(name);
    if (usesGlobalHeap(d.metadata)) heapsOk();
    return ranges ? d.slice(ranges) : d.value;
  };
  return {
    keys: () => f.keys(),
    dataset(name) {
      const d = open(name);
      if (!(d instanceof h5wasm.Dataset)) return null;
      const dt = d.dtype as Dtype;
      // HDF5 type classes: 0 integer, 1 float, 3 string, 6 compound, 8 enum (h5py's bool)
      const cls = d.metadata.type;
      const kind = isComplexDtype(dt)
        ? 'complex'
        : cls === 0 || cls === 1 || cls === 8
          ? 'real'
          : cls === 3
            ? 'string'
            : 'other';
      return { shape: d.shape ?? [], kind };
    },
    readReal(name, ranges) {
      const v = read(name, ranges);
      if (ArrayBuffer.isView(v)) {
        const a = v as unknown as ArrayLike<number | bigint>;
        const out = new Float64Array(a.length);
        for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
        return out;
      }
      if (typeof v === 'number' || typeof v === 'bigint') return Float64Array.of(Number(v));
      throw new Error(`dataset "${name}" is not numeric`);
    },
    readComplex(name, ranges) {
      const v = read(name, ranges);
      if (!Array.isArray(v)) throw new Error(`dataset "${name}" is not a complex {r, i} array`);
      const re = new Float64Array(v.length);
      const im = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const p = v[i] as [number, number];
        re[i] = p[0];
        im[i] = p[1];
      }
      return { re, im };
    },
    readString(name) {
      const v = read(name);
      return Array.isArray(v) ? String(v[0]) : String(v);
    },
    attrs() {
      const out: Record<string, string | number> = {};
      const all = Object.entries(f.attrs);
      if (all.some(([, a]) => usesGlobalHeap(a.metadata))) heapsOk();
      for (const [k, a] of all) {
        const v = a.value;
        out[k] =
          typeof v === 'number'
            ? v
            : typeof v === 'bigint'
              ? Number(v)
              : typeof v === 'string'
                ? v
                : ArrayBuffer.isView(v) && (v as unknown as ArrayLike<number>).length === 1
                  ? Number((v as unknown as ArrayLike<number>)[0])
                  : String(v);
      }
      return out;
    },
    close: () => void f.close(),
  };
}
