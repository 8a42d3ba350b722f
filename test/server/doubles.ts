/**
 * Typed test doubles for the engine functions, given to the composition root by the transport tests
 * (the server, the Electron wiring), which test the plumbing rather than the engine.
 */
import type { ProgressEvent } from '../../src-main/contract/domain.js';
import { endedResult } from '../../src-main/distill/service.js';
import type { Engine } from '../../src-main/services/engine.js';

/** A training worker that emits `events` after `eventsMs`, then ends 'finished' after `doneMs`. */
export function quickJob(events: (jobId: string) => ProgressEvent[], eventsMs: number, doneMs: number) {
  const startJob: Engine['startJob'] = (req, onEvent) => {
    const jobId = req.jobId ?? 'no-id';
    setTimeout(() => events(jobId).forEach(onEvent), eventsMs);
    return {
      jobId,
      cancel: () => undefined,
      done: new Promise((ok) => setTimeout(() => ok(endedResult(jobId, 'finished')), doneMs)),
    };
  };
  return startJob;
}

/** A line mask that samples every acc-th row (its true acceleration is acc when acc divides h). */
export const everyAccRow: Engine['buildMask'] = (spec, h, w) => {
  const lines = new Uint8Array(h);
  for (let i = 0; i < h; i += spec.acc) lines[i] = 1;
  return { h, w, axis: 'rows', lines, acceleration: h / lines.reduce((a, b) => a + b, 0), spec };
};
