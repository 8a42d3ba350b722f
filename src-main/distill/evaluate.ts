/**
 * Reconstruct a slice bank with a network and score it per volume (method spec §5): PSNR and SSIM
 * with the volume maximum as data range, NMSE over the volume, then mean ± 2·std over volumes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EvalKind, MetricRow, Summary, Volume, VolumeMetrics } from '../contract/domain.js';
import type { Network } from '../networks/index.js';
import { perSliceMetrics, summarize, volumeMetrics } from '../metrics/index.js';
import { hashArrays } from '../util/hash.js';
import { batchesOf, disposeBatch, makeBatch, type SliceBank } from './slice-bank.js';

/** Network output for every slice of the bank, count×H×W, in bank order. */
export function predict(net: Network, bank: SliceBank, batchSize = 4): Float32Array {
  const hw = bank.h * bank.w;
  const out = new Float32Array(bank.count * hw);
  const order = Array.from({ length: bank.count }, (_, i) => i);
  for (const idx of batchesOf(order, batchSize)) {
    const b = makeBatch(bank, idx);
    const y = tf.tidy(() => net.apply({ input: b.input, kspace: b.kspace }).out);
    out.set(y.dataSync() as Float32Array, idx[0] * hw);
    y.dispose();
    disposeBatch(b);
  }
  return out;
}

/** Split count×H×W slice data back into the bank's volumes. */
export function volumesOf(bank: SliceBank, data: Float32Array): Volume[] {
  const hw = bank.h * bank.w;
  const vols: Volume[] = [];
  let start = 0;
  for (let v = 0; v < bank.volumes; v++) {
    let end = start;
    while (end < bank.count && bank.volumeOf[end] === v) end++;
    vols.push({ data: data.slice(start * hw, end * hw), slices: end - start, h: bank.h, w: bank.w });
    start = end;
  }
  return vols;
}

export interface EvalResult {
  /** Per volume, with each slice's values (R = the volume maximum) for paired per-slice tests. */
  perVolume: (VolumeMetrics & { slices: VolumeMetrics[] })[];
  psnr: Summary;
  ssim: Summary;
  nmse: Summary;
}

/** Per-volume metrics of `pred` (count×H×W) against the bank's targets. */
export function evaluatePrediction(bank: SliceBank, pred: Float32Array): EvalResult {
  const gts = volumesOf(bank, bank.target);
  const preds = volumesOf(bank, pred);
  const perVolume = gts.map((gt, i) => ({
    ...volumeMetrics(gt, preds[i]),
    slices: perSliceMetrics(gt, preds[i]),
  }));
  return {
    perVolume,
    psnr: summarize(perVolume.map((m) => m.psnr)),
    ssim: summarize(perVolume.map((m) => m.ssim)),
    nmse: summarize(perVolume.map((m) => m.nmse)),
  };
}

/** SHA-256 of a bank's targets (count×H×W float32): the identity of the slices an evaluation scored. */
export function bankHash(bank: SliceBank): string {
  return hashArrays(
    `targets ${bank.count}x${bank.h}x${bank.w} volumes ${bank.volumes}`,
    bank.target,
    bank.volumeOf,
  );
}

export function metricRow(model: EvalKind, degradation: string, r: EvalResult): MetricRow {
  const { perVolume: _perVolume, ...figures } = evaluationFigures(r);
  return { model, degradation, ...figures };
}

/** The figures of an evaluation as the store records them (summary plus per-volume values). */
export function evaluationFigures(r: EvalResult) {
  return {
    psnr: r.psnr.mean,
    ssim: r.ssim.mean,
    nmse: r.nmse.mean,
    psnrStd2: r.psnr.twoStd,
    ssimStd2: r.ssim.twoStd,
    nmseStd2: r.nmse.twoStd,
    volumes: r.psnr.n,
    perVolume: r.perVolume,
  };
}
