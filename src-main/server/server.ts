/**
 * Web mode: the API contract over HTTP + Server-Sent Events, and the built renderer as static files.
 *
 *  - bound to 127.0.0.1 only; the Host header must name that address (DNS-rebinding guard);
 *  - every /api/ route needs the random per-launch token: header `X-KDMRI-Token`, or `?token=` on
 *    /api/events only (EventSource cannot set headers); otherwise 401;
 *  - POST /api/<op> with a JSON body validated by the contract's zod schema (400 naming the field);
 *    answers an ApiResult, Float32Arrays as base64 (contract encodeWire);
 *  - GET /api/events streams ApiEvents;
 *  - GET /api/download/<ticket> streams an export named by downloadExport (a folder as a zip);
 *  - everything else serves build/renderer with a strict Content-Security-Policy.
 * The page learns the token only from the URL it is opened with: http://127.0.0.1:PORT/#token=….
 */
import { RENDERER_CSP } from '../contract/csp.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { encodeWire, type ApiErrorCode, type ApiResult } from '../contract/api.js';
import type { Services } from '../services/index.js';
import { zipFolderTo } from '../services/exports.js';

export const TOKEN_HEADER = 'x-kdmri-token';

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
  unavailable: 503,
  internal: 500,
};

const MAX_BODY = 1 << 20;

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
}

export interface RunningServer {
  port: number;
  token: string;
  /** The URL to open: http://127.0.0.1:PORT/#token=TOKEN */
  url: string;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

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

  const tokenOk = (given: string | null | undefined): boolean => {
    if (!given) return false;
    const b = Buffer.from(given);
    return b.length === tokenBuf.length && timingSafeEqual(b, tokenBuf);
  };

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
  const fail = (res: ServerResponse, code: ApiErrorCode, message: string, where?: string) =>
    sendResult(res, { ok: false, error: where ? { code, message, where } : { code, message } });

  function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((ok, ko) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          ko(new Error('request body over 1 MiB'));
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
      req.on('error', ko);
    });
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL) {
    const op = url.pathname.slice('/api/'.length);
    if (op === 'events') {
      if (
        !tokenOk(req.headers[TOKEN_HEADER] as string | undefined) &&
        !tokenOk(url.searchParams.get('token'))
      ) {
        return fail(res, 'unauthorized', 'missing or wrong token');
      }
      if (req.method !== 'GET') return fail(res, 'bad-request', 'use GET for /api/events');
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
    if (op.startsWith('download/')) return download(req, res, op.slice('download/'.length));
    // the token travels only as a header on operations (never in a URL that may be logged)
    if (!tokenOk(req.headers[TOKEN_HEADER] as string | undefined))
      return fail(res, 'unauthorized', 'missing or wrong token');
    if (req.method !== 'POST') return fail(res, 'bad-request', `use POST for /api/${op}`);
    const type = String(req.headers['content-type'] ?? '');
    if (!type.startsWith('application/json'))
      return fail(res, 'bad-request', 'Content-Type must be application/json', 'content-type');
    let body: unknown = {};
    try {
      const text = await readBody(req);
      body = text.trim() ? (JSON.parse(text) as unknown) : {};
    } catch (e) {
      return fail(res, 'bad-request', `body: ${(e as Error).message}`, '(body)');
    }
    sendResult(res, await services.call(op, body));
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
    url: `http://127.0.0.1:${port}/#token=${token}`,
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
