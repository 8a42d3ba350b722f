/**
 * Where PACS passwords and tokens live: never in the database, never sent back to the renderer.
 *
 *  - the environment first: `KDMRI_PACS_SECRET_<NAME>` (the node's name upper-cased, every run of
 *    other characters an underscore), so a server can be given its secrets by its service manager;
 *  - else one JSON file in the library home, created owner-only (0600) and replaced atomically. In
 *    web mode and the CLI it holds the secrets as they are (the file's mode protects them, like an
 *    ~/.netrc); on the desktop each value is encrypted with Electron's safeStorage (the OS keyring)
 *    through a codec the Electron adapter supplies (src-main/electron/secrets.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../store/model-files.js';
import { makePrivate, PRIVATE_FILE_MODE } from '../store/home.js';

/** Plain secrets (web mode, CLI). */
export const SECRETS_FILE = 'pacs-secrets.json';
/** safeStorage-encrypted secrets (the desktop app). */
export const SAFE_SECRETS_FILE = 'pacs-secrets.safe.json';

export type SecretPlace = 'safeStorage' | 'file' | 'environment';

export interface SecretStore {
  /** The secret of `name`, or null. */
  get(name: string): string | null;
  /** Where `name`'s secret comes from, or null when there is none. */
  place(name: string): SecretPlace | null;
  set(name: string, secret: string): void;
  remove(name: string): void;
}

/** Turns a secret into what the file holds and back (the desktop's safeStorage). */
export interface SecretCodec {
  place: 'safeStorage';
  encrypt(secret: string): string;
  decrypt(stored: string): string;
}

/** The environment variable that gives node `name` its secret. */
export function secretEnvName(name: string): string {
  return `KDMRI_PACS_SECRET_${name
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')}`;
}

export function fileSecretStore(
  file: string,
  opts: { env?: NodeJS.ProcessEnv; codec?: SecretCodec } = {},
): SecretStore {
  const env = opts.env ?? process.env;
  const codec = opts.codec ?? null;
  const read = (): Record<string, string> => {
    if (!existsSync(file)) return {};
    makePrivate(file, PRIVATE_FILE_MODE);
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not a readable secrets file (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new Error(`${file}: not a JSON object`);
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).filter(
        (e): e is [string, string] => typeof e[1] === 'string',
      ),
    );
  };
  const write = (all: Record<string, string>) =>
    writeFileAtomic(file, JSON.stringify(all, null, 1), { mode: PRIVATE_FILE_MODE });
  const fromEnv = (name: string) => {
    const v = env[secretEnvName(name)];
    return v ? v : null;
  };
  return {
    get(name) {
      const e = fromEnv(name);
      if (e !== null) return e;
      const stored = read()[name];
      if (stored === undefined) return null;
      return codec ? codec.decrypt(stored) : stored;
    },
    place(name) {
      if (fromEnv(name) !== null) return 'environment';
      if (read()[name] === undefined) return null;
      return codec ? codec.place : 'file';
    },
    set(name, secret) {
      const all = read();
      all[name] = codec ? codec.encrypt(secret) : secret;
      write(all);
    },
    remove(name) {
      const all = read();
      if (!(name in all)) return;
      delete all[name];
      write(all);
    },
  };
}
