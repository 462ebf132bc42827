// Upstream response headers -> what the client receives, as Envoy produces them: upstream order kept, names
// lowercase, hop-by-hop headers removed (mutateResponseHeaders), x-envoy-upstream-service-time appended by
// the router, then route header ops, then the HCM's `date` (kept if the upstream sent one) and `server`
// (overwritten in place), `connection: close` when closing, and the HTTP/1 encoder's framing.
import { httpDate } from './date.ts';
import { SERVER_APPEND_IF_ABSENT, SERVER_OVERWRITE } from './hcm-config.ts';

export interface ResponseHeaderOptions {
  status: number;
  serviceTimeMs: number;
  serverName: string;
  serverTransformation: number;
  suppressEnvoyHeaders: boolean;
  /** The connection closes after this response. */
  close: boolean;
  /** Response to HEAD: no framing header is added. */
  head: boolean;
  /** Applied after x-envoy-upstream-service-time (route/vhost/config response header ops). */
  mutate: ((headers: string[]) => void) | undefined;
  attemptCount: number;
}

const DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'x-envoy-peer-metadata', 'x-envoy-peer-metadata-id']);

/** `raw` is the upstream pool's raw header list ([name, value, ...] as Buffers or strings). */
export function buildResponseHeaders(raw: readonly (Buffer | string)[], o: ResponseHeaderOptions): { headers: string[]; contentLength: number } {
  const out: string[] = [];
  let contentLength = -1;
  let hasDate = false;
  let serverAt = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as Buffer | string;
    const name = (typeof n === 'string' ? n : n.toString('latin1')).toLowerCase();
    const v = raw[i + 1] as Buffer | string;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    if (DROP.has(name)) continue;
    if (name === 'content-length') {
      contentLength = Number(value);
    } else if (name === 'date') hasDate = true;
    else if (name === 'server') {
      if (serverAt >= 0) continue;
      serverAt = out.length;
    }
    out.push(name, value);
  }
  if (!o.suppressEnvoyHeaders) out.push('x-envoy-upstream-service-time', String(o.serviceTimeMs));
  if (o.attemptCount > 0) out.push('x-envoy-attempt-count', String(o.attemptCount));
  if (o.mutate) o.mutate(out);
  if (!hasDate) out.push('date', httpDate());
  if (o.serverTransformation === SERVER_OVERWRITE) {
    if (serverAt >= 0) out[serverAt + 1] = o.serverName;
    else out.push('server', o.serverName);
  } else if (o.serverTransformation === SERVER_APPEND_IF_ABSENT && serverAt < 0) out.push('server', o.serverName);
  if (o.close) out.push('connection', 'close');
  // HTTP/1 framing: keep a content-length, otherwise chunked for bodies; 1xx/204/304 and HEAD carry none.
  const bodiless = o.status < 200 || o.status === 204 || o.status === 304;
  if (contentLength < 0 && !bodiless && !o.head) out.push('transfer-encoding', 'chunked');
  return { headers: out, contentLength };
}
