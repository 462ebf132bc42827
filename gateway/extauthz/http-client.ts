// The HTTP authorization service (Envoy's RawHttpClientImpl, filters/common/ext_authz/ext_authz_http_impl.cc).
//
// The check request: the client's method, path_prefix + its :path, its :authority as host, the allowed request
// headers (authorization, :method, :path, :authority and the allowlist), `content-length` (0 without a body),
// the body, then authorization_request.headers_to_add (overwriting). Envoy's async client adds
// `x-envoy-internal: true` and appends the proxy's own address to `x-forwarded-for`; its router adds
// `x-envoy-expected-rq-timeout-ms`.
//
// The answer: 5xx (or a reset, a timeout, no host): error. 200: allowed; allowed_upstream_headers overwrite the
// request's, allowed_upstream_headers_to_append are appended, allowed_client_headers_on_success go to the
// client's response, dynamic_metadata_from_headers become metadata, and `x-envoy-auth-headers-to-remove` (a
// comma separated list) names request headers to remove. Any other status: denied with that status, the body,
// and the allowed_client_headers.
import { callCluster, type CallResult, type PendingCall } from './cluster-call.ts';
import type { CheckHttp } from './check-request.ts';
import type { HttpServiceSpec } from './config.ts';
import { proxyAddress } from './local-address.ts';
import { emptyResponse, errorResponse, type AuthzResponse } from './response.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';

const HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove';

/** The check request's head, as Envoy's async client sends it. */
function httpCheckHeaders(s: HttpServiceSpec, http: CheckHttp): { method: string; path: string; headers: string[] } {
  const headers: string[] = [];
  let method = 'GET';
  let path = '/';
  let host = '';
  for (const [k, v] of http.headers) {
    if (k === ':method') method = v;
    else if (k === ':path') path = s.pathPrefix + v;
    else if (k === ':authority') host = v;
    else if (k === 'content-length' || k.startsWith(':')) continue;
    else headers.push(k, v);
  }
  const set = (k: string, v: string): void => {
    for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === k) headers.splice(i, 2);
    headers.push(k, v);
  };
  for (const [k, v] of s.headersToAdd) {
    if (k === ':path') path = v;
    else if (k === ':method') method = v;
    else if (k === ':authority' || k === 'host') host = v;
    else set(k, v);
  }
  const xff = headers.indexOf('x-forwarded-for');
  if (xff >= 0 && xff % 2 === 0) headers[xff + 1] = `${headers[xff + 1] as string}, ${proxyAddress()}`;
  else headers.push('x-forwarded-for', proxyAddress());
  set('x-envoy-internal', 'true');
  if (s.timeoutMs > 0) set('x-envoy-expected-rq-timeout-ms', String(s.timeoutMs));
  const length = http.body ? http.body.length : 0;
  return { method, path, headers: ['host', host, 'content-length', String(length), ...headers] };
}

/** Envoy's toResponse for a buffered answer of the HTTP service. */
function httpAuthzResponse(s: HttpServiceSpec, r: CallResult): AuthzResponse {
  if (!r.ok) return errorResponse(r.reason);
  if (r.status >= 500 || r.status < 100) return errorResponse(`authorization service answered ${r.status}`);
  const ok = r.status === 200;
  const out = emptyResponse(ok ? 'ok' : 'denied');
  const h = r.headers;
  for (let i = 0; i < h.length; i += 2) {
    const k = (h[i] as string).toLowerCase();
    const v = h[i + 1] as string;
    if (k === HEADERS_TO_REMOVE) {
      if (ok) for (const n of v.split(',')) if (n.trim() !== '') out.headersToRemove.push(n.trim().toLowerCase());
      continue;
    }
    if (ok ? s.upstream(k) : s.client(k)) out.requestHeaders.push({ key: k, value: v, action: 'set' });
    if (ok && s.upstreamAppend(k)) out.requestHeaders.push({ key: k, value: v, action: 'append' });
    if (ok && s.clientOnSuccess(k)) out.responseHeaders.push({ key: k, value: v, action: 'add' });
    if (s.metadataFromHeaders(k)) (out.dynamicMetadata ??= {})[k] = v;
  }
  if (!ok) {
    out.statusCode = r.status;
    out.body = r.body.toString('utf8');
  }
  return out;
}

/** Sends the check; `done` runs once (maybe before this returns), never after cancel(). */
export function httpCheck(clusters: ClusterManager, s: HttpServiceSpec, http: CheckHttp, done: (r: AuthzResponse) => void): PendingCall {
  const head = httpCheckHeaders(s, http);
  return callCluster(
    clusters,
    {
      cluster: s.cluster,
      method: head.method,
      path: head.path,
      headers: head.headers,
      body: http.body && http.body.length > 0 ? http.body : null,
      timeoutMs: s.timeoutMs,
      h2: false,
    },
    (r) => done(httpAuthzResponse(s, r)),
  );
}
