/**
 * A DICOMweb client (Node fetch) for the lab's PACS: QIDO-RS search for studies and series, WADO-RS
 * retrieval of a series (multipart/related; type="application/dicom") into the library, STOW-RS
 * store of Part 10 files. Called from Node (Electron main / CLI / web server): PACS such as Orthanc
 * send no CORS headers, so the renderer never calls them directly.
 *
 * Settings: base URL of the DICOMweb root (e.g. http://pacs:8042/dicom-web) and optional basic or
 * bearer authentication. Errors are PacsError with the HTTP status and a one-line reason.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ImportFileResult, PacsSeriesInfo, PacsStudyInfo } from '../contract/api.js';
import { LIMIT_NAMES, LimitError, checkFileSize, formatSize, inputLimits } from '../data/limits.js';
import { writeFileAtomic } from '../store/model-files.js';
import type { Db } from '../store/db.js';
import { importPaths } from './import.js';

export type PacsAuth =
  { kind: 'none' } | { kind: 'basic'; user: string; password: string } | { kind: 'bearer'; token: string };

export interface PacsSettings {
  url: string;
  auth?: PacsAuth;
  /** Request timeout in ms (default 60 s). */
  timeoutMs?: number;
}

export class PacsError extends Error {
  constructor(
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'PacsError';
  }
}

/** A study or series a QIDO-RS search answered: the contract's shapes (the app shows them as they are). */
export type StudyHit = PacsStudyInfo;
export type SeriesHit = PacsSeriesInfo;

/** One attribute of a DICOM JSON object (PS3.18 F.2). */
interface JsonAttr {
  vr?: string;
  Value?: unknown[];
}
type DicomJson = Record<string, JsonAttr>;

function text(o: DicomJson, tag: string): string {
  const v = o[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && v !== null && 'Alphabetic' in v)
    return String((v as { Alphabetic: unknown }).Alphabetic ?? '');
  return String(v);
}
function texts(o: DicomJson, tag: string): string[] {
  return (o[tag]?.Value ?? []).map((v) => String(v));
}
function int(o: DicomJson, tag: string): number | null {
  const t = text(o, tag);
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? n : null;
}

function base(s: PacsSettings): string {
  const u = s.url.trim().replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(u))
    throw new PacsError(`PACS URL must start with http:// or https://, got ${s.url}`);
  return u;
}

function authHeaders(s: PacsSettings): Record<string, string> {
  const a = s.auth ?? { kind: 'none' };
  if (a.kind === 'basic')
    return { Authorization: `Basic ${Buffer.from(`${a.user}:${a.password}`, 'utf8').toString('base64')}` };
  if (a.kind === 'bearer') return { Authorization: `Bearer ${a.token}` };
  return {};
}

async function request(
  s: PacsSettings,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Response> {
  const url = `${base(s)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? 'GET',
      headers: { ...authHeaders(s), ...(init.headers ?? {}) },
      body: init.body ? new Blob([new Uint8Array(init.body)]) : undefined,
      signal: AbortSignal.timeout(s.timeoutMs ?? 60_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new PacsError(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  if (res.status === 401 || res.status === 403)
    throw new PacsError(
      `${init.method ?? 'GET'} ${url}: ${res.status} ${res.statusText} (check the user/password or token)`,
      res.status,
    );
  if (!res.ok && res.status !== 202) {
    const body = (await res.text().catch(() => '')).replace(/\s+/g, ' ').slice(0, 200);
    throw new PacsError(
      `${init.method ?? 'GET'} ${url}: ${res.status} ${res.statusText}${body ? ` — ${body}` : ''}`,
      res.status,
    );
  }
  return res;
}

function query(params: Record<string, string | number | undefined>): string {
  const q = Object.entries(params).filter(([, v]) => v !== undefined && v !== '');
  return q.length
    ? // commas stay literal: PS3.18 separates a list's values with them (includefield=a,b), and a PACS
      // such as Orthanc reads an encoded %2C as part of one value (the extra fields were then dropped)
      `?${q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v)).replace(/%2C/gi, ',')}`).join('&')}`
    : '';
}

async function json(res: Response): Promise<DicomJson[]> {
  if (res.status === 204) return [];
  const t = await res.text();
  if (!t.trim()) return [];
  const v = JSON.parse(t) as unknown;
  if (!Array.isArray(v)) throw new PacsError('QIDO-RS answer is not a JSON array');
  return v as DicomJson[];
}

/** QIDO-RS: studies matching the filters (keyword or tag → value; DICOM wildcards * and ? allowed). */
export async function searchStudies(
  s: PacsSettings,
  filters: Record<string, string> = {},
  limit = 100,
): Promise<StudyHit[]> {
  const res = await request(
    s,
    `/studies${query({ ...filters, limit, includefield: '00081030,00080061,00201206,00201208' })}`,
    { headers: { Accept: 'application/dicom+json' } },
  );
  return (await json(res)).map((o) => ({
    uid: text(o, '0020000D'),
    patientName: text(o, '00100010'),
    patientId: text(o, '00100020'),
    date: text(o, '00080020'),
    description: text(o, '00081030'),
    accession: text(o, '00080050'),
    modalities: texts(o, '00080061'),
    series: int(o, '00201206'),
    instances: int(o, '00201208'),
  }));
}

