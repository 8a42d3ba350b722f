/**
 * The renderer's one API client, built on the contract: over `window.kdmri` in Electron (the preload's
 * bridge), over fetch + EventSource in web mode. Chosen once at startup.
 */
import {
  ApiFailure,
  OP_NAMES,
  decodeWire,
  encodeWire,
  type ApiClient,
  type ApiEvent,
  type ApiResult,
  type KdmriBridge,
  type OpName,
} from '../../../src-main/contract/api';

declare global {
  interface Window {
    kdmri?: KdmriBridge;
  }
}

interface Transport {
  kind: 'electron' | 'web';
  call(op: OpName, body: unknown): Promise<ApiResult<unknown>>;
  onEvent(listener: (e: ApiEvent) => void): () => void;
  pickPaths: (() => Promise<string[]>) | null;
}

/**
 * Web mode authenticates with an HttpOnly cookie, set when the page was opened through the one-time
 * link `kdmri serve` printed: the page itself never sees the token (nor puts it in a URL).
 */
function webTransport(): Transport {
  const listeners = new Set<(e: ApiEvent) => void>();
  let source: EventSource | null = null;
  const connect = () => {
    if (source) return;
    source = new EventSource('/api/events');
    source.onmessage = (m: MessageEvent<string>) => {
      const e = decodeWire<ApiEvent>(m.data);
      for (const l of listeners) l(e);
    };
  };
  return {
    kind: 'web',
    async call(op, body) {
      let res: Response;
      try {
        res = await fetch(`/api/${op}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          credentials: 'same-origin',
          body: encodeWire(body ?? {}),
        });
      } catch (e) {
        return {
          ok: false,
          error: {
            code: 'unavailable',
            message: `the workstation server does not answer (${(e as Error).message})`,
          },
        };
      }
      const text = await res.text();
      try {
        return decodeWire<ApiResult<unknown>>(text);
      } catch {
        return {
          ok: false,
          error: { code: 'internal', message: `HTTP ${res.status}: ${text.slice(0, 200)}` },
        };
      }
    },
    onEvent(listener) {
      listeners.add(listener);
      connect();
      return () => listeners.delete(listener);
    },
    pickPaths: null,
  };
}

function electronTransport(bridge: KdmriBridge): Transport {
  return {
    kind: 'electron',
    call: (op, body) => bridge.call(op, body),
    onEvent: (l) => bridge.onEvent(l),
    pickPaths: () => bridge.pickPaths(),
  };
}

export const transport: Transport =
  typeof window !== 'undefined' && window.kdmri ? electronTransport(window.kdmri) : webTransport();

function makeClient(t: Transport): ApiClient {
  const client = {} as Record<OpName, (req: unknown) => Promise<unknown>>;
  for (const op of OP_NAMES) {
    client[op] = async (req: unknown) => {
      const r = await t.call(op, req ?? {});
      if (!r.ok) throw new ApiFailure(r.error.code, r.error.message, r.error.where);
      return r.value;
    };
  }
  return client as unknown as ApiClient;
}

export const api: ApiClient = makeClient(transport);
export const onEvent = (l: (e: ApiEvent) => void) => transport.onEvent(l);

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
