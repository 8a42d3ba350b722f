/**
 * Inference with a saved model: load a model folder (TensorFlow.js weights + model card) and
 * reconstruct or restore a volume under the degradation the caller chooses (by default the one the
 * model was trained for).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CsParams, Degradation, ModelCard, NetworkSpec, Volume } from '../contract/domain.js';
import { csSlices } from '../recon/cs/index.js';
import { createNetwork, setNamedWeights, type Network } from '../networks/index.js';
import { decodeWeights } from '../networks/serialize.js';
import { buildSliceBank, type SliceBank } from './slice-bank.js';
import { predict, volumesOf } from './evaluate.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

export interface LoadedModel {
  net: Network;
  card: ModelCard;
  dir: string;
}

export interface ModelFolder {
  spec: NetworkSpec;
  /** PyTorch names → float32 values (convs HWIO). */
  weights: Map<string, Float32Array>;
  card: ModelCard;
  dir: string;
}

/**
 * Read and check `<dir>/model.json` and `<dir>/weights.bin` without building the network (no
 * TensorFlow.js backend needed); errors name the folder and what is wrong.
 */
export function readModelDir(dir: string): ModelFolder {
  const jsonPath = join(dir, MODEL_JSON);
  const binPath = join(dir, WEIGHTS_BIN);
  if (!existsSync(jsonPath)) throw new Error(`${dir}: not a model folder (no ${MODEL_JSON})`);
  if (!existsSync(binPath)) throw new Error(`${dir}: model folder has no ${WEIGHTS_BIN}`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`${jsonPath}: not valid JSON (${(e as Error).message})`);
  }
  const bin = readFileSync(binPath);
  const { spec, weights } = decodeWeights(
    json,
    bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer,
  );
  const card = (json as { card?: ModelCard }).card;
  if (!card || typeof card !== 'object') throw new Error(`${jsonPath}: model card missing`);
  return { spec, weights, card, dir };
}

/** Load a model folder as a network (see readModelDir). */
export function loadModelDir(dir: string): LoadedModel {
  const m = readModelDir(dir);
  const net = createNetwork(m.spec, 0);
  try {
    setNamedWeights(net, m.weights);
  } catch (err) {
    net.dispose();
    throw err;
  }
  return { net, card: m.card, dir };
}

export interface Reconstruction {
  bank: SliceBank;
  /** Degraded input (zero-filled or low-resolution), per slice normalised like the target. */
  input: Volume;
  target: Volume;
  output: Volume;
}

/** Reconstruct every slice of `vol` (normalised per slice, then degraded) with `net`. */
export function reconstructVolume(net: Network, vol: Volume, degradation: Degradation): Reconstruction {
  if (net.spec.arch === 'dccnn' && degradation.kind !== 'mask') {
    throw new Error('a DC-CNN reconstructs from an undersampling mask, not from a low-resolution input');
  }
  if (net.spec.arch === 'vdsr' && degradation.kind !== 'lowres') {
    throw new Error('a VDSR model restores a low-resolution input; give it a resolution factor, not a mask');
  }
  const bank = buildSliceBank([vol], degradation);
  const out = predict(net, bank);
  return {
    bank,
    input: volumesOf(bank, bank.input)[0],
    target: volumesOf(bank, bank.target)[0],
    output: volumesOf(bank, out)[0],
  };
}

/**
 * The ℓ1-wavelet compressed-sensing reconstruction of every slice of `vol` under a mask (the job's
 * CS baseline, recon/cs), in the same shape as reconstructVolume's.
 */
export function csReconstructVolume(vol: Volume, degradation: Degradation, params: CsParams): Reconstruction {
  if (degradation.kind !== 'mask')
    throw new Error('compressed sensing reconstructs from an undersampling mask');
  const bank = buildSliceBank([vol], degradation);
  const out = csSlices(bank.kre!, bank.kim!, bank.mask!, bank.count, bank.h, bank.w, params);
  return {
    bank,
    input: volumesOf(bank, bank.input)[0],
    target: volumesOf(bank, bank.target)[0],
    output: volumesOf(bank, out)[0],
  };
}

/**
 * A per-slice normalised image stack (the networks' [0, 1] scale: each slice divided by its own
 * maximum, slice-bank.ts) back in the scale of the volume it came from.
 */
export function inSourceScale(normalised: Volume, source: Volume): Volume {
  const hw = source.h * source.w;
  if (normalised.data.length !== source.data.length)
    throw new Error(
      `${normalised.slices} slices of ${normalised.h}×${normalised.w} do not match the source's`,
    );
  const data = new Float32Array(normalised.data.length);
  for (let s = 0; s < source.slices; s++) {
    let max = 0;
    for (let i = s * hw; i < (s + 1) * hw; i++) if (source.data[i] > max) max = source.data[i];
    for (let i = s * hw; i < (s + 1) * hw; i++) data[i] = normalised.data[i] * max;
  }
  return { ...normalised, data, spacing: source.spacing };
}
