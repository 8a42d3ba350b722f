/**
 * Web mode: the API contract over HTTP + Server-Sent Events, and the built renderer as static files.
 *
 *  - bound to 127.0.0.1 only; the Host header must name that address (DNS-rebinding guard);
 *  - every /api/ route needs the random per-launch token: the `kdmri_token` cookie (the browser), or
 *    the `X-KDMRI-Token` header (scripts); otherwise 401;
 *  - the token never travels in a URL, so it is never in a process's arguments (the browser is opened
 *    by `xdg-open URL`, which any local user can read in /proc/PID/cmdline): the URL carries a one-time
 *    code instead (`/login?code=…`, usable once, for LINK_TTL_MS), which the server exchanges for the
 *    token in an HttpOnly, SameSite=Strict cookie and a redirect to the app;
 *  - POST /api/<op> with a JSON body of at most 1 MiB (413 beyond), validated by the contract's zod
 *    schema (400 naming the field); answers an ApiResult, Float32Arrays as base64 (contract encodeWire);
 *  - GET /api/events streams ApiEvents, at most MAX_EVENT_STREAMS at once (503 beyond, saying so);
 *  - PUT /api/upload/<uploadId>?path=<relative path> streams one file of a web-mode upload (raw bytes,
 *    any size up to the upload limits, 413 beyond) into the library's uploads folder (services/uploads.ts);
 *  - GET /api/download/<ticket> streams an export named by downloadExport (a folder as a zip): the
 *    ticket, unguessable and short-lived, is the authorisation (an <a download> cannot set headers);
 *  - everything else serves build/renderer with a strict Content-Security-Policy.
 */
import { RENDERER_CSP } from '../contract/csp.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { encodeWire, toApiError, type ApiErrorCode, type ApiResult } from '../contract/api.js';
import type { Services } from '../services/index.js';
import { zipFolderTo } from '../services/exports.js';

export const TOKEN_HEADER = 'x-kdmri-token';
export const TOKEN_COOKIE = 'kdmri_token';
/** How long a one-time login link stays valid. */
export const LINK_TTL_MS = 5 * 60_000;
/** Server-Sent-Events connections open at once (a tab holds one). */
export const MAX_EVENT_STREAMS = 16;

export const CSP = RENDERER_CSP;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

const STATUS: Record<ApiErrorCode, number> = {
  'bad-request': 400,
  unauthorized: 401,
  'not-found': 404,
  conflict: 409,
  'too-large': 413,
  unavailable: 503,
  internal: 500,
};

export const MAX_BODY = 1 << 20;

const DOWNLOAD_MIME: Record<string, string> = {
  '.png': 'image/png',
  '.gz': 'application/gzip',
  '.dcm': 'application/dicom',
  '.onnx': 'application/octet-stream',
  '.json': 'application/json',
};

/** RFC 6266: an ASCII fallback name and the exact name in UTF-8 (RFC 5987). */
function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export interface ServerOptions {
  services: Services;
  /** 0 (default): a free port chosen by the OS. */
  port?: number;
  /** Built renderer folder (default: build/renderer next to the package). */
  staticDir?: string;
  /** Fixed token (tests); default 32 random bytes, hex. */
  token?: string;
  /** Lifetime of a one-time login link (default LINK_TTL_MS). */
  linkTtlMs?: number;
}

