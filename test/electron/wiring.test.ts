// The Electron layer cannot run here (no Electron binary): these tests drive its wiring with a fake
// Electron API — window options, session hardening, navigation guards, IPC, preload bridge, menus and
// the app start-up — on the real services and store.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import ts from 'typescript';
import {
  secureWindowOptions,
  hardenSession,
  guardWebContents,
  ELECTRON_CSP,
  isAppUrl,
} from '../../src-main/electron/security.js';
import { wireIpc } from '../../src-main/electron/ipc.js';
import { menuTemplate } from '../../src-main/electron/menu.js';
import { startElectronApp, defaultPaths } from '../../src-main/electron/app.js';
import { IPC, type ElectronMain } from '../../src-main/electron/types.js';
import { createServices } from '../../src-main/services/index.js';
import { engine } from '../../src-main/services/engine.js';
import { quickJob } from '../server/doubles.js';
import { openDatabase } from '../../src-main/store/db.js';
import { defaultDistillConfig } from '../../src-main/contract/domain.js';
import type { ApiEvent, ApiResult, KdmriBridge } from '../../src-main/contract/api.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kdmri-electron-'));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

type Handler = (...args: unknown[]) => unknown;

function fakeIpcMain() {
  const handlers = new Map<string, Handler>();
  return {
    handlers,
    handle: (ch: string, fn: Handler) => void handlers.set(ch, fn),
    removeHandler: (ch: string) => void handlers.delete(ch),
  };
}
const frame = (url: string) => ({ senderFrame: { url } });

test('window options: isolated, sandboxed, no Node in the page', () => {
  const o = secureWindowOptions('/app/preload.cjs');
  assert.equal(o.webPreferences?.contextIsolation, true);
  assert.equal(o.webPreferences?.sandbox, true);
  assert.equal(o.webPreferences?.nodeIntegration, false);
  assert.equal(o.webPreferences?.webSecurity, true);
  assert.equal(o.webPreferences?.webviewTag, false);
  assert.equal(o.webPreferences?.preload, '/app/preload.cjs');
});

test('session: CSP header on every response, remote content cancelled, permissions denied', () => {
  let onHeaders: Handler | null = null;
  let onBefore: Handler | null = null;
  let perm: Handler | null = null;
  hardenSession({
    webRequest: {
      onHeadersReceived: (fn: Handler) => (onHeaders = fn),
      onBeforeRequest: (fn: Handler) => (onBefore = fn),
    },
    setPermissionRequestHandler: (fn: Handler) => (perm = fn),
    setPermissionCheckHandler: () => undefined,
  } as unknown as Parameters<typeof hardenSession>[0]);
  let headers: Record<string, string[]> = {};
  onHeaders!(
    { responseHeaders: { 'X-A': ['1'] } },
    (r: { responseHeaders: Record<string, string[]> }) => (headers = r.responseHeaders),
  );
  assert.deepEqual(headers['Content-Security-Policy'], [ELECTRON_CSP]);
  assert.deepEqual(headers['X-A'], ['1']);
  assert.match(ELECTRON_CSP, /default-src 'self'/);
  assert.doesNotMatch(ELECTRON_CSP, /unsafe-eval/);
  const cancelled = (url: string) => {
    let c: boolean | undefined;
    onBefore!({ url }, (r: { cancel: boolean }) => (c = r.cancel));
    return c;
  };
  assert.equal(cancelled('file:///app/build/renderer/index.html'), false);
  assert.equal(cancelled('https://example.com/x.js'), true);
  assert.equal(cancelled('http://127.0.0.1:8080/'), true);
  let granted: boolean | undefined;
  perm!(null, 'media', (g: boolean) => (granted = g));
  assert.equal(granted, false);
  assert.ok(isAppUrl('file:///x') && !isAppUrl('https://x'));
});

