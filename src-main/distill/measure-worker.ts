/**
 * Measurement worker: what a job's networks cost on this machine, in the same kind of thread, with
 * the same backend and the same data as the job would use. Timings already in the library (per
 * network, size, batch and backend) are reused; new ones go back to the caller, which stores them.
 * This thread only reads the library, and closes it before it measures: from then on (flag word 1
 * set) the caller may stop it at once; before, it stops at the next check of the cancel word.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../compute/backend.js';
import { openDatabase, type Db } from '../store/db.js';
import { csKey, measureCs, measureNetwork, networkKey, type NetworkTiming } from './estimate.js';
import { loadJobData } from './job-data.js';
import type { MeasureInit, MeasureMessage, MeasureResult } from './protocol.js';
import { buildSliceBank } from './slice-bank.js';

const init = workerData as MeasureInit;
const post = (m: MeasureMessage) => parentPort!.postMessage(m);
const cancel = new Int32Array(init.cancelFlag);
/** Word 1: set once the library is closed (nothing left that a killed thread could hold). */
const libraryClosed = () => Atomics.store(cancel, 1, 1);
/** Stop between measurements when asked (the caller has moved on). */
const checkCancel = () => {
  if (Atomics.load(cancel, 0) === 1) throw new Error('measurement cancelled');
};

let db: Db | null = null;
try {
  const info = await initBackend({ prefer: init.backend });
  db = openDatabase(init.dbPath);
  post({ type: 'ready', backend: info.name });
  checkCancel();
  const { config } = init;
  const t0 = performance.now();
  const data = loadJobData(db, { kind: 'dataset', datasetId: init.datasetId, size: init.size }, config.task);
  const train = buildSliceBank(data.split.train, config.degradation);
  const val = buildSliceBank(data.split.val, config.degradation);
  const dataMs = performance.now() - t0;
  const batch = config.training.batchSize;
  const measured: string[] = [];
  const fresh: MeasureResult['fresh'] = [];
  const key = (what: string, b: number) => ({ what, h: train.h, w: train.w, batch: b, backend: info.name });
  // what the library already knows, read before the library is closed
  const known = {
    teacher: db.timings.get(key(networkKey(config.teacher), batch)),
    student: db.timings.get(key(networkKey(config.student), batch)),
    cs: config.task === 'recon' && config.cs ? db.timings.get(key(csKey(config.cs), 1)) : null,
  };
  db.close();
  libraryClosed();
  const timing = (spec: typeof config.teacher, found: NetworkTiming | null, label: string): NetworkTiming => {
    if (found) return found;
    checkCancel();
    const t = measureNetwork(spec, train, batch, 3, checkCancel);
    fresh.push({ ...key(networkKey(spec), batch), ...t });
    measured.push(label);
    return t;
  };
  const teacher = timing(config.teacher, known.teacher, 'teacher');
  const student = timing(config.student, known.student, 'student');
  let csMsPerSlice: number | null = null;
  if (config.task === 'recon' && config.cs && val.kre) {
    if (known.cs) csMsPerSlice = known.cs.inferMs;
    else {
      checkCancel();
      csMsPerSlice = measureCs(val, config.cs);
      if (csMsPerSlice !== null) {
        fresh.push({
          ...key(csKey(config.cs), 1),
          trainMs: 0,
          inferMs: csMsPerSlice,
          warmupMs: 0,
          latencyMs: 0,
        });
        measured.push('cs');
      }
    }
  }
  post({
    type: 'done',
    result: {
      backend: info.name,
      h: train.h,
      w: train.w,
      trainSlices: train.count,
      valSlices: val.count,
      dataMs,
      teacher,
      student,
      csMsPerSlice,
      measured,
      fresh,
    },
  });
} catch (err) {
  db?.close();
  post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
