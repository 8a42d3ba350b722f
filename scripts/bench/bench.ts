/**
 * `npm run bench [-- --size 256 --batch 4 --steps 3 --backend wasm --json --no-pytorch --no-onnx --profile
 *   --no-teacher-cache | --only-teacher-cache]`
 * `npm run bench -- --sweep [--steps 2] [--sizes 128,256,384] [--batches 1,4,8]`: ours and PyTorch at each
 * point (size × batch), one table of slices/s, ms/slice and GFLOP/s with the ratios.
 *
 * Training steps (forward, data consistency, backward, Adam; L1 against a target) and inference of
 * the KD-MRI teacher and student on the backend the engine picks, then the same networks in PyTorch
 * (scripts/bench/pytorch_bench.py, Debian python3-torch, 2 threads) in the same run, with ratios
 * ours / PyTorch, the same networks exported to ONNX in ONNX Runtime (onnx-bench.ts), and the
 * attention and KD epochs with and without the teacher cache (teacher-cache-bench.ts). A
 * benchmark, not a test: it reports and never fails on speed.
 *
 * Conventions: slices/s from the median warm step (the first step is reported separately as
 * time to first step); GFLOP/s counts convolution FLOPs only (2 per multiply-add), a training step
 * as 3× the forward (forward, input gradient, filter gradient); peak RSS is the process maximum.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src-main/compute/backend.js';
import { BACKENDS, PRESET_NETWORKS, type BackendName } from '../../src-main/contract/domain.js';
import { convFlopsPerSlice, createNetwork } from '../../src-main/networks/index.js';
import { l1 } from '../../src-main/distill/losses.js';
import { measureLatency } from '../../src-main/distill/compactness.js';
import { table } from '../../src-main/cli/output.js';
import { choiceArg, intArg } from '../../src-main/cli/options.js';
import { benchOnnx } from './onnx-bench.js';
import { benchTeacherCache, teacherCacheText } from './teacher-cache-bench.js';
import { profileStep, type StepProfile } from './profile.js';

interface Figures {
  train_slices_per_s: number;
  infer_slices_per_s: number;
  infer_ms_per_slice_warm: number;
  infer_ms_per_slice_cold?: number;
  gflops_train?: number;
  first_step_ms: number;
}

function intList(name: string, min: number, max: number): (v: string) => number[] {
  const one = intArg(name, min, max);
  return (v) => v.split(',').map((x) => one(x.trim()));
}

const o = new Command('bench')
  .option('--size <n>', 'image size', intArg('--size', 16, 1024), 256)
  .option('--batch <n>', 'batch size', intArg('--batch', 1, 64), 4)
  .option('--steps <n>', 'training steps per network (first one is warm-up)', intArg('--steps', 2, 100), 3)
  .option('--backend <name>', 'force a backend', choiceArg('--backend', BACKENDS))
  .option('--no-pytorch', 'skip the PyTorch comparison')
  .option('--no-onnx', 'skip the ONNX Runtime comparison')
  .option('--no-teacher-cache', 'skip the teacher-cache section')
  .option('--only-teacher-cache', 'run the teacher-cache section only', false)
  .option('--json', 'one JSON object', false)
  .option('--profile', 'also time every kernel of one warm teacher training step (tf.profile)', false)
  .option(
    '--sweep',
    'sizes 128/256/384 × batch 1/4/8 (--size and --batch ignored): ours and PyTorch per point, one table',
    false,
  )
  .option(
    '--sizes <list>',
    'with --sweep: image sizes, comma-separated',
    intList('--sizes', 16, 1024),
    [128, 256, 384],
  )
  .option(
    '--batches <list>',
    'with --sweep: batch sizes, comma-separated',
    intList('--batches', 1, 64),
    [1, 4, 8],
  )
  .parse(process.argv)
  .opts<{
    size: number;
    batch: number;
    steps: number;
    backend?: BackendName;
    pytorch: boolean;
    onnx: boolean;
    teacherCache: boolean;
    onlyTeacherCache: boolean;
    json: boolean;
    profile: boolean;
    sweep: boolean;
    sizes: number[];
    batches: number[];
  }>();

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const log = (s: string) => !o.json && process.stderr.write(`${s}\n`);

const t0 = performance.now();
const info = await initBackend({ prefer: o.backend });
log(`backend ${info.name}: ${info.reason}`);
let firstStepMs = NaN;

if (o.onlyTeacherCache) {
  const f = await benchTeacherCache(o.size, o.batch, log);
  if (o.json) process.stdout.write(`${JSON.stringify({ backend: info.name, teacher_cache: f }, null, 2)}\n`);
  else process.stdout.write(`backend ${info.name}\n${teacherCacheText(f, table)}`);
  process.exit(0);
}

// set by run() (the cast keeps TypeScript from narrowing it to null at the top level)
let profile = null as StepProfile | null;

/**
 * Whether a training step fits wasm32's 4 GB memory: the peak holds about nc·(nd−1) + 6 activations
 * of [b, n, n, 32] float32 (measured on the teacher: 26), and past 4 GB the wasm module aborts.
 */
