/**
 * Compare: one slice of a dataset's validation split under a chosen degradation, as the target, the
 * zero-filled (or low-resolution) input and the teacher, student and KD-student reconstructions, each
 * with its residue |target − image| and per-slice PSNR / SSIM / NMSE; the PNG montage of one. Exports
 * of a comparison live in exports.ts.
 */
import { PNG } from 'pngjs';
import {
  CsParamsSchema,
  degradationLabel,
  type Degradation,
  type ModelCard,
  type Volume,
} from '../contract/domain.js';
import {
  ApiFailure,
  VIEWPORTS,
  type CompareRequest,
  type CompareResult,
  type CompareViewport,
  type Pixels,
  type ViewportName,
} from '../contract/api.js';
import type { Network } from '../networks/index.js';
import { loadSeriesVolume } from '../studies/index.js';
import type { ServiceContext } from './context.js';
import type { Engine } from './engine.js';
import { maskPreview } from './masks.js';

/** Where a compared slice comes from (see locate()). */
export type SliceOrigin = (
  | { kind: 'series'; uid: string; slice: number }
  | { kind: 'dataset'; source: string; volume: number; slice: number | null }
) & { spacing: [number, number, number] | null };

type Role = 'teacher' | 'student' | 'kd';
const ROLES: Role[] = ['teacher', 'student', 'kd'];
/** The CS viewport's parameters: the jobs' defaults, so Compare shows what the tables score. */
const CS_PARAMS = CsParamsSchema.parse({});
/** The cache key's stand-in for a model folder, for the CS reconstruction. */
const CS_KEY = '\0cs';

/** Reconstructions kept for scrolling back and forth: up to this many bytes of images. */
const RECON_CACHE_BYTES = 192 * 2 ** 20;
/** Slices reconstructed ahead on each side of the one shown, while the service is idle. */
const PREFETCH_SLICES = 2;

/** Slice `index` (over all volumes in order) as a one-slice volume, with its k-space when present. */
function sliceAt(vols: Volume[], index: number): { vol: Volume; slice: Volume } {
  let idx = index;
  let vol = vols[0];
  for (const v of vols) {
    if (idx < v.slices) {
      vol = v;
      break;
    }
    idx -= v.slices;
  }
  const hw = vol.h * vol.w;
  const slice: Volume = { data: vol.data.slice(idx * hw, (idx + 1) * hw), slices: 1, h: vol.h, w: vol.w };
  if (vol.kspace) {
    slice.kspace = {
      re: vol.kspace.re.slice(idx * hw, (idx + 1) * hw),
      im: vol.kspace.im.slice(idx * hw, (idx + 1) * hw),
      mask: vol.kspace.mask,
    };
  }
  return { vol, slice };
}

