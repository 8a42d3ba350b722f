/**
 * The engine functions the services call, imported statically: a module that fails to load fails
 * the import of the services, hence start-up and every test that loads them; nothing answers
 * 'unavailable'.
 *
 * `Engine` states what the services need of each function (a narrower view of its real signature,
 * so a typed test double only has to produce what the services read). `engine` is the real one;
 * the assignment below is the compile-time proof that the real modules fit. Tests give their own
 * members to the composition root: createServices({ engine: { ...engine, reconstructVolume } }).
 */
import type {
  CsParams,
  Degradation,
  MaskSpec,
  ModelCard,
  ProgressEvent,
  Volume,
  VolumeMetrics,
} from '../contract/domain.js';
import { initBackend, type BackendInfo, type BackendOptions } from '../compute/backend.js';
import { sampleDataPath } from '../data/sample.js';
import { resampleSlices } from '../data/volume.js';
import { loadDataSplit, type DataSplit } from '../distill/data-source.js';
import { csReconstructVolume, loadModelDir, reconstructVolume } from '../distill/infer.js';
import {
  measureJob,
  startJob,
  type JobHandle,
  type JobRequest,
  type MeasureInit,
  type MeasureResult,
} from '../distill/service.js';
import { buildSliceBank, type SliceBank } from '../distill/slice-bank.js';
import { buildMask, type Mask } from '../kspace/masks.js';
import { volumeMetrics } from '../metrics/index.js';
import type { Network } from '../networks/index.js';

export interface Engine {
  /** Run one distillation job in a worker thread (distill/service.ts). */
  startJob(request: JobRequest, onEvent: (e: ProgressEvent) => void): JobHandle;
  /** Time a job's networks on this machine in a worker thread (distill/estimate.ts). */
  measureJob(
    init: Omit<MeasureInit, 'cancelFlag'>,
    signal?: AbortSignal,
  ): Promise<MeasureResult & { startupMs: number }>;
  /** A saved model folder's network and card (distill/infer.ts). */
  loadModelDir(dir: string): { net: Network; card: ModelCard };
  /** Reconstruct every slice of a volume under a degradation (distill/infer.ts). */
  reconstructVolume(net: Network, vol: Volume, degradation: Degradation): { output: Volume };
  /** The compressed-sensing baseline of every slice of a volume under a mask (distill/infer.ts). */
  csReconstructVolume(vol: Volume, degradation: Degradation, params: CsParams): { output: Volume };
  /** Degraded inputs and targets of a set of volumes (distill/slice-bank.ts). */
  buildSliceBank(
    vols: Volume[],
    degradation: Degradation,
  ): Pick<SliceBank, 'input' | 'target' | 'h' | 'w' | 'count' | 'maskInfo'>;
  /** Training / validation volumes of a source: a path, or the bundled sample (distill/data-source.ts). */
  loadDataSplit(
    path: string | undefined,
    size?: number,
  ): Pick<DataSplit, 'train' | 'val' | 'description' | 'valFirst'>;
  buildMask(spec: MaskSpec, h: number, w: number): Mask;
  volumeMetrics(gt: Volume, pred: Volume): VolumeMetrics;
  resampleSlices(vol: Volume, size: number): Volume;
  initBackend(opts?: BackendOptions): Promise<Pick<BackendInfo, 'name'>>;
  sampleDataPath(): string;
}

export const engine: Engine = {
  startJob,
  measureJob,
  loadModelDir,
  reconstructVolume,
  csReconstructVolume,
  buildSliceBank,
  loadDataSplit,
  buildMask,
  volumeMetrics,
  resampleSlices,
  initBackend,
  sampleDataPath,
};
