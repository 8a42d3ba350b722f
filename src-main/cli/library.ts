/**
 * The CLI's way into the library: the same services the app uses, on the library home (or `--db`).
 * Commands call `withServices(o, (s) => …)`; the services are closed when the command ends.
 */
import { resolve } from 'node:path';
import { createServices, type Services } from '../services/index.js';
import { libraryPaths } from '../services/paths.js';

export interface LibraryOptions {
  /** Another database than the library home's; its folder then holds models/ and exports/. */
  db?: string;
  /** Model folders and checkpoints of new jobs (`kdmri distill --out`). */
  out?: string;
}

export function openServices(o: LibraryOptions = {}): Services {
  const { dataDir, dbPath } = libraryPaths({ db: o.db });
  return createServices({
    dataDir,
    dbPath,
    mode: 'cli',
    ...(o.out ? { modelsRoot: resolve(o.out) } : {}),
  });
}

export async function withServices<T>(o: LibraryOptions, fn: (s: Services) => T | Promise<T>): Promise<T> {
  const services = openServices(o);
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}