function trainingFits(key: 'dccnnTeacher' | 'dccnnStudent', n: number, b: number): boolean {
  const spec = PRESET_NETWORKS[key];
  return b * n * n * 32 * 4 * (spec.nc * (spec.nd - 1) + 6) < 3.5 * 2 ** 30;
}

async function run(
  key: 'dccnnTeacher' | 'dccnnStudent',
  n = o.size,
  b = o.batch,
  train = true,
): Promise<Figures> {
  const spec = PRESET_NETWORKS[key];
  const net = createNetwork(spec, 42);
  const opt = tf.train.adam(1e-3);
  const input = tf.randomUniform([b, n, n, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const target = tf.randomUniform([b, n, n, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
  const kspace = {
    re: tf.zeros([b, n, n]) as tf.Tensor3D,
    im: tf.zeros([b, n, n]) as tf.Tensor3D,
    mask: tf.zeros([n, n]) as tf.Tensor2D,
  };
  const steps: number[] = [];
  for (let i = 0; i < (train ? o.steps : 0); i++) {
    const t = performance.now();
    const loss = opt.minimize(
      () => l1(net.apply({ input, kspace, attention: false }).out, target),
      true,
      net.variables,
    )!;
    loss.dataSync();
    loss.dispose();
    steps.push(performance.now() - t);
    if (Number.isNaN(firstStepMs)) firstStepMs = performance.now() - t0;
    log(`${key} train step ${i + 1}: ${steps[i].toFixed(0)} ms`);
  }
  if (o.profile && key === 'dccnnTeacher') {
    profile = await profileStep(() => {
      const loss = opt.minimize(
        () => l1(net.apply({ input, kspace, attention: false }).out, target),
        true,
        net.variables,
      )!;
      loss.dataSync();
      loss.dispose();
    });
  }
  const infer = () => {
    const t = performance.now();
    const y = tf.tidy(() => net.apply({ input, kspace }).out);
    y.dataSync();
    y.dispose();
    return performance.now() - t;
  };
  infer();
  const inferMs = median([infer(), infer(), infer()]);
  const lat = measureLatency(net, n, 3);
  const warm = train ? median(steps.slice(1)) : NaN;
  const trainRate = b / (warm / 1000);
  tf.dispose([input, target, kspace.re, kspace.im, kspace.mask]);
  opt.dispose();
  net.dispose();
  return {
    train_slices_per_s: trainRate,
    infer_slices_per_s: b / (inferMs / 1000),
    infer_ms_per_slice_warm: lat.warm,
    infer_ms_per_slice_cold: lat.cold,
    gflops_train: (3 * convFlopsPerSlice(spec, n, n) * trainRate) / 1e9,
    first_step_ms: steps[0] ?? NaN,
  };
}

type TorchResult = { teacher: Figures; student: Figures; torch: string; threads: number };
const script = fileURLToPath(new URL('./pytorch_bench.py', import.meta.url));

/** The same networks in PyTorch at this size and batch, or why not. */
function runPytorch(n: number, b: number): TorchResult | string {
  if (!o.pytorch) return 'skipped (--no-pytorch)';
  if (!existsSync('/usr/bin/python3')) return '/usr/bin/python3 not found';
  log(`PyTorch: same networks, ${n}×${n}, batch ${b}, ${info.threads ?? 2} threads…`);
  const r = spawnSync(
    '/usr/bin/python3',
    [
      script,
      ...['--size', String(n), '--batch', String(b), '--steps', String(o.steps)],
      ...['--threads', String(info.threads ?? 2)],
    ],
    { encoding: 'utf8', timeout: 1_800_000 },
  );
  if (r.status === 0) return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TorchResult;
  return /No module named 'torch'/.test(r.stderr)
    ? 'python3-torch is not installed'
    : `pytorch_bench.py failed: ${r.stderr.trim().split('\n').at(-1)}`;
}

if (o.sweep) {
  // How cost grows with the work: every point runs ours, then PyTorch, before the next point.
  const rows: string[][] = [];
  const points: unknown[] = [];
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const skipped: string[] = [];
  for (const n of o.sizes)
    for (const b of o.batches) {
      const fits = (key: 'dccnnTeacher' | 'dccnnStudent') => {
        const ok = trainingFits(key, n, b);
        if (!ok) skipped.push(`${key} training at ${n}×${n}, batch ${b} (over wasm32's 4 GB)`);
        return ok;
      };
      const ours = {
        teacher: await run('dccnnTeacher', n, b, fits('dccnnTeacher')),
        student: await run('dccnnStudent', n, b, fits('dccnnStudent')),
      };
      const torch = runPytorch(n, b);
      const t = typeof torch === 'string' ? null : torch;
      points.push({ size: n, batch: b, ours, pytorch: torch });
      for (const key of ['teacher', 'student'] as const) {
        const a = ours[key];
        const p = t?.[key];
        const spec = PRESET_NETWORKS[key === 'teacher' ? 'dccnnTeacher' : 'dccnnStudent'];
        const inferGflops = (convFlopsPerSlice(spec, n, n) * a.infer_slices_per_s) / 1e9;
        rows.push([
          String(n),
          String(b),
          key,
          f(a.train_slices_per_s, 3),
          f(1000 / a.train_slices_per_s, 0),
          f(a.gflops_train ?? NaN, 1),
          p ? f(a.train_slices_per_s / p.train_slices_per_s) : '-',
          f(a.infer_slices_per_s),
          f(1000 / a.infer_slices_per_s, 1),
          f(inferGflops, 1),
          p ? f(a.infer_slices_per_s / p.infer_slices_per_s) : '-',
        ]);
      }
    }
  const peak = process.resourceUsage().maxRSS / 1024;
  if (o.json)
    process.stdout.write(
      `${JSON.stringify({ backend: info.name, threads: info.threads, points, peak_rss_mb: peak }, null, 2)}\n`,
    );
  else
    process.stdout.write(
      `backend ${info.name}, ${info.threads ?? 1} threads; PyTorch with the same threads; median warm steps; ` +
        `ours / PyTorch > 1 = ours faster; peak RSS ${peak.toFixed(0)} MB\n\n` +
        `${table([
          [
            'size',
            'batch',
            'network',
            'train sl/s',
            'ms/sl',
            'GFLOP/s',
            '×torch',
            'infer sl/s',
            'ms/sl',
            'GFLOP/s',
            '×torch',
          ],
          ...rows,
        ])}\n` +
        (skipped.length ? `\nnot run: ${skipped.join('; ')}\n` : ''),
    );
  process.exit(0);
}

const teacher = await run('dccnnTeacher');
const student = await run('dccnnStudent');
const peakRssMb = process.resourceUsage().maxRSS / 1024;

// ---- ONNX Runtime (exports issue) ------------------------------------------------------------------
// The exported ONNX graphs in onnxruntime-node beside our inference (scripts/bench/onnx-bench.ts).
let onnx: Awaited<ReturnType<typeof benchOnnx>> | null = null;
let onnxUnavailable: string | null = null;
if (!o.onnx) onnxUnavailable = 'skipped (--no-onnx)';
else {
  try {
    log('ONNX Runtime: the exported teacher and student, 2 threads…');
    onnx = await benchOnnx(o.size, o.batch, log);
  } catch (e) {
    onnxUnavailable = `ONNX Runtime failed: ${e instanceof Error ? e.message : String(e)}`;
  }
}
const onnxRatios = onnx
  ? {
      teacher_infer: teacher.infer_slices_per_s / onnx.teacher.infer_slices_per_s,
      student_infer: student.infer_slices_per_s / onnx.student.infer_slices_per_s,
      student_latency: onnx.student.infer_ms_per_slice_warm / student.infer_ms_per_slice_warm,
    }
  : null;
// ---- end ONNX Runtime -------------------------------------------------------------------------------

const torchRun = runPytorch(o.size, o.batch);
const pytorch = typeof torchRun === 'string' ? null : torchRun;
const pytorchUnavailable = typeof torchRun === 'string' ? torchRun : null;

// ---- teacher cache (results issue) ----
let teacherCache: Awaited<ReturnType<typeof benchTeacherCache>> | null = null;
if (o.teacherCache) {
  log('Teacher cache: attention and KD epochs, teacher recomputed vs cached…');
  teacherCache = await benchTeacherCache(o.size, o.batch, log);
}
// ---- end teacher cache ----

const ratio = (a: number, b: number) => a / b;
const ratios = pytorch
  ? {
      teacher_train: ratio(teacher.train_slices_per_s, pytorch.teacher.train_slices_per_s),
      teacher_infer: ratio(teacher.infer_slices_per_s, pytorch.teacher.infer_slices_per_s),
      student_train: ratio(student.train_slices_per_s, pytorch.student.train_slices_per_s),
      student_infer: ratio(student.infer_slices_per_s, pytorch.student.infer_slices_per_s),
      student_latency: ratio(pytorch.student.infer_ms_per_slice_warm, student.infer_ms_per_slice_warm),
      teacher_latency: ratio(pytorch.teacher.infer_ms_per_slice_warm, teacher.infer_ms_per_slice_warm),
    }
  : null;

const result = {
  backend: info.name,
  size: o.size,
  batch: o.batch,
  teacher,
  student,
  peak_rss_mb: peakRssMb,
  first_step_ms: firstStepMs,
  ...(info.threads ? { threads: info.threads } : {}),
  pytorch,
  ratios,
  ...(profile ? { profile } : {}),
  ...(pytorchUnavailable ? { pytorch_unavailable: pytorchUnavailable } : {}),
  // ONNX Runtime (exports issue): ours / ONNX Runtime, >1 means ours is faster
  onnx,
  onnx_ratios: onnxRatios,
  ...(onnxUnavailable ? { onnx_unavailable: onnxUnavailable } : {}),
  teacher_cache: teacherCache,
};

if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const f = (x: number | undefined, d = 2) => (x === undefined ? '-' : x.toFixed(d));
  const row = (name: string, a: Figures, p?: Figures) => [
    name,
    f(a.train_slices_per_s, 3),
    p ? f(p.train_slices_per_s, 3) : '-',
    f(a.infer_slices_per_s),
    p ? f(p.infer_slices_per_s) : '-',
    f(a.infer_ms_per_slice_warm, 1),
    p ? f(p.infer_ms_per_slice_warm, 1) : '-',
    f(a.gflops_train, 1),
  ];
  process.stdout.write(
    `${o.size}×${o.size}, batch ${o.batch}, backend ${info.name}; peak RSS ${peakRssMb.toFixed(0)} MB; first step after ${(firstStepMs / 1000).toFixed(1)} s\n\n` +
      `${table([
        ['network', 'train sl/s', 'torch', 'infer sl/s', 'torch', 'ms/slice', 'torch', 'train GFLOP/s'],
        row('teacher', teacher, pytorch?.teacher),
        row('student', student, pytorch?.student),
      ])}\n` +
      (ratios
        ? `\nours / PyTorch: teacher train ${ratios.teacher_train.toFixed(2)}, student train ${ratios.student_train.toFixed(2)}, ` +
          `teacher infer ${ratios.teacher_infer.toFixed(2)}, student infer ${ratios.student_infer.toFixed(2)}, ` +
          `batch-1 latency teacher ${ratios.teacher_latency.toFixed(2)}, student ${ratios.student_latency.toFixed(2)}\n`
        : `\nPyTorch comparison unavailable: ${pytorchUnavailable}\n`),
  );
  // ---- ONNX Runtime (exports issue) ----
  process.stdout.write(
    onnx && onnxRatios
      ? `\nInference, ours beside ONNX Runtime (${onnx.runtime}, the exported ONNX files, 2 threads):\n\n` +
          `${table([
            ['network', 'infer sl/s', 'ONNX RT', 'ms/slice', 'ONNX RT', 'ours / ONNX RT (sl/s)'],
            ...(
              [
                ['teacher', teacher, onnx.teacher, onnxRatios.teacher_infer],
                ['student', student, onnx.student, onnxRatios.student_infer],
              ] as const
            ).map(([name, a, x, r]) => [
              name,
              f(a.infer_slices_per_s),
              f(x.infer_slices_per_s),
              f(a.infer_ms_per_slice_warm, 1),
              f(x.infer_ms_per_slice_warm, 1),
              f(r),
            ]),
          ])}\n`
      : `\nONNX Runtime comparison unavailable: ${onnxUnavailable}\n`,
  );
  // ---- end ONNX Runtime ----
  if (teacherCache) process.stdout.write(teacherCacheText(teacherCache, table));
  if (profile) {
    const p = profile;
    process.stdout.write(
      `\nOne warm teacher training step, by kernel (tf.profile: ${(p.step_ms / 1000).toFixed(1)} s, peak tensors ${p.peak_tensor_mb.toFixed(0)} MB):\n\n` +
        `${table([
          ['kernel', 'calls', 'ms', 'share'],
          ...p.kernels
            .slice(0, 12)
            .map((k) => [
              k.kernel,
              String(k.calls),
              k.ms.toFixed(0),
              `${((100 * k.ms) / p.step_ms).toFixed(0)} %`,
            ]),
        ])}\n`,
    );
  }
}
