/**
 * UIDs in the 2.25.<decimal> form (PS3.5 §B.2: a UUID read as one unsigned 128-bit integer), which
 * needs no registered root. Random ones for new objects; deterministic ones (sha256 of the inputs,
 * first 128 bits) for synthetic studies made from NIfTI / HDF5 files, so re-importing finds them.
 */
import { createHash, randomUUID } from 'node:crypto';

export function uuidToUid(uuid: string): string {
  return `2.25.${BigInt('0x' + uuid.replace(/-/g, '')).toString()}`;
}

export function newUid(): string {
  return uuidToUid(randomUUID());
}

export function deterministicUid(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return `2.25.${BigInt('0x' + h.digest('hex').slice(0, 32)).toString()}`;
}
