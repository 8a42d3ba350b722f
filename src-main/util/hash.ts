/**
 * Content hashes for reproducibility records and evaluation identity: SHA-256 (hex) over typed
 * arrays' raw bytes (little-endian on every platform the app runs on), prefixed with a shape so
 * that equal bytes of different shapes differ.
 */
import { createHash } from 'node:crypto';

export function hashArrays(shape: string, ...arrays: ArrayBufferView[]): string {
  const h = createHash('sha256');
  h.update(`${shape}\n`);
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}
