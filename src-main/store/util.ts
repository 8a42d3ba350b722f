/**
 * Small helpers shared by the repositories: the store's error type, JSON columns, NaN handling and
 * argument checks whose messages name the repository method and the offending field.
 */

/** Every error the store raises on bad input or a corrupt database. */
export class StoreError extends Error {
  override name = 'StoreError';
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** `undefined` members are allowed (and dropped by JSON.stringify) so optional fields type-check. */
export type JsonObject = { [key: string]: JsonValue | undefined };

/** Serialise a JSON column; refuses values JSON cannot represent faithfully (functions, cycles, BigInt). */
export function toJson(value: unknown, where: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(`${where}: not JSON-serialisable (${(err as Error).message})`);
  }
  if (text === undefined) throw new StoreError(`${where}: not JSON-serialisable (got ${typeof value})`);
  return text;
}

/** Parse a JSON column read back from the database; a corrupt value is reported with its location. */
export function fromJson<T>(text: string, where: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new StoreError(`corrupt JSON in ${where}: ${(err as Error).message}`);
  }
}

/** SQLite stores NaN as NULL; the store maps it back so metric rows stay plain numbers. */
export const nanToNull = (x: number): number | null => (Number.isNaN(x) ? null : x);
export const nullToNaN = (x: number | null): number => (x === null ? NaN : x);

export function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], where: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new StoreError(`${where}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

export function checkInt(value: unknown, where: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new StoreError(`${where}: expected an integer ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

/** A number, NaN allowed (stored as NULL), Infinity allowed. */
export function checkNumber(value: unknown, where: string): number {
  if (typeof value !== 'number') throw new StoreError(`${where}: expected a number, got ${String(value)}`);
  return value;
}

export function checkString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new StoreError(`${where}: expected a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Epoch milliseconds: a non-negative integer. */
export function checkTime(value: unknown, where: string): number {
  return checkInt(value, where, 0);
}

export function checkNullable<T>(value: T | null | undefined, check: (v: T) => T): T | null {
  return value === null || value === undefined ? null : check(value);
}

/**
 * Whether a run left 'running' by process `pid` is orphaned. Called at startup, so our own pid can
 * only be a stale one reused after a restart (common in containers); NULL (unknown owner) counts
 * as orphaned too. EPERM means the process exists but belongs to someone else: alive.
 */
export function isOrphaned(pid: number | null): boolean {
  if (pid === null || pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

/** The first problem zod found, as "path: message", for one-line errors. */
export function zodProblem(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const i = issues[0];
  if (!i) return 'invalid';
  const path = i.path.map(String).join('.');
  return path ? `${path}: ${i.message}` : i.message;
}
