/**
 * WebGPU for TensorFlow.js under Node (and Electron's main process), through Dawn (the `webgpu`
 * package, prebuilt `dawn.node`): NVIDIA, AMD and Intel GPUs without a CUDA install.
 *
 * Adapter search: Dawn's native backend first (Vulkan, Metal or D3D12); on Linux, if that finds
 * nothing, Dawn's OpenGL ES backend over EGL with no display (EGL_PLATFORM=surfaceless), requested at
 * the 'compatibility' feature level. On a machine without a GPU the latter finds Mesa's llvmpipe, a
 * software rasteriser: slower than our wasm path, so it is refused unless `allowSoftware` (tests use
 * it to run the GPU code path on CPU-only CI).
 *
 * tfjs-backend-webgpu requests its own adapter when the backend is created; we hand it the adapter we
 * chose by giving it a `navigator.gpu` whose requestAdapter returns that adapter. Node 20 has no
 * `navigator`, so it is defined before the backend package is imported (it checks at import time).
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  isSoftware: boolean;
}

export type WebGpuResult = { ok: true; adapter: AdapterInfo } | { ok: false; reason: string };

interface DawnModule {
  create(options: string[]): GPU;
  globals: object;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;

function describe(adapter: GPUAdapter): AdapterInfo {
  const info = adapter.info;
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  const type = (info as GPUAdapterInfo & { adapterType?: string }).adapterType;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description || info.device || text,
    isSoftware: SOFTWARE.test(text) || type === 'cpu',
  };
}

/**
 * Every Dawn instance we create, kept for the life of the process. An adapter does not keep its
 * instance's JS wrapper alive: once the garbage collector took it, Dawn's scheduled event processing ran
 * on a destroyed instance and aborted the process (seen here: std::system_error from a mutex in
 * dawn::native::InstanceBase::ProcessEvents, or glibc's mutex assertions).
 */
const instances: GPU[] = [];

async function findAdapter(dawn: DawnModule): Promise<GPUAdapter | null> {
  const first = dawn.create([]);
  instances.push(first);
  const native = await first.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (native) return native;
  if (process.platform !== 'linux') return null;
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const gles = dawn.create(['backend=opengles']);
  instances.push(gles);
  return gles.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions).catch(() => null);
}

/**
 * On Linux a hardware GPU shows up as a DRM render node or an NVIDIA device; without one, Dawn can only
 * find a software rasteriser (and prints driver warnings while looking), so we do not look.
 */
export function hasGpuDevice(): boolean {
  if (process.platform !== 'linux') return true;
  const dri = existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  return dri || existsSync('/dev/nvidia0');
}

let result: Promise<WebGpuResult> | null = null;

/** Bring the tfjs 'webgpu' backend up and make it current; never throws (idempotent). */
export function initWebGpu(opts: { allowSoftware: boolean }): Promise<WebGpuResult> {
  result ??= bringUp(opts.allowSoftware).catch((e: unknown) => ({
    ok: false as const,
    reason: `WebGPU failed to start (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`,
  }));
  return result;
}

async function bringUp(allowSoftware: boolean): Promise<WebGpuResult> {
  if (!allowSoftware && !hasGpuDevice()) {
    return { ok: false, reason: 'no GPU device on this machine (/dev/dri/renderD*, /dev/nvidia0)' };
  }
  // Dawn logs to XDG_RUNTIME_DIR-dependent places and warns without it.
  process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'kdmri-xdg-'));
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    return {
      ok: false,
      reason: `the optional webgpu (Dawn) package is not available (${(e as Error).message.split('\n')[0]})`,
    };
  }
  const adapter = await findAdapter(dawn);
  if (!adapter)
    return { ok: false, reason: 'no WebGPU adapter (Dawn found no Vulkan/Metal/D3D12 or OpenGL ES device)' };
  const info = describe(adapter);
  if (info.isSoftware && !allowSoftware) {
    return {
      ok: false,
      reason: `only a software adapter (${info.description}) is available, slower than wasm`,
    };
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = { requestAdapter: async () => adapter, getPreferredCanvasFormat: () => 'rgba8unorm' };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu')) || tf.getBackend() !== 'webgpu') {
    return { ok: false, reason: `the tfjs webgpu backend did not start on ${info.description}` };
  }
  return { ok: true, adapter: info };
}
