/**
 * Web mode's way to get files to the workstation: a browser gives no paths, so dropped files and
 * folders (and the file pickers') are uploaded. Each file streams to PUT /api/upload/<id>?path=…
 * (the File is the request body: the browser reads it from disk as it sends, nothing is held in
 * memory), then finishUpload imports the lot through the import service; its progress arrives as
 * import events under the returned importId.
 */
import { decodeWire, type ApiResult, type ImportEvent, type UploadFileResult } from '../../../src-main/contract/api';
import { api, errorText } from './api';
import { followImport } from './follow';

export interface PickedFile {
  file: File;
  /** Relative path, '/'-separated: a dropped folder keeps its layout ("series01/IM0001"). */
  path: string;
}

export interface UploadOutcome {
  importId: string | null;
  /** Files the server refused (over a limit) or that failed to send, each with its reason. */
  rejected: { path: string; message: string }[];
  sent: number;
  bytes: number;
}

/** Files in parallel: enough to keep the connection busy, few enough to leave the server room. */
const PARALLEL = 3;

function readAll(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const all: FileSystemEntry[] = [];
  // readEntries answers in chunks (100 in Chromium) until it answers none
  return new Promise((ok, ko) => {
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) return ok(all);
        all.push(...batch);
        next();
      }, ko);
    next();
  });
}

async function walk(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((ok, ko) => (entry as FileSystemFileEntry).file(ok, ko));
    out.push({ file, path });
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry as FileSystemDirectoryEntry)) await walk(child, path, out);
  }
}

/**
 * The files of a drop, folders walked. Must be called during the drop event (a DataTransfer's items are
 * readable only then): the entries are taken synchronously, their contents read afterwards.
 */
export function filesFromDrop(dt: DataTransfer): Promise<PickedFile[]> {
  const entries: FileSystemEntry[] = [];
  for (const item of Array.from(dt.items ?? [])) {
    if (item.kind !== 'file') continue;
    const e = item.webkitGetAsEntry?.();
    if (e) entries.push(e);
  }
  // files put in a DataTransfer by a script (and some platforms' drops) have no entries: plain files
  const plain: PickedFile[] = entries.length
    ? []
    : Array.from(dt.files).map((file) => ({ file, path: file.webkitRelativePath || file.name }));
  return (async () => {
    const out = [...plain];
    for (const e of entries) await walk(e, '', out);
    return out;
  })();
}

/** The files of an <input type=file> (with webkitdirectory: a folder's, with their relative paths). */
export function filesFromInput(input: HTMLInputElement): PickedFile[] {
  return Array.from(input.files ?? []).map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

const MiB = (n: number) => `${(n / 1024 ** 2).toFixed(0)} MiB`;

/** Upload and import; `onSent(done, total)` after each file, then the import's events. */
export async function uploadAndImport(
  files: PickedFile[],
  on: {
    sent(done: number, total: number, path: string): void;
    /** Every file sent or refused, before the import starts. */
    uploaded(o: Omit<UploadOutcome, 'importId'>): void;
    importEvent(e: ImportEvent): void;
  },
): Promise<UploadOutcome> {
  const { uploadId, limits } = await api.beginUpload({});
  const rejected: UploadOutcome['rejected'] = [];
  // say at once what the server would refuse anyway
  const queue = files.filter((f) => {
    if (f.file.size <= limits.maxFileBytes) return true;
    rejected.push({
      path: f.path,
      message: `${MiB(f.file.size)}, over the ${MiB(limits.maxFileBytes)} per-file limit`,
    });
    return false;
  });
  const total = queue.length;
  let done = 0;
  let sent = 0;
  let bytes = 0;
  const one = async (f: PickedFile) => {
    try {
      const res = await fetch(`/api/upload/${uploadId}?path=${encodeURIComponent(f.path)}`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream' },
        credentials: 'same-origin',
        body: f.file,
      });
      const r = decodeWire<ApiResult<UploadFileResult>>(await res.text());
      if (r.ok) {
        sent++;
        bytes += r.value.bytes;
      } else rejected.push({ path: f.path, message: r.error.message });
    } catch (e) {
      rejected.push({ path: f.path, message: `not sent: ${errorText(e)}` });
    }
    on.sent(++done, total, f.path);
  };
  const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) await one(f);
  });
  await Promise.all(workers);
  if (!sent) {
    on.uploaded({ rejected, sent, bytes });
    await api.discardUpload({ uploadId });
    return { importId: null, rejected, sent, bytes };
  }
  on.uploaded({ rejected, sent, bytes });
  const importId = await followImport(async () => (await api.finishUpload({ uploadId })).importId, on.importEvent);
  return { importId, rejected, sent, bytes };
}
