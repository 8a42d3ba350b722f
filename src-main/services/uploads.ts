/**
 * Web mode's file uploads: the browser cannot give the server a path, so dropped files and folders
 * (and the file picker's) stream to a temporary folder in the library (`uploads/`), keeping their
 * relative paths (a DICOM folder stays a folder), and are then imported through the same import
 * service as local paths. The folder is removed once the import ends, whatever its outcome; one left
 * by a process that died is swept at the next start (recovery.ts).
 *
 * Limits: bytes per file (the input file-size cap, data/limits.ts), bytes and files per upload
 * (contract UPLOAD_LIMITS); the composition root may set others (tests). A request over a limit is answered 413 naming the file and the limit;
 * the partial file is removed. Memory never depends on a file's size: bytes go to disk as they come.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join, relative, sep } from 'node:path';
import {
  ApiFailure,
  UPLOAD_LIMITS,
  type ImportFileResult,
  type UploadFileResult,
  type UploadLimits,
} from '../contract/api.js';
import { inputLimits } from '../data/limits.js';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../store/home.js';
import { tempSibling } from '../store/model-files.js';
import type { ImportOrigin } from '../studies/import.js';
import type { ServiceContext } from './context.js';

export const UPLOADS_FOLDER = 'uploads';
/** An upload nobody finished is dropped after this long. */
export const UPLOAD_IDLE_MS = 60 * 60 * 1000;

const MiB = (n: number) => `${(n / 1024 ** 2).toFixed(n < 1024 ** 2 ? 2 : 0)} MiB`;

interface Upload {
  dir: string;
  files: Map<string, number>;
  bytes: number;
  /** Bytes being received now (counted against the upload's limit as they arrive). */
  inFlight: number;
  touched: number;
  busy: number;
}

/** A browser's relative path ("study/series/IM1.dcm") as safe path parts, or a bad-request naming it. */
export function uploadPathParts(path: string): string[] {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  const bad = (why: string) => new ApiFailure('bad-request', `path "${path}": ${why}`, 'path');
  if (!parts.length) throw bad('is empty');
  if (parts.length > 32) throw bad('is nested too deeply (32 folders at most)');
  for (const p of parts) {
    if (p === '..') throw bad("must not contain '..'");
    if (p.includes('\0')) throw bad('contains a NUL character');
    if (Buffer.byteLength(p) > 255) throw bad('has a name over 255 bytes');
  }
  return parts;
}