export interface RunningServer {
  port: number;
  /** For programmatic clients (header X-KDMRI-Token); never put it in a URL or a command line. */
  token: string;
  /** A one-time login link made at start: http://127.0.0.1:PORT/login?code=CODE */
  url: string;
  /** Another one-time login link (the first was used, or has expired). */
  newLink(): string;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

/** One cookie's value from the Cookie header, or null. */
function cookie(req: IncomingMessage, name: string): string | null {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function defaultStaticDir(): string {
  // src-main/server/server.ts or build/main/server/server.js → <root>/build/renderer
  const here = new URL('.', import.meta.url).pathname;
  const root = here.includes(`${sep}build${sep}main${sep}`)
    ? resolve(here, '../../..')
    : resolve(here, '../..');
  return join(root, 'build', 'renderer');
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const token = opts.token ?? randomBytes(32).toString('hex');
  const tokenBuf = Buffer.from(token);
  const staticDir = resolve(opts.staticDir ?? defaultStaticDir());
  const { services } = opts;
  const sse = new Set<ServerResponse>();
  let port = 0;
  /** Unused one-time codes → when they expire (epoch ms). */
  const codes = new Map<string, number>();

  const tokenOk = (given: string | null | undefined): boolean => {
    if (!given) return false;
    const b = Buffer.from(given);
    return b.length === tokenBuf.length && timingSafeEqual(b, tokenBuf);
  };
  const authorised = (req: IncomingMessage): boolean =>
    tokenOk(req.headers[TOKEN_HEADER] as string | undefined) || tokenOk(cookie(req, TOKEN_COOKIE));

  function newLink(): string {
    const now = Date.now();
    for (const [c, until] of codes) if (until <= now) codes.delete(c);
    const code = randomBytes(24).toString('hex');
    codes.set(code, now + (opts.linkTtlMs ?? LINK_TTL_MS));
    return `http://127.0.0.1:${port}/login?code=${code}`;
  }

  /** Exchange a one-time code for the token (in a cookie), then go to the app. */
  function login(res: ServerResponse, url: URL) {
    const code = url.searchParams.get('code') ?? '';
    const until = codes.get(code);
    codes.delete(code); // single use, valid or not
    if (until === undefined || until <= Date.now()) {
      return send(
        res,
        401,
        'This login link has expired or was already used. Ask the workstation for a new one: ' +
          'press Enter in the terminal running `kdmri serve`.',
        'text/plain; charset=utf-8',
      );
    }
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      'Set-Cookie': `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
      Location: '/',
      'Cache-Control': 'no-store',
      'Content-Length': 0,
    });
    res.end();
  }

  const send = (
    res: ServerResponse,
    status: number,
    body: string,
    type = 'application/json; charset=utf-8',
  ) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  };
  const sendResult = (res: ServerResponse, r: ApiResult<unknown>) =>
    send(res, r.ok ? 200 : STATUS[r.error.code], encodeWire(r));
  const fail = (
    res: ServerResponse,
    code: ApiErrorCode,
    message: string,
    where?: string,
    status?: number,
  ) => {
    const r: ApiResult<unknown> = { ok: false, error: where ? { code, message, where } : { code, message } };
    send(res, status ?? STATUS[code], encodeWire(r));
  };

  /** The body, or null when it is over MAX_BODY (then 413 has been answered). */
  function readBody(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
    const tooLarge = () => {
      // answer first, then drop the rest of the body unread; the connection closes after it
      res.setHeader('Connection', 'close');
      fail(res, 'bad-request', `request body over the ${MAX_BODY} byte limit`, '(body)', 413);
      req.removeAllListeners('data');
      req.resume();
      setTimeout(() => req.destroy(), 10_000).unref();
    };
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
      tooLarge();
      return Promise.resolve(null);
    }
    return new Promise((ok, ko) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
        else if (!res.headersSent) {
          tooLarge();
          ok(null);
        }
      });
      req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
      req.on('error', ko);
    });
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL) {
    const op = url.pathname.slice('/api/'.length);
    if (op.startsWith('download/')) return download(req, res, op.slice('download/'.length));
    if (!authorised(req)) {
      res.setHeader('Connection', 'close'); // an unread body is not worth keeping the socket for
      return fail(res, 'unauthorized', 'missing or wrong token: open the link printed by kdmri serve');
    }
    if (op.startsWith('upload/')) return upload(req, res, url, op.slice('upload/'.length));
    if (op === 'events') {
      if (req.method !== 'GET') return fail(res, 'bad-request', 'use GET for /api/events');
      if (sse.size >= MAX_EVENT_STREAMS) {
        return fail(
          res,
          'unavailable',
          `too many event streams open (${MAX_EVENT_STREAMS}): close other workstation tabs or windows`,
        );
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
      });
      res.write(': kdmri events\n\n');
      sse.add(res);
      const ping = setInterval(() => res.write(': ping\n\n'), 15000);
      req.on('close', () => {
        clearInterval(ping);
        sse.delete(res);
      });
      return;
    }
    if (req.method !== 'POST') return fail(res, 'bad-request', `use POST for /api/${op}`);
    const type = String(req.headers['content-type'] ?? '');
    if (!type.startsWith('application/json'))
      return fail(res, 'bad-request', 'Content-Type must be application/json', 'content-type');
    let body: unknown = {};
    try {
      const text = await readBody(req, res);
      if (text === null) return;
      body = text.trim() ? (JSON.parse(text) as unknown) : {};
    } catch (e) {
      return fail(res, 'bad-request', `body: ${(e as Error).message}`, '(body)');
    }
    sendResult(res, await services.call(op, body));
  }

  /** PUT /api/upload/<uploadId>?path=<relative path>: one file's bytes, streamed to the upload's folder. */
  async function upload(req: IncomingMessage, res: ServerResponse, url: URL, uploadId: string) {
    const refuse = (code: ApiErrorCode, message: string, where?: string) => {
      // an unread body is not read: answer and close the connection
      res.setHeader('Connection', 'close');
      fail(res, code, message, where);
      req.resume();
      setTimeout(() => req.destroy(), 10_000).unref();
    };
    if (req.method !== 'PUT') return refuse('bad-request', 'use PUT for /api/upload/<uploadId>?path=…');
    if (!/^[0-9a-f-]{36}$/.test(uploadId)) return refuse('not-found', 'no such upload', 'uploadId');
    const path = url.searchParams.get('path');
    if (!path) return refuse('bad-request', "path: the file's relative path is missing", 'path');
    const length = req.headers['content-length'];
    try {
      // not destroyed when the service stops reading early (a limit): the 413 must still reach the client
      const body = req.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
      const r = await services.uploads.receive(
        uploadId,
        path,
        body,
        length === undefined ? null : Number(length),
      );
      sendResult(res, { ok: true, value: r });
    } catch (e) {
      const r: ApiResult<unknown> = { ok: false, error: toApiError(e) };
      if (r.ok) return;
      if (!req.complete) refuse(r.error.code, r.error.message, r.error.where);
      else sendResult(res, r);
    }
  }

  /**
   * GET /api/download/<ticket>: the export a downloadExport call named, as an attachment (a folder as a
   * zip). The ticket is the credential (a browser download cannot send the token header): 48 hex
   * digits from the services, one export, valid for a few minutes.
   */
  async function download(req: IncomingMessage, res: ServerResponse, ticket: string) {
    if (req.method !== 'GET') return fail(res, 'bad-request', 'use GET for /api/download/<ticket>');
    const found = /^[0-9a-f]{48}$/.test(ticket) ? services.openDownload(ticket) : null;
    if (!found) return fail(res, 'not-found', 'no such download (unknown or expired ticket)');
    const headers = {
      ...SECURITY_HEADERS,
      'Cache-Control': 'no-store',
      'Content-Disposition': contentDisposition(found.filename),
    };
    if (found.kind === 'file') {
      res.writeHead(200, {
        ...headers,
        'Content-Type': DOWNLOAD_MIME[extname(found.filename).toLowerCase()] ?? 'application/octet-stream',
        'Content-Length': statSync(found.path).size,
      });
      createReadStream(found.path).pipe(res);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': 'application/zip' });
    try {
      await zipFolderTo(found.path, res);
      res.end();
    } catch (e) {
      // headers are gone: cut the connection so the client sees a broken download, not a short zip
      res.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }

  function serveStatic(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'method not allowed', 'text/plain');
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      return send(res, 400, 'bad path', 'text/plain');
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = normalize(join(staticDir, rel));
    if (!file.startsWith(staticDir + sep)) return send(res, 403, 'forbidden', 'text/plain');
    let target = file;
    if (!existsSync(target) || !statSync(target).isFile()) {
      if (extname(rel)) return send(res, 404, 'not found', 'text/plain');
      target = join(staticDir, 'index.html'); // single-page app routes
      if (!existsSync(target)) {
        return send(
          res,
          503,
          'The renderer is not built: run `npm run build:renderer`.',
          'text/plain; charset=utf-8',
        );
      }
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Security-Policy': CSP,
      'Content-Type': MIME[extname(target)] ?? 'application/octet-stream',
      'Cache-Control': target.endsWith('index.html') ? 'no-store' : 'max-age=3600',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(target).pipe(res);
  }

  const server = createServer((req, res) => {
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`)
      return send(res, 421, 'wrong host', 'text/plain');
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (url.pathname === '/login') return login(res, url);
    if (url.pathname.startsWith('/api/')) {
      api(req, res, url).catch((e: unknown) => {
        if (!res.headersSent) fail(res, 'internal', e instanceof Error ? e.message : String(e));
      });
      return;
    }
    serveStatic(req, res, url);
  });

  const unsubscribe = services.subscribe((e) => {
    const frame = `data: ${encodeWire(e)}\n\n`;
    for (const res of sse) res.write(frame);
  });

  await new Promise<void>((ok, ko) => {
    server.once('error', ko);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', ko);
      ok();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    port,
    token,
    url: newLink(),
    newLink,
    async close() {
      unsubscribe();
      for (const res of sse) res.end();
      sse.clear();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
    },
  };
}
