// envoy.filters.http.ext_authz (source/extensions/filters/http/ext_authz/ext_authz.cc): what a CUSTOM
// AuthorizationPolicy becomes on a gateway. istiod puts it after an RBAC filter whose shadow rules record the
// matched CUSTOM policy in the dynamic metadata; filter_enabled_metadata makes the check run only then.
//
//   - No route: no check (Envoy skips the filter). filter_enabled_metadata not matching: `ext_authz.disabled`.
//   - with_request_body: the body is buffered first (not for upgrades or bodiless requests); more than
//     max_request_bytes is Envoy's 413 unless allow_partial_message, which sends the first max_request_bytes.
//   - OK: `ext_authz.ok`, the request mutations applied (headers set, added, appended, removed; query parameters
//     set and removed), success response headers kept for the response, the chain continues.
//   - Denied: `ext_authz.denied`, the service's status, body and headers to the client, response flag UAEX,
//     details `ext_authz_denied`; the route's cluster counts the status (charge_cluster_response_stats).
//   - Error (5xx, reset, timeout, no cluster, bad answer): `ext_authz.error`; with failure_mode_allow the request
//     goes on (`ext_authz.failure_mode_allowed`, and `x-envoy-auth-failure-mode-allowed: true` with
//     failure_mode_allow_header_add), else status_on_error (403) with an empty body, UAEX, `ext_authz_error`.
//   - The client going away cancels the call; a late answer is dropped.
import type { FilterCallbacks, FilterFactoryContext, HttpFilterFactory, StreamFilter } from '../http/filter.ts';
import { UAEX } from '../http/response-flags.ts';
import type { PendingCall } from './cluster-call.ts';
import { connectionPeers, httpAttributes, type CheckInput } from './check-request.ts';
import type { ExtAuthzSpec } from './config.ts';
import { grpcCheck } from './grpc-client.ts';
import { httpCheck } from './http-client.ts';
import { applyMutations, type AuthzResponse, type HeaderMutation } from './response.ts';

const EXT_AUTHZ_FILTER = 'envoy.filters.http.ext_authz';
const FAILURE_MODE_ALLOWED_HEADER = 'x-envoy-auth-failure-mode-allowed';

/** Headers of a denied answer the reply writer owns (framing, hop-by-hop, date, server). */
const REPLY_OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'server', 'proxy-connection', 'upgrade']);

const STATS = [
  'ok',
  'denied',
  'error',
  'disabled',
  'failure_mode_allowed',
  'invalid',
  'ignored_dynamic_metadata',
  'filter_state_name_collision',
  'omitted_response_headers',
] as const;
type StatName = (typeof STATS)[number];

let nextStreamId = 1;

function isUpgrade(cb: FilterCallbacks): boolean {
  if (cb.method === 'CONNECT') return true;
  const h = cb.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'upgrade') return true;
  return false;
}

/** Envoy's QueryParamsMulti: parameters by name (sorted), values kept raw, rebuilt as `?k=v&...`. */
function rewriteQuery(path: string, set: readonly [string, string][], remove: readonly string[]): string {
  const q = path.indexOf('?');
  const base = q < 0 ? path : path.slice(0, q);
  const params = new Map<string, string[]>();
  if (q >= 0) {
    for (const part of path.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const k = eq < 0 ? part : part.slice(0, eq);
      const v = eq < 0 ? '' : part.slice(eq + 1);
      const l = params.get(k);
      if (l) l.push(v);
      else params.set(k, [v]);
    }
  }
  for (const [k, v] of set) params.set(k, [v]);
  for (const k of remove) params.delete(k);
  const keys = [...params.keys()].sort();
  const parts: string[] = [];
  for (const k of keys) for (const v of params.get(k) ?? []) parts.push(`${k}=${v}`);
  return parts.length === 0 ? base : `${base}?${parts.join('&')}`;
}

class ExtAuthzFilter implements StreamFilter {
  private readonly spec: ExtAuthzSpec;
  private readonly ctx: FilterFactoryContext;
  private readonly stats: Record<StatName, number>;
  private pending: PendingCall | undefined;
  private initiating = false;
  /** The answer arrived while check() was still running: decodeHeaders continues inline. */
  private inlineContinue = false;
  private destroyed = false;
  private startedAt = 0;
  private responseMutations: HeaderMutation[] = [];

