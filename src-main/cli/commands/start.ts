/**
 * `kdmri start` (`npm start`): the desktop app in Electron when Electron and its binary are installed,
 * otherwise web mode (as `kdmri serve`), printing the URL and opening it on a desktop.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { serve } from './serve.js';
import { intArg } from '../options.js';

/** The Electron executable if the package and its downloaded binary are both present, else null. */
export function findElectronBinary(fromDir: string = process.cwd()): string | null {
  let pkg: string;
  try {
    pkg = createRequire(join(fromDir, 'noop.js')).resolve('electron/package.json');
  } catch {
    return null;
  }
  const dir = dirname(pkg);
  const pathTxt = join(dir, 'path.txt');
  if (!existsSync(pathTxt)) return null;
  const rel = readFileSync(pathTxt, 'utf8').trim();
  const bin = join(dir, 'dist', rel);
  return rel && existsSync(bin) ? bin : null;
}

function packageRoot(): string {
  const here = new URL('.', import.meta.url).pathname;
  // src-main/cli/commands or build/main/cli/commands
  return here.includes('/build/main/') ? resolve(here, '../../../..') : resolve(here, '../../..');
}

export function register(program: Command): void {
  program
    .command('start')
    .description('open the workstation: Electron when installed, else web mode in a browser')
    .option('--port <n>', 'web mode port (0: any free port)', intArg('--port', 0, 65535), 0)
    .option('--db <file>', 'library database')
    .option('--no-open', 'web mode: do not open a browser')
    .option('--web', 'web mode even when Electron is installed')
    .action(async (o: { port: number; db?: string; open: boolean; web?: boolean }) => {
      const root = packageRoot();
      const electron = o.web ? null : findElectronBinary(root);
      if (electron && existsSync(join(root, 'build/main/electron/main.js'))) {
        const child = spawn(electron, [root], {
          stdio: 'inherit',
          env: { ...process.env, ...(o.db ? { KDMRI_DB: o.db } : {}) },
        });
        await new Promise<void>((ok) => child.on('exit', () => ok()));
        return;
      }
      if (!o.web) process.stdout.write('Electron is not installed here: starting web mode.\n');
      await serve({ port: o.port, db: o.db, open: o.open });
    });
}
