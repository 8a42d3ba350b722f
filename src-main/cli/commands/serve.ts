/**
 * `kdmri serve [--port N] [--db FILE] [--data-dir DIR] [--no-open]`: web mode. Serves the workstation
 * on 127.0.0.1 and prints a one-time login link (usable once, for five minutes; Enter in the terminal
 * prints a new one); opens a browser on a desktop. The link carries a code, never the access token,
 * so the browser's command line gives nothing away once the code is used.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createServices } from '../../services/index.js';
import { libraryPaths } from '../../services/paths.js';
import { ensureSample } from '../../services/first-start.js';
import { startServer } from '../../server/server.js';
import { intArg } from '../options.js';

export interface ServeOptions {
  port: number;
  db?: string;
  dataDir?: string;
  open: boolean;
}

/** Run web mode until SIGINT/SIGTERM. */
export async function serve(o: ServeOptions): Promise<void> {
  const paths = libraryPaths({ db: o.db });
  const dataDir = o.dataDir ? resolve(o.dataDir) : paths.dataDir;
  const dbPath = paths.dbPath;
  const services = createServices({ dbPath, dataDir, mode: 'web' });
  const server = await startServer({ services, port: o.port });
  process.stdout.write(`KD-MRI Workstation (web mode) at http://127.0.0.1:${server.port}/\n`);
  process.stdout.write(`open (once, within 5 minutes): ${server.url}\n`);
  process.stdout.write(
    `library: ${dbPath}\nPress Ctrl+C to stop${process.stdin.isTTY ? ', Enter for a new login link' : ''}.\n`,
  );
  const onLine = () => process.stdout.write(`open (once, within 5 minutes): ${server.newLink()}\n`);
  if (process.stdin.isTTY) process.stdin.on('data', onLine);
  void ensureSample(services, (l) => process.stdout.write(`${l}\n`));
  // the work threads load their modules now, not on the first import or Compare
  void services.warmUp();
  if (o.open && process.env.DISPLAY && !process.env.CI) {
    // its own one-time link: the printed one stays usable; either is worthless once used
    const child = spawn('xdg-open', [server.newLink()], { stdio: 'ignore', detached: true });
    child.on('error', () => process.stdout.write('(could not open a browser: open the URL above)\n'));
    child.unref();
  }
  await new Promise<void>((ok) => {
    const stop = () => ok();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('stopping…\n');
  process.stdin.off('data', onLine);
  process.stdin.pause();
  await server.close();
  await services.close();
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the workstation to a browser on 127.0.0.1 (web mode)')
    .option('--port <n>', 'port (0: any free port)', intArg('--port', 0, 65535), 0)
    .option('--db <file>', 'library database (default: $KDMRI_HOME/kdmri.db, else ~/.kdmri/kdmri.db)')
    .option('--data-dir <dir>', 'folder for models and exports (default: $KDMRI_HOME)')
    .option('--no-open', 'do not open a browser')
    .action(async (o: ServeOptions) => serve(o));
}