test('web contents: navigation, redirects, webviews and new windows are blocked', () => {
  const on = new Map<string, Handler>();
  let open: Handler | null = null;
  guardWebContents({
    on: (ev: string, fn: Handler) => void on.set(ev, fn),
    setWindowOpenHandler: (fn: Handler) => void (open = fn),
  } as unknown as Parameters<typeof guardWebContents>[0]);
  for (const ev of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
    let prevented = false;
    on.get(ev)!({ preventDefault: () => (prevented = true) }, 'https://evil.example');
    assert.ok(prevented, ev);
  }
  assert.deepEqual(open!({ url: 'https://evil.example' }), { action: 'deny' });
});

test('IPC: every op goes through the services with validation; untrusted frames refused; events forwarded', async () => {
  const dir = tmp();
  const db = openDatabase(join(dir, 'kdmri.db'));
  db.datasets.create({
    name: 'phantom',
    source: '/tmp/p.nii',
    task: 'recon',
    h: 16,
    w: 16,
    trainSlices: 3,
    valSlices: 1,
  });
  db.close();
  const services = createServices({
    dbPath: join(dir, 'kdmri.db'),
    dataDir: dir,
    mode: 'electron',
    engine: {
      ...engine,
      // the training worker's double: ends the job at once (IPC is under test, not training)
      startJob: quickJob(() => [{ type: 'job-end', status: 'finished' }], 10, 20),
    },
  });
  const ipcMain = fakeIpcMain();
  const sent: [string, unknown][] = [];
  const target = { send: (ch: string, e: unknown) => void sent.push([ch, e]), isDestroyed: () => false };
  let dialogCalled = false;
  const unwire = wireIpc({
    electron: {
      ipcMain: ipcMain as unknown as ElectronMain['ipcMain'],
      dialog: {
        showOpenDialog: async () => {
          dialogCalled = true;
          return { canceled: false, filePaths: ['/data/a.nii.gz'] };
        },
      } as unknown as ElectronMain['dialog'],
    },
    services,
    target: () => target,
  });
  const call = ipcMain.handlers.get(IPC.call)!;
  const app = 'file:///opt/kdmri/build/renderer/index.html';

  const ok = (await call(frame(app), 'listDatasets', {})) as ApiResult<{ name: string }[]>;
  assert.ok(ok.ok && ok.value[0].name === 'phantom');
  const info = (await call(frame(app), 'appInfo', {})) as ApiResult<{ mode: string }>;
  assert.ok(info.ok && info.value.mode === 'electron');

  const bad = (await call(frame(app), 'getSeriesSlice', { uid: 'x', index: -1 })) as ApiResult<unknown>;
  assert.ok(!bad.ok && bad.error.code === 'bad-request' && bad.error.where === 'index');
  const unknown = (await call(frame(app), 'rm -rf', {})) as ApiResult<unknown>;
  assert.ok(!unknown.ok && unknown.error.code === 'not-found');
  const evil = (await call(frame('https://evil.example/'), 'listDatasets', {})) as ApiResult<unknown>;
  assert.ok(!evil.ok && evil.error.code === 'unauthorized');

  const paths = await ipcMain.handlers.get(IPC.pickPaths)!(frame(app));
  assert.ok(dialogCalled);
  assert.deepEqual(paths, ['/data/a.nii.gz']);
  assert.deepEqual(await ipcMain.handlers.get(IPC.pickPaths)!(frame('https://evil.example/')), []);

  const started = (await call(frame(app), 'startDistillation', {
    datasetId: 1,
    config: {
      degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
      teacher: { arch: 'dccnn', atLayer: 3 },
      student: { arch: 'dccnn', nd: 3, atLayer: 2 },
    },
  })) as ApiResult<{ jobId: string }>;
  assert.ok(started.ok);
  await new Promise((r) => setTimeout(r, 80));
  const jobEvents = sent.filter(([ch, e]) => ch === IPC.event && (e as ApiEvent).channel === 'job');
  assert.equal(jobEvents.length, 1);
  assert.equal(
    (jobEvents[0][1] as ApiEvent & { channel: 'job' }).jobId,
    started.ok ? started.value.jobId : '',
  );

  unwire();
  assert.equal(ipcMain.handlers.size, 0);
  await services.close();
});

