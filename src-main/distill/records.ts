/**
 * What makes a run reproducible, gathered when it starts: the exact config, the seeds, the mask
 * (its sampled lines) and its hash, hashes of the training and validation slices as the networks
 * see them (normalised targets; degraded inputs follow from them and the mask), the backend and its
 * thread count, and the versions of the app, TensorFlow.js and Node.
 */
import { arch, cpus, platform } from 'node:os';
import type { BackendName, DistillConfig } from '../contract/domain.js';
import { maskHash } from '../kspace/masks.js';
import type { NewRunRecord, RunDataRecord } from '../store/db.js';
import { APP_VERSION, TFJS_VERSION } from '../util/versions.js';
import { bankHash } from './evaluate.js';
import type { SliceBank } from './slice-bank.js';

export interface RecordContext {
  config: DistillConfig;
  data: Omit<RunDataRecord, 'h' | 'w' | 'trainSlices' | 'valSlices' | 'trainVolumes' | 'valVolumes'>;
  train: SliceBank;
  val: SliceBank;
  backend: BackendName;
  threads: number;
}

/** The mask of a reconstruction bank as a record and its hash (null for restoration). */
export function maskOfBank(bank: SliceBank): { mask: NewRunRecord['mask']; hash: string | null } {
  if (!bank.mask) return { mask: null, hash: null };
  const hash = maskHash(bank.mask, bank.h, bank.w);
  const info = bank.maskInfo;
  if (info) {
    const lines = Array.from(info.lines).flatMap((v, i) => (v ? [i] : []));
    return { mask: { h: bank.h, w: bank.w, axis: info.axis, lines }, hash };
  }
  // an acquired raw-data mask: a line mask when it is constant along one axis, else known by its hash
  const { h, w, mask } = bank;
  const rowMask = Array.from({ length: h }, (_, r) => r).every((r) =>
    mask.subarray(r * w, (r + 1) * w).every((x) => x === mask[r * w]),
  );
  const colMask = Array.from({ length: w }, (_, c) => c).every((c) =>
    Array.from({ length: h }, (_, r) => mask[r * w + c]).every((x) => x === mask[c]),
  );
  if (!rowMask && !colMask) return { mask: null, hash };
  const axis = rowMask ? 'rows' : 'cols';
  const lines =
    axis === 'rows'
      ? Array.from({ length: h }, (_, r) => r).filter((r) => mask[r * w] !== 0)
      : Array.from({ length: w }, (_, c) => c).filter((c) => mask[c] !== 0);
  return { mask: { h, w, axis, lines }, hash };
}

export function runRecord(runId: number, c: RecordContext): NewRunRecord {
  const m = maskOfBank(c.train);
  const maskSeed =
    c.config.degradation.kind === 'mask' &&
    ['cartesian', 'random', 'equispaced'].includes(c.config.degradation.mask.kind)
      ? c.config.degradation.mask.seed
      : null;
  return {
    runId,
    config: c.config,
    data: {
      ...c.data,
      h: c.train.h,
      w: c.train.w,
      trainSlices: c.train.count,
      valSlices: c.val.count,
      trainVolumes: c.train.volumes,
      valVolumes: c.val.volumes,
    },
    weightSeed: c.config.training.seed,
    shuffleSeed: c.config.training.seed,
    maskSeed,
    mask: m.mask,
    maskHash: m.hash,
    trainHash: bankHash(c.train),
    valHash: bankHash(c.val),
    backend: c.backend,
    threads: c.threads,
    appVersion: APP_VERSION,
    tfjsVersion: TFJS_VERSION,
    nodeVersion: process.version,
    platform: `${platform()} ${arch()} ${cpus()[0]?.model?.trim() ?? ''}`.trim(),
  };
}
