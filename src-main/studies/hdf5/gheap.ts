/**
 * A bounded check of an HDF5 file's global heap collections, run before h5wasm reads any
 * variable-length data (h5py's `str` attributes, vlen string datasets, references).
 *
 * Why: HDF5 (2.0.0, as compiled into h5wasm 0.10) decodes a collection by walking its objects — each
 * object header is {index u16, refcount u16, reserved 4, size (size-of-lengths bytes)} — and steps
 * `need = index > 0 ? header + align8(size) : size` bytes to the next one (H5HG__cache_heap_deserialize).
 * It never checks that `need` is non-zero or stays inside the collection. A corrupt object size
 * (the fuzzer's "dims" mutation took an {index, size} pair of a fastMRI file's heap for a dimension
 * tuple and wrote 2^31, 2^32−1, 2^40 or 2^53−1 into it) desynchronises the walk; it then lands in the
 * zero-filled free space, where a header reads as {index 0, size 0}: need = 0, and the walk loops
 * forever inside one synchronous WebAssembly call that nothing in its thread can interrupt. In wasm32
 * the size is also truncated to 32 bits, so a 2^40 size reads as 0 there.
 *
 * What: every collection in the file (found by its 8-byte prefix "GCOL", version 1, three reserved
 * zero bytes; a chance match in raw data is then also checked, which only refuses a file whose bytes
 * happen to hold that prefix followed by an impossible heap) is walked the way HDF5 walks it, with
 * full 64-bit sizes, and must satisfy what any heap HDF5 writes satisfies: the collection lies inside
 * the file, each object (header plus padded data) lies inside the collection, and a free-space
 * object (index 0) is at least its own header. Cost: one sequential read of the file in 4 MiB chunks
 * (the import/convert that follows reads the datasets anyway) plus ≤ size/16 header reads per
 * collection; memory is one chunk. Run at most once per opened file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';

/** "GCOL", version 1, 3 reserved bytes. */
const PREFIX = Buffer.from([0x47, 0x43, 0x4f, 0x4c, 0x01, 0x00, 0x00, 0x00]);
const CHUNK = 4 * 2 ** 20;

export class HeapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeapError';
  }
}

function readUint(b: Buffer, off: number, len: number): bigint {
  let v = 0n;
  for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]);
  return v;
}

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The superblock: its offset (the signature sits at 0, 512, 1024, 2048, … after an optional user
 * block) and its "size of lengths" (2, 4, 8 or 16 bytes, h5py writes 8; versions 0/1 keep it at byte
 * 14, versions 2/3 at byte 10; null when the field is not a valid size). Null when there is none.
 */
export function findSuperblock(
  fd: number,
  size: number,
): { offset: number; lengthSize: number | null } | null {
  const b = Buffer.alloc(16);
  for (let off = 0; off + 8 <= size && off <= 1 << 20; off = off === 0 ? 512 : off * 2) {
    readSync(fd, b, 0, 16, off);
    if (!b.subarray(0, 8).equals(SIGNATURE)) continue;
    const v = b[8];
    const len = off + 16 > size ? 0 : v <= 1 ? b[14] : v <= 3 ? b[10] : 0;
    return { offset: off, lengthSize: [2, 4, 8, 16].includes(len) ? len : null };
  }
  return null;
}

/** Offsets of every global heap collection prefix in the file, in order. */
function findCollections(fd: number, size: number): number[] {
  const out: number[] = [];
  const buf = Buffer.alloc(CHUNK + PREFIX.length - 1);
  // consecutive chunks overlap by PREFIX.length − 1 bytes so that a prefix across a boundary is seen
  for (let start = 0; start < size; start += CHUNK) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - start), start);
    const view = buf.subarray(0, n);
    for (let i = view.indexOf(PREFIX); i >= 0 && i < CHUNK; i = view.indexOf(PREFIX, i + 1))
      out.push(start + i);
  }
  return out;
}

/**
 * Throws a HeapError naming the file and the first corrupt collection/object; returns the number of
 * collections checked.
 */
export function checkGlobalHeaps(path: string): number {
  const name = basename(path);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const L = findSuperblock(fd, size)?.lengthSize ?? 8;
    const hdr = 8 + L; // collection header: prefix + collection size
    const objHdr = 8 + L; // object header: index, refcount, reserved, object size
    const at = Buffer.alloc(objHdr);
    const collections = findCollections(fd, size);
    for (const c of collections) {
      const bad = (what: string) =>
        new HeapError(
          `${name}: HDF5 global heap collection at byte ${c} is corrupt: ${what}; refused before reading ` +
            'its variable-length data (the HDF5 library would loop on it)',
        );
      readSync(fd, at, 0, L, c + 8);
      const declared = readUint(at, 0, L);
      if (declared < BigInt(hdr) || declared > BigInt(size - c))
        throw bad(`it declares ${declared} bytes, but the file has ${size - c} from there`);
      const end = c + Number(declared);
      let p = c + hdr;
      // every step advances at least objHdr bytes (checked below), so this ends within size/objHdr steps
      while (p < end) {
        if (p + objHdr > end) break; // a tail too small for a header is free space (as HDF5 reads it)
        readSync(fd, at, 0, objHdr, p);
        const idx = at.readUInt16LE(0);
        const osize = readUint(at, 8, L);
        const room = BigInt(end - p);
        if (idx === 0) {
          if (osize < BigInt(objHdr) || osize > room)
            throw bad(
              `its free-space object at byte ${p} declares ${osize} bytes (between ${objHdr} and ${room} expected)`,
            );
          p += Number(osize);
        } else {
          const need = BigInt(objHdr) + ((osize + 7n) & ~7n);
          if (need > room)
            throw bad(
              `object ${idx} at byte ${p} declares ${osize} bytes, past the collection's end at byte ${end}`,
            );
          p += Number(need);
        }
      }
    }
    return collections.length;
  } finally {
    closeSync(fd);
  }
}
