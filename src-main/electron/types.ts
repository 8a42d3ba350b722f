/**
 * The part of Electron's main-process API the workstation uses. Every Electron module here receives it
 * as a parameter instead of importing 'electron' at top level, so unit tests can pass a fake.
 */
import type * as ElectronNs from 'electron';

export type ElectronMain = Pick<
  typeof ElectronNs,
  'app' | 'BrowserWindow' | 'ipcMain' | 'dialog' | 'Menu' | 'session' | 'shell' | 'safeStorage'
>;

/** IPC channel names shared by main.ts and preload.cts (kept as plain strings in the preload). */
export const IPC = {
  call: 'kdmri:call',
  event: 'kdmri:event',
  pickPaths: 'kdmri:pick-paths',
  menu: 'kdmri:menu',
} as const;

export type MenuCommand = 'studies' | 'distill' | 'compare' | 'runs' | 'import';
