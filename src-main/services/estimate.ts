/**
 * Duration estimates for the Distill page: the job's networks are measured on this machine (in a
 * worker, like a job; the timings kept in the library per network, size, batch and backend), then
 * distill/estimate.ts's cost model adds up the job's steps. A worker's start-up and a dataset's
 * loading time are remembered per process; once they and every network's timings are known, an
 * estimate needs no measurement at all. Measurements run one at a time (a CPU box has few cores,
 * and two at once would each measure the other).
 */
import { ApiFailure, type ApiRequest, type DistillEstimate } from '../contract/api.js';
import type { BackendName } from '../contract/domain.js';
import { csKey, estimateDuration, networkKey, type NetworkTiming } from '../distill/estimate.js';
import type { ServiceContext } from './context.js';

interface Overhead {
  startupMs: number;
  dataMs: number;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
}

export function createEstimates(ctx: ServiceContext) {
  const { db } = ctx;
  let backend: BackendName | null = null;
  const overheads = new Map<string, Overhead>();
  let chain: Promise<unknown> = Promise.resolve();
  /** The measurement in flight: a newer request or a starting job stops it. */
  let inFlight: AbortController | null = null;
  /** Requests so far: a measurement waiting behind another is skipped when a newer request came. */
  let generation = 0;
  const stopped = () =>
    new ApiFailure('conflict', 'the measurement was stopped by a newer request or a starting job', 'config');

  async function estimate(req: ApiRequest<'estimateDistillation'>): Promise<DistillEstimate> {
    const ds = db.datasets.get(req.datasetId);
    if (!ds) throw new ApiFailure('not-found', `no dataset ${req.datasetId}`, 'datasetId');
    const { config } = req;
    const dataKey = `${ds.id}@${req.size ?? 'native'}@${config.task}`;

    const fromLibrary = () => {
      const ov = overheads.get(dataKey);
      if (!backend || !ov) return null;
      const key = (what: string, batch: number) => ({ what, h: ov.h, w: ov.w, batch, backend: backend! });
      const teacher = db.timings.get(key(networkKey(config.teacher), config.training.batchSize));
      const student = db.timings.get(key(networkKey(config.student), config.training.batchSize));
      const wantsCs = config.task === 'recon' && config.cs !== null;
      const cs = wantsCs && config.cs ? db.timings.get(key(csKey(config.cs), 1)) : null;
      if (!teacher || !student || (wantsCs && !cs)) return null;
      return {
        ...ov,
        backend,
        teacher,
        student,
        csMsPerSlice: cs ? cs.inferMs : null,
        measured: [] as string[],
      };
    };

    const measure = async () => {
      const known = fromLibrary();
      if (known) return known;
      if (mine !== generation) throw stopped();
      let r;
      const abort = new AbortController();
      inFlight = abort;
      try {
        r = await ctx.engine.measureJob(
          { dbPath: ctx.dbPath, datasetId: ds.id, config, ...(req.size ? { size: req.size } : {}) },
          abort.signal,
        );
      } catch (e) {
        if (abort.signal.aborted) throw stopped();
        throw new ApiFailure(
          'bad-request',
          `the estimate could not measure this job: ${e instanceof Error ? e.message : String(e)}`,
          'config',
        );
      } finally {
        if (inFlight === abort) inFlight = null;
      }
      for (const t of r.fresh) db.timings.put(t);
      backend = r.backend;
      const ov: Overhead = {
        startupMs: r.startupMs,
        dataMs: r.dataMs,
        h: r.h,
        w: r.w,
        trainSlices: r.trainSlices,
        valSlices: r.valSlices,
      };
      overheads.set(dataKey, ov);
      return {
        ...ov,
        backend: r.backend,
        teacher: r.teacher,
        student: r.student,
        csMsPerSlice: r.csMsPerSlice,
        measured: r.measured,
      };
    };
    // one measurement at a time, the newest wins; a failed one does not block the next
    const mine = ++generation;
    inFlight?.abort();
    const run = chain.then(measure);
    chain = run.catch(() => undefined);
    const figures = await run;

    const pick = (t: NetworkTiming): NetworkTiming => ({
      trainMs: t.trainMs,
      inferMs: t.inferMs,
      warmupMs: t.warmupMs,
      latencyMs: t.latencyMs,
    });
    const e = estimateDuration({
      config,
      trainSlices: figures.trainSlices,
      valSlices: figures.valSlices,
      teacher: pick(figures.teacher),
      student: pick(figures.student),
      csMsPerSlice: figures.csMsPerSlice,
      startupMs: figures.startupMs,
      dataMs: figures.dataMs,
    });
    return {
      ...e,
      backend: figures.backend,
      h: figures.h,
      w: figures.w,
      trainSlices: figures.trainSlices,
      valSlices: figures.valSlices,
      epochs: config.training.epochs,
      teacherStepMs: figures.teacher.trainMs,
      studentStepMs: figures.student.trainMs,
      measured: figures.measured,
    };
  }

  return {
    handlers: { estimateDistillation: estimate },
    /**
     * Stop the measurement in flight and wait until its worker has stopped (a job that starts next
     * must not share the CPU with it: it would be slowed down, and measured along).
     */
    async abort(): Promise<void> {
      inFlight?.abort();
      await chain;
    },
  };
}
