import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { createServices, type Services } from '../../src-main/services/index.js';
import { engine } from '../../src-main/services/engine.js';
import { everyAccRow, quickJob } from './doubles.js';
import {
  startServer,
  type RunningServer,
  CSP,
  MAX_BODY,
  MAX_EVENT_STREAMS,
} from '../../src-main/server/server.js';
import { decodeWire, type ApiEvent, type ApiResult, type AppInfo } from '../../src-main/contract/api.js';
import { openDatabase } from '../../src-main/store/db.js';

// The real services and store on a temporary file, with typed doubles for the mask builder and the
// training worker given to the composition root (the server is under test here, not the engine): a
// line mask, a job that emits two events.
function seedStore(file: string): void {
  const db = openDatabase(file);
  db.datasets.create({
    name: 'phantom',
    source: '/tmp/x.nii',
    task: 'recon',
    h: 32,
    w: 32,
    trainSlices: 6,
    valSlices: 2,
  });
  db.close();
}

let dir: string;
let services: Services;
let server: RunningServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kdmri-server-'));
  const staticDir = join(dir, 'renderer');
  mkdirSync(staticDir);
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
  seedStore(join(dir, 'kdmri.db'));
  services = createServices({
    dbPath: join(dir, 'kdmri.db'),
    dataDir: dir,
    engine: {
      ...engine,
      buildMask: everyAccRow,
      startJob: quickJob(
        (jobId) => [
          { type: 'job-start', jobId, steps: ['teacher'], backend: 'cpu' },
          { type: 'job-end', status: 'finished' },
        ],
        50,
        100,
      ),
    },
  });
  server = await startServer({ services, staticDir, linkTtlMs: 1500 });
});

