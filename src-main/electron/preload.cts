/**
 * Preload (sandboxed, CommonJS): exposes `window.kdmri`, the typed bridge of the API contract, over
 * ipcRenderer.invoke, plus event and menu subscriptions. Nothing else of Node or Electron reaches
 * the page. Sandboxed preloads cannot load our own modules, so channel names are repeated here
 * (checked against types.ts by test/electron/wiring.test.ts).
 */
import type { ApiEvent, ApiResult, KdmriBridge, OpName } from '../contract/api.js';
import type { IpcRendererEvent } from 'electron';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { contextBridge, ipcRenderer, webUtils } = require('electron') as typeof import('electron');

export const CHANNELS = {
  call: 'kdmri:call',
  event: 'kdmri:event',
  pickPaths: 'kdmri:pick-paths',
  menu: 'kdmri:menu',
} as const;

export type PreloadBridge = ReturnType<typeof makeBridge>;

export function makeBridge(
  ipc: Pick<typeof ipcRenderer, 'invoke' | 'on' | 'removeListener'>,
  utils?: Pick<typeof webUtils, 'getPathForFile'>,
): KdmriBridge & {
  onMenu(listener: (cmd: string) => void): () => void;
} {
  return {
    pathForFile: (file: File) => (utils ? utils.getPathForFile(file) : ''),
    call: (op: OpName, body: unknown) => ipc.invoke(CHANNELS.call, op, body) as Promise<ApiResult<unknown>>,
    onEvent(listener: (e: ApiEvent) => void) {
      const h = (_e: IpcRendererEvent, ev: ApiEvent) => listener(ev);
      ipc.on(CHANNELS.event, h);
      return () => void ipc.removeListener(CHANNELS.event, h);
    },
    pickPaths: () => ipc.invoke(CHANNELS.pickPaths) as Promise<string[]>,
    onMenu(listener: (cmd: string) => void) {
      const h = (_e: IpcRendererEvent, cmd: string) => listener(cmd);
      ipc.on(CHANNELS.menu, h);
      return () => void ipc.removeListener(CHANNELS.menu, h);
    },
  };
}

if (contextBridge && process.contextIsolated)
  contextBridge.exposeInMainWorld('kdmri', makeBridge(ipcRenderer, webUtils));
