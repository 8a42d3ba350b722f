#!/usr/bin/env node
// Launcher for the `kdmri` command line: runs the compiled CLI (built by `npm ci` through `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../build/main/cli/entry.js', import.meta.url));
if (!existsSync(built)) {
  console.error('kdmri: the CLI is not built yet; run `npm run build` (npm ci does it for you).');
  process.exit(2);
}
await import(pathToFileURL(built).href);