  /** The HCM's downstream_rq_too_large, when a body over max_request_bytes is refused. */
  private readonly tooLarge: number | undefined;

  constructor(spec: ExtAuthzSpec, ctx: FilterFactoryContext, stats: Record<StatName, number>, tooLarge: number | undefined) {
    this.spec = spec;
    this.ctx = ctx;
    this.stats = stats;
    this.tooLarge = tooLarge;
  }

  decodeHeaders(cb: FilterCallbacks): 'continue' | 'stop' {
    if (cb.route() === undefined) return 'continue';
    const enabled = this.spec.filterEnabled;
    if (enabled && !enabled({ metadata: (f, p) => cb.metadataLookup?.(f, p) })) {
      this.ctx.store.inc(this.stats.disabled);
      return 'continue';
    }
    const body = this.spec.withBody;
    if (body && !cb.endStream && !isUpgrade(cb)) {
      // One byte past the limit tells a body over it from one that is exactly max_request_bytes.
      cb.bufferBody(body.maxBytes + 1).then(
        (b) => this.guard(cb, () => this.afterBody(cb, b.body, b.complete)),
        (e: unknown) => this.guard(cb, () => (cb.finished ? undefined : cb.internalError(e, 'ext_authz request body'))),
      );
      return 'stop';
    }
    return this.initiate(cb, undefined) ? 'continue' : 'stop';
  }

  private guard(cb: FilterCallbacks, f: () => void): void {
    if (this.destroyed || cb.finished) return;
    try {
      f();
    } catch (e) {
      cb.internalError(e, 'ext_authz');
    }
  }

  private afterBody(cb: FilterCallbacks, data: Buffer, complete: boolean): void {
    const s = this.spec.withBody as NonNullable<ExtAuthzSpec['withBody']>;
    const over = data.length > s.maxBytes;
    if (over && !s.allowPartial) {
      // Envoy's decoder buffer limit: the HCM counts it and answers 413.
      if (this.tooLarge !== undefined) this.ctx.store.inc(this.tooLarge);
      cb.sendLocalReply({ status: 413, body: 'Payload Too Large', details: 'request_payload_too_large' });
      return;
    }
    const sent = over ? data.subarray(0, s.maxBytes) : data;
    if (this.initiate(cb, { data: sent, partial: over || !complete })) cb.continueDecoding();
  }

  /** Starts the check. True when the chain may go on right away (the answer came inline and allows). */
  private initiate(cb: FilterCallbacks, body: { data: Buffer; partial: boolean } | undefined): boolean {
    const spec = this.spec;
    const d = cb.downstream;
    const peers = connectionPeers(
      {
        remoteAddress: d.remoteAddress,
        remotePort: d.remotePort,
        localAddress: d.localAddress,
        localPort: d.localPort,
        tlsSocket: d.tlsSocket,
      },
      spec.includePeerCertificate,
    );
    this.startedAt = performance.now();
    const input: CheckInput = {
      ...peers,
      timeMs: Date.now(),
      http: httpAttributes(
        {
          method: cb.method,
          path: cb.path,
          authority: cb.authority,
          scheme: cb.scheme,
          protocol: cb.protocol,
          headers: cb.headers,
          requestId: cb.requestId,
        },
        {
          allowed: spec.allowedHeaders,
          disallowed: spec.disallowedHeaders,
          body,
          packAsBytes: spec.withBody?.packAsBytes ?? false,
          id: String(nextStreamId++),
        },
      ),
    };
    this.initiating = true;
    this.inlineContinue = false;
    const done = (r: AuthzResponse): void => {
      this.pending = undefined;
      this.guard(cb, () => this.onComplete(cb, r));
    };
    const svc = spec.service;
    this.pending =
      svc.kind === 'http' ? httpCheck(cb.clusters, svc, input.http as NonNullable<CheckInput['http']>, done) : grpcCheck(cb.clusters, svc, input, done);
    this.initiating = false;
    return this.inlineContinue;
  }

  private continueDecoding(cb: FilterCallbacks): void {
    if (this.initiating) this.inlineContinue = true;
    else cb.continueDecoding();
  }

