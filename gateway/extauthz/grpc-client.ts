// The gRPC authorization service (Envoy's GrpcClientImpl, filters/common/ext_authz/ext_authz_grpc_impl.cc): a
// unary envoy.service.auth.v3.Authorization/Check over the cluster's HTTP/2 pool.
//
// The call: POST /envoy.service.auth.v3.Authorization/Check, :authority the configured authority (Istio: the
// service's hostname), content-type application/grpc, te: trailers, grpc-timeout, the initial_metadata, the
// async client's x-envoy-internal / x-forwarded-for (unless skip_envoy_headers) and the router's
// x-envoy-expected-rq-timeout-ms.
//
// The answer: a gRPC status other than OK, a non-200 HTTP status, a reset, a timeout, a message that does not
// decode: error. status.code OK: allowed with ok_response's mutations (headers by their deprecated `append`
// when set, else by append_action; headers removed; query parameters set and removed). Any other code: denied,
// 403 unless denied_response.status says otherwise, with its headers and body. dynamic_metadata (or the deprecated ok_response.dynamic_metadata, which wins) is kept.
import { decodeToJson, encodeJson, envoyRoot, type JsonObject } from '../../xds/protos.ts';
import { callCluster, type CallResult, type PendingCall } from './cluster-call.ts';
import { checkRequestJson, type CheckInput } from './check-request.ts';
import type { GrpcServiceSpec } from './config.ts';
import { proxyAddress } from './local-address.ts';
import { emptyResponse, errorResponse, type AuthzResponse, type HeaderMutation, type MutationAction } from './response.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
const CHECK_REQUEST = 'envoy.service.auth.v3.CheckRequest';
const CHECK_RESPONSE = 'envoy.service.auth.v3.CheckResponse';

/** A length-prefixed gRPC message (uncompressed). */
export function grpcFrame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

function encodeCheckRequest(c: CheckInput): Uint8Array {
  return encodeJson(CHECK_REQUEST, checkRequestJson(c));
}

function grpcTimeout(ms: number): string {
  return `${ms}m`;
}

