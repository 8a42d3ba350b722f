/**
 * The lab's PACS from the workstation: configured nodes (name, DICOMweb root, authentication; the
 * secret in the secret store), study queries, retrieval into the library with progress, and sending a
 * library series or a DICOM export back. The DICOMweb client is studies/dicomweb.ts; this module adds
 * the nodes, the secrets, progress events and the contract's error shapes. `kdmri pacs` uses the same
 * functions (dicomFilesOfSeries, dicomFilesIn, sendFiles).
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ApiFailure,
  type ApiRequest,
  type ImportFileResult,
  type PacsNodeInfo,
  type PacsSendResult,
  type PacsSeriesInfo,
  type PacsStudyInfo,
} from '../contract/api.js';
import { LimitError, readFileBounded } from '../data/limits.js';
import type { Db, PacsNodeRow } from '../store/db.js';
import { tempSibling } from '../store/model-files.js';
import { StoreError } from '../store/util.js';
import {
  PacsError,
  searchSeries,
  searchStudies,
  storeInstances,
  type PacsSettings,
} from '../studies/dicomweb.js';
import { exportSeriesDicom } from '../studies/export.js';
import { getSeries, seriesInstances } from '../studies/index.js';
import type { ServiceContext } from './context.js';
import type { SecretStore } from './secrets.js';

/** STOW-RS requests carry at most this many bytes of instances each (a big series goes in several). */
export const STOW_BATCH_BYTES = 32 * 1024 * 1024;

/** A node's DICOMweb settings, its secret from the store. */
export function pacsSettings(node: PacsNodeRow, secrets: SecretStore): PacsSettings {
  if (node.authKind === 'none') return { url: node.url, auth: { kind: 'none' } };
  const secret = secrets.get(node.name);
  if (secret === null)
    throw new ApiFailure(
      'bad-request',
      `PACS node "${node.name}" has no ${node.authKind === 'basic' ? 'password' : 'token'} stored: set it in the node's settings`,
      'secret',
    );
  return node.authKind === 'basic'
    ? { url: node.url, auth: { kind: 'basic', user: node.username ?? '', password: secret } }
    : { url: node.url, auth: { kind: 'bearer', token: secret } };
}

/** True for a DICOM Part 10 file (preamble + "DICM"): only its first 132 bytes are read. */
function isPart10(path: string): boolean {
  const head = Buffer.alloc(132);
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    return readSync(fd, head, 0, 132, 0) === 132 && head.toString('latin1', 128, 132) === 'DICM';
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** The DICOM Part 10 files under a folder (or the file itself), recursively, in name order. */
export function dicomFilesIn(path: string): string[] {
  const walk = (p: string): string[] =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .sort()
          .flatMap((n) => walk(join(p, n)))
      : [p];
  return walk(path).filter(isPart10);
}

/**
 * The files to send for a library series: its original DICOM files when they are all still there,
 * else (NIfTI, HDF5, uploaded files since removed) the series exported as a derived DICOM series into
 * `tmpDir`. The caller removes `tmpDir`.
 */
export function dicomFilesOfSeries(db: Db, uid: string, tmpDir: string): { paths: string[]; sent: string } {
  if (!getSeries(db, uid)) throw new ApiFailure('not-found', `no series ${uid} in the library`, 'seriesUid');
  const kind = (
    db.sqlite.prepare('SELECT source_kind FROM series WHERE series_uid = ?').get(uid) as {
      source_kind: string;
    }
  ).source_kind;
  if (kind === 'dicom') {
    const paths = [...new Set(seriesInstances(db, uid).map((i) => i.path))];
    if (paths.length && paths.every((p) => existsSync(p))) return { paths, sent: 'original files' };
  }
  return { paths: exportSeriesDicom(db, uid, tmpDir).paths, sent: 'derived series' };
}

/** STOW-RS the files in batches of at most STOW_BATCH_BYTES (memory stays bounded for big series). */
export async function sendFiles(s: PacsSettings, paths: string[]): Promise<Omit<PacsSendResult, 'sent'>> {
  const out: Omit<PacsSendResult, 'sent'> = { total: paths.length, stored: [], failed: [] };
  let batch: Buffer[] = [];
  let bytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    const r = await storeInstances(s, batch);
    out.stored.push(...r.stored);
    out.failed.push(...r.failed);
    batch = [];
    bytes = 0;
  };
  for (const p of paths) {
    const b = readFileBounded(p);
    if (bytes + b.length > STOW_BATCH_BYTES) await flush();
    batch.push(b);
    bytes += b.length;
  }
  await flush();
  return out;
}