export function createUploads(
  ctx: ServiceContext,
  deps: {
    importNow(
      paths: string[],
      onFile: (done: number, total: number, file: ImportFileResult) => void,
      opts: { origin?: ImportOrigin },
    ): Promise<ImportFileResult[]>;
    limits?: Partial<UploadLimits>;
  },
) {
  // a file over the input file-size cap would be refused by the import anyway: refuse it at the door
  const limits: UploadLimits = { maxFileBytes: inputLimits().maxFileBytes, ...UPLOAD_LIMITS, ...deps.limits };
  const root = join(ctx.dataDir, UPLOADS_FOLDER);
  const uploads = new Map<string, Upload>();

  const tooLarge = (msg: string) => new ApiFailure('too-large', msg, 'body');

  function expire() {
    const now = Date.now();
    for (const [id, u] of uploads)
      if (u.busy === 0 && now - u.touched > UPLOAD_IDLE_MS) {
        uploads.delete(id);
        rmSync(u.dir, { recursive: true, force: true });
      }
  }

  function get(uploadId: string): Upload {
    const u = uploads.get(uploadId);
    if (!u)
      throw new ApiFailure('not-found', `no upload ${uploadId} (finished, discarded or expired)`, 'uploadId');
    u.touched = Date.now();
    return u;
  }

  return {
    limits,
    begin(): { uploadId: string; limits: UploadLimits } {
      expire();
      mkdirPrivate(root);
      const uploadId = randomUUID();
      // a temporary name sweepTempFiles knows: removed at start if this process died
      const dir = tempSibling(join(root, uploadId));
      mkdirPrivate(dir);
      uploads.set(uploadId, { dir, files: new Map(), bytes: 0, inFlight: 0, touched: Date.now(), busy: 0 });
      return { uploadId, limits };
    },

    /**
     * One file's bytes, streamed to disk. `declared` is the request's Content-Length (checked before a
     * byte is read); the count of bytes actually received is checked as they arrive.
     */
    async receive(
      uploadId: string,
      path: string,
      body: AsyncIterable<Uint8Array>,
      declared: number | null,
    ): Promise<UploadFileResult> {
      const u = get(uploadId);
      const parts = uploadPathParts(path);
      const name = parts.join('/');
      if (u.files.has(name)) throw new ApiFailure('conflict', `${name} was uploaded already`, 'path');
      if (u.files.size >= limits.maxFiles)
        throw tooLarge(`${name}: an upload holds at most ${limits.maxFiles} files`);
      const overFile = (n: number) => n > limits.maxFileBytes;
      const overTotal = (n: number) => u.bytes + u.inFlight + n > limits.maxTotalBytes;
      if (declared !== null && overFile(declared))
        throw tooLarge(
          `${name} is ${MiB(declared)}, over the ${MiB(limits.maxFileBytes)} per-file upload limit`,
        );
      if (declared !== null && overTotal(declared))
        throw tooLarge(`${name} would take this upload over its ${MiB(limits.maxTotalBytes)} limit`);
      const final = join(u.dir, ...parts);
      if (relative(u.dir, final).startsWith('..') || !final.startsWith(u.dir + sep))
        throw new ApiFailure('bad-request', `path "${path}" leaves the upload`, 'path');
      mkdirSync(dirname(final), { recursive: true, mode: 0o700 });
      const tmp = tempSibling(final);
      const out = createWriteStream(tmp, { mode: PRIVATE_FILE_MODE });
      // a write failing after we stopped (destroyed on a limit) must not become an uncaught error;
      // one failing while we write is rethrown by once(out, …) below
      out.on('error', () => undefined);
      u.busy++;
      let got = 0;
      try {
        for await (const chunk of body) {
          got += chunk.byteLength;
          u.inFlight += chunk.byteLength;
          if (overFile(got))
            throw tooLarge(`${name} is over the ${MiB(limits.maxFileBytes)} per-file upload limit`);
          if (u.bytes + u.inFlight > limits.maxTotalBytes)
            throw tooLarge(`${name} takes this upload over its ${MiB(limits.maxTotalBytes)} limit`);
          if (!out.write(chunk)) await once(out, 'drain');
        }
        out.end();
        await once(out, 'finish');
        if (declared !== null && got !== declared)
          throw new ApiFailure('bad-request', `${name}: received ${got} of ${declared} bytes`, 'body');
        renameSync(tmp, final);
        u.files.set(name, got);
        u.bytes += got;
        return { path: name, bytes: got };
      } catch (e) {
        out.destroy();
        rmSync(tmp, { force: true });
        throw e;
      } finally {
        u.inFlight -= got;
        u.busy--;
        u.touched = Date.now();
      }
    },

    /** Import what was uploaded; resolves with the import's results (paths relative to the upload). */
    async finish(
      uploadId: string,
      onFile: (done: number, total: number, file: ImportFileResult) => void,
    ): Promise<ImportFileResult[]> {
      const u = get(uploadId);
      if (u.busy) throw new ApiFailure('conflict', `upload ${uploadId} is still receiving files`, 'uploadId');
      if (!u.files.size) {
        uploads.delete(uploadId);
        rmSync(u.dir, { recursive: true, force: true });
        throw new ApiFailure('bad-request', 'nothing was uploaded', 'uploadId');
      }
      uploads.delete(uploadId);
      // results name the user's files, not the temporary folder
      const named = (f: ImportFileResult): ImportFileResult => ({
        ...f,
        path: relative(u.dir, f.path).split(sep).join('/') || f.path,
      });
      try {
        // a file is from "upload/<its relative path>", whichever temporary folder held it
        const origin = { dir: u.dir, as: 'upload' };
        const files = await deps.importNow([u.dir], (d, t, f) => onFile(d, t, named(f)), { origin });
        return files.map(named);
      } finally {
        rmSync(u.dir, { recursive: true, force: true });
      }
    },

    summary(uploadId: string): { files: number; bytes: number } {
      const u = get(uploadId);
      return { files: u.files.size, bytes: u.bytes };
    },

    discard(uploadId: string): boolean {
      const u = uploads.get(uploadId);
      if (!u) return false;
      uploads.delete(uploadId);
      rmSync(u.dir, { recursive: true, force: true });
      return true;
    },

    /** Remove every upload folder (at close). */
    close(): void {
      for (const u of uploads.values()) rmSync(u.dir, { recursive: true, force: true });
      uploads.clear();
    },
  };
}

export type Uploads = ReturnType<typeof createUploads>;
