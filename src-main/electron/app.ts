/**
 * The Electron main process, as a function of the Electron API (so tests can drive it with a fake):
 * one hardened window on the built renderer, the services on the library home the CLI and web mode
 * share (store/home.ts; an older library under userData is moved there once), IPC wiring,
 * native menus, the bundled sample on first start. Training runs in worker threads (the services'
 * distillation jobs), so the window never freezes.
 */
import { join } from 'node:path';
import { createServices, type Services } from '../services/index.js';
import { ensureSample } from '../services/first-start.js';
import { desktopLibrary } from '../services/paths.js';
import { wireIpc } from './ipc.js';
import { desktopSecretStore } from './secrets.js';
import { menuTemplate } from './menu.js';
import { guardWebContents, hardenSession, secureWindowOptions } from './security.js';
import type { ElectronMain, MenuCommand } from './types.js';
import type { BrowserWindow } from 'electron';
// keeps preload.cts in the compilation, so the build emits preload.cjs next to main.js
export type { PreloadBridge } from './preload.cjs';

export interface AppPaths {
  /** build/renderer/index.html */
  indexHtml: string;
  /** build/main/electron/preload.cjs */
  preload: string;
}

export interface RunningApp {
  services: Services;
  window(): BrowserWindow | null;
}

export function defaultPaths(mainDir: string): AppPaths {
  return {
    indexHtml: join(mainDir, '..', '..', 'renderer', 'index.html'),
    preload: join(mainDir, 'preload.cjs'),
  };
}

export async function startElectronApp(
  electron: ElectronMain,
  paths: AppPaths,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningApp> {
  const { app, BrowserWindow, Menu, session } = electron;
  // one instance: a second launch focuses the first window
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    throw new Error('another instance is running');
  }
  app.on('web-contents-created', (_e, contents) => guardWebContents(contents));
  await app.whenReady();

  // the library home the CLI and web mode share (an older userData library is moved there once)
  const library = desktopLibrary(env, app.getPath('userData'));
  let win: BrowserWindow | null = null;
  const services = createServices({
    dbPath: library.dbPath,
    dataDir: library.dataDir,
    mode: 'electron',
    version: app.getVersion(),
    // PACS passwords and tokens: encrypted by the OS keyring (read lazily: only when a node needs one)
    secrets: desktopSecretStore(library.dataDir, () => electron.safeStorage),
    // downloads of exports: a native save dialog, in the user's Downloads folder by default
    saveAs: async ({ name }) => {
      const options = { title: 'Save export', defaultPath: join(app.getPath('downloads'), name) };
      const r = win
        ? await electron.dialog.showSaveDialog(win, options)
        : await electron.dialog.showSaveDialog(options);
      return r.canceled || !r.filePath ? null : r.filePath;
    },
  });
  // the work threads load their modules now, not on the first import or Compare
  void services.warmUp();
  hardenSession(session.defaultSession);

  const send = (channel: string, cmd: MenuCommand) => win?.webContents.send(channel, cmd);
  Menu.setApplicationMenu(
    Menu.buildFromTemplate(
      menuTemplate({ send, isMac: process.platform === 'darwin', dev: !app.isPackaged }),
    ),
  );
  const unwire = wireIpc({ electron, services, target: () => win?.webContents ?? null });

  const createWindow = () => {
    win = new BrowserWindow(secureWindowOptions(paths.preload));
    win.once('ready-to-show', () => win?.show());
    win.on('closed', () => (win = null));
    void win.loadFile(paths.indexHtml);
  };
  createWindow();
  if (library.notice) {
    process.stdout.write(`${library.notice}\n`);
    void electron.dialog.showMessageBox({
      type: 'info',
      title: 'KD-MRI Workstation library',
      message: library.notice,
    });
  }
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  let closing = false;
  app.on('before-quit', (e) => {
    if (closing) return;
    closing = true;
    e.preventDefault();
    unwire();
    void services.close().finally(() => app.quit());
  });
  void ensureSample(services);
  return { services, window: () => win };
}
