// Web mode's uploads over real HTTP: a folder's files stream in with their relative paths and are
// imported through the import service (per-file results, named as the user's files); a file over the
// per-file limit, or one that takes the upload over its total, is answered 413 naming the file and the
// limit (also when no Content-Length announces it), and leaves no partial file; paths that climb out
// are refused; the temporary folder is gone once the import ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiEvent, ApiResult, ImportSummary } from '../../src-main/contract/api.js';
import { createServices, type Services } from '../../src-main/services/index.js';
import { startServer, type RunningServer } from '../../src-main/server/server.js';
import { writeDicomSeries, writeVolumeNifti } from '../../src-main/studies/export.js';

let home: string;
let services: Services;
let server: RunningServer;
const LIMITS = { maxFileBytes: 64 * 1024, maxTotalBytes: 100 * 1024, maxFiles: 10 };

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'kdmri-upload-'));
  services = createServices({
    dbPath: join(home, 'kdmri.db'),
    dataDir: home,
    mode: 'web',
    uploadLimits: LIMITS,
  });
  server = await startServer({ services, staticDir: join(home, 'no-renderer') });
  services.subscribe((e: ApiEvent) => {
    if (e.channel !== 'import') return;
    if (e.event.type === 'end') outcomes.set(e.importId, e.event.summary);
    if (e.event.type === 'error') outcomes.set(e.importId, new Error(e.event.error.message));
  });
});
after(async () => {
  await server?.close();
  await services?.close();
  rmSync(home, { recursive: true, force: true });
});

const base = () => `http://127.0.0.1:${server.port}`;
async function call<T>(op: string, body: unknown): Promise<T> {
  const r = await fetch(`${base()}/api/${op}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-KDMRI-Token': server.token },
    body: JSON.stringify(body),
  });
  const j = (await r.json()) as ApiResult<T>;
  if (!j.ok) throw new Error(j.error.message);
  return j.value;
}
async function put(id: string, path: string, body: BodyInit, init: RequestInit = {}) {
  const r = await fetch(`${base()}/api/upload/${id}?path=${encodeURIComponent(path)}`, {
    method: 'PUT',
    headers: { 'X-KDMRI-Token': server.token, 'Content-Type': 'application/octet-stream' },
    body,
    ...init,
  });
  return { status: r.status, body: (await r.json()) as ApiResult<{ path: string; bytes: number }> };
}
/** Every import's outcome, recorded from the start (an import may end before its id is answered). */
const outcomes = new Map<string, ImportSummary | Error>();
function summaryOf(importId: string): Promise<ImportSummary> {
  return new Promise((ok, ko) => {
    const check = () => {
      const o = outcomes.get(importId);
      if (!o) return setTimeout(check, 20);
      if (o instanceof Error) ko(o);
      else ok(o);
    };
    check();
  });
}

test('a folder uploads with its layout and imports; results name the user files; the folder goes', async () => {
  const vol = {
    data: new Float32Array(2 * 16 * 16).map((_, i) => i % 17),
    slices: 2,
    h: 16,
    w: 16,
    spacing: [1, 1, 2] as [number, number, number],
  };
  const exp = writeDicomSeries(vol, join(home, 'src'));
  const { uploadId, limits } = await call<{ uploadId: string; limits: typeof LIMITS }>('beginUpload', {});
  assert.deepEqual(limits, LIMITS);
  for (const [i, p] of exp.paths.entries()) {
    const r = await put(uploadId, `study/series 1/IM${i + 1}.dcm`, readFileSync(p));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, {
      ok: true,
      value: { path: `study/series 1/IM${i + 1}.dcm`, bytes: readFileSync(p).length },
    });
  }
  assert.equal((await put(uploadId, 'study/../../escape.dcm', 'x')).status, 400);
  const dir = readdirSync(join(home, 'uploads'));
  assert.equal(dir.length, 1);
  const done = await call<{ importId: string; files: number }>('finishUpload', { uploadId });
  assert.equal(done.files, 2);
  const summary = await summaryOf(done.importId);
  assert.deepEqual(
    summary.files.map((f) => [f.path, f.status]),
    [
      ['study/series 1/IM1.dcm', 'imported'],
      ['study/series 1/IM2.dcm', 'imported'],
    ],
  );
  assert.deepEqual(summary.series, [exp.seriesUid]);
  assert.deepEqual(readdirSync(join(home, 'uploads')), []);
  // the pixels are the library's own now (the uploaded files are gone)
  const slice = await services.handlers.getSeriesSlice({ uid: exp.seriesUid, index: 1 });
  assert.ok(Math.abs(slice.data[5] - vol.data[256 + 5]) <= exp.slope / 2 + 1e-6);
});

test('413 for a file over the per-file limit and for an upload over its total; no partial file is kept', async () => {
  const { uploadId } = await call<{ uploadId: string }>('beginUpload', {});
  const big = new Uint8Array(LIMITS.maxFileBytes + 1);
  const r1 = await put(uploadId, 'big.dcm', big);
  assert.equal(r1.status, 413);
  assert.ok(!r1.body.ok && r1.body.error.code === 'too-large');
  assert.match(
    !r1.body.ok ? r1.body.error.message : '',
    /^big\.dcm is 0\.06 MiB, over the 0\.06 MiB per-file upload limit$/,
  );
  // streamed without a Content-Length: refused as the bytes arrive
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(16 * 1024));
      c.close();
    },
  });
  const r2 = await put(uploadId, 'streamed.dcm', stream, { duplex: 'half' } as RequestInit);
  assert.equal(r2.status, 413);
  assert.match(
    !r2.body.ok ? r2.body.error.message : '',
    /streamed\.dcm is over the 0\.06 MiB per-file upload limit/,
  );
  assert.equal((await put(uploadId, 'a.bin', new Uint8Array(60 * 1024))).status, 200);
  const r3 = await put(uploadId, 'b.bin', new Uint8Array(60 * 1024));
  assert.equal(r3.status, 413);
  assert.match(
    !r3.body.ok ? r3.body.error.message : '',
    /b\.bin would take this upload over its 0\.10 MiB limit/,
  );
  const folder = join(home, 'uploads', readdirSync(join(home, 'uploads'))[0]);
  assert.deepEqual(readdirSync(folder), ['a.bin']);
  assert.deepEqual(await call('discardUpload', { uploadId }), { discarded: true });
  assert.ok(!existsSync(folder));
  // without the token: refused before a byte is stored
  const anon = await fetch(`${base()}/api/upload/${uploadId}?path=x`, { method: 'PUT', body: 'x' });
  assert.equal(anon.status, 401);
});

test('the same NIfTI uploaded twice is one series: the second import finds it', async () => {
  const file = join(home, 'brain.nii.gz');
  const data = new Float32Array(2 * 12 * 12).map((_, i) => (i * 7) % 13);
  writeVolumeNifti({ data, slices: 2, h: 12, w: 12, spacing: [1, 1, 1] }, file);
  const once = async () => {
    const { uploadId } = await call<{ uploadId: string }>('beginUpload', {});
    assert.equal((await put(uploadId, 'scans/brain.nii.gz', readFileSync(file))).status, 200);
    const { importId } = await call<{ importId: string }>('finishUpload', { uploadId });
    return summaryOf(importId);
  };
  const a = await once();
  const b = await once();
  assert.deepEqual(
    a.files.map((f) => [f.path, f.status]),
    [['scans/brain.nii.gz', 'imported']],
  );
  assert.deepEqual(
    b.files.map((f) => [f.path, f.status]),
    [['scans/brain.nii.gz', 'skipped']],
  );
  assert.deepEqual(b.series, a.series);
});