function grpcCheckHeaders(s: GrpcServiceSpec): string[] {
  const h = ['host', s.authority, 'content-type', 'application/grpc', 'te', 'trailers'];
  if (s.timeoutMs > 0) h.push('grpc-timeout', grpcTimeout(s.timeoutMs));
  for (const [k, v] of s.initialMetadata) h.push(k, v);
  // skip_envoy_headers turns off the async client's own headers; the router's timeout header stays.
  if (!s.skipEnvoyHeaders) h.push('x-envoy-internal', 'true', 'x-forwarded-for', proxyAddress());
  if (s.timeoutMs > 0) h.push('x-envoy-expected-rq-timeout-ms', String(s.timeoutMs));
  return h;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function headerOf(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

function httpStatusNumber(code: unknown): number {
  if (typeof code === 'number') return code;
  if (typeof code === 'string') return envoyRoot().lookupEnum('envoy.type.v3.StatusCode').values[code] ?? 0;
  return 0;
}

interface HeaderOption {
  header?: { key?: string; value?: string; raw_value?: string };
  append?: boolean;
  append_action?: string;
}

function headerPair(o: HeaderOption): [string, string] | undefined {
  const key = (o.header?.key ?? '').toLowerCase();
  if (key === '') return undefined;
  const raw = o.header?.raw_value;
  const value = o.header?.value ?? (raw !== undefined ? Buffer.from(raw, 'base64').toString('latin1') : '');
  return [key, value];
}

const ACTIONS: Readonly<Record<string, MutationAction>> = {
  APPEND_IF_EXISTS_OR_ADD: 'add',
  ADD_IF_ABSENT: 'addIfAbsent',
  OVERWRITE_IF_EXISTS_OR_ADD: 'set',
  OVERWRITE_IF_EXISTS: 'overwriteIfExists',
};

/**
 * A HeaderValueOption of the answer as Envoy reads it: the deprecated `append`, when set, decides (true appends
 * to a request header, adds a response header; false overwrites); else `append_action` (default
 * APPEND_IF_EXISTS_OR_ADD: add).
 */
function mutation(o: HeaderOption, response: boolean): HeaderMutation | undefined {
  const p = headerPair(o);
  if (!p) return undefined;
  let action: MutationAction;
  if (o.append !== undefined) action = o.append ? (response ? 'add' : 'append') : 'set';
  else action = ACTIONS[o.append_action ?? 'APPEND_IF_EXISTS_OR_ADD'] ?? 'set';
  return { key: p[0], value: p[1], action };
}

function mutations(list: HeaderOption[] | undefined, response: boolean, into: HeaderMutation[]): void {
  for (const o of list ?? []) {
    const m = mutation(o, response);
    if (m) into.push(m);
  }
}

/** The decoded CheckResponse (proto3 JSON) as Envoy's Response. */
function grpcAuthzResponse(res: JsonObject): AuthzResponse {
  const status = res.status as { code?: number } | undefined;
  const ok = (status?.code ?? 0) === 0;
  const out = emptyResponse(ok ? 'ok' : 'denied');
  if (ok) {
    const okr = res.ok_response as JsonObject | undefined;
    if (okr) {
      mutations(okr.headers as HeaderOption[] | undefined, false, out.requestHeaders);
      for (const n of (okr.headers_to_remove as string[] | undefined) ?? []) out.headersToRemove.push(n.toLowerCase());
      mutations(okr.response_headers_to_add as HeaderOption[] | undefined, true, out.responseHeaders);
      for (const q of (okr.query_parameters_to_set as { key?: string; value?: string }[] | undefined) ?? []) out.queryToSet.push([q.key ?? '', q.value ?? '']);
      for (const n of (okr.query_parameters_to_remove as string[] | undefined) ?? []) out.queryToRemove.push(n);
    }
  } else {
    const d = res.denied_response as JsonObject | undefined;
    if (d) {
      mutations(d.headers as HeaderOption[] | undefined, true, out.requestHeaders);
      const code = httpStatusNumber((d.status as { code?: unknown } | undefined)?.code);
      // A code no HTTP reply can carry (a 1xx, or past 599) keeps the default 403 rather than break the reply.
      if (code >= 200 && code <= 599) out.statusCode = code;
      out.body = typeof d.body === 'string' ? d.body : '';
    }
  }
  const okMeta = (res.ok_response as JsonObject | undefined)?.dynamic_metadata;
  const meta = (okMeta ?? res.dynamic_metadata) as Record<string, unknown> | undefined;
  if (meta && Object.keys(meta).length > 0) out.dynamicMetadata = meta;
  return out;
}

/** The buffered HTTP/2 answer of a Check call as Envoy's Response. */
function grpcCallResponse(r: CallResult): AuthzResponse {
  if (!r.ok) return errorResponse(r.reason);
  if (r.status !== 200) return errorResponse(`authorization service answered HTTP ${r.status}`);
  // A trailers-only answer carries grpc-status in its headers.
  const gs = first(r.trailers['grpc-status']) ?? headerOf(r.headers, 'grpc-status');
  if (gs === undefined) return errorResponse('no grpc-status');
  if (gs !== '0') return errorResponse(`grpc-status ${gs}`);
  const b = r.body;
  if (b.length < 5) return errorResponse('no response message');
  if (b[0] !== 0) return errorResponse('compressed response message');
  const len = b.readUInt32BE(1);
  if (b.length < 5 + len) return errorResponse('truncated response message');
  let res: JsonObject;
  try {
    res = decodeToJson(CHECK_RESPONSE, b.subarray(5, 5 + len));
  } catch (e) {
    return errorResponse(`bad CheckResponse: ${(e as Error).message}`);
  }
  return grpcAuthzResponse(res);
}

/** Sends the Check call; `done` runs once (maybe before this returns), never after cancel(). */
export function grpcCheck(clusters: ClusterManager, s: GrpcServiceSpec, c: CheckInput, done: (r: AuthzResponse) => void): PendingCall {
  let body: Buffer;
  try {
    body = grpcFrame(encodeCheckRequest(c));
  } catch (e) {
    done(errorResponse(`CheckRequest: ${(e as Error).message}`));
    return { cancel: () => undefined };
  }
  return callCluster(
    clusters,
    { cluster: s.cluster, method: 'POST', path: CHECK_PATH, headers: grpcCheckHeaders(s), body, timeoutMs: s.timeoutMs, h2: true },
    (r) => done(grpcCallResponse(r)),
  );
}
