/**
 * Follow one background import (local paths, an upload, a PACS retrieve) by the id its start answers.
 * The server may send the import's first events before that answer arrives (it starts at once), so
 * events are listened to from before the start and the early ones replayed once the id is known.
 */
import type { ImportEvent } from '../../../src-main/contract/api';
import { onImport } from './state.svelte';

export async function followImport(start: () => Promise<string>, on: (e: ImportEvent) => void): Promise<string> {
  const early: [string, ImportEvent][] = [];
  let id: string | null = null;
  let off: (() => void) | null = null;
  const deliver = (e: ImportEvent) => {
    on(e);
    if (e.type === 'end' || e.type === 'error') off?.();
  };
  off = onImport((i, e) => {
    if (id === null) early.push([i, e]);
    else if (i === id) deliver(e);
  });
  try {
    id = await start();
  } catch (err) {
    off();
    throw err;
  }
  for (const [i, e] of early.splice(0)) if (i === id) deliver(e);
  return id;
}