/** QIDO-RS: series of one study (or all series when `studyUid` is omitted). */
export async function searchSeries(
  s: PacsSettings,
  studyUid?: string,
  filters: Record<string, string> = {},
): Promise<SeriesHit[]> {
  const path = studyUid ? `/studies/${encodeURIComponent(studyUid)}/series` : '/series';
  const res = await request(s, `${path}${query({ ...filters, includefield: '0008103E,00201209' })}`, {
    headers: { Accept: 'application/dicom+json' },
  });
  return (await json(res)).map((o) => ({
    uid: text(o, '0020000E'),
    studyUid: text(o, '0020000D') || studyUid || '',
    modality: text(o, '00080060'),
    description: text(o, '0008103E'),
    number: int(o, '00200011'),
    instances: int(o, '00201209'),
  }));
}

/** Split a multipart/related body into its parts' bodies (RFC 2046). */
export function parseMultipart(body: Buffer, contentType: string): Buffer[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new PacsError(`not a multipart answer (Content-Type: ${contentType})`);
  const delim = Buffer.from(`--${m[1] ?? m[2]}`, 'latin1');
  const parts: Buffer[] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing delimiter "--boundary--"
    const headerEnd = body.indexOf('\r\n\r\n', start, 'latin1');
    if (headerEnd < 0) break;
    start = headerEnd + 4;
    const next = body.indexOf(delim, start);
    if (next < 0) throw new PacsError('truncated multipart answer (no closing boundary)');
    // the CRLF before the next delimiter belongs to the delimiter
    let end = next;
    if (body[end - 2] === 0x0d && body[end - 1] === 0x0a) end -= 2;
    parts.push(body.subarray(start, end));
    pos = next;
  }
  return parts;
}

/** WADO-RS: every instance of a series, as Part 10 bytes. */
export async function retrieveSeries(
  s: PacsSettings,
  studyUid: string,
  seriesUid: string,
): Promise<Buffer[]> {
  const res = await request(
    s,
    `/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}`,
    {
      headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    },
  );
  const body = await boundedBody(res, `series ${seriesUid}`);
  const limits = inputLimits();
  const parts = parseMultipart(body, res.headers.get('content-type') ?? '');
  for (const [i, p] of parts.entries())
    checkFileSize(`series ${seriesUid}, instance ${i + 1}`, p.length, limits);
  return parts;
}

/**
 * A response body read chunk by chunk and refused (the download aborted) as soon as it passes the
 * byte cap, instead of arrayBuffer()'s whatever-the-server-sends.
 */
async function boundedBody(res: Response, what: string): Promise<Buffer> {
  const max = inputLimits().maxBytes;
  const declared = Number(res.headers.get('content-length') ?? NaN);
  const refuse = () =>
    new LimitError(
      `WADO-RS response for ${what} is over the ${formatSize(max)} byte limit; raise it with ${LIMIT_NAMES.maxBytes.option}`,
    );
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw refuse();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) {
        await reader.cancel().catch(() => undefined);
        throw refuse();
      }
      chunks.push(value);
    }
  }
  return Buffer.concat(chunks, total);
}

/**
 * WADO-RS retrieve into the library: the files are kept under `storeDir` (default: a `dicom` folder
 * next to the database, one sub-folder per series) and imported like local files.
 */
export async function retrieveSeriesInto(
  db: Db,
  s: PacsSettings,
  studyUid: string,
  seriesUid: string,
  storeDir?: string,
  onFile?: (done: number, total: number, file: ImportFileResult) => void,
): Promise<ImportFileResult[]> {
  const parts = await retrieveSeries(s, studyUid, seriesUid);
  if (parts.length === 0)
    throw new PacsError(`series ${seriesUid} of study ${studyUid}: the PACS returned no instances`);
  const root =
    storeDir ?? (db.file === ':memory:' ? join(tmpdir(), 'kdmri-dicom') : join(dirname(db.file), 'dicom'));
  const dir = join(root, seriesUid.replace(/[^0-9.]/g, '_'));
  mkdirSync(dir, { recursive: true });
  const paths = parts.map((p, i) => {
    const file = join(dir, `${String(i + 1).padStart(5, '0')}.dcm`);
    writeFileAtomic(file, p);
    return file;
  });
  return importPaths(db, paths, onFile);
}

export interface StowResult {
  stored: string[];
  failed: { sopUid: string; reason: string }[];
}

/** STOW-RS: store Part 10 files (all in one request). */
export async function storeInstances(
  s: PacsSettings,
  files: Buffer[],
  studyUid?: string,
): Promise<StowResult> {
  if (files.length === 0) return { stored: [], failed: [] };
  const boundary = `kdmri-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const f of files) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${f.length}\r\n\r\n`,
        'latin1',
      ),
      f,
      Buffer.from('\r\n', 'latin1'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const path = studyUid ? `/studies/${encodeURIComponent(studyUid)}` : '/studies';
  const res = await request(s, path, {
    method: 'POST',
    headers: {
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      Accept: 'application/dicom+json',
    },
    body: Buffer.concat(chunks),
  });
  const t = await res.text();
  const o = (t.trim() ? JSON.parse(t) : {}) as DicomJson;
  const seq = (tag: string) => (o[tag]?.Value ?? []) as DicomJson[];
  const stored = seq('00081199').map((it) => text(it, '00081155'));
  const failed = seq('00081198').map((it) => ({
    sopUid: text(it, '00081155'),
    reason: `failure reason ${text(it, '00081197') || 'unknown'}`,
  }));
  if (stored.length === 0 && failed.length === 0 && res.status !== 200)
    throw new PacsError(
      `STOW-RS: unexpected answer ${res.status} without Referenced/Failed SOP sequences`,
      res.status,
    );
  return { stored, failed };
}
