/**
 * The frozen teacher's outputs, per slice, computed once for a run instead of every epoch.
 *
 * In the attention and KD steps the teacher's weights are frozen, the mask is fixed and there is no
 * augmentation, so what the teacher produces for a slice never changes: its reconstruction (needed
 * by the KD loss when imitation is on) and its un-normalised attention maps Σ_c a_c² per cascade
 * (needed by the attention loss; the batch-wise normalisation is applied afterwards, per batch, so
 * caching is exact). The teacher runs once over the bank in fixed batches; the values are kept in
 * memory up to a budget, and beyond it in a scratch file read back by offset, deleted on dispose.
 *
 * Layout per slice, float32: [out (H·W) if wanted][energy of cascade 1 (H·W)]…[cascade nc] if wanted.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import type { Network } from '../networks/index.js';
import { batchesOf, disposeBatch, makeBatch, type Batch, type SliceBank } from './slice-bank.js';

/** Default memory budget for one cache; the rest spills to disk. KDMRI_TEACHER_CACHE_MB overrides it. */
export const DEFAULT_CACHE_BYTES = 1024 * 2 ** 20;

export function cacheBudget(env: NodeJS.ProcessEnv = process.env): number {
  const mb = Number(env.KDMRI_TEACHER_CACHE_MB);
  return Number.isFinite(mb) && mb >= 0 ? mb * 2 ** 20 : DEFAULT_CACHE_BYTES;
}

export interface TeacherBatch {
  /** The teacher's reconstruction [B,H,W,1], when the cache keeps it. */
  out: tf.Tensor4D | null;
  /** Un-normalised attention maps [B,H,W], one per paired layer, when the cache keeps them. */
  energy: tf.Tensor3D[] | null;
}

/**
 * One frozen-teacher pass computing only what a step reads, cached or not: the maps alone stop at the
 * teacher's last attention layer (attentionMaps); a reconstruction without maps computes no energies.
 * Unrequested parts are null; intermediate tensors are freed.
 */
export function teacherPass(
  teacher: Network,
  b: Batch,
  needs: { out: boolean; energy: boolean },
): TeacherBatch {
  const x = { input: b.input, kspace: b.kspace };
  const kept = tf.tidy((): tf.Tensor[] => {
    if (!needs.out) return needs.energy ? teacher.attentionMaps(x) : [];
    const r = teacher.apply({ ...x, attention: needs.energy });
    return [r.out, ...(needs.energy ? r.attention : [])];
  });
  const out = needs.out ? (kept.shift() as tf.Tensor4D) : null;
  return { out, energy: needs.energy ? (kept as tf.Tensor3D[]) : null };
}

export interface TeacherCacheOptions {
  out: boolean;
  energy: boolean;
  batchSize: number;
  budgetBytes?: number;
  /** Folder for the spill file (default: the OS temp folder). */
  dir?: string;
}

export class TeacherCache {
  private readonly hw: number;
  private readonly layers: number;
  private readonly perSlice: number;
  private readonly inMemory: number;
  private readonly memory: Float32Array;
  private fd: number | null = null;
  private readonly file: string | null = null;
  /** Teacher forward passes run to fill the cache (one per batch of the bank). */
  readonly teacherCalls: number;

  constructor(
    teacher: Network,
    private readonly bank: SliceBank,
    private readonly opts: TeacherCacheOptions,
  ) {
    this.hw = bank.h * bank.w;
    // the number of paired layers is what the teacher returns: learn it from its spec
    this.layers = opts.energy ? (teacher.spec.arch === 'dccnn' ? teacher.spec.nc : 1) : 0;
    this.perSlice = (opts.out ? this.hw : 0) + this.layers * this.hw;
    const budget = opts.budgetBytes ?? cacheBudget();
    this.inMemory = Math.min(bank.count, Math.floor(budget / Math.max(1, this.perSlice * 4)));
    this.memory = new Float32Array(this.inMemory * this.perSlice);
    if (this.inMemory < bank.count) {
      const dir = opts.dir ?? tmpdir();
      mkdirSync(dir, { recursive: true });
      this.file = join(dir, `teacher-cache-${process.pid}-${randomUUID()}.bin`);
      this.fd = openSync(this.file, 'w+', 0o600);
    }
    const order = Array.from({ length: bank.count }, (_, i) => i);
    let calls = 0;
    for (const idx of batchesOf(order, opts.batchSize)) {
      const b = makeBatch(bank, idx);
      const values = tf.tidy(() => {
        const o = teacherPass(teacher, b, opts);
        const parts: tf.Tensor[] = [];
        if (o.out) parts.push(tf.reshape(o.out, [idx.length, this.hw]));
        if (o.energy) {
          if (o.energy.length !== this.layers)
            throw new Error(`teacher returned ${o.energy.length} attention layers, expected ${this.layers}`);
          for (const e of o.energy) parts.push(tf.reshape(e, [idx.length, this.hw]));
        }
        return tf.concat(parts, 1);
      });
      const data = values.dataSync() as Float32Array;
      values.dispose();
      disposeBatch(b);
      calls++;
      idx.forEach((s, j) => this.put(s, data.subarray(j * this.perSlice, (j + 1) * this.perSlice)));
    }
    this.teacherCalls = calls;
  }

  /** Bytes held in memory and on disk. */
  get bytes(): { memory: number; disk: number } {
    return { memory: this.memory.byteLength, disk: (this.bank.count - this.inMemory) * this.perSlice * 4 };
  }

  private put(slice: number, values: Float32Array): void {
    if (slice < this.inMemory) {
      this.memory.set(values, slice * this.perSlice);
      return;
    }
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    writeSync(this.fd!, bytes, 0, bytes.length, (slice - this.inMemory) * this.perSlice * 4);
  }

  private read(slice: number, into: Float32Array, at: number): void {
    if (slice < this.inMemory) {
      into.set(this.memory.subarray(slice * this.perSlice, (slice + 1) * this.perSlice), at);
      return;
    }
    const view = new Uint8Array(into.buffer, into.byteOffset + at * 4, this.perSlice * 4);
    readSync(this.fd!, view, 0, view.length, (slice - this.inMemory) * this.perSlice * 4);
  }

  /** The cached outputs of these slices, as tensors (the caller disposes them). */
  get(indices: number[]): TeacherBatch {
    const B = indices.length;
    const { h, w } = this.bank;
    const all = new Float32Array(B * this.perSlice);
    indices.forEach((s, j) => this.read(s, all, j * this.perSlice));
    const t = tf.tensor2d(all, [B, this.perSlice]);
    const hw = this.hw;
    const part = (col: number, shape: number[]) =>
      tf.tidy(() => tf.reshape(tf.slice(t, [0, col], [B, hw]), shape));
    const out = this.opts.out ? (part(0, [B, h, w, 1]) as tf.Tensor4D) : null;
    const first = this.opts.out ? hw : 0;
    const energy = this.opts.energy
      ? Array.from({ length: this.layers }, (_, l) => part(first + l * hw, [B, h, w]) as tf.Tensor3D)
      : null;
    t.dispose();
    return { out, energy };
  }

  dispose(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    if (this.file) rmSync(this.file, { force: true });
  }
}

export function disposeTeacherBatch(t: TeacherBatch | null): void {
  if (!t) return;
  if (t.out) t.out.dispose();
  if (t.energy) tf.dispose(t.energy);
}