export function createCompare({ engine, db }: Pick<ServiceContext, 'engine' | 'db'>) {
  const splits = new Map<string, { vols: Volume[]; source: string; firsts?: number[] }>();
  const nets = new Map<string, { net: Network; card: ModelCard }>();
  let backendReady: Promise<unknown> | null = null;
  let backendName: string | null = null;
  // model dir + degradation + source + slice → reconstruction (insertion order = least recently used first)
  const recons = new Map<string, { data: Float32Array; ms: number }>();
  let reconBytes = 0;
  let prefetchGeneration = 0;

  function remember(key: string, value: { data: Float32Array; ms: number }) {
    recons.delete(key);
    recons.set(key, value);
    reconBytes += value.data.byteLength;
    for (const [k, v] of recons) {
      if (reconBytes <= RECON_CACHE_BYTES) break;
      recons.delete(k);
      reconBytes -= v.data.byteLength;
    }
  }

  /** The model's reconstruction of a one-slice volume, from the cache when it was made before. */
  function reconstructCached(
    reconstructVolume: Engine['reconstructVolume'],
    net: Network,
    key: string,
    slice: Volume,
    degradation: Degradation,
  ): { data: Float32Array; ms: number; cached: boolean } {
    const hit = recons.get(key);
    if (hit) {
      recons.delete(key);
      recons.set(key, hit);
      return { ...hit, cached: true };
    }
    const t0 = performance.now();
    const data = reconstructVolume(net, slice, degradation).output.data.slice(0, slice.h * slice.w);
    const made = { data, ms: performance.now() - t0 };
    remember(key, made);
    return { ...made, cached: false };
  }

  /** The CS reconstruction of a one-slice volume, cached with the models' (key CS_KEY). */
  function csCached(key: string, slice: Volume, degradation: Degradation) {
    const hit = recons.get(key);
    if (hit) {
      recons.delete(key);
      recons.set(key, hit);
      return { ...hit, cached: true };
    }
    const t0 = performance.now();
    const data = engine
      .csReconstructVolume(slice, degradation, CS_PARAMS)
      .output.data.slice(0, slice.h * slice.w);
    const made = { data, ms: performance.now() - t0 };
    remember(key, made);
    return { ...made, cached: false };
  }

  /**
   * Live models (reconstruction and restoration: modelsFor picks those of the compared degradation's
   * kind) trained on a dataset's data (the dataset itself or a resampled sibling with the
   * same source), newest first, with their cards (from the store; no weights loaded).
   */
  function datasetModels(datasetId: number | null) {
    const d = db;
    const ds = datasetId === null ? null : d.datasets.get(datasetId);
    const sameData = (id: number) => {
      if (datasetId === null || id === datasetId) return true;
      const other = d.datasets.get(id);
      return !!ds && !!other && other.source === ds.source && other.task === ds.task;
    };
    const out: { id: number; dir: string; role: Role; card: ModelCard }[] = [];
    for (const m of d.models.list().sort((a, b) => b.id - a.id)) {
      if (!(ROLES as string[]).includes(m.kind) || m.runId === null) continue;
      const run = d.runs.get(m.runId);
      const job = run ? d.jobs.get(run.jobId) : null;
      if (!job || !sameData(job.datasetId)) continue;
      out.push({ id: m.id, dir: m.dir, role: m.kind as Role, card: m.card });
    }
    return out;
  }

  /**
   * The dataset's validation slices, at the size its models were trained at: `size` when given, else
   * the newest model's (square) size when it differs from the dataset's, else the dataset's own.
   */
  function validationVolumes(req: CompareRequest) {
    const d = db;
    if ('seriesUid' in req.source) {
      // a library series, all its slices; models of any dataset, at their size
      const uid = req.source.seriesUid;
      const models = datasetModels(null);
      let vol: Volume;
      try {
        vol = loadSeriesVolume(d, uid);
      } catch (e) {
        throw new ApiFailure('not-found', e instanceof Error ? e.message : String(e), 'source.seriesUid');
      }
      const size =
        req.size ??
        (models.length && models[0].card.data.h === models[0].card.data.w
          ? models[0].card.data.h
          : undefined);
      if (size !== undefined && (size !== vol.h || size !== vol.w)) {
        vol = engine.resampleSlices(vol, size);
      }
      return { vols: [vol], source: `series ${uid}`, models, firsts: [0] as number[] | undefined };
    }
    const ds = d.datasets.get(req.source.datasetId);
    if (!ds) throw new ApiFailure('not-found', `no dataset ${req.source.datasetId}`, 'source.datasetId');
    const models = datasetModels(ds.id);
    let size: number | undefined = req.size ?? (typeof ds.meta.size === 'number' ? ds.meta.size : undefined);
    if (req.size === undefined && models.length) {
      const { h, w } = models[0].card.data;
      if (h === w && (h !== ds.h || w !== ds.w)) size = h;
    }
    const key = `${ds.id}@${size ?? 'native'}`;
    let s = splits.get(key);
    if (!s) {
      const split = engine.loadDataSplit(ds.source === 'sample' ? undefined : ds.source, size);
      s = { vols: split.val, source: `${ds.name} (validation)`, firsts: split.valFirst };
      splits.set(key, s);
    }
    return { ...s, models };
  }

  /** For each role, the model trained on this degradation, else the newest one of that size. */
  async function modelsFor(
    models: ReturnType<typeof datasetModels>,
    h: number,
    w: number,
    label: string,
    kind: Degradation['kind'],
  ) {
    const chosen = new Map<Role, { id: number; dir: string; card: ModelCard; exact: boolean }>();
    for (const m of models) {
      if (m.card.data.h !== h || m.card.data.w !== w) continue;
      // a reconstruction model needs a mask, a restoration model a low-resolution input
      if (m.card.degradation.kind !== kind) continue;
      const prev = chosen.get(m.role);
      if (prev?.exact) continue;
      const exact = m.card.degradationLabel === label;
      if (!prev || exact) chosen.set(m.role, { id: m.id, dir: m.dir, card: m.card, exact });
    }
    if (chosen.size) {
      // TensorFlow.js needs its backend before any weights are made
      backendReady ??= engine.initBackend({}).then((b) => (backendName = b.name));
      await backendReady;
    }
    const out = new Map<Role, { id: number; dir: string; card: ModelCard; net: Network; exact: boolean }>();
    const failed = new Map<Role, string>();
    for (const [role, c] of chosen) {
      let entry = nets.get(c.dir);
      if (!entry) {
        try {
          const loaded = engine.loadModelDir(c.dir);
          entry = { net: loaded.net, card: loaded.card };
          nets.set(c.dir, entry);
        } catch (e) {
          failed.set(
            role,
            `model ${c.id} could not be loaded: ${e instanceof Error ? e.message : String(e)}`,
          );
          continue;
        }
      }
      out.set(role, { ...c, net: entry.net });
    }
    return { models: out, failed };
  }

  async function compare(req: CompareRequest): Promise<CompareResult> {
    const { vols, source, models: candidates } = validationVolumes(req);
    const total = vols.reduce((n, v) => n + v.slices, 0);
    if (total === 0) throw new ApiFailure('not-found', 'the dataset has no validation slices', 'source');
    if (req.sliceIndex >= total) {
      throw new ApiFailure(
        'bad-request',
        `sliceIndex: ${req.sliceIndex} is past the last slice (${total - 1})`,
        'sliceIndex',
      );
    }
    const { vol, slice } = sliceAt(vols, req.sliceIndex);
    const hw = vol.h * vol.w;
    const keyOf = (dir: string, index: number) =>
      JSON.stringify([dir, req.degradation, source, vol.h, vol.w, index]);
    const degradation: Degradation = req.degradation;
    const label = degradationLabel(degradation);
    const bank = engine.buildSliceBank([slice], degradation);
    const target = bank.target.slice(0, hw);
    const zf = bank.input.slice(0, hw);
    const targetVol: Volume = { data: target, slices: 1, h: vol.h, w: vol.w };
    const px = (data: Float32Array): Pixels => ({ h: vol.h, w: vol.w, data });
    const residue = (img: Float32Array): Float32Array => {
      const r = new Float32Array(hw);
      for (let i = 0; i < hw; i++) r[i] = Math.abs(target[i] - img[i]);
      return r;
    };
    const metricsOf = (img: Float32Array) => {
      const m = engine.volumeMetrics(targetVol, { data: img, slices: 1, h: vol.h, w: vol.w });
      return { psnr: m.psnr, ssim: m.ssim, nmse: m.nmse };
    };

    let mask: CompareResult['mask'] = null;
    if (degradation.kind === 'mask') {
      // the mask the bank was built with (lines, true acceleration), else the requested one
      const { lines, axis, acceleration } = maskPreview(
        bank.maskInfo ?? engine.buildMask(degradation.mask, vol.h, vol.w),
      );
      mask = { lines, axis, acceleration };
    }

    const viewports: CompareViewport[] = [];
    const zfRes = residue(zf);
    viewports.push({
      name: 'zf',
      image: px(zf),
      residue: px(zfRes),
      metrics: metricsOf(zf),
      modelId: null,
      trainedOn: null,
      note: null,
    });
    viewports.push({
      name: 'target',
      image: px(target),
      residue: null,
      metrics: null,
      modelId: null,
      trainedOn: null,
      note: null,
    });

    let models: Awaited<ReturnType<typeof modelsFor>>['models'] = new Map();
    let failed = new Map<Role, string>();
    let modelsNote: string | null = null;
    try {
      if (candidates.length)
        ({ models, failed } = await modelsFor(candidates, vol.h, vol.w, label, degradation.kind));
    } catch (e) {
      modelsNote = e instanceof ApiFailure ? e.message : String(e);
    }
    const { reconstructVolume } = engine;
    for (const role of ROLES) {
      const m = models.get(role);
      if (!m) {
        viewports.push({
          name: role,
          image: null,
          residue: null,
          metrics: null,
          modelId: null,
          trainedOn: null,
          note:
            failed.get(role) ??
            modelsNote ??
            `no ${role === 'kd' ? 'KD student' : role} model for this dataset yet: run a distillation`,
        });
        continue;
      }
      const r = reconstructCached(reconstructVolume, m.net, keyOf(m.dir, req.sliceIndex), slice, degradation);
      const out = r.data;
      viewports.push({
        name: role,
        image: px(out),
        residue: px(residue(out)),
        metrics: metricsOf(out),
        modelId: m.id,
        trainedOn: m.card.degradationLabel,
        note: m.exact ? null : `trained on ${m.card.degradationLabel}`,
        inference: { ms: r.ms, cached: r.cached },
      });
    }
    if (degradation.kind === 'mask') {
      try {
        const r = csCached(keyOf(CS_KEY, req.sliceIndex), slice, degradation);
        viewports.push({
          name: 'cs',
          image: px(r.data),
          residue: px(residue(r.data)),
          metrics: metricsOf(r.data),
          modelId: null,
          trainedOn: null,
          note: null,
          inference: { ms: r.ms, cached: r.cached },
        });
      } catch (e) {
        viewports.push(
          emptyViewport('cs', `compressed sensing failed: ${e instanceof Error ? e.message : String(e)}`),
        );
      }
    } else
      viewports.push(
        emptyViewport('cs', 'compressed sensing reconstructs from a mask, not a low-resolution input'),
      );
    if (models.size || degradation.kind === 'mask') {
      // Reconstruct the neighbouring slices while idle, nearest first, so that scrolling finds them
      // ready. A newer request stops this (between two slices: one inference cannot be interrupted).
      const generation = ++prefetchGeneration;
      const todo: number[] = [];
      for (let d = 1; d <= PREFETCH_SLICES; d++) {
        if (req.sliceIndex + d < total) todo.push(req.sliceIndex + d);
        if (req.sliceIndex - d >= 0) todo.push(req.sliceIndex - d);
      }
      const step = () => {
        const next = todo.shift();
        if (next === undefined || generation !== prefetchGeneration) return;
        try {
          const s = sliceAt(vols, next).slice;
          for (const m of models.values())
            reconstructCached(reconstructVolume, m.net, keyOf(m.dir, next), s, degradation);
          if (degradation.kind === 'mask') csCached(keyOf(CS_KEY, next), s, degradation);
        } catch {
          return; // a prefetch failure changes nothing: the request for that slice will report it
        }
        setTimeout(step, 0);
      };
      setTimeout(step, 0);
    }
    viewports.sort((a, b) => VIEWPORTS.indexOf(a.name) - VIEWPORTS.indexOf(b.name));
    let residueMax = 0;
    for (const v of viewports)
      if (v.residue) for (const x of v.residue.data) if (x > residueMax) residueMax = x;
    return {
      source,
      slices: total,
      sliceIndex: req.sliceIndex,
      h: vol.h,
      w: vol.w,
      degradation: label,
      mask,
      viewports,
      residueMax,
    };
  }

  /**
   * Where a compared slice comes from, for exports that keep the source's patient, study and geometry:
   * a library series and the slice's index in it, or a dataset's source and the slice's index in the
   * volume it was cut from (null when unknown); `spacing` is the compared slices' voxel size.
   */
  async function locate(req: CompareRequest): Promise<SliceOrigin> {
    const { vols, firsts } = validationVolumes(req);
    let idx = req.sliceIndex;
    let k = 0;
    while (k < vols.length - 1 && idx >= vols[k].slices) idx -= vols[k++].slices;
    const spacing = vols[k]?.spacing ?? null;
    if ('seriesUid' in req.source) return { kind: 'series', uid: req.source.seriesUid, slice: idx, spacing };
    const ds = db.datasets.get(req.source.datasetId);
    if (!ds) throw new ApiFailure('not-found', `no dataset ${req.source.datasetId}`, 'source.datasetId');
    const first = firsts?.[k];
    return {
      kind: 'dataset',
      source: ds.source,
      volume: k,
      slice: first === undefined ? null : first + idx,
      spacing,
    };
  }

  return {
    compare,
    locate,
    forget(dir: string) {
      nets.get(dir)?.net.dispose();
      nets.delete(dir);
    },
    /** The compute backend this process runs inference on, once the first model was loaded. */
    backend(): string | null {
      return backendName;
    },
  };
}