after(async () => {
  await server.close();
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}
function http(
  method: string,
  path: string,
  opts: {
    body?: string | Buffer;
    token?: string | null;
    host?: string;
    type?: string;
    cookie?: string;
    chunked?: boolean;
  } = {},
): Promise<Reply> {
  return new Promise((ok, ko) => {
    const headers: Record<string, string> = { 'content-type': opts.type ?? 'application/json' };
    if (opts.token !== null) headers['x-kdmri-token'] = opts.token ?? server.token;
    if (opts.host) headers.host = opts.host;
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', ko);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
const call = (op: string, body: unknown, token?: string | null) =>
  http('POST', `/api/${op}`, { body: JSON.stringify(body), token });

test('the URL to open is a one-time login link on 127.0.0.1, never the token', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/login\?code=[0-9a-f]{48}$/);
  assert.ok(!server.url.includes(server.token));
});

test('a login link is exchanged once for the token in an HttpOnly cookie; used or expired links are refused', async () => {
  const link = new URL(server.newLink());
  const r = await http('GET', link.pathname + link.search, { token: null });
  assert.equal(r.status, 303);
  assert.equal(r.headers.location, '/');
  const set = String(r.headers['set-cookie']);
  assert.match(set, new RegExp(`^kdmri_token=${server.token}; HttpOnly; SameSite=Strict; Path=/$`));
  const cookie = set.split(';')[0];
  // the cookie opens the API and the event stream
  assert.equal((await http('POST', '/api/appInfo', { body: '{}', token: null, cookie })).status, 200);
  // single use
  const again = await http('GET', link.pathname + link.search, { token: null });
  assert.equal(again.status, 401);
  assert.match(again.text, /expired or was already used/);
  assert.equal(again.headers['set-cookie'], undefined);
  // short-lived (1.5 s in this test, 5 minutes by default)
  const late = new URL(server.newLink());
  await new Promise((ok) => setTimeout(ok, 1600));
  assert.equal((await http('GET', late.pathname + late.search, { token: null })).status, 401);
  assert.equal((await http('GET', '/login?code=nope', { token: null })).status, 401);
});

test('a body over the limit gets 413, not a reset connection', async () => {
  const big = Buffer.alloc(MAX_BODY + 10, 32);
  const declared = await http('POST', '/api/listDatasets', { body: big });
  assert.equal(declared.status, 413);
  const res = decodeWire<ApiResult<unknown>>(declared.text);
  assert.ok(!res.ok && /over the 1048576 byte limit/.test(res.error.message));
  const chunked = await http('POST', '/api/listDatasets', { body: big, chunked: true });
  assert.equal(chunked.status, 413);
  // the server goes on serving
  assert.equal((await call('listDatasets', {})).status, 200);
});

test('Server-Sent-Events connections are capped, with a clear error past the cap', async () => {
  const open: ReturnType<typeof request>[] = [];
  const statuses: number[] = [];
  const connect = () =>
    new Promise<{ status: number; text: string }>((ok, ko) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/api/events',
          headers: { 'x-kdmri-token': server.token },
        },
        (res) => {
          if (res.statusCode === 200) return ok({ status: 200, text: '' });
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => ok({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', ko);
      req.end();
      open.push(req);
    });
  try {
    for (let i = 0; i < MAX_EVENT_STREAMS; i++) statuses.push((await connect()).status);
    assert.deepEqual(statuses, new Array(MAX_EVENT_STREAMS).fill(200));
    const over = await connect();
    assert.equal(over.status, 503);
    assert.match(
      decodeWire<ApiResult<unknown>>(over.text).ok ? '' : over.text,
      /too many event streams open/,
    );
  } finally {
    for (const r of open) r.destroy();
  }
  // closed streams free their places
  await new Promise((ok) => setTimeout(ok, 100));
  const again = await connect();
  assert.equal(again.status, 200);
  open.at(-1)!.destroy();
});

test('every /api/ route refuses a request without the token (401)', async () => {
  for (const op of ['appInfo', 'listDatasets', 'previewMask', 'nosuchop']) {
    const r = await call(op, {}, null);
    assert.equal(r.status, 401, op);
    assert.equal(decodeWire<ApiResult<unknown>>(r.text).ok, false);
  }
  assert.equal((await call('appInfo', {}, 'wrong')).status, 401);
  assert.equal((await http('GET', '/api/events', { token: null })).status, 401);
  // a token in a URL is never accepted (URLs end up in logs and process arguments)
  assert.equal((await http('GET', `/api/events?token=${server.token}`, { token: null })).status, 401);
  assert.equal(
    (await http('POST', `/api/appInfo?token=${server.token}`, { body: '{}', token: null })).status,
    401,
  );
  assert.equal(
    (await http('POST', '/api/appInfo', { body: '{}', token: null, cookie: 'kdmri_token=x' })).status,
    401,
  );
});

test('bad bodies get 400 naming the field', async () => {
  const r = await call('previewMask', { mask: { kind: 'cartesian', acc: 4 }, h: 'big', w: 32 });
  assert.equal(r.status, 400);
  const res = decodeWire<ApiResult<unknown>>(r.text);
  assert.ok(!res.ok);
  if (!res.ok) {
    assert.equal(res.error.code, 'bad-request');
    assert.equal(res.error.where, 'h');
    assert.match(res.error.message, /^h: /);
  }
  const bad = await call('previewMask', { mask: { kind: 'zigzag', acc: 4 }, h: 32, w: 32 });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /mask\.kind/);
  const extra = await call('listDatasets', { sneaky: 1 });
  assert.equal(extra.status, 400);
  const notJson = await http('POST', '/api/appInfo', { body: '{oops' });
  assert.equal(notJson.status, 400);
  const wrongType = await http('POST', '/api/appInfo', { body: '{}', type: 'text/plain' });
  assert.equal(wrongType.status, 400);
  assert.equal((await call('nosuchop', {})).status, 404);
});

test('round trips: appInfo, listDatasets, previewMask', async () => {
  const info = decodeWire<ApiResult<AppInfo>>((await call('appInfo', {})).text);
  assert.ok(info.ok, JSON.stringify(info));
  assert.equal(info.value.mode, 'web');
  assert.equal(info.value.versions.node, process.versions.node);
  assert.match(info.value.versions.sqlite, /^3\.\d+/);
  assert.equal(info.value.versions.schema, String(services.db.schemaVersion));
  const ds = decodeWire<ApiResult<Array<{ id: number; name: string }>>>(
    (await call('listDatasets', {})).text,
  );
  assert.ok(ds.ok);
  if (ds.ok)
    assert.deepEqual(
      ds.value.map((d) => d.name),
      ['phantom'],
    );
  const m = decodeWire<ApiResult<{ lines: number[]; acceleration: number }>>(
    (await call('previewMask', { mask: { kind: 'cartesian', acc: 4 }, h: 32, w: 32 })).text,
  );
  assert.ok(m.ok);
  if (m.ok) {
    assert.deepEqual(m.value.lines, [0, 4, 8, 12, 16, 20, 24, 28]);
    assert.equal(m.value.acceleration, 4);
  }
});

test('job progress streams over Server-Sent Events', async () => {
  const events: ApiEvent[] = [];
  const done = new Promise<void>((ok, ko) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/api/events',
        headers: { accept: 'text/event-stream', 'x-kdmri-token': server.token },
      },
      (res) => {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /text\/event-stream/);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (frame.startsWith('data: ')) events.push(decodeWire<ApiEvent>(frame.slice(6)));
            if (events.some((e) => e.channel === 'job' && e.event.type === 'job-end')) {
              req.destroy();
              ok();
            }
          }
        });
      },
    );
    req.on('error', (e) => (events.length ? ok() : ko(e)));
    req.end();
  });
  await new Promise((r) => setTimeout(r, 50));
  const start = decodeWire<ApiResult<{ jobId: string }>>(
    (
      await call('startDistillation', {
        datasetId: 1,
        config: {
          degradation: { kind: 'mask', mask: { kind: 'cartesian', acc: 4 } },
          teacher: { arch: 'dccnn', atLayer: 3 },
          student: { arch: 'dccnn', nd: 3, atLayer: 2 },
        },
      })
    ).text,
  );
  assert.ok(start.ok);
  const jobId = start.ok ? start.value.jobId : '';
  assert.match(jobId, /^[0-9a-f-]{36}$/);
  await done;
  const jobEvents = events.filter((e) => e.channel === 'job');
  assert.deepEqual(
    jobEvents.map((e) => (e.channel === 'job' ? `${e.jobId}:${e.event.type}` : '')),
    [`${jobId}:job-start`, `${jobId}:job-end`],
  );
});

test('static files come with a strict CSP; no path traversal; wrong Host refused', async () => {
  const r = await http('GET', '/', { token: null });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-security-policy'], CSP);
  assert.match(CSP, /default-src 'self'/);
  assert.doesNotMatch(CSP, /unsafe-eval/);
  const spa = await http('GET', '/studies', { token: null });
  assert.equal(spa.status, 200);
  // traversal attempts never reach outside the renderer folder (at most the SPA's index.html comes back)
  for (const p of [
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2fetc%2fpasswd',
    '/a/..%2f..%2f..%2fetc/hosts.txt',
  ]) {
    const r2 = await http('GET', p, { token: null });
    assert.ok(r2.status !== 200 || r2.text.includes('<title>t</title>'), `${p} → ${r2.status}`);
    assert.doesNotMatch(r2.text, /root:|localhost/);
  }
  const rebind = await http('GET', '/', { token: null, host: 'evil.example:80' });
  assert.equal(rebind.status, 421);
});
