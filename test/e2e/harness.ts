/**
 * The end-to-end tests' workstation: web mode started in-process on a temporary KDMRI_HOME, the
 * renderer built when its sources are newer than the build, and Debian's Chromium driven by
 * playwright-core, opened through the one-time login link. The one reason to skip: the system
 * browser is not installed.
 */
import { test } from 'node:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServices, type Services } from '../../src-main/services/index.js';
import { startServer, type RunningServer } from '../../src-main/server/server.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Where the README's page screenshots go: resources/screenshots only when asked
 * (KDMRI_README_SHOTS=1 npm test -- test/e2e/…), so that a test run leaves the checkout clean.
 */
export const readmeShots =
  process.env.KDMRI_README_SHOTS === '1'
    ? join(root, 'resources', 'screenshots')
    : join(root, 'test-artifacts', 'readme-screenshots');
mkdirSync(readmeShots, { recursive: true });
const rendererDir = join(root, 'build', 'renderer');
export const CHROMIUM = '/usr/bin/chromium';
/** The one reason to skip: the system browser these tests drive is not installed. */
export const skip = existsSync(CHROMIUM) ? false : `Debian's chromium (${CHROMIUM}) is not installed`;
/** A step of an end-to-end run (each needs Chromium). */
export const e2e = (name: string, fn: () => Promise<void>) => test(name, { skip }, fn);

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

/** Build the renderer with vite's API when build/renderer is missing or older than its sources. */
async function ensureRenderer(): Promise<void> {
  const index = join(rendererDir, 'index.html');
  const sources = Math.max(newest(join(root, 'src-renderer')), newest(join(root, 'src-main', 'contract')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const { build } = await import('vite');
  await build({ configFile: join(root, 'src-renderer', 'vite.config.ts'), logLevel: 'error' });
}

export interface Workstation {
  home: string;
  services: Services;
  server: RunningServer;
  browser: Browser;
  page: Page;
  /** Console errors and page errors seen so far. */
  consoleErrors: string[];
  /** A full-page screenshot named `name`.png in the screenshots folder. */
  shot(name: string, dir?: string): Promise<unknown>;
  close(): Promise<void>;
}

/** Start the workstation and a browser page on it; screenshots go to `shots` (emptied first). */
export async function startWorkstation(shots: string): Promise<Workstation> {
  await ensureRenderer();
  const home = mkdtempSync(join(tmpdir(), 'kdmri-e2e-'));
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const services = createServices({ dbPath: join(home, 'kdmri.db'), dataDir: home, mode: 'web' });
  const server = await startServer({ services, staticDir: rendererDir });
  const browser = await chromium.launch({
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
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  await page.goto(server.url);
  return {
    home,
    services,
    server,
    browser,
    page,
    consoleErrors,
    shot: (name, dir = shots) => page.screenshot({ path: join(dir, `${name}.png`), fullPage: true }),
    async close() {
      await browser.close();
      await server.close();
      await services.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