function emptyViewport(name: CompareViewport['name'], note: string): CompareViewport {
  return { name, image: null, residue: null, metrics: null, modelId: null, trainedOn: null, note };
}

/** Row 1: the six images (gray, 0..target max); row 2: residues (hot, 0..residueMax). */
export function montagePng(r: CompareResult): Buffer {
  const pad = 4;
  const n = VIEWPORTS.length;
  const W = n * r.w + (n + 1) * pad;
  const H = 2 * r.h + 3 * pad;
  const png = new PNG({ width: W, height: H });
  png.data.fill(0);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  const target = r.viewports.find((v) => v.name === 'target')?.image;
  let top = 0;
  if (target) for (const x of target.data) if (x > top) top = x;
  top ||= 1;
  const put = (ox: number, oy: number, img: Pixels, map: (v: number) => [number, number, number]) => {
    for (let y = 0; y < img.h; y++)
      for (let x = 0; x < img.w; x++) {
        const [R, G, B] = map(img.data[y * img.w + x]);
        const o = ((oy + y) * W + ox + x) * 4;
        png.data[o] = R;
        png.data[o + 1] = G;
        png.data[o + 2] = B;
      }
  };
  const gray = (v: number): [number, number, number] => {
    const g = Math.max(0, Math.min(255, Math.round((v / top) * 255)));
    return [g, g, g];
  };
  const rmax = r.residueMax || 1;
  const hot = (v: number): [number, number, number] => hotColour(v / rmax);
  VIEWPORTS.forEach((name: ViewportName, i) => {
    const v = r.viewports.find((x) => x.name === name);
    const ox = pad + i * (r.w + pad);
    if (v?.image) put(ox, pad, v.image, gray);
    if (v?.residue) put(ox, 2 * pad + r.h, v.residue, hot);
  });
  return PNG.sync.write(png);
}

