/**
 * Electron entry (package.json "main": build/main/electron/main.js). The only file that imports
 * 'electron' itself; everything else receives the API as a parameter.
 */
import electron from 'electron';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { defaultPaths, startElectronApp } from './app.js';

const here = dirname(fileURLToPath(import.meta.url));
startElectronApp(electron, defaultPaths(here)).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  if (message !== 'another instance is running') {
    electron.dialog.showErrorBox('KD-MRI Workstation', `Could not start: ${message}`);
    electron.app.exit(1);
  }
});
