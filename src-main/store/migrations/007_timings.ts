/**
 * 007 — timings: what a short measurement on this machine says a network costs, so that the Distill
 * page can tell how long a job will take before it is launched (services/estimate.ts).
 *
 * One row per (what, h, w, batch, backend): `what` is a network's canonical spec (JSON) or a
 * non-network cost ('cs:<params JSON>' for the compressed-sensing baseline). Milliseconds per call:
 * a training step (forward, backward, Adam) on one batch; a forward pass on one batch; the first
 * step of a fresh network beyond a warm one (allocation, kernel set-up); the saved model's latency
 * measurement at 256×256 (distill/compactness.ts).
 */
import type { Migration } from './types.js';

export const migration007Timings: Migration = {
  version: 7,
  name: 'timings',
  sql: /* sql */ `
CREATE TABLE timings (
  what         TEXT    NOT NULL,
  h            INTEGER NOT NULL CHECK (h > 0),
  w            INTEGER NOT NULL CHECK (w > 0),
  batch        INTEGER NOT NULL CHECK (batch > 0),
  backend      TEXT    NOT NULL,
  train_ms     REAL    NOT NULL CHECK (train_ms >= 0),
  infer_ms     REAL    NOT NULL CHECK (infer_ms >= 0),
  warmup_ms    REAL    NOT NULL CHECK (warmup_ms >= 0),
  latency_ms   REAL    NOT NULL CHECK (latency_ms >= 0),
  measured_at  INTEGER NOT NULL,
  PRIMARY KEY (what, h, w, batch, backend)
);
`,
};