/** A PACS failure as the contract's error: the user's to fix (credentials, URL) or the PACS's. */
function pacsFailure(e: unknown, node: string): never {
  if (e instanceof ApiFailure) throw e;
  if (e instanceof LimitError) throw new ApiFailure('too-large', `PACS "${node}": ${e.message}`, 'nodeId');
  if (e instanceof PacsError) {
    const auth = e.status === 401 || e.status === 403;
    throw new ApiFailure(
      auth ? 'bad-request' : 'unavailable',
      `PACS "${node}": ${e.message}`,
      auth ? 'secret' : 'nodeId',
    );
  }
  throw e;
}

/** DICOM date range from two optional YYYY-MM-DD / YYYYMMDD ends. */
function dateRange(from?: string, to?: string): string | undefined {
  const d = (x?: string) => (x ? x.replace(/-/g, '') : '');
  if (!from && !to) return undefined;
  if (from && to && d(from) === d(to)) return d(from);
  return `${d(from)}-${d(to)}`;
}

export function createPacs(
  ctx: ServiceContext,
  deps: {
    secrets: SecretStore;
    resolveExport(exportId: string): string;
    /** The studies service's background import (progress and summary as import events). */
    trackImport(
      run: (
        onFile: (done: number, total: number, file: ImportFileResult) => void,
        importId: string,
      ) => Promise<ImportFileResult[]>,
    ): string;
  },
) {
  const { db, emit } = ctx;
  const { secrets } = deps;

  const info = (n: PacsNodeRow): PacsNodeInfo => {
    const place = secrets.place(n.name);
    return {
      id: n.id,
      name: n.name,
      url: n.url,
      auth: n.authKind,
      user: n.username,
      hasSecret: place !== null,
      secretIn: place,
    };
  };

  function node(id: number): PacsNodeRow {
    const n = db.pacsNodes.get(id);
    if (!n) throw new ApiFailure('not-found', `no PACS node ${id}`, 'nodeId');
    return n;
  }

  /** A node by name (the CLI's --node). */
  function settingsByName(name: string): PacsSettings {
    const n = db.pacsNodes.byName(name);
    if (!n) throw new ApiFailure('not-found', `no PACS node named "${name}" (see kdmri pacs nodes)`, 'node');
    return pacsSettings(n, secrets);
  }

  async function retrieve(
    importId: string,
    n: PacsNodeRow,
    studyUid: string,
    seriesUids: string[] | undefined,
    onFile: (done: number, total: number, file: ImportFileResult) => void,
  ): Promise<ImportFileResult[]> {
    const s = pacsSettings(n, secrets);
    const stage = (message: string, done: number, total: number) =>
      emit({ channel: 'import', importId, event: { type: 'stage', message, done, total } });
    stage(`asking ${n.name} for the series of the study`, 0, 1);
    const listed = await searchSeries(s, studyUid);
    const wanted = seriesUids ? listed.filter((x) => seriesUids.includes(x.uid)) : listed;
    for (const uid of seriesUids ?? [])
      if (!listed.some((x) => x.uid === uid))
        throw new ApiFailure(
          'not-found',
          `series ${uid} is not in study ${studyUid} on ${n.name}`,
          'seriesUids',
        );
    if (!wanted.length)
      throw new ApiFailure('not-found', `study ${studyUid} has no series on ${n.name}`, 'studyUid');
    let total = wanted.reduce((t, x) => t + (x.instances ?? 1), 0);
    let done = 0;
    const files: ImportFileResult[] = [];
    for (const [i, se] of wanted.entries()) {
      stage(
        `receiving series ${i + 1} of ${wanted.length} (${se.description || se.modality || se.uid}, ${se.instances ?? '?'} instances)`,
        i,
        wanted.length,
      );
      const before = done;
      // received and imported in a work thread: this event loop stays free
      const rs = await ctx.work.run(
        'retrieve',
        {
          dbPath: ctx.dbPath,
          settings: s,
          studyUid,
          seriesUid: se.uid,
          storeDir: join(ctx.dataDir, 'dicom'),
        },
        {
          onProgress: ({ done: d, total: t, file }) => {
            // the PACS's instance count was an estimate: correct the total once the files are here
            if (d === 1) total += t - (se.instances ?? 1);
            done++;
            onFile(done, total, file);
          },
        },
      );
      done = before + rs.length;
      files.push(...rs);
      if (rs.some((r) => r.status === 'imported')) emit({ channel: 'library', what: 'studies' });
    }
    return files;
  }

  return {
    settingsByName,
    handlers: {
      async listPacsNodes(): Promise<PacsNodeInfo[]> {
        return db.pacsNodes.list().map(info);
      },
      async savePacsNode(req: ApiRequest<'savePacsNode'>): Promise<PacsNodeInfo> {
        const before = req.id !== undefined ? node(req.id) : null;
        const user = req.auth === 'basic' ? (req.user ?? '').trim() : '';
        if (req.auth === 'basic' && !user)
          throw new ApiFailure('bad-request', 'basic authentication needs a user name', 'user');
        // an edit keeps the stored secret (under the old name when renamed) if the kind stays the same
        const keeps = !!before && before.authKind === req.auth && secrets.get(before.name) !== null;
        if (req.auth !== 'none' && !req.secret && !keeps && secrets.get(req.name) === null)
          throw new ApiFailure(
            'bad-request',
            `${req.auth === 'basic' ? 'a password' : 'a token'} is needed for ${req.auth} authentication`,
            'secret',
          );
        let row: PacsNodeRow;
        try {
          row = db.pacsNodes.save(
            { name: req.name, url: req.url.replace(/\/+$/, ''), authKind: req.auth, username: user || null },
            req.id,
          );
        } catch (e) {
          if (e instanceof StoreError) throw new ApiFailure('conflict', e.message, 'name');
          throw e;
        }
        // a renamed node takes its secret along; 'none' keeps none
        if (before && before.name !== row.name) {
          const old = secrets.get(before.name);
          secrets.remove(before.name);
          if (old !== null && !req.secret && row.authKind !== 'none') secrets.set(row.name, old);
        }
        if (row.authKind === 'none') secrets.remove(row.name);
        else if (req.secret) secrets.set(row.name, req.secret);
        return info(row);
      },
      async deletePacsNode(req: ApiRequest<'deletePacsNode'>): Promise<{ deleted: boolean }> {
        const n = node(req.id);
        secrets.remove(n.name);
        return { deleted: db.pacsNodes.remove(n.id) };
      },
      async pacsQuery(req: ApiRequest<'pacsQuery'>): Promise<PacsStudyInfo[]> {
        const n = node(req.nodeId);
        const filters: Record<string, string> = {};
        // a name matches anywhere in it, as a technician expects from a search box
        if (req.patientName?.trim()) filters.PatientName = `*${req.patientName.trim()}*`;
        if (req.patientId?.trim()) filters.PatientID = req.patientId.trim();
        const dates = dateRange(req.dateFrom, req.dateTo);
        if (dates) filters.StudyDate = dates;
        if (req.modality) filters.ModalitiesInStudy = req.modality;
        try {
          return await searchStudies(pacsSettings(n, secrets), filters, req.limit);
        } catch (e) {
          pacsFailure(e, n.name);
        }
      },
      async pacsSeries(req: ApiRequest<'pacsSeries'>): Promise<PacsSeriesInfo[]> {
        const n = node(req.nodeId);
        try {
          return await searchSeries(pacsSettings(n, secrets), req.studyUid);
        } catch (e) {
          pacsFailure(e, n.name);
        }
      },
      /** Answers at once; progress, then the summary, arrive as import events. */
      async pacsRetrieve(req: ApiRequest<'pacsRetrieve'>): Promise<{ importId: string }> {
        const n = node(req.nodeId);
        pacsSettings(n, secrets); // a missing secret is said now, not in an event
        const importId = deps.trackImport((onFile, id) =>
          retrieve(id, n, req.studyUid, req.seriesUids, onFile).catch((e: unknown) => pacsFailure(e, n.name)),
        );
        return { importId };
      },
      async pacsSend(req: ApiRequest<'pacsSend'>): Promise<PacsSendResult> {
        const n = node(req.nodeId);
        const s = pacsSettings(n, secrets);
        const tmp = tempSibling(join(ctx.dataDir, 'stow'));
        try {
          let paths: string[];
          let sent: string;
          if ('seriesUid' in req.source) {
            ({ paths, sent } = dicomFilesOfSeries(db, req.source.seriesUid, tmp));
          } else {
            paths = dicomFilesIn(deps.resolveExport(req.source.exportId));
            sent = `export ${req.source.exportId}`;
            if (!paths.length)
              throw new ApiFailure(
                'bad-request',
                `export ${req.source.exportId} holds no DICOM files`,
                'exportId',
              );
          }
          const r = await sendFiles(s, paths).catch((e: unknown) => pacsFailure(e, n.name));
          if (r.stored.length === 0)
            throw new ApiFailure(
              'unavailable',
              `PACS "${n.name}" stored none of the ${r.total} instances${r.failed[0] ? ` (${r.failed[0].reason})` : ''}`,
              'nodeId',
            );
          return { ...r, sent };
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      },
    },
  };
}

export type Pacs = ReturnType<typeof createPacs>;
