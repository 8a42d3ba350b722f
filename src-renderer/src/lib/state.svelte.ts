/**
 * Shared renderer state (Svelte 5 runes): app info, datasets, jobs and live job progress, fed by the
 * API and its event stream.
 */
import type { AppInfo, ApiEvent, DatasetInfo, ImportEvent, JobInfo } from '../../../src-main/contract/api';
import type { BackendName, MetricRow, RunKind } from '../../../src-main/contract/domain';
import { ApiFailure } from '../../../src-main/contract/api';
import { api, errorText, onEvent } from './api';

export type Page = 'studies' | 'distill' | 'compare' | 'runs';

export interface StepCurve {
  step: RunKind;
  /** batch losses in arrival order */
  batches: number[];
  epochs: { epoch: number; trainLoss: number; valLoss: number; lr: number }[];
}

export interface JobProgress {
  jobId: string;
  status: 'queued' | 'running' | 'finished' | 'cancelled' | 'failed';
  backend: BackendName | null;
  steps: RunKind[];
  step: RunKind | null;
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  lr: number | null;
  etaSeconds: number | null;
  slicesPerSecond: number | null;
  curves: StepCurve[];
  rows: MetricRow[];
  error: string | null;
  events: number;
  log: string[];
}

export const app = $state({
  page: 'studies' as Page,
  /** A results table another page asks the Runs page to show ('study:<id>'), until it does. */
  openTable: '',
  info: null as AppInfo | null,
  datasets: [] as DatasetInfo[],
  jobs: [] as JobInfo[],
  error: '',
  /** Web mode opened without logging in (no session cookie): every call is refused. */
  unauthorized: false,
  notice: '',
  /** bumps when models change, so pages can reload */
  modelsVersion: 0,
  studiesVersion: 0,
});

export const progress: Record<string, JobProgress> = $state({});

const importListeners = new Set<(importId: string, e: ImportEvent) => void>();
export function onImport(l: (importId: string, e: ImportEvent) => void): () => void {
  importListeners.add(l);
  return () => importListeners.delete(l);
}

function blank(jobId: string): JobProgress {
  return {
    jobId,
    status: 'queued',
    backend: null,
    steps: [],
    step: null,
    epoch: 0,
    epochs: 0,
    batch: 0,
    batches: 0,
    lr: null,
    etaSeconds: null,
    slicesPerSecond: null,
    curves: [],
    rows: [],
    error: null,
    events: 0,
    log: [],
  };
}

function curve(p: JobProgress, step: RunKind): StepCurve {
  let c = p.curves.find((x) => x.step === step);
  if (!c) {
    c = { step, batches: [], epochs: [] };
    p.curves.push(c);
  }
  return c;
}

function apply(e: ApiEvent): void {
  if (e.channel === 'library') {
    if (e.what === 'datasets') void refreshDatasets();
    if (e.what === 'jobs') void refreshJobs();
    if (e.what === 'models') app.modelsVersion++;
    if (e.what === 'studies') app.studiesVersion++;
    return;
  }
  if (e.channel === 'import') {
    for (const l of importListeners) l(e.importId, e.event);
    return;
  }
  progress[e.jobId] ??= blank(e.jobId);
  const p = progress[e.jobId];
  const ev = e.event;
  p.events++;
  switch (ev.type) {
    case 'job-start':
      p.status = 'running';
      p.backend = ev.backend;
      p.steps = ev.steps;
      break;
    case 'step-start':
      p.step = ev.step;
      p.epochs = ev.epochs;
      p.epoch = ev.startEpoch;
      p.batch = 0;
      curve(p, ev.step);
      break;
    case 'batch':
      p.step = ev.step;
      p.batch = ev.batch;
      p.batches = ev.batches;
      p.epoch = ev.epoch;
      curve(p, ev.step).batches.push(ev.loss);
      break;
    case 'epoch':
      p.step = ev.step;
      p.epoch = ev.epoch;
      p.epochs = ev.epochs;
      p.lr = ev.lr;
      p.etaSeconds = ev.etaSeconds;
      p.slicesPerSecond = ev.slicesPerSecond;
      curve(p, ev.step).epochs.push({
        epoch: ev.epoch,
        trainLoss: ev.trainLoss,
        valLoss: ev.valLoss,
        lr: ev.lr,
      });
      break;
    case 'step-end':
      p.log.push(`${ev.step}: best epoch ${ev.bestEpoch}, val loss ${ev.bestValLoss.toFixed(5)}`);
      break;
    case 'eval':
      p.rows = ev.rows;
      break;
    case 'job-end':
      p.status = ev.status;
      p.error = ev.error ?? null;
      p.etaSeconds = 0;
      void refreshJobs();
      break;
    case 'log':
      p.log.push(`[${ev.level}] ${ev.message}`);
      if (p.log.length > 200) p.log.splice(0, p.log.length - 200);
      break;
  }
}

export async function refreshDatasets(): Promise<void> {
  try {
    app.datasets = await api.listDatasets({});
  } catch (e) {
    app.error = errorText(e);
  }
}

export async function refreshJobs(): Promise<void> {
  try {
    app.jobs = await api.listJobs({});
    for (const j of app.jobs) {
      progress[j.id] ??= blank(j.id);
      const p = progress[j.id];
      if (j.status !== 'running' || !j.live) p.status = j.status;
      if (j.error) p.error = j.error;
    }
  } catch {
    // store not ready: the Distill page shows it
  }
}

let started = false;
export async function startState(): Promise<void> {
  if (started) return;
  started = true;
  onEvent(apply);
  try {
    app.info = await api.appInfo({});
  } catch (e) {
    if (e instanceof ApiFailure && e.code === 'unauthorized') {
      app.unauthorized = true;
      return;
    }
    app.error = errorText(e);
  }
  await Promise.all([refreshDatasets(), refreshJobs()]);
}
