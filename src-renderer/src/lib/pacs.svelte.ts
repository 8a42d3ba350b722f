/** The PACS nodes and the one the Studies page works with (query, retrieve, send). */
import type { PacsNodeInfo } from '../../../src-main/contract/api';
import { api, errorText } from './api';

export const pacs = $state({
  nodes: [] as PacsNodeInfo[],
  nodeId: null as number | null,
  error: '',
});

export async function refreshNodes(): Promise<void> {
  try {
    pacs.nodes = await api.listPacsNodes({});
    pacs.error = '';
    if (!pacs.nodes.some((n) => n.id === pacs.nodeId)) pacs.nodeId = pacs.nodes[0]?.id ?? null;
  } catch (e) {
    pacs.error = errorText(e);
  }
}

export const currentNode = (): PacsNodeInfo | null => pacs.nodes.find((n) => n.id === pacs.nodeId) ?? null;
