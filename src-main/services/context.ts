/**
 * What every service module is built from: the open library (database and folders), the engine, and
 * the event bus. The composition root (index.ts) makes one and hands it to each module.
 */
import type { ApiEvent } from '../contract/api.js';
import type { Db } from '../store/db.js';
import type { Engine } from './engine.js';
import type { WorkRunner } from '../workers/pool.js';

export interface ServiceContext {
  db: Db;
  /** The library home: the database, models/, exports/. */
  dataDir: string;
  dbPath: string;
  /** Where new jobs put their model folders and checkpoints (default `<dataDir>/models`). */
  modelsRoot: string;
  engine: Engine;
  /** Where heavy work runs (import, retrieve, convert, export, Compare): worker threads or this thread. */
  work: WorkRunner;
  emit(e: ApiEvent): void;
}

/** A set of listeners; a failing listener does not stop the others. */
export function createEventBus() {
  const listeners = new Set<(e: ApiEvent) => void>();
  return {
    emit(e: ApiEvent): void {
      for (const l of listeners) {
        try {
          l(e);
        } catch {
          // one subscriber's failure (a closed socket, a destroyed window) is not the emitter's
        }
      }
    },
    subscribe(listener: (e: ApiEvent) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    clear(): void {
      listeners.clear();
    },
  };
}
