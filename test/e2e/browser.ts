/**
 * What the end-to-end tests share: the built renderer (built with vite's API when missing or older
 * than its sources), Debian's Chromium driven by playwright-core with no network beyond the loopback
 * server, and the one reason to skip (that Chromium is not installed).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RENDERER_DIR = join(ROOT, 'build', 'renderer');
export const CHROMIUM = '/usr/bin/chromium';
/** The one reason to skip: the system browser these tests drive is not installed. */
export const chromiumSkip: string | false = existsSync(CHROMIUM)
  ? false
  : `Debian's chromium (${CHROMIUM}) is not installed`;

/** Newest modification time under a folder (files only). */
function newest(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

export async function ensureRenderer(): Promise<void> {
  const index = join(RENDERER_DIR, 'index.html');
  const sources = Math.max(newest(join(ROOT, 'src-renderer')), newest(join(ROOT, 'src-main', 'contract')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'src-renderer', 'vite.config.ts'), logLevel: 'error' });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      // no network beyond the loopback server
      '--no-proxy-server',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--disable-domain-reliability',
      '--disable-client-side-phishing-detection',
      '--metrics-recording-only',
      '--no-first-run',
      '--no-pings',
    ],
  });
}