  private onComplete(cb: FilterCallbacks, r: AuthzResponse): void {
    const spec = this.spec;
    const store = this.ctx.store;
    if (r.dynamicMetadata) {
      const meta = { ...r.dynamicMetadata };
      if (r.status === 'ok') meta.ext_authz_duration = Math.round(performance.now() - this.startedAt);
      cb.setDynamicMetadata(EXT_AUTHZ_FILTER, meta);
    }
    if (r.status === 'ok') {
      this.applyOk(cb, r);
      store.inc(this.stats.ok);
      this.continueDecoding(cb);
      return;
    }
    if (r.status === 'denied') {
      store.inc(this.stats.denied);
      if (spec.chargeClusterResponseStats) {
        const name = cb.route()?.cluster;
        const cluster = name === undefined ? undefined : cb.clusters.get(name);
        cluster?.chargeStatus(r.statusCode);
      }
      const headers: string[] = [];
      // The reply's own headers are the service's (Envoy removes then adds each one on its local reply).
      applyMutations(
        headers,
        r.requestHeaders.filter((m) => !REPLY_OWNED.has(m.key) && !m.key.startsWith(':')),
      );
      cb.addResponseFlag(UAEX);
      cb.sendLocalReply({ status: r.statusCode, body: r.body, headers, flags: UAEX, details: 'ext_authz_denied' });
      return;
    }
    store.inc(this.stats.error);
    if (r.reason) cb.log.debug({ reason: r.reason, cluster: spec.service.cluster }, 'ext_authz check failed');
    if (spec.failureModeAllow) {
      store.inc(this.stats.failure_mode_allowed);
      if (spec.failureModeAllowHeaderAdd) cb.headers.push(FAILURE_MODE_ALLOWED_HEADER, 'true');
      this.continueDecoding(cb);
      return;
    }
    cb.addResponseFlag(UAEX);
    cb.sendLocalReply({ status: spec.statusOnError, body: '', flags: UAEX, details: 'ext_authz_error' });
  }

  /** The OK answer's request mutations, in Envoy's order: headers, removals, then query parameters. */
  private applyOk(cb: FilterCallbacks, r: AuthzResponse): void {
    let changed = false;
    const plain: HeaderMutation[] = [];
    for (const m of r.requestHeaders) {
      changed = true;
      // :path can be set; other pseudo-headers and host are the request's identity and stay.
      if (m.key === ':path' && (m.action === 'set' || m.action === 'overwriteIfExists')) cb.path = m.value;
      else if (!m.key.startsWith(':') && m.key !== 'host') plain.push(m);
    }
    applyMutations(cb.headers, plain);
    const h = cb.headers;
    for (const k of r.headersToRemove) {
      changed = true;
      // Pseudo-headers and host cannot be removed (the request would be malformed).
      if (k.startsWith(':') || k === 'host') continue;
      for (let i = h.length - 2; i >= 0; i -= 2) if (h[i] === k) h.splice(i, 2);
    }
    if (r.queryToSet.length > 0 || r.queryToRemove.length > 0) {
      changed = true;
      cb.path = rewriteQuery(cb.path, r.queryToSet, r.queryToRemove);
    }
    if (changed && this.spec.clearRouteCache) cb.clearRouteCache();
    this.responseMutations = r.responseHeaders;
  }

  encodeHeaders(_status: number, headers: string[]): void {
    if (this.responseMutations.length > 0) applyMutations(headers, this.responseMutations);
  }

  onDestroy(): void {
    this.destroyed = true;
    this.pending?.cancel();
    this.pending = undefined;
  }
}

/** The factory for one ext_authz entry of an HCM's http_filters: counters registered once, a filter per request. */
export function extAuthzFactory(spec: ExtAuthzSpec, ctx: FilterFactoryContext): HttpFilterFactory {
  const stats = {} as Record<StatName, number>;
  for (const s of STATS) stats[s] = ctx.counter(`ext_authz.${spec.statPrefix}${s}`);
  const tooLarge = spec.withBody && !spec.withBody.allowPartial ? ctx.counter('downstream_rq_too_large') : undefined;
  return { name: EXT_AUTHZ_FILTER, createFilter: () => new ExtAuthzFilter(spec, ctx, stats, tooLarge) };
}