/** The 'hot' colour map (black → red → yellow → white) at t ∈ [0, 1]. */
export function hotColour(t: number): [number, number, number] {
  const c = Math.max(0, Math.min(1, t));
  const r = Math.min(1, c / 0.375);
  const g = Math.max(0, Math.min(1, (c - 0.375) / 0.375));
  const b = Math.max(0, Math.min(1, (c - 0.75) / 0.25));
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

/**
 * The Compare service as the rest of the services use it: each request runs where the context's work
 * runner puts it (the Compare work thread, which keeps the loaded models and reconstructions; or this
 * thread for the CLI and engine doubles), so that inference never blocks the main / server loop.
 */
export function createCompareService({ work, dbPath }: Pick<ServiceContext, 'work' | 'dbPath'>) {
  let backendName: string | null = null;
  return {
    async compare(request: CompareRequest): Promise<CompareResult> {
      const { result, backend } = await work.run('compare', { dbPath, request });
      backendName = backend ?? backendName;
      return result;
    },
    locate(request: CompareRequest): Promise<SliceOrigin> {
      return work.run('locate', { dbPath, request });
    },
    /** Drop a deleted model's network (no answer awaited: the next load would fail anyway). */
    forget(dir: string): void {
      work.run('forgetModel', { dbPath, dir }).catch(() => undefined);
    },
    /** The compute backend Compare runs inference on, once the first model was loaded. */
    backend(): string | null {
      return backendName;
    },
  };
}
