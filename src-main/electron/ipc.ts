/**
 * IPC wiring: one invoke channel carries every API operation (validated by the services with the
 * contract's zod schemas), one send channel streams ApiEvents to the window, and a native file picker
 * for imports. Calls from any frame other than the app's own page are refused.
 */
import type { IpcMainInvokeEvent } from 'electron';
import type { ApiResult } from '../contract/api.js';
import type { Services } from '../services/index.js';
import { isAppUrl } from './security.js';
import { IPC, type ElectronMain } from './types.js';

export interface IpcDeps {
  electron: Pick<ElectronMain, 'ipcMain' | 'dialog'>;
  services: Services;
  /** The window's webContents (events go there), or null while there is no window. */
  target(): { send(channel: string, ...args: unknown[]): void; isDestroyed(): boolean } | null;
}

function trusted(event: Pick<IpcMainInvokeEvent, 'senderFrame'>): boolean {
  const url = event.senderFrame?.url ?? '';
  return isAppUrl(url) && !url.startsWith('data:') && !url.startsWith('blob:');
}

/** Returns an unwire function (removes handlers and the event subscription). */
export function wireIpc({ electron, services, target }: IpcDeps): () => void {
  const { ipcMain, dialog } = electron;
  ipcMain.handle(IPC.call, async (event, op: unknown, body: unknown): Promise<ApiResult<unknown>> => {
    if (!trusted(event))
      return { ok: false, error: { code: 'unauthorized', message: 'call from an untrusted frame' } };
    if (typeof op !== 'string')
      return { ok: false, error: { code: 'bad-request', message: 'op: expected a string', where: 'op' } };
    return services.call(op, body);
  });
  ipcMain.handle(IPC.pickPaths, async (event): Promise<string[]> => {
    if (!trusted(event)) return [];
    const r = await dialog.showOpenDialog({
      title: 'Import studies',
      properties: ['openFile', 'openDirectory', 'multiSelections'],
      filters: [
        { name: 'MRI data', extensions: ['dcm', 'nii', 'gz', 'h5', 'hdf5'] },
        { name: 'All files', extensions: ['*'] },
      ],
    });
    return r.canceled ? [] : r.filePaths;
  });
  const unsubscribe = services.subscribe((e) => {
    const t = target();
    if (t && !t.isDestroyed()) t.send(IPC.event, e);
  });
  return () => {
    ipcMain.removeHandler(IPC.call);
    ipcMain.removeHandler(IPC.pickPaths);
    unsubscribe();
  };
}