test('preload: exposes window.kdmri over ipcRenderer.invoke, with the same channels as main', () => {
  const src = readFileSync(new URL('../../src-main/electron/preload.cts', import.meta.url), 'utf8');
  const js = ts.transpileModule(src, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const exposed: Record<string, unknown> = {};
  const invoked: unknown[][] = [];
  const listeners = new Map<string, Handler>();
  const fakeElectron = {
    contextBridge: { exposeInMainWorld: (k: string, v: unknown) => void (exposed[k] = v) },
    webUtils: { getPathForFile: (f: { name: string }) => `/dropped/${f.name}` },
    ipcRenderer: {
      invoke: async (...a: unknown[]) => (invoked.push(a), { ok: true, value: 42 }),
      on: (ch: string, fn: Handler) => void listeners.set(ch, fn),
      removeListener: (ch: string) => void listeners.delete(ch),
    },
  };
  const mod = { exports: {} as Record<string, unknown> };
  // the argument list of Electron's sandboxed preload wrapper
  const fn = vm.runInNewContext(
    `(function (require, process, Buffer, global, setImmediate, clearImmediate, exports, module) {${js}\n})`,
    {},
  );
  fn(
    (name: string) => {
      if (name !== 'electron') throw new Error(`sandboxed preload may not require ${name}`);
      return fakeElectron;
    },
    { contextIsolated: true },
    Buffer,
    {},
    setImmediate,
    clearImmediate,
    mod.exports,
    mod,
  );
  const bridge = exposed.kdmri as KdmriBridge;
  assert.ok(bridge, 'window.kdmri exposed');
  assert.deepEqual(Object.keys(exposed), ['kdmri']);
  void bridge.call('listDatasets', {});
  assert.deepEqual(invoked[0], [IPC.call, 'listDatasets', {}]);
  void bridge.pickPaths();
  assert.deepEqual(invoked[1], [IPC.pickPaths]);
  const got: ApiEvent[] = [];
  const off = bridge.onEvent((e) => got.push(e));
  listeners.get(IPC.event)!({}, { channel: 'library', what: 'jobs' });
  assert.deepEqual(got, [{ channel: 'library', what: 'jobs' }]);
  off();
  assert.ok(!listeners.has(IPC.event));
  const menus: string[] = [];
  bridge.onMenu!((c) => menus.push(c));
  listeners.get(IPC.menu)!({}, 'compare');
  assert.deepEqual(menus, ['compare']);
  assert.deepEqual(JSON.parse(JSON.stringify(mod.exports.CHANNELS)), { ...IPC });
  assert.equal(bridge.pathForFile!({ name: 'a.nii.gz' } as unknown as File), '/dropped/a.nii.gz');
});

test('menus: File/View/Help; View items send page commands', () => {
  const sent: [string, string][] = [];
  const t = menuTemplate({ send: (ch, cmd) => void sent.push([ch, cmd]), isMac: false, dev: false });
  const labels = t.map((m) => m.label ?? m.role);
  assert.deepEqual(labels, ['&File', 'editMenu', '&View', 'windowMenu', '&Help']);
  const view = t[2].submenu as { label?: string; click?: () => void }[];
  view.find((i) => i.label === 'Compare')!.click!();
  assert.deepEqual(sent, [[IPC.menu, 'compare']]);
  assert.ok(!JSON.stringify(t).includes('toggleDevTools'));
});

/** A fake Electron main API around a userData folder: what it recorded, and the app's handlers. */
function fakeElectron(userData: string, downloads: string) {
  const saveDialogs: string[] = [];
  const appEvents = new Map<string, Handler>();
  const ipcMain = fakeIpcMain();
  const windows: { options: unknown; loaded: string | null }[] = [];
  const seen = { menuSet: false, quitCalls: 0, messages: [] as string[] };
  class FakeWindow {
    webContents = { send: () => undefined, isDestroyed: () => false };
    rec: { options: unknown; loaded: string | null };
    constructor(options: unknown) {
      this.rec = { options, loaded: null };
      windows.push(this.rec);
    }
    static getAllWindows = () => windows;
    once() {}
    on() {}
    show() {}
    async loadFile(f: string) {
      this.rec.loaded = f;
    }
  }
  const fake = {
    app: {
      requestSingleInstanceLock: () => true,
      on: (ev: string, fn: Handler) => void appEvents.set(ev, fn),
      whenReady: async () => undefined,
      getPath: (n: string) => (n === 'userData' ? userData : n === 'downloads' ? downloads : '/nowhere'),
      getVersion: () => '0.1.0',
      isPackaged: false,
      quit: () => void seen.quitCalls++,
    },
    BrowserWindow: FakeWindow,
    ipcMain,
    dialog: {
      showOpenDialog: async () => ({ canceled: true, filePaths: [] }),
      showMessageBox: async (o: { message: string }) => (seen.messages.push(o.message), { response: 0 }),
      // downloads of exports: the user accepts the suggested place
      showSaveDialog: async (...args: unknown[]) => {
        const o = args.at(-1) as { defaultPath: string };
        saveDialogs.push(o.defaultPath);
        return { canceled: false, filePath: o.defaultPath };
      },
    },
    Menu: { buildFromTemplate: (t: unknown) => t, setApplicationMenu: () => void (seen.menuSet = true) },
    session: {
      defaultSession: {
        webRequest: { onHeadersReceived: () => undefined, onBeforeRequest: () => undefined },
        setPermissionRequestHandler: () => undefined,
        setPermissionCheckHandler: () => undefined,
      },
    },
    shell: {},
  } as unknown as ElectronMain;
  return { fake, seen, saveDialogs, appEvents, ipcMain, windows };
}

test('app start: one secure window on the built renderer, the shared library home, IPC wired, quit closes services', async () => {
  const userData = tmp();
  const downloads = tmp();
  const home = tmp();
  const { fake, seen, saveDialogs, appEvents, ipcMain, windows } = fakeElectron(userData, downloads);
  const paths = defaultPaths('/opt/kdmri/build/main/electron');
  assert.equal(paths.indexHtml, '/opt/kdmri/build/renderer/index.html');
  const running = await startElectronApp(fake, paths, { KDMRI_HOME: home });
  assert.equal(windows.length, 1);
  assert.equal(windows[0].loaded, paths.indexHtml);
  const prefs = (windows[0].options as { webPreferences: Record<string, unknown> }).webPreferences;
  assert.deepEqual(
    [prefs.contextIsolation, prefs.sandbox, prefs.nodeIntegration, prefs.preload],
    [true, true, false, '/opt/kdmri/build/main/electron/preload.cjs'],
  );
  assert.ok(seen.menuSet);
  assert.deepEqual(seen.messages, [], 'nothing to move, nothing to say');
  assert.ok(ipcMain.handlers.has(IPC.call) && ipcMain.handlers.has(IPC.pickPaths));
  const info = (await ipcMain.handlers.get(IPC.call)!(
    frame('file:///opt/kdmri/build/renderer/index.html'),
    'appInfo',
    {},
  )) as ApiResult<{ dbPath: string; mode: string }>;
  assert.ok(info.ok && info.value.dbPath === join(home, 'kdmri.db') && info.value.mode === 'electron');
  // an export reaches the user through the native save dialog, in Downloads by default
  mkdirSync(join(home, 'exports'), { recursive: true });
  writeFileSync(join(home, 'exports', 'montage.png'), 'png bytes');
  const saved = (await ipcMain.handlers.get(IPC.call)!(
    frame('file:///opt/kdmri/build/renderer/index.html'),
    'downloadExport',
    { exportId: 'montage.png' },
  )) as ApiResult<{ delivered: string; path: string }>;
  assert.ok(saved.ok && saved.value.delivered === 'saved', JSON.stringify(saved));
  assert.deepEqual(saveDialogs, [join(downloads, 'montage.png')]);
  assert.equal(readFileSync(join(downloads, 'montage.png'), 'utf8'), 'png bytes');
  assert.ok(appEvents.has('web-contents-created') && appEvents.has('window-all-closed'));
  let prevented = false;
  appEvents.get('before-quit')!({ preventDefault: () => (prevented = true) });
  assert.ok(prevented);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(seen.quitCalls, 1);
  assert.equal(ipcMain.handlers.size, 0);
  void running;
});

test('one library home: a library the desktop app kept under userData moves there once, paths and all', async () => {
  const userData = tmp();
  const home = join(tmp(), 'kdmri-home');
  // an earlier desktop app's library: a model folder, a checkpoint folder, a PACS copy, in userData
  const old = openDatabase(join(userData, 'kdmri.db'));
  const ds = old.datasets.create({
    name: 'd',
    source: join(userData, 'dicom', 'a.nii'),
    task: 'recon',
    h: 8,
    w: 8,
    trainSlices: 3,
    valSlices: 1,
  });
  const config = defaultDistillConfig('recon', {
    kind: 'mask',
    mask: { kind: 'cartesian', acc: 4, axis: 'rows', seed: 1 },
  });
  old.jobs.create({
    id: 'j',
    datasetId: ds.id,
    config,
    status: 'finished',
    modelsRoot: join(userData, 'models'),
  });
  const run = old.runs.create({
    jobId: 'j',
    kind: 'teacher',
    config,
    epochsPlanned: 1,
    checkpointDir: join(userData, 'models', 'checkpoints', 'j', 'teacher'),
  });
  mkdirSync(join(userData, 'models', 'j-teacher'), { recursive: true });
  writeFileSync(join(userData, 'models', 'j-teacher', 'model.json'), '{"kept":true}');
  old.models.create({
    runId: run.id,
    kind: 'teacher',
    name: 't',
    dir: join(userData, 'models', 'j-teacher'),
    paramCount: 1,
    spec: config.teacher,
    card: {} as never,
  });
  old.close();

  const { fake, seen, appEvents, ipcMain } = fakeElectron(userData, tmp());
  const paths = defaultPaths('/opt/kdmri/build/main/electron');
  await startElectronApp(fake, paths, { KDMRI_HOME: home });
  assert.equal(seen.messages.length, 1);
  assert.match(
    seen.messages[0],
    new RegExp(`moved to ${home}.*the kdmri command line and web mode now share it`),
  );
  assert.match(readFileSync(join(userData, 'KDMRI-LIBRARY-MOVED.txt'), 'utf8'), new RegExp(home));
  const info = (await ipcMain.handlers.get(IPC.call)!(
    frame('file:///opt/kdmri/build/renderer/index.html'),
    'appInfo',
    {},
  )) as ApiResult<{ dbPath: string }>;
  assert.ok(info.ok && info.value.dbPath === join(home, 'kdmri.db'));
  appEvents.get('before-quit')!({ preventDefault: () => undefined });
  await new Promise((r) => setTimeout(r, 100));
  // the CLI's view of the same home: everything there, every path inside it
  const db = openDatabase(join(home, 'kdmri.db'));
  const m = db.models.list()[0];
  assert.equal(m.dir, join(home, 'models', 'j-teacher'));
  assert.equal(readFileSync(join(m.dir, 'model.json'), 'utf8'), '{"kept":true}');
  assert.equal(db.runs.get(run.id)!.checkpointDir, join(home, 'models', 'checkpoints', 'j', 'teacher'));
  assert.equal(db.jobs.get('j')!.modelsRoot, join(home, 'models'));
  assert.equal(db.datasets.get(ds.id)!.source, join(home, 'dicom', 'a.nii'));
  db.close();
  assert.equal(existsSync(join(userData, 'kdmri.db')), false);
  assert.equal((statSync(home).mode & 0o777).toString(8), '700');
  assert.equal((statSync(join(home, 'kdmri.db')).mode & 0o777).toString(8), '600');

  // a second desktop library appearing later is never merged into the home: it is named and left alone
  openDatabase(join(userData, 'kdmri.db')).close();
  const again = fakeElectron(userData, tmp());
  await startElectronApp(again.fake, paths, { KDMRI_HOME: home });
  assert.equal(again.seen.messages.length, 1);
  assert.match(again.seen.messages[0], /an older one stays in .*, not merged \(open it with KDMRI_DB=/);
  again.appEvents.get('before-quit')!({ preventDefault: () => undefined });
  await new Promise((r) => setTimeout(r, 100));
});
