/**
 * Duration estimates for the Distill page: the job's networks are measured on this machine (in a
 * worker, like a job; the timings kept in the library per network, size, batch and backend), then
 * distill/estimate.ts's cost model adds up the job's steps.
 *
 * A worker's start-up and a dataset's loading time are remembered per process. With `measure: false`
 * an estimate is made only from what is known (the presets' figures on the Distill page), else it
 * answers `estimate: null`. Measurements run one at a time, the newest request wins: an older one
 * still waiting, or in flight, is stopped and answers `estimate: null` with a note (not an error: it
 * was superseded). A starting job stops the measurement in flight first (it would share the CPU).
 */
import { ApiFailure, type ApiRequest, type ApiResponse, type DistillEstimate } from '../contract/api.js';
import type { BackendName } from '../contract/domain.js';
import { csKey, estimateDuration, networkKey, type NetworkTiming } from '../distill/estimate.js';
import type { ServiceContext } from './context.js';

interface Overhead {
  dataMs: number;
  h: number;
  w: number;
  trainSlices: number;
  valSlices: number;
}

interface Figures extends Overhead {
  startupMs: number;
  backend: BackendName;
  teacher: NetworkTiming;
  student: NetworkTiming;
  csMsPerSlice: number | null;
  measured: string[];
}

const STOPPED = 'stopped: a newer estimate or a job started';

export function createEstimates(ctx: ServiceContext) {
  const { db } = ctx;
  /** What the last measurement found: the backend a job gets here, and a worker's start-up. */
  let machine: { backend: BackendName; startupMs: number } | null = null;
  const overheads = new Map<string, Overhead>();
  let chain: Promise<unknown> = Promise.resolve();
  /** The measurement in flight: a newer request or a starting job stops it. */
  let inFlight: AbortController | null = null;
  /** Requests that measure, so far: one waiting behind another is skipped when a newer one came. */
  let generation = 0;

  async function estimate(
    req: ApiRequest<'estimateDistillation'>,
  ): Promise<ApiResponse<'estimateDistillation'>> {
    const ds = db.datasets.get(req.datasetId);
    if (!ds) throw new ApiFailure('not-found', `no dataset ${req.datasetId}`, 'datasetId');
    const { config } = req;
    const dataKey = `${ds.id}@${req.size ?? 'native'}@${config.task}`;

    const known = (): Figures | null => {
      const ov = overheads.get(dataKey);
      if (!machine || !ov) return null;
      const key = (what: string, batch: number) => ({
        what,
        h: ov.h,
        w: ov.w,
        batch,
        backend: machine!.backend,
      });
      const teacher = db.timings.get(key(networkKey(config.teacher), config.training.batchSize));
      const student = db.timings.get(key(networkKey(config.student), config.training.batchSize));
      const wantsCs = config.task === 'recon' && config.cs !== null;
      const cs = wantsCs && config.cs ? db.timings.get(key(csKey(config.cs), 1)) : null;
      if (!teacher || !student || (wantsCs && !cs)) return null;
      return { ...ov, ...machine, teacher, student, csMsPerSlice: cs ? cs.inferMs : null, measured: [] };
    };

    const measure = async (mine: number): Promise<Figures | null> => {
      const found = known();
      if (found) return found;
      if (mine !== generation) return null;
      const abort = new AbortController();
      inFlight = abort;
      let r;
      try {
        r = await ctx.engine.measureJob(
          { dbPath: ctx.dbPath, datasetId: ds.id, config, ...(req.size ? { size: req.size } : {}) },
          abort.signal,
        );
      } catch (e) {
        if (abort.signal.aborted) return null;
        throw new ApiFailure(
          'bad-request',
          `the estimate could not measure this job: ${e instanceof Error ? e.message : String(e)}`,
          'config',
        );
      } finally {
        if (inFlight === abort) inFlight = null;
      }
      for (const t of r.fresh) db.timings.put(t);
      machine = { backend: r.backend, startupMs: r.startupMs };
      const ov: Overhead = {
        dataMs: r.dataMs,
        h: r.h,
        w: r.w,
        trainSlices: r.trainSlices,
        valSlices: r.valSlices,
      };
      overheads.set(dataKey, ov);
      return {
        ...ov,
        ...machine,
        teacher: r.teacher,
        student: r.student,
        csMsPerSlice: r.csMsPerSlice,
        measured: r.measured,
      };
    };

    let figures: Figures | null;
    if (!req.measure) {
      figures = known();
      if (!figures) return { estimate: null, note: 'not measured yet at this size, batch and backend' };
    } else {
      const mine = ++generation;
      inFlight?.abort();
      const run = chain.then(() => measure(mine));
      chain = run.catch(() => undefined);
      figures = await run;
      if (!figures) return { estimate: null, note: STOPPED };
    }
    return { estimate: toEstimate(figures), note: null };

    function toEstimate(f: Figures): DistillEstimate {
      const pick = (t: NetworkTiming): NetworkTiming => ({
        trainMs: t.trainMs,
        inferMs: t.inferMs,
        warmupMs: t.warmupMs,
        latencyMs: t.latencyMs,
      });
      const e = estimateDuration({
        config,
        trainSlices: f.trainSlices,
        valSlices: f.valSlices,
        teacher: pick(f.teacher),
        student: pick(f.student),
        csMsPerSlice: f.csMsPerSlice,
        startupMs: f.startupMs,
        dataMs: f.dataMs,
      });
      return {
        ...e,
        backend: f.backend,
        h: f.h,
        w: f.w,
        trainSlices: f.trainSlices,
        valSlices: f.valSlices,
        epochs: config.training.epochs,
        teacherStepMs: f.teacher.trainMs,
        studentStepMs: f.student.trainMs,
        measured: f.measured,
      };
    }
  }

  return {
    handlers: { estimateDistillation: estimate },
    /**
     * Stop the measurement in flight and wait until its worker has stopped (a job that starts next
     * must not share the CPU with it: it would be slowed down, and measured along).
     */
    async abort(): Promise<void> {
      generation++;
      inFlight?.abort();
      await chain;
    },
  };
}
