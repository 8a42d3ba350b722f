/** Native menus. Page commands are sent to the renderer on the menu channel. */
import type { MenuItemConstructorOptions } from 'electron';
import { IPC, type MenuCommand } from './types.js';

export function menuTemplate(opts: {
  send(channel: string, cmd: MenuCommand): void;
  isMac: boolean;
  dev: boolean;
}): MenuItemConstructorOptions[] {
  const go = (cmd: MenuCommand) => () => opts.send(IPC.menu, cmd);
  return [
    ...(opts.isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: '&File',
      submenu: [
        { label: 'Import studies…', accelerator: 'CmdOrCtrl+O', click: go('import') },
        { type: 'separator' },
        opts.isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: '&View',
      submenu: [
        { label: 'Studies', accelerator: 'F1', click: go('studies') },
        { label: 'Distill', accelerator: 'F2', click: go('distill') },
        { label: 'Compare', accelerator: 'F3', click: go('compare') },
        { label: 'Runs and models', accelerator: 'F4', click: go('runs') },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
        ...(opts.dev ? [{ role: 'toggleDevTools' as const }] : []),
      ],
    },
    { role: 'windowMenu' },
    {
      label: '&Help',
      submenu: [{ label: 'About KD-MRI Workstation', role: 'about' }],
    },
  ];
}
