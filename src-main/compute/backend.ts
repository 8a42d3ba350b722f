/**
 * The one place that picks the TensorFlow.js backend, for training and inference alike.
 *
 * Order, fastest first: tfjs-node-gpu (CUDA) → tfjs-node (libtensorflow) → webgpu (Dawn, only on a
 * real hardware adapter) → wasm (with our kernels: fast convolutions and their gradients) → cpu.
 * tfjs-node and tfjs-node-gpu are optional: they download libtensorflow at install time, so a lab
 * installs them where it can (`npm install @tensorflow/tfjs-node-gpu`) and we load them dynamically.
 * A software WebGPU adapter (llvmpipe, lavapipe, SwiftShader) is slower than wasm, so it is skipped
 * for real work unless `allowSoftwareGpu` (tests use it to exercise the GPU code path on CPU).
 *
 * The choice, and why, is reported and stored with every run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BACKENDS, type BackendName } from '../contract/domain.js';
import { registerKdmriKernels } from './kernels/index.js';
import { setWasmBackend, wantedWasmThreads } from './wasm-threads.js';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  isSoftware: boolean;
}

export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  reason: string;
}

export interface BackendInfo {
  name: BackendName;
  /** The tfjs backend name actually set ('tensorflow', 'webgpu', 'wasm', 'cpu'). */
  tfBackend: string;
  adapter?: AdapterInfo;
  /** Compute threads of the wasm backend (XNNPACK's pool); absent for other backends. */
  threads?: number;
  /** Why this backend: the first that worked, or the one asked for. */
  reason: string;
  tried: BackendAttempt[];
}

export interface BackendOptions {
  /** Force this backend (the CLI's --backend); an error says why it is unavailable. */
  prefer?: BackendName;
  allowSoftwareGpu?: boolean;
}

type Outcome =
  | { ok: true; tfBackend: string; adapter?: AdapterInfo; threads?: number; note: string }
  | { ok: false; reason: string };

/** The shape of src-main/compute/webgpu.ts, imported lazily (it pulls in Dawn). */
interface WebGpuModule {
  initWebGpu(o: {
    allowSoftware: boolean;
  }): Promise<{ ok: true; adapter: AdapterInfo } | { ok: false; reason: string }>;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/** Dynamic import of a package that may not be installed, without the type checker resolving it. */
async function optionalImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

async function setTf(name: string): Promise<boolean> {
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function attempt(name: BackendName, allowSoftwareGpu: boolean): Promise<Outcome> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const pkg = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      if (!(await optionalImport(pkg)))
        return {
          ok: false,
          reason: `${pkg} is not installed (optional; it needs libtensorflow${name === 'tensorflow-gpu' ? ' and CUDA 11.2 + cuDNN 8.1' : ''})`,
        };
      if (!(await setTf('tensorflow')))
        return { ok: false, reason: `${pkg} is installed but its backend failed to initialise` };
      return { ok: true, tfBackend: 'tensorflow', note: `${pkg} loaded` };
    }
    case 'webgpu': {
      let mod: WebGpuModule;
      try {
        mod = (await import('./webgpu.js' as string)) as WebGpuModule;
      } catch (e) {
        return { ok: false, reason: `WebGPU support could not be loaded (${message(e)})` };
      }
      const r = await mod.initWebGpu({ allowSoftware: allowSoftwareGpu });
      if (!r.ok) return r;
      return {
        ok: true,
        tfBackend: 'webgpu',
        adapter: r.adapter,
        note: `WebGPU adapter ${r.adapter.description || r.adapter.vendor}`,
      };
    }
    case 'wasm': {
      const wanted = wantedWasmThreads();
      let threads: number;
      let fallback = '';
      try {
        threads = await setWasmBackend(wanted);
      } catch (e) {
        if (wanted <= 1)
          return { ok: false, reason: `the wasm backend failed to initialise (${message(e)})` };
        fallback = ` (${wanted} threads failed: ${message(e)})`;
        try {
          threads = await setWasmBackend(1);
        } catch (e2) {
          return { ok: false, reason: `the wasm backend failed to initialise (${message(e2)})` };
        }
      }
      return {
        ok: true,
        tfBackend: 'wasm',
        threads,
        note: `WebAssembly with SIMD, ${threads} XNNPACK thread${threads === 1 ? '' : 's'}${fallback}, and KD-MRI convolution-gradient kernels`,
      };
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await setTf('cpu'))) return { ok: false, reason: 'the cpu backend failed to initialise' };
      return { ok: true, tfBackend: 'cpu', note: 'plain JavaScript (slowest)' };
    }
  }
}

let current: Promise<BackendInfo> | null = null;
let currentKey = '';

/**
 * Pick and initialise the backend (idempotent for the same options). Throws only when `prefer`
 * names a backend that cannot run here, with the reason.
 */
export function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  const key = `${opts.prefer ?? ''}|${opts.allowSoftwareGpu ?? false}`;
  if (current && key === currentKey) return current;
  currentKey = key;
  current = choose(opts).catch((e) => {
    current = null;
    throw e;
  });
  return current;
}

async function choose(opts: BackendOptions): Promise<BackendInfo> {
  // Production mode: no tfjs console hints ("install tfjs-node…") and no debug-mode checks.
  tf.env().set('PROD', true);
  const order = opts.prefer ? [opts.prefer] : [...BACKENDS];
  const tried: BackendAttempt[] = [];
  for (const name of order) {
    const r = await attempt(name, opts.allowSoftwareGpu ?? false);
    if (!r.ok) {
      tried.push({ name, ok: false, reason: r.reason });
      continue;
    }
    await tf.ready();
    registerKdmriKernels();
    tried.push({ name, ok: true, reason: r.note });
    const skipped = tried.filter((t) => !t.ok).map((t) => `${t.name}: ${t.reason}`);
    return {
      name,
      tfBackend: r.tfBackend,
      adapter: r.adapter,
      threads: r.threads,
      reason: opts.prefer
        ? `${name} requested (${r.note})`
        : `${r.note}${skipped.length ? `; skipped ${skipped.join('; ')}` : ''}`,
      tried,
    };
  }
  const why = tried.map((t) => `${t.name}: ${t.reason}`).join('; ');
  throw new Error(
    opts.prefer
      ? `backend ${opts.prefer} is not available here: ${why}`
      : `no TensorFlow.js backend could start: ${why}`,
  );
}
