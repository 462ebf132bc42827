// One request through the gateway: Envoy's ActiveStream (HCM) with its HTTP filter chain (filter.ts: the HCM's
// http_filters, run in order on the request headers, in reverse on the response headers) and, as the chain's
// terminal filter, the router. Request sanitising, route selection, direct responses and redirects, cluster
// selection, upstream attempts with retries and timeouts, response headers, local replies, stats and the access log.
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { applyHeaderMutation, type HeaderContext } from '../router/header-ops.ts';
import {
  ACTION_DIRECT,
  ACTION_REDIRECT,
  REQUIRE_TLS_NONE,
  findVirtualHost,
  matchRoute,
  type CompiledRoute,
  type CompiledVirtualHost,
} from '../router/route-config.ts';
import { backOffMs, excludedPriorities, retriableReset, retriableResponse, type RetryPolicy } from '../router/retry-policy.ts';
import type { Cluster } from '../upstream/cluster.ts';
import type { HandshakeError } from '../tls/upstream-context.ts';
import type { UpstreamHandler } from '../upstream/connection-pool.ts';
import type { Host } from '../upstream/host.ts';
import type { HttpStreamReport } from '../stats/istio-metrics.ts';
import { celAttributes } from '../access-log/cel-filter.ts';
import type { AccessLogEntry } from '../access-log/formatter.ts';
import type { HttpConnectionManager } from './connection-manager.ts';
import type { FilterCallbacks, FilterState, LocalReply, StreamFilter, StreamObserver } from './filter.ts';
import type { Downstream } from './downstream.ts';
import { BODY, buildLocalReply, isGrpcContentType } from './local-reply.ts';
import { GRPC_DEADLINE_EXCEEDED, formatGrpcTimeout, legacyGrpcTimeout, parseGrpcTimeout, streamDuration } from './grpc-timeout.ts';
import { normalizePath } from './path.ts';
import { metadataValue } from '../rbac/engine.ts';
import { parseRequestHeaders, plainIp, type ParsedRequestHeaders } from './request-headers.ts';
import { RequestBody } from './request-body.ts';
import { buildResponseHeaders } from './response-headers.ts';
import { SERVER_OVERWRITE, SERVER_APPEND_IF_ABSENT, SERVER_PASS_THROUGH } from './hcm-config.ts';
import { httpDate } from './date.ts';
import { reasonPhrase } from './codes.ts';
import { tunnelUpgrade, type UpgradeTunnel } from './websocket.ts';
import type { Socket } from 'node:net';
import type { AdmittedHead, CodecRejection } from './request-admission.ts';
import * as F from './response-flags.ts';
import { sendShadow } from './shadow.ts';
import { firstHeaderValue, headerIndex, setHeader } from '../../xds/header-list.ts';
import { sample } from '../router/fraction.ts';
import { shadowHost } from '../router/mirror.ts';
import { pickWeighted } from '../router/weighted-clusters.ts';
import type { RegexRewrite } from '../router/route-config.ts';
import { ADMIT_OVERFLOW, ADMIT_PENDING, OVERFLOW_BODY, OVERFLOW_DETAILS, admit, canRetry as canRetryBreaker } from '../upstream/circuit-breakers.ts';
import { grpcToHttpStatus } from '../upstream/grpc-status.ts';
import { LOCAL_ORIGIN_CONNECT_FAILED, LOCAL_ORIGIN_TIMEOUT } from '../upstream/outlier-detector.ts';
import { PENDING, RETRY, RQ } from '../upstream/resource-manager.ts';
import type { StreamTrace } from '../tracing/http-tracer.ts';

export interface RequestInfo {
  method: string;
  /** Origin-form path and query, fragment removed (request-admission.ts). */
  url: string;
  /** :authority from an absolute-form target (replaces Host); undefined for origin-form. */
  authority: string | undefined;
  /** The codec refused the request (request-admission.ts): answered with this, never routed. */
  reject: CodecRejection | undefined;
  /** `Expect: 100-continue` the connection manager answers itself (request-admission.ts): `100 Continue` first. */
  sendContinue?: boolean;
  httpMinor: number;
  /** The request came on an HTTP/2 stream (h2-downstream.ts). */
  h2?: boolean;
  rawHeaders: readonly string[];
  remoteAddress: string;
  remotePort: number;
  /** The connection is TLS (terminated here): x-forwarded-proto https, require_tls satisfied. */
  tls?: boolean;
  localAddress: string;
  localPort: number;
  /** The TLS connection when TLS ends here (SNI and client certificate for RBAC). */
  tlsSocket?: import('node:tls').TLSSocket | undefined;
  /** The body stream (node IncomingMessage), when the request has one. */
  body: import('node:stream').Readable;
  /** The request message was fully received before the handler ran (no body). */
  complete: () => boolean;
  /** The request's trailers once received (HTTP/2 only: the HTTP/1 codecs drop them, as Envoy's does without enable_trailers). */
  trailers?: () => readonly string[] | undefined;
}

interface ResetInfo {
  reason: string;
  transport: string;
  flag: number;
  connectFailure: boolean;
  status: number;
  refusedStream?: boolean;
}

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ETIMEDOUT: 'Connection timed out',
  EACCES: 'Permission denied',
};

/** Envoy's reset reason for an upstream pool error (before response headers). */
function classifyError(err: HandshakeError): ResetInfo {
  const code = err.code ?? '';
  if (err.transportFailure) return { reason: 'remote connection failure', transport: err.transportFailure, flag: F.UF, connectFailure: true, status: 503 };
  const text = CONNECT_ERRORS[code];
  if (text) return { reason: 'remote connection failure', transport: `delayed connect error: ${text}`, flag: F.UF, connectFailure: true, status: 503 };
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { reason: 'connection timeout', transport: '', flag: F.UF, connectFailure: true, status: 503 };
  if (code === 'MESHGATE_H2_REFUSED_STREAM')
    return { reason: 'remote refused stream reset', transport: '', flag: F.UR, connectFailure: false, status: 503, refusedStream: true };
  if (code === 'MESHGATE_H2_RESET') return { reason: 'remote reset', transport: '', flag: F.UR, connectFailure: false, status: 503 };
  if (
    code === 'HPE_INVALID_CONSTANT' ||
    code.startsWith('HPE_') ||
    code === 'UND_ERR_HEADERS_OVERFLOW' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    err.name === 'HTTPParserError'
  ) {
    return { reason: 'protocol error', transport: '', flag: F.UPE, connectFailure: false, status: 502 };
  }
  return { reason: 'connection termination', transport: '', flag: F.UC, connectFailure: false, status: 503 };
}

/**
 * The RequestInfo of a request admitted on `sock` (request-admission.ts), for the node:http and HTTP/2 paths; `o`
 * is what the codec knows: its version, its body stream and when the body is complete.
 */
export function admittedRequest(
  a: AdmittedHead,
  method: string,
  sock: Socket,
  o: Pick<RequestInfo, 'httpMinor' | 'h2' | 'body' | 'complete' | 'trailers'>,
): RequestInfo {
  return {
    method,
    url: a.path,
    authority: a.authority,
    reject: a.reject,
    sendContinue: a.sendContinue,
    rawHeaders: a.rawHeaders,
    remoteAddress: sock.remoteAddress ?? '',
    remotePort: sock.remotePort ?? 0,
    tls: (sock as { encrypted?: boolean }).encrypted === true,
    tlsSocket: (sock as { encrypted?: boolean }).encrypted === true ? (sock as import('node:tls').TLSSocket) : undefined,
    localAddress: sock.localAddress ?? '',
    localPort: sock.localPort ?? 0,
    ...o,
  };
}

const sanitize = (s: string): string => s.replace(/ /g, '_');

/** %PROTOCOL% and the request line's version. */
/** `name: value\r\n` per header and the blank line ending the head, as HTTP/1.1 puts them on the wire. */
function headerListBytes(h: readonly string[] | undefined): number {
  if (!h) return 2;
  let n = 2;
  for (let k = 0; k < h.length; k++) n += (h[k] as string).length + 2;
  return n;
}

const protocolName = (i: RequestInfo): string => (i.h2 === true ? 'HTTP/2' : i.httpMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1');

/** A pool's trailers object (undici's shape) as a flat list. */
function flatTrailers(t: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(t)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(k, x);
    else out.push(k, v);
  }
  return out;
}

/** Upstream headers a failed handshake's local reply does not copy (hop-by-hop, framing, the HCM's own). */
const LOCAL_REPLY_DROPS = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'content-length',
  'content-type',
  'date',
  'server',
]);

/** Headers an interim 100 does not carry on (Envoy's mutateResponseHeaders clears hop-by-hop ones). */
const HOP_BY_HOP_1XX = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'content-length']);

/** Envoy's Utility::isUpgrade on a response: an Upgrade header and an `upgrade` token in Connection. */
function isUpgradeAnswer(headers: readonly string[]): boolean {
  let upgrade = false;
  let token = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    if (name === 'upgrade') upgrade = true;
    else if (name === 'connection') token ||= (headers[i + 1] as string).split(',').some((t) => t.trim().toLowerCase() === 'upgrade');
  }
  return upgrade && token;
}

class UpstreamAttempt implements UpstreamHandler {
  readonly stream: ActiveStream;
  readonly host: Host;
  controller: Dispatcher.DispatchController | undefined;
  done = false;
  perTryTimer: NodeJS.Timeout | undefined;
  /** Waiting for a connection (counted in the cluster's pending requests until it is written). */
  pending = false;
  /** Upgrade (websocket) attempts run as a raw tunnel instead of a pooled request. */
  tunnel: UpgradeTunnel | undefined;

  constructor(stream: ActiveStream, host: Host) {
    this.stream = stream;
    this.host = host;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.stream.onAttemptAttached(this);
    if (this.done) controller.abort(new Error('attempt cancelled'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, _h: unknown, _m?: string): void {
    if (this.done) return;
    this.stream.onUpstreamHeaders(this, statusCode, controller.rawHeaders as (Buffer | string)[] | null);
  }

  onResponseContinue(_c: Dispatcher.DispatchController, headers: string[]): void {
    if (this.done) return;
    this.stream.onUpstreamContinue(this, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    this.stream.onUpstreamData(controller, chunk);
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.done) return;
    this.stream.onUpstreamEnd(this, trailers);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.done) return;
    this.stream.onUpstreamError(this, err);
  }

  /** Stops this attempt (retry, timeout, client gone); later callbacks are ignored. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    if (this.perTryTimer) clearTimeout(this.perTryTimer);
    this.controller?.abort(new Error('upstream request cancelled'));
    this.tunnel?.cancel();
  }
}

export class ActiveStream implements FilterCallbacks {
  private readonly hcm: HttpConnectionManager;
  private readonly down: Downstream;
  private readonly info: RequestInfo;
  private readonly startTime = Date.now();
  private readonly startHr = performance.now();
  private parsed!: ParsedRequestHeaders;
  method = '';
  path = '';
  private originalPath = '';
  authority = '';
  /** The virtual host and route the request matched (Envoy's cached route), rematched after clearRouteCache(). */
  private vhost: CompiledVirtualHost | undefined;
  private cachedRoute: CompiledRoute | undefined;
  private routeStale = false;
  /** A plaintext request to a vhost with require_tls: the router redirects it. */
  private tlsRedirect = false;
  /** The route the router serves (set when the filters let the request through). */
  private servedRoute: CompiledRoute | undefined;
  /** The filters created so far, in chain order (one per HCM factory, each made when the chain reaches it). */
  private filters: StreamFilter[] = [];
  private decoding = false;
  private stopped = false;
  private resumeAsked = false;
  /** Dynamic metadata set by HTTP filters (jwt_authn's payload), by filter name; created when one sets some. */
  private metadata: Map<string, Record<string, unknown>> | undefined;
  /** Reads the dynamic metadata for RBAC and route matchers; undefined while there is none. */
  metadataLookup: ((filter: string, path: readonly string[]) => unknown) | undefined;
  /** Filter state objects (grpc_stats' message counts); created when a filter sets one. */
  private state: FilterState | undefined;
  /** Filters watching the bodies, response headers and trailers (grpc_stats on a gRPC stream); usually none. */
  private observers: StreamObserver[] | undefined;
  private cluster: Cluster | undefined;
  private flags = 0;
  private details = '';
  private transportFailure = '';
  private status = 0;
  private bytesSent = 0;
  private upstreamServiceTime = '';
  /** The response headers sent downstream (for the access log's RESP operator). */
  private responseHeaders: string[] | undefined;
  private upstreamHostKey = '';
  private upstreamHost: Host | undefined;
  /** The grpc-status of the upstream's trailers, for Istio's stats. */
  private trailerGrpcStatus: string | undefined;
  private closeConnection = false;
  finished = false;
  private head = false;
  grpc = false;
  // Router state.
  private upstreamHeaders: string[] = [];
  private attemptCountAt = -1;
  private attempts = 0;
  private attempt: UpstreamAttempt | undefined;
  private retry: RetryPolicy | undefined;
  private retriesLeft = 0;
  private triedHosts: Host[] | undefined;
  private excludedPriorities: ReadonlySet<number> | undefined;
  private body: RequestBody | undefined;
  private requestCompleteHr = 0;
  private globalTimer: NodeJS.Timeout | undefined;
  /** The router's timeout for this request, from when it is complete (0: none); set with the route. */
  private timeoutMs = 0;
  /** The stream's max duration (max_stream_duration, grpc-timeout), from its start. */
  private durationTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private responseStarted = false;
  /** A `100 Continue` went to the client (the proxy's own, or the upstream's relayed). */
  private continueSent = false;
  private inRetry = false;
  private headerCtx: HeaderContext | undefined;
  // Fault / CORS filters, mirroring and consistent hashing.
  private hashKey: bigint | undefined;
  private setCookies: string[] | undefined;
  /** The raw client connection once an upgrade request went upstream. */
  private upgradeSocket: import('node:net').Socket | undefined;
  /** The request's spans (an HCM whose tracing has a tracer). */
  private trace: StreamTrace | undefined;

  constructor(hcm: HttpConnectionManager, info: RequestInfo, down: Downstream) {
    this.hcm = hcm;
    this.info = info;
    this.down = down;
  }

  /** Called by the adapter when the client went away before the response finished. */
  onDownstreamClose(): void {
    if (this.finished) return;
    this.flags |= F.DC;
    if (!this.details) this.details = 'downstream_remote_disconnect';
    this.hcm.store.inc(this.hcm.stats.downstream_rq_rx_reset);
    this.cancelUpstream();
    this.finish();
  }

  start(): void {
    const hcm = this.hcm;
    const st = hcm.store;
    const s = hcm.stats;
    st.inc(s.downstream_rq_total);
    st.inc(this.info.h2 === true ? s.downstream_rq_http2_total : s.downstream_rq_http1_total);
    st.inc(s.downstream_rq_active);
    const info = this.info;
    this.method = info.method;
    this.head = info.method === 'HEAD';
    const spec = hcm.spec;
    const rc = hcm.routes.current;
    this.parsed = parseRequestHeaders(info.rawHeaders, {
      remoteAddress: info.remoteAddress,
      localAddress: hcm.runtime.localAddress,
      useRemoteAddress: spec.useRemoteAddress,
      skipXffAppend: spec.skipXffAppend,
      xffNumTrustedHops: spec.xffNumTrustedHops,
      generateRequestId: spec.generateRequestId,
      preserveExternalRequestId: spec.preserveExternalRequestId,
      internalOnlyHeaders: rc ? rc.internalOnlyHeaders : [],
      tls: info.tls === true,
    });
    const p = this.parsed;
    // Any reply to an upgrade closes the connection: its request never completes, the bytes after its head are
    // upgrade payload, never a next request (Envoy's codec stays in upgrade mode).
    this.closeConnection = p.connectionClose || hcm.draining || p.upgrade !== undefined;
    this.grpc = isGrpcContentType(p.contentType);
    // An upgrade has no body: what follows its head is tunnel payload (Envoy's codec direct-dispatches it), held
    // until the upstream switches. HTTP/2 frames its body with DATA (content-length optional): a stream not
    // ended with its headers has one.
    this.endStream = p.upgrade !== undefined || !(info.h2 === true ? !info.complete() : p.contentLength > 0 || p.chunked);
    if (info.reject) {
      // A codec error (Envoy sendProtocolError): the reason phrase as body, and the connection closes.
      this.closeConnection = true;
      st.inc(s.downstream_cx_protocol_error);
      return this.localReply(info.reject.status, reasonPhrase(info.reject.status), F.DPE, info.reject.details);
    }
    // Expect: 100-continue without proxy_100_continue: `100 Continue` at once, before routing and whatever
    // local reply may follow (ActiveStream::decodeHeaders), counted as Envoy's chargeStats counts it.
    if (info.sendContinue === true) this.writeContinue([]);
    // HTTP/1.0 is refused unless accept_http_10 (Istio gateways do not set it): 426 Upgrade Required.
    if (info.httpMinor === 0 && !spec.acceptHttp10) {
      this.closeConnection = true;
      return this.localReply(426, '', 0, 'low_version');
    }
    if (info.httpMinor === 0 && !p.connectionKeepAlive) this.closeConnection = true;
    let url = info.url;
    const authority = info.authority ?? p.host;
    if (authority === undefined || authority === '') {
      this.closeConnection = true;
      return this.localReply(400, '', 0, 'missing_host_header');
    }
    this.authority = authority;
    // Only relative paths reach routing (Envoy's HCM): `OPTIONS *` is 404 absolute_path_rejected.
    if (url.charCodeAt(0) !== 0x2f && this.method !== 'CONNECT') {
      st.inc(s.downstream_rq_non_relative_path);
      return this.localReply(404, '', 0, 'absolute_path_rejected');
    }
    this.originalPath = url;
    if (spec.normalizePath || spec.mergeSlashes) {
      const np = normalizePath(url, spec.mergeSlashes);
      if (np === undefined) {
        st.inc(s.downstream_rq_failed_path_normalization);
        this.closeConnection = true;
        return this.localReply(400, '', 0, 'path_normalization_failed');
      }
      url = np;
    }
    this.path = url;
    st.inc(s.rq_total);
    // The route is resolved before any filter runs (Envoy's refreshCachedRoute in the HCM's decodeHeaders).
    this.resolveRoute();
    // Then the trace reason (packed into x-request-id) and the request's span, named by the route's decorator.
    if (hcm.tracer) {
      const t = (this.trace = hcm.tracer.begin(p, authority, this.startHr));
      const decorator = this.cachedRoute?.decorator;
      if (t && decorator !== undefined) t.setOperation(decorator);
    }
    // An upgrade (CONNECT counts as one) is refused before any filter, route or no route.
    const upgradeType = this.method === 'CONNECT' ? 'connect' : p.upgrade;
    if (upgradeType !== undefined && this.upgradeRejected(upgradeType, this.cachedRoute)) return;
    this.decodeFilters();
  }

  private resolveRoute(): void {
    const rc = this.hcm.routes.current;
    const vhost = rc ? findVirtualHost(rc, this.authority.toLowerCase()) : undefined;
    // Plaintext request to a vhost with require_tls: a redirect route (no route entry of its own).
    this.tlsRedirect = vhost !== undefined && vhost.requireTls !== REQUIRE_TLS_NONE && !this.info.tls;
    this.vhost = vhost;
    this.cachedRoute = vhost && !this.tlsRedirect && this.method !== 'CONNECT' ? this.matchOn(vhost, this.authority) : undefined;
    this.routeStale = false;
  }

  /**
   * Runs the HTTP filters from where the chain stands, each made when reached; a filter that stops the chain
   * resumes it with continueDecoding(). The router, last, answers "no route": a request a filter denies gets
   * that filter's reply whether or not a route matched.
   */
  private decodeFilters(): void {
    const factories = this.hcm.filters;
    while (this.filters.length < factories.length) {
      const f = (factories[this.filters.length] as (typeof factories)[number]).createFilter();
      this.filters.push(f);
      this.decoding = true;
      const status = f.decodeHeaders(this);
      this.decoding = false;
      if (this.finished) return;
      if (status === 'stop') {
        if (!this.resumeAsked) {
          this.stopped = true;
          return;
        }
        this.resumeAsked = false;
      }
    }
    this.decodeRouterFilter();
  }

  continueDecoding(): void {
    if (this.finished) return;
    // Asked for from inside decodeHeaders (an answer that came synchronously): the loop goes on when it returns.
    if (this.decoding) {
      this.resumeAsked = true;
      return;
    }
    if (!this.stopped) return;
    this.stopped = false;
    try {
      this.decodeFilters();
    } catch (e) {
      this.internalError(e, 'resuming the HTTP filter chain');
    }
  }

  route(): CompiledRoute | undefined {
    if (this.routeStale) this.resolveRoute();
    return this.cachedRoute;
  }

  clearRouteCache(): void {
    this.routeStale = true;
  }

  sendLocalReply(r: LocalReply): void {
    this.localReply(r.status, r.body, r.flags ?? 0, r.details, r.headers, r.grpcStatus);
  }

  addResponseFlag(flag: number): void {
    this.flags |= flag;
  }

  get scheme(): string {
    return this.info.tls === true ? 'https' : 'http';
  }

  get headers(): string[] {
    return this.parsed.headers;
  }

  get clientAddress(): string {
    return this.parsed.clientAddress;
  }

  get requestId(): string {
    return this.parsed.requestId;
  }

  /** HTTP/1.0, HTTP/1.1 or HTTP/2 (ext_authz's CheckRequest protocol). */
  get protocol(): string {
    return protocolName(this.info);
  }

  /**
   * The request headers ended the stream: there is no body (ext_authz does not wait for one). Decided when the
   * headers arrive: an HTTP/2 body may be complete by the time an asynchronous filter lets the router run.
   */
  endStream = true;

  get downstream(): RequestInfo {
    return this.info;
  }

  get store(): StatsStore {
    return this.hcm.store;
  }

  get clusters(): ClusterManager {
    return this.hcm.runtime.clusters;
  }

  get log(): Logger {
    return this.hcm.runtime.log;
  }

  /** The request body buffered for a filter; created here if the router has not made it yet. */
  bufferBody(maxBytes: number): Promise<{ body: Buffer; complete: boolean }> {
    const b = this.requestBody();
    return b ? b.bufferUpTo(maxBytes) : Promise.resolve({ body: Buffer.alloc(0), complete: true });
  }

  /** The body's buffer, made on first use; undefined when the request has none (or is an upgrade). */
  private requestBody(): RequestBody | undefined {
    if (this.body) return this.body;
    if (this.endStream) return undefined;
    this.body = new RequestBody(this.info.body, this.hcm.bufferLimit);
    if (this.observers) this.body.tap((c) => this.decodeData(c));
    return this.body;
  }

  setFilterState<K extends keyof FilterState>(key: K, value: NonNullable<FilterState[K]>): void {
    (this.state ??= {})[key] = value;
  }

  clusterInfo(): Cluster | undefined {
    if (this.cluster) return this.cluster;
    const c = this.route()?.cluster;
    return c === undefined ? undefined : this.hcm.runtime.clusters.get(c);
  }

  observe(o: StreamObserver): void {
    if (this.observers) this.observers.push(o);
    else {
      this.observers = [o];
      this.body?.tap((c) => this.decodeData(c));
    }
  }

  private decodeData(c: Buffer): void {
    for (const o of this.observers as StreamObserver[]) o.decodeData(c);
  }

  /** The router, the chain's last filter: require_tls redirects and "no route" first. */
  private decodeRouterFilter(): void {
    const route = this.route();
    if (!this.vhost) return this.noRoute();
    if (this.tlsRedirect) return this.localReply(301, '', 0, '', ['location', `https://${this.authority}${this.path}`]);
    if (!route) return this.noRoute();
    this.servedRoute = route;
    this.decodeRouter(route);
  }

  /** A bug met in an asynchronous continuation: logged, the stream reset and finished; the connection and thread live on. */
  internalError(e: unknown, where: string): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.hcm.runtime.log.error({ err: err.message, stack: err.stack, where }, 'internal error while serving a request; its stream is reset');
    this.cancelUpstream();
    this.down.reset();
    this.finish();
  }

  setDynamicMetadata(filter: string, values: Record<string, unknown>): void {
    let m = this.metadata;
    if (!m) {
      const created = new Map<string, Record<string, unknown>>();
      m = this.metadata = created;
      this.metadataLookup = (f, p) => metadataValue(created.get(f), p);
    }
    m.set(filter, { ...m.get(filter), ...values });
  }

  dynamicMetadata(filter: string, path: readonly string[]): unknown {
    return this.metadata ? metadataValue(this.metadata.get(filter), path) : undefined;
  }

  /** The request's route on `vhost`, by its current path, headers and dynamic metadata. */
  private matchOn(vhost: CompiledVirtualHost, authority: string): CompiledRoute | undefined {
    const url = this.path;
    const q = url.indexOf('?');
    const req = {
      method: this.method,
      authority,
      path: url,
      scheme: this.info.tls ? 'https' : 'http',
      headers: this.parsed.headers,
      metadata: this.metadataLookup,
    };
    return matchRoute(vhost, req, q < 0 ? url : url.slice(0, q), this.grpc);
  }

  /**
   * Envoy's HCM builds an upgrade filter chain only for an upgrade type its upgrade_configs (Istio: websocket)
   * or the matched route enable, and a route may disable one; otherwise 403 `upgrade_failed` before any HTTP
   * filter or the router runs, whether or not a route matched (FilterManager::createFilterChain /
   * createUpgradeFilterChain). CONNECT is the upgrade type `CONNECT`, which Istio's gateways do not enable.
   */
  private upgradeRejected(type: string, route: CompiledRoute | undefined): boolean {
    if (type === 'websocket' && (route?.websocket ?? this.hcm.spec.websocket)) return false;
    this.hcm.store.inc(this.hcm.stats.downstream_rq_ws_on_non_ws_route);
    this.localReply(403, '', 0, 'upgrade_failed');
    return true;
  }

  /** The router filter: direct responses, redirects, cluster selection and the upstream request. */
  private decodeRouter(route: CompiledRoute): void {
    const hcm = this.hcm;
    const st = hcm.store;
    const s = hcm.stats;
    const p = this.parsed;
    const info = this.info;
    if (route.action === ACTION_DIRECT) {
      st.inc(s.rq_direct_response);
      const extra: string[] = [];
      if (route.directStatus === 201 || (route.directStatus >= 300 && route.directStatus < 400)) extra.push('location', this.newUri(route));
      this.mutateResponse(extra);
      return this.localReply(route.directStatus, route.directBody, 0, 'direct_response', extra);
    }
    if (route.action === ACTION_REDIRECT) {
      st.inc(s.rq_redirect);
      const extra = ['location', this.newUri(route)];
      this.mutateResponse(extra);
      return this.localReply(route.redirect?.status ?? 301, '', 0, 'direct_response', extra);
    }
    // Cluster.
    let clusterName = route.cluster;
    let wcIndex = -1;
    if (route.weighted) {
      wcIndex = pickWeighted(route.weighted, route.totalWeight);
      clusterName = route.weighted[wcIndex]?.name;
    } else if (route.clusterHeader !== undefined) {
      // An untrusted header: only its first value names the cluster, and without it the name is empty, so the
      // cluster is not found (Envoy's pickClusterViaClusterHeader).
      clusterName = firstHeaderValue(p.headers, route.clusterHeader) ?? '';
    }
    const cluster = clusterName === undefined ? undefined : hcm.runtime.clusters.get(clusterName);
    if (!cluster) {
      st.inc(s.no_cluster);
      this.upstreamClusterName = clusterName ?? '';
      const extra: string[] = [];
      this.mutateResponse(extra);
      return this.localReply(route.clusterNotFoundStatus, '', F.NC, 'cluster_not_found', extra);
    }
    this.cluster = cluster;
    this.upstreamClusterName = cluster.name;
    this.retry = route.retry;
    this.retriesLeft = route.retry ? route.retry.numRetries : 0;
    this.buildUpstreamHeaders(route, wcIndex);
    this.armStreamDuration(route);
    // Body: streamed; kept for replay while within the buffer limit (a filter may have started buffering it).
    const body = this.requestBody();
    if (body && !body.ended) body.onEnd = () => this.onRequestComplete();
    else this.onRequestComplete();
    if (route.hash) {
      const cookies: string[] = [];
      this.hashKey = route.hash({
        headers: p.headers,
        path: this.originalPath,
        remoteAddress: p.clientAddress,
        remotePort: info.remotePort,
        localAddress: info.localAddress,
        localPort: info.localPort,
        setCookies: cookies,
      });
      if (cookies.length > 0) this.setCookies = cookies;
    }
    if (route.mirrors) this.mirror(route);
    this.sendAttempt();
  }

  /** request_mirror_policies: fire-and-forget copies (bodies once fully received and still buffered). */
  private mirror(route: CompiledRoute): void {
    const clusters = this.hcm.runtime.clusters;
    for (const m of route.mirrors ?? []) {
      if (this.method === 'CONNECT' || !sample(m.probability)) continue;
      const cluster = clusters.get(m.cluster);
      if (!cluster) continue;
      const headers = this.upstreamHeaders.slice();
      if (m.appendShadowSuffix) headers[1] = shadowHost(headers[1] ?? '');
      const send = (body: Buffer | null): void => {
        sendShadow(cluster, {
          method: this.method,
          path: this.path,
          headers,
          body,
          trailers: this.info.trailers?.(),
          timeoutMs: this.timeoutMs,
          hash: this.hashKey,
        });
      };
      const b = this.body;
      if (!b) send(null);
      else {
        const prev = b.onEnd;
        b.onEnd = () => {
          prev?.();
          const whole = b.completeBody();
          if (whole) send(whole);
          else this.hcm.store.inc(cluster.stats.retry_or_shadow_abandoned);
        };
      }
    }
  }

  /** The attempt got a connection: it leaves the pending queue. */
  onAttemptAttached(a: UpstreamAttempt): void {
    if (!a.pending) return;
    a.pending = false;
    const cluster = this.cluster;
    if (!cluster) return;
    cluster.resources.dec(PENDING);
    this.hcm.store.dec(cluster.stats.upstream_rq_pending_active);
  }

  private upstreamClusterName = '';

  private noRoute(): void {
    this.hcm.store.inc(this.hcm.stats.no_route);
    this.localReply(404, '', F.NR, 'route_not_found');
  }

  private ctx(): HeaderContext {
    this.headerCtx ??= {
      remoteAddress: this.parsed.clientAddress,
      remotePort: this.info.remotePort,
      localAddress: this.info.localAddress,
      localPort: this.info.localPort,
      protocol: protocolName(this.info),
    };
    return this.headerCtx;
  }

  /** Route response header ops (local replies from the router get them too, as in Envoy). */
  private mutateResponse(headers: string[], wcIndex = -1): void {
    const r = this.servedRoute;
    if (!r) return;
    if (wcIndex >= 0) {
      const wc = r.weighted?.[wcIndex];
      if (wc) applyHeaderMutation(wc.responseHeaders, headers, this.ctx());
    }
    for (const m of r.responseHeaders) applyHeaderMutation(m, headers, this.ctx());
  }

  /** Redirect / direct-response location (Envoy Utility::newUri). */
  private newUri(route: CompiledRoute): string {
    const rd = route.redirect;
    const requestScheme = firstHeaderValue(this.parsed.headers, 'x-forwarded-proto') ?? 'http';
    const scheme = rd?.scheme ?? requestScheme;
    const port = rd?.port !== undefined ? `:${rd.port}` : '';
    let host = rd?.host;
    if (host === undefined) {
      host = this.authority;
      const colon = host.startsWith('[') ? host.lastIndexOf(']:') + 1 : host.lastIndexOf(':');
      if (colon > 0) {
        const reqPort = host.slice(colon);
        let remove = port !== '';
        if (scheme !== requestScheme) remove ||= (requestScheme === 'https' && reqPort === ':443') || (requestScheme === 'http' && reqPort === ':80');
        if (remove) host = host.slice(0, colon);
      }
    }
    const current = this.path;
    const q = current.indexOf('?');
    let path: string;
    let pathHasQuery = false;
    // An empty path_redirect (Istio always sets one) keeps the request path, as Envoy's newUri does.
    if (rd?.path !== undefined && rd.path !== '') {
      pathHasQuery = rd.path.includes('?');
      path = pathHasQuery || q < 0 ? rd.path : rd.path + current.slice(q);
    } else if (rd?.prefixRewrite !== undefined || rd?.regexRewrite !== undefined) {
      path = this.rewrittenPath(route, rd.prefixRewrite, rd.regexRewrite) ?? current;
    } else path = current;
    if (!path.startsWith('/')) path = '/' + path;
    if (rd && !pathHasQuery && rd.stripQuery) {
      const i = path.indexOf('?');
      if (i >= 0) path = path.slice(0, i);
    }
    return `${scheme}://${host}${port}${path}`;
  }

  private rewrittenPath(route: CompiledRoute, prefixRewrite: string | undefined, regexRewrite: RegexRewrite | undefined): string | undefined {
    const url = this.path;
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q);
    if (prefixRewrite !== undefined) {
      // The matched part is the route prefix, or the whole path for path / regex matches.
      const matched = route.prefix !== undefined ? route.prefix.length : p.length;
      return prefixRewrite + p.slice(matched) + query;
    }
    if (regexRewrite) return regexRewrite.apply(p) + query;
    return undefined;
  }

  private buildUpstreamHeaders(route: CompiledRoute, wcIndex: number): void {
    const p = this.parsed;
    const h = p.headers;
    const spec = this.hcm.spec;
    // Tracing (egress operation): the route decorator is propagated as x-envoy-decorator-operation.
    if (spec.tracing && route.decorator !== undefined) h.push('x-envoy-decorator-operation', route.decorator);
    // The request's timeout (FilterUtility::finalTimeout): the route's, or for gRPC under max_grpc_timeout its
    // grpc-timeout; the upstream is told what it expects, per try when that is shorter.
    const grpcLegacy = this.grpc && route.maxGrpcTimeoutMs !== undefined && route.streamDuration === undefined;
    const timeout = grpcLegacy
      ? legacyGrpcTimeout(route.maxGrpcTimeoutMs ?? 0, route.grpcTimeoutOffsetMs, parseGrpcTimeout(firstHeaderValue(h, 'grpc-timeout')))
      : route.timeoutMs;
    this.timeoutMs = timeout;
    const perTry = route.retry?.perTryTimeoutMs ?? 0;
    const expected = timeout > 0 ? (perTry > 0 && perTry < timeout ? perTry : timeout) : perTry;
    if (!spec.suppressEnvoyHeaders && expected > 0) h.push('x-envoy-expected-rq-timeout-ms', String(expected));
    if (grpcLegacy && expected > 0) setHeader(h, 'grpc-timeout', formatGrpcTimeout(expected));
    const c = this.ctx();
    if (wcIndex >= 0) {
      const wc = route.weighted?.[wcIndex];
      if (wc) applyHeaderMutation(wc.requestHeaders, h, c);
    }
    for (const m of route.requestHeaders) applyHeaderMutation(m, h, c);
    const newPath = this.rewrittenPath(route, route.prefixRewrite, route.regexRewrite);
    if (newPath !== undefined) {
      if (!spec.suppressEnvoyHeaders) h.push('x-envoy-original-path', this.path);
      this.path = newPath;
    }
    if (route.vhost.includeAttemptCount) {
      this.attemptCountAt = h.length;
      h.push('x-envoy-attempt-count', '1');
    }
    // Host first, as Envoy's HTTP/1 encoder writes :authority first.
    this.upstreamHeaders = ['host', route.hostRewrite ?? this.authority, ...h];
    if (this.attemptCountAt >= 0) this.attemptCountAt += 2;
  }

  private onRequestComplete(): void {
    this.requestCompleteHr = performance.now();
    const t = this.timeoutMs;
    if (t > 0 && !this.finished && !this.globalTimer) this.globalTimer = setTimeout(() => this.onGlobalTimeout(), t);
  }

  private chooseHost(cluster: Cluster): Host | undefined {
    const r = this.retry;
    const tried = this.triedHosts;
    const hash = this.hashKey;
    // The downstream, for ORIGINAL_DST clusters: request headers and the connection's local address, never
    // "restored" here (listeners with use_original_dst are NACKed), so only x-envoy-original-dst-host can pick.
    const ctx = { headers: this.parsed.headers, localAddress: this.info.localAddress, localPort: this.info.localPort, localAddressRestored: false };
    if (!r || !tried || tried.length === 0) return cluster.chooseHost(hash, ctx);
    // previous_priorities: the priority levels to avoid on this retry.
    const excluded = (this.excludedPriorities = excludedPriorities(r.priorityUpdateFrequency, tried, this.excludedPriorities));
    if (!r.previousHosts) return cluster.chooseHost(hash, ctx, excluded);
    // previous_hosts predicate: re-pick up to host_selection_retry_max_attempts times.
    let h = cluster.chooseHost(hash, ctx, excluded);
    for (let i = 0; i < r.hostSelectionMaxAttempts && h && tried.includes(h); i++) h = cluster.chooseHost(hash, ctx, excluded);
    return h;
  }

  private sendAttempt(): void {
    const cluster = this.cluster as Cluster;
    const st = this.hcm.store;
    const cs = cluster.stats;
    const host = this.chooseHost(cluster);
    if (!host) {
      st.inc(cs.upstream_cx_none_healthy);
      cluster.chargeStatus(503);
      const extra: string[] = [];
      this.mutateResponse(extra);
      return this.localReply(503, BODY.noHealthyUpstream, F.UH, 'no_healthy_upstream', extra);
    }
    // Circuit breakers (max_requests, max_pending_requests, max_connections) at connection-pool admission.
    const pool = cluster.poolFor(host, this.info.h2 === true) as { stats?: { free: number } };
    const idle = pool.stats ? pool.stats.free > 0 : host.cxActive > 0;
    const res = cluster.resources;
    const adm = admit(
      cluster.spec.thresholds,
      { attachedRq: res.total(RQ) - res.total(PENDING), pendingRq: res.total(PENDING), connections: idle ? 0 : cluster.openConnections() },
      idle,
    );
    if (adm.result === ADMIT_OVERFLOW) {
      st.inc(cs.upstream_rq_pending_overflow);
      cluster.chargeStatus(503);
      const extra = ['x-envoy-overloaded', 'true'];
      this.mutateResponse(extra);
      return this.localReply(503, OVERFLOW_BODY, F.UO, OVERFLOW_DETAILS, extra);
    }
    if (adm.cxOverflow) st.inc(cs.upstream_cx_overflow);
    this.attempts++;
    if (this.attemptCountAt >= 0) this.upstreamHeaders[this.attemptCountAt + 1] = String(this.attempts);
    (this.triedHosts ??= []).push(host);
    const a = new UpstreamAttempt(this, host);
    this.attempt = a;
    if (this.trace)
      this.trace.onUpstreamRequest(
        this.upstreamHeaders,
        { name: cluster.name, observabilityName: cluster.spec.observabilityName },
        host.key,
        cluster.spec.http2 ? 'HTTP/2' : 'HTTP/1.1',
        performance.now(),
      );
    if (adm.result === ADMIT_PENDING) {
      a.pending = true;
      res.inc(PENDING);
      st.inc(cs.upstream_rq_pending_total);
      st.inc(cs.upstream_rq_pending_active);
    }
    this.upstreamHostKey = host.key;
    this.upstreamHost = host;
    host.activeRq++;
    host.rqTotal++;
    res.inc(RQ);
    st.inc(cs.upstream_rq_total);
    st.inc(cs.upstream_rq_active);
    const perTry = this.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) a.perTryTimer = setTimeout(() => this.onPerTryTimeout(a), perTry);
    if (this.parsed.upgrade !== undefined) return this.sendUpgrade(a, host, cluster);
    // The pools consume an async iterable body with backpressure (undici's Dispatcher types, which the contract borrows, only list streams).
    const body = this.body ? (this.body.newReader() as unknown as import('node:stream').Readable) : null;
    try {
      const o = { path: this.path, method: this.method, headers: this.upstreamHeaders, body, trailers: this.info.trailers };
      cluster.poolFor(host, this.info.h2 === true).dispatch(o, a);
    } catch (e) {
      this.hcm.runtime.log.warn({ err: (e as Error).message }, 'upstream dispatch failed');
      this.endAttempt(a);
      this.resetBeforeResponse({ reason: 'protocol error', transport: '', flag: F.UPE, connectFailure: false, status: 502 }, false);
    }
  }

  /** WebSocket upgrade: a raw tunnel to the host; the upstream's answer goes back through Envoy's header rewrite. */
  private sendUpgrade(a: UpstreamAttempt, host: Host, cluster: Cluster): void {
    const sock = (this.upgradeSocket ??= this.down.takeSocket());
    const spec = this.hcm.spec;
    a.tunnel = tunnelUpgrade(
      {
        host: host.address,
        port: host.port,
        connectTimeoutMs: cluster.spec.connectTimeoutMs,
        method: this.method,
        path: this.path,
        headers: this.upstreamHeaders,
        downstream: sock,
      },
      {
        onResponse: (status, r) => {
          if (a.done) return undefined;
          this.responseStarted = true;
          if (a.perTryTimer) clearTimeout(a.perTryTimer);
          if (this.globalTimer) clearTimeout(this.globalTimer);
          if (status !== 101 && status < 400) {
            // A failed handshake that is not an error: Envoy's codec filter answers it as a local reply with the
            // upstream's headers and no body (websocket_handshake_unsuccessful); the connection closes.
            a.done = true;
            this.endAttempt(a);
            cluster.chargeStatus(status);
            const extra: string[] = [];
            for (let i = 0; i < r.headers.length; i += 2) {
              const name = (r.headers[i] as string).toLowerCase();
              if (!LOCAL_REPLY_DROPS.has(name)) extra.push(name, r.headers[i + 1] as string);
            }
            this.localReply(status, '', 0, 'websocket_handshake_unsuccessful', extra);
            return undefined;
          }
          this.status = status;
          this.details = 'via_upstream';
          const serviceTime = Math.floor(performance.now() - (this.requestCompleteHr || this.startHr));
          this.upstreamServiceTime = String(serviceTime);
          // The 101 keeps connection/upgrade; a refused upgrade keeps them only if it is itself an upgrade
          // answer (Envoy's mutateResponseHeaders), and its connection closes after it.
          const keepUpgrade = status === 101 || isUpgradeAnswer(r.headers);
          const out: string[] = [];
          let hasDate = false;
          let serverAt = -1;
          for (let i = 0; i < r.headers.length; i += 2) {
            const name = (r.headers[i] as string).toLowerCase();
            if (name === 'keep-alive' || name === 'proxy-connection' || name === 'transfer-encoding') continue;
            if (name === 'connection' || name === 'upgrade') {
              if (!keepUpgrade || (status !== 101 && name === 'connection')) continue;
            }
            if (name === 'date') hasDate = true;
            if (name === 'server') serverAt = out.length;
            out.push(name, r.headers[i + 1] as string);
          }
          if (!spec.suppressEnvoyHeaders) out.push('x-envoy-upstream-service-time', String(serviceTime));
          if (!hasDate) out.push('date', httpDate());
          if (spec.serverHeaderTransformation === SERVER_OVERWRITE) {
            if (serverAt >= 0) out[serverAt + 1] = spec.serverName;
            else out.push('server', spec.serverName);
          } else if (spec.serverHeaderTransformation === SERVER_APPEND_IF_ABSENT && serverAt < 0) out.push('server', spec.serverName);
          if (status !== 101) {
            this.hcm.store.inc(this.hcm.stats.downstream_rq_response_before_rq_complete);
            out.push('connection', 'close');
          }
          return { headers: out };
        },
        onError: (err) => this.onUpstreamError(a, err),
        onClose: (sent) => {
          if (a.done) return;
          a.done = true;
          this.bytesSent += sent;
          this.endAttempt(a);
          cluster.chargeStatus(this.status);
          this.finish();
        },
      },
    );
  }

  /** Bookkeeping when an attempt stops (success, failure or cancel). */
  private endAttempt(a: UpstreamAttempt): void {
    if (a.perTryTimer) clearTimeout(a.perTryTimer);
    a.perTryTimer = undefined;
    this.onAttemptAttached(a);
    const cluster = this.cluster;
    if (!cluster || a.host.activeRq <= 0) return;
    a.host.activeRq--;
    cluster.resources.dec(RQ);
    this.hcm.store.dec(cluster.stats.upstream_rq_active);
  }

  private cancelUpstream(): void {
    const a = this.attempt;
    if (a && !a.done) {
      a.cancel();
      this.endAttempt(a);
    }
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    if (this.globalTimer) clearTimeout(this.globalTimer);
  }

  /** Whether a retry may be sent now (budget, buffered body, circuit breaker); sets URX when exhausted. */
  private canRetry(): boolean {
    const cluster = this.cluster as Cluster;
    const st = this.hcm.store;
    if (this.retriesLeft <= 0) {
      st.inc(cluster.stats.upstream_rq_retry_limit_exceeded);
      this.flags |= F.URX;
      return false;
    }
    if (this.body && !this.body.replayable) {
      st.inc(cluster.stats.retry_or_shadow_abandoned);
      return false;
    }
    const res = cluster.resources;
    if (!canRetryBreaker(cluster.spec.thresholds, res.total(RETRY), res.total(RQ) - res.total(PENDING), res.total(PENDING))) {
      st.inc(cluster.stats.upstream_rq_retry_overflow);
      this.flags |= F.UO;
      return false;
    }
    return true;
  }

  /** Sends the next attempt after Envoy's jittered back-off. */
  private scheduleRetry(): void {
    const cluster = this.cluster as Cluster;
    this.retriesLeft--;
    this.hcm.store.inc(cluster.stats.upstream_rq_retry);
    const res = cluster.resources;
    res.inc(RETRY);
    this.inRetry = true;
    const retryNumber = (this.retry?.numRetries ?? 0) - this.retriesLeft;
    this.backoffTimer = setTimeout(
      () => {
        this.backoffTimer = undefined;
        res.dec(RETRY);
        if (!this.finished) this.sendAttempt();
      },
      this.retry ? backOffMs(this.retry, retryNumber) : 0,
    );
  }

  onUpstreamHeaders(a: UpstreamAttempt, status: number, raw: (Buffer | string)[] | null): void {
    const cluster = this.cluster as Cluster;
    this.trace?.onUpstreamStatus(status);
    // Every upstream response code goes to outlier detection (retried ones too); for gRPC a grpc-status in
    // the response headers (trailers-only answers) counts as its HTTP equivalent.
    if (cluster.outlier) {
      let code = status;
      if (this.grpc && raw) {
        for (let i = 0; i < raw.length; i += 2) if (String(raw[i]).toLowerCase() === 'grpc-status') code = grpcToHttpStatus(Number(String(raw[i + 1])));
      }
      cluster.outlier.putHttpResponseCode(a.host, code);
    }
    const rawHeaders = raw ?? [];
    if (this.retry && !this.responseStarted) {
      let grpcStatus: number | undefined;
      if (this.retry.grpcOn.size > 0) {
        for (let i = 0; i < rawHeaders.length; i += 2)
          if (String(rawHeaders[i]).toLowerCase() === 'grpc-status') grpcStatus = Number(String(rawHeaders[i + 1]));
      }
      if (retriableResponse(this.retry, status, grpcStatus) && this.canRetry()) {
        cluster.chargeStatus(status);
        a.host.rqError++;
        a.cancel();
        this.endAttempt(a);
        this.scheduleRetry();
        return;
      }
    }
    this.responseStarted = true;
    if (a.perTryTimer) clearTimeout(a.perTryTimer);
    if (this.inRetry) this.hcm.store.inc(cluster.stats.upstream_rq_retry_success);
    this.status = status;
    this.details = 'via_upstream';
    const serviceTime = Math.floor(performance.now() - (this.requestCompleteHr || this.startHr));
    this.upstreamServiceTime = String(serviceTime);
    const spec = this.hcm.spec;
    const route = this.servedRoute as CompiledRoute;
    // A response that starts before the request ended closes the HTTP/1 connection after it (Envoy's HCM:
    // `connection: close`, downstream_rq_response_before_rq_complete); the rest of the body is not read on.
    const early = !this.requestComplete();
    if (early) this.hcm.store.inc(this.hcm.stats.downstream_rq_response_before_rq_complete);
    const { headers } = buildResponseHeaders(rawHeaders, {
      status,
      serviceTimeMs: serviceTime,
      serverName: spec.serverName,
      serverTransformation: spec.serverHeaderTransformation,
      suppressEnvoyHeaders: spec.suppressEnvoyHeaders,
      close: this.closeConnection || this.hcm.draining || early,
      head: this.head,
      mutate: (h) => this.encodeResponse(status, h),
      attemptCount: route.vhost.includeAttemptCountInResponse ? this.attempts : 0,
    });
    this.responseHeaders = headers;
    if (this.observers) for (const o of this.observers) o.encodeHeaders(status, headers);
    this.down.writeHead(status, headers);
  }

  /** An interim `100 Continue` to the client, counted as a 1xx response (Envoy's chargeStats on encode1xxHeaders). */
  private writeContinue(headers: string[]): void {
    if (this.continueSent || this.down.headersSent) return;
    this.continueSent = true;
    this.down.writeContinue(headers);
    const st = this.hcm.store;
    st.inc(this.hcm.stats.downstream_rq_completed);
    st.inc(this.hcm.stats.downstream_rq_1xx);
  }

  /**
   * The upstream answered `100 Continue` (Router::onUpstream1xxHeaders): its code is counted for the cluster and
   * no retry follows (the next upstream might not send one); with proxy_100_continue it goes to the client,
   * hop-by-hop headers removed, once. Without, the HCM swallows it: the client had its 100 from the proxy.
   */
  onUpstreamContinue(a: UpstreamAttempt, raw: string[]): void {
    if (a !== this.attempt || this.finished || this.responseStarted) return;
    this.cluster?.chargeStatus(100);
    this.retry = undefined;
    this.retriesLeft = 0;
    if (!this.hcm.spec.proxy100Continue) return;
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as string).toLowerCase();
      if (!HOP_BY_HOP_1XX.has(name)) headers.push(name, raw[i + 1] as string);
    }
    this.writeContinue(headers);
  }

  /** Proxied response: hash-policy cookies, route header ops, then the CORS filter's headers. */
  private encodeResponse(status: number, h: string[]): void {
    if (this.setCookies) for (const c of this.setCookies) h.push('set-cookie', c);
    this.mutateResponse(h);
    this.encodeFilters(status, h);
  }

  /** The filters' encodeHeaders, last filter first (Envoy's encoder order). */
  private encodeFilters(status: number, h: string[]): void {
    const fs = this.filters;
    for (let i = fs.length - 1; i >= 0; i--) (fs[i] as StreamFilter).encodeHeaders?.(status, h);
  }

  onUpstreamData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesSent += chunk.length;
    if (this.observers) for (const o of this.observers) o.encodeData(chunk);
    if (!this.down.write(chunk)) {
      controller.pause();
      this.down.onDrain(() => controller.resume());
    }
  }

  onUpstreamEnd(a: UpstreamAttempt, trailers?: Record<string, string | string[] | undefined>): void {
    a.done = true;
    this.endAttempt(a);
    const cluster = this.cluster as Cluster;
    cluster.chargeStatus(this.status);
    // Router::onUpstreamComplete: timed from the end of the downstream request, when it ended.
    if (this.requestCompleteHr > 0) cluster.recordRqTime(performance.now() - this.requestCompleteHr);
    if (this.status >= 500) a.host.rqError++;
    else a.host.rqSuccess++;
    if (this.globalTimer) clearTimeout(this.globalTimer);
    const gs = trailers?.['grpc-status'];
    if (typeof gs === 'string') this.trailerGrpcStatus = gs;
    if (this.observers && trailers) for (const o of this.observers) o.encodeTrailers(trailers);
    this.down.end(undefined, trailers === undefined ? undefined : flatTrailers(trailers));
    this.finish();
  }

  onUpstreamError(a: UpstreamAttempt, err: Error): void {
    a.done = true;
    this.endAttempt(a);
    const r = classifyError(err);
    a.host.rqError++;
    if (!this.responseStarted) this.cluster?.outlier?.putResult(a.host, LOCAL_ORIGIN_CONNECT_FAILED);
    if (this.responseStarted) {
      // Headers already went downstream: the stream is reset (HTTP/1: connection closed mid-body).
      this.flags |= r.flag === F.UC || r.flag === F.UPE ? r.flag : F.UR;
      this.details = `upstream_reset_after_response_started{${sanitize(r.reason)}}`;
      this.hcm.store.inc(this.hcm.stats.rq_reset_after_downstream_response_started);
      if (this.globalTimer) clearTimeout(this.globalTimer);
      this.down.reset();
      this.finish();
      return;
    }
    this.resetBeforeResponse(r, true);
  }

  private resetBeforeResponse(r: ResetInfo, retriable: boolean): void {
    this.transportFailure = sanitize(r.transport);
    if (retriable && this.retry && retriableReset(this.retry, r.connectFailure, r.refusedStream === true) && this.canRetry()) {
      this.scheduleRetry();
      return;
    }
    const cluster = this.cluster as Cluster;
    cluster.chargeStatus(r.status);
    this.flags |= r.flag;
    const reason = r.transport ? `${r.reason}, transport failure reason: ${r.transport}` : r.reason;
    const body = BODY.resetPrefix + (this.attempts > 1 ? BODY.retriedPrefix : '') + `reset reason: ${reason}`;
    const details = `upstream_reset_before_response_started{${sanitize(r.reason)}${r.transport ? ',' + sanitize(r.transport) : ''}}`;
    const extra: string[] = [];
    this.mutateResponse(extra);
    this.localReply(r.status, body, 0, details, extra);
  }

  private onPerTryTimeout(a: UpstreamAttempt): void {
    if (a.done || this.finished || this.responseStarted) return;
    const cluster = this.cluster as Cluster;
    this.hcm.store.inc(cluster.stats.upstream_rq_per_try_timeout);
    a.host.rqTimeout++;
    cluster.outlier?.putResult(a.host, LOCAL_ORIGIN_TIMEOUT);
    a.cancel();
    this.endAttempt(a);
    if (this.retry && retriableReset(this.retry, false) && this.canRetry()) {
      this.scheduleRetry();
      return;
    }
    this.timeoutReply('upstream_per_try_timeout');
  }

  /**
   * max_stream_duration / grpc-timeout (Envoy's refreshDurationTimeout): the limit counts from the stream's start;
   * a gRPC request's upstream grpc-timeout says what is left of it.
   */
  private armStreamDuration(route: CompiledRoute): void {
    const c = route.streamDuration;
    if (c === undefined) return;
    const d = streamDuration(c, parseGrpcTimeout(firstHeaderValue(this.parsed.headers, 'grpc-timeout')));
    if (d === undefined) return;
    if (this.grpc) setHeader(this.upstreamHeaders, 'grpc-timeout', formatGrpcTimeout(d.ms));
    const left = Math.max(0, d.ms - (performance.now() - this.startHr));
    this.durationTimer = setTimeout(() => this.onMaxDuration(), left);
  }

  /** The stream outlived its max duration: 408 `downstream duration timeout` (gRPC: DEADLINE_EXCEEDED), or a reset. */
  private onMaxDuration(): void {
    this.durationTimer = undefined;
    if (this.finished) return;
    this.hcm.store.inc(this.hcm.stats.downstream_rq_max_duration_reached);
    this.cancelUpstream();
    this.localReply(408, BODY.maxDuration, 0, 'max_duration_timeout', undefined, this.grpc ? GRPC_DEADLINE_EXCEEDED : undefined);
  }

  private onGlobalTimeout(): void {
    this.globalTimer = undefined;
    if (this.finished) return;
    const cluster = this.cluster;
    if (cluster) this.hcm.store.inc(cluster.stats.upstream_rq_timeout);
    if (this.attempt) {
      this.attempt.host.rqTimeout++;
      if (!this.attempt.done && !this.responseStarted) cluster?.outlier?.putResult(this.attempt.host, LOCAL_ORIGIN_TIMEOUT);
    }
    this.cancelUpstream();
    if (this.responseStarted) {
      this.flags |= F.UT;
      this.down.reset();
      this.finish();
      return;
    }
    this.timeoutReply('response_timeout');
  }

  private timeoutReply(details: string): void {
    this.cluster?.chargeStatus(504);
    const extra: string[] = [];
    this.mutateResponse(extra);
    this.localReply(504, BODY.upstreamTimeout, F.UT, details, extra);
  }

  /** A response generated by the gateway (Envoy sendLocalReply). */
  localReply(status: number, body: string, flags: number, details: string, extra?: string[], grpcStatus?: number): void {
    if (this.finished) return;
    this.flags |= flags;
    if (details) this.details = details;
    if (this.globalTimer) clearTimeout(this.globalTimer);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    if (this.upgradeSocket) {
      // The connection was handed over for an upgrade: write the reply on it directly and close.
      const r = buildLocalReply(status, body, { headers: extra, serverName: this.hcm.spec.serverName, close: true, head: this.head });
      this.status = r.status;
      let head = `HTTP/1.1 ${r.status} ${reasonPhrase(r.status)}\r\n`;
      for (let i = 0; i < r.headers.length; i += 2) head += `${r.headers[i]}: ${r.headers[i + 1]}\r\n`;
      this.bytesSent += Buffer.byteLength(r.body);
      this.upgradeSocket.end(head + '\r\n' + r.body);
      return this.finish();
    }
    if (this.down.headersSent) {
      this.down.reset();
      return this.finish();
    }
    const spec = this.hcm.spec;
    // A reply before the request was fully read closes the connection (HTTP/1), as does a 400.
    const requestDone = this.requestComplete();
    if (!requestDone) this.hcm.store.inc(this.hcm.stats.downstream_rq_response_before_rq_complete);
    const close = this.closeConnection || this.hcm.draining || status === 400 || !requestDone;
    const r = buildLocalReply(status, body, {
      headers: extra,
      serverName: spec.serverHeaderTransformation === SERVER_PASS_THROUGH ? '' : spec.serverName,
      close,
      grpc: this.grpc,
      head: this.head,
      grpcStatus,
    });
    // The filters encode local replies too (before the HCM adds date and server).
    if (this.filters.length > 0) {
      const added: string[] = [];
      this.encodeFilters(r.status, added);
      if (added.length > 0) {
        const at = headerIndex(r.headers, 'date');
        r.headers.splice(at >= 0 ? at : r.headers.length, 0, ...added);
      }
    }
    if (spec.serverHeaderTransformation === SERVER_PASS_THROUGH) {
      const i = headerIndex(r.headers, 'server');
      if (i >= 0) r.headers.splice(i, 2);
    }
    this.status = r.status;
    this.responseHeaders = r.headers;
    if (this.observers) for (const o of this.observers) o.encodeHeaders(r.status, r.headers);
    this.down.writeHead(r.status, r.headers);
    this.bytesSent += Buffer.byteLength(r.body);
    this.down.end(r.body);
    this.finish();
  }

  /** The whole request message has been received (a request without a body is complete with its head). */
  private requestComplete(): boolean {
    if (this.info.h2 === true) return this.info.complete();
    return this.info.complete() || (this.parsed !== undefined && this.parsed.contentLength <= 0 && !this.parsed.chunked);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const f of this.filters) f.onDestroy?.();
    // Nobody reads the rest of an unfinished body: it is dropped, not buffered, and never holds the client paused.
    if (this.body && !this.body.ended) this.body.discard();
    if (this.globalTimer) clearTimeout(this.globalTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    const st = this.hcm.store;
    const s = this.hcm.stats;
    st.dec(s.downstream_rq_active);
    st.inc(s.downstream_rq_completed);
    st.record(s.downstream_rq_time, performance.now() - this.startHr);
    const cls = Math.floor(this.status / 100);
    if (cls === 1) st.inc(s.downstream_rq_1xx);
    else if (cls === 2) st.inc(s.downstream_rq_2xx);
    else if (cls === 3) st.inc(s.downstream_rq_3xx);
    else if (cls === 4) st.inc(s.downstream_rq_4xx);
    else if (cls === 5) st.inc(s.downstream_rq_5xx);
    const log = this.hcm.runtime.accessLog;
    const logs = this.hcm.spec.accessLogs;
    if (log || logs.length) {
      const e = this.accessLogEntry();
      log?.log(e);
      for (const l of logs) if (!l.filter || l.filter(e)) this.hcm.runtime.accessLogSinks.write(l.path, l.format(e));
    }
    if (this.trace) this.finishTrace(this.trace);
    const handlers = this.hcm.streamCompleteHandlers;
    if (handlers.length) {
      const r = this.streamReport();
      for (const h of handlers) h.onStreamComplete?.(r);
    }
  }

  /** This stream as Istio's stats filter reports it when it ends. */
  private streamReport(): HttpStreamReport {
    const p = this.parsed as ParsedRequestHeaders | undefined;
    const i = this.info;
    const path = this.path || i.url;
    const headers = p?.headers;
    const grpcText = this.trailerGrpcStatus ?? (this.responseHeaders ? firstHeaderValue(this.responseHeaders, 'grpc-status') : undefined);
    const grpcStatus = grpcText === undefined || grpcText === '' || !/^\d+$/.test(grpcText) ? undefined : Number(grpcText);
    const protocol = protocolName(i);
    let attributes: Record<string, unknown> | undefined;
    return {
      clusterName: this.upstreamClusterName,
      service: this.cluster?.spec.istioService,
      workload: this.upstreamHost?.workload ?? '',
      routeName: (this.servedRoute ?? this.cachedRoute)?.name ?? '',
      authority: this.authority,
      responseCode: this.status,
      attributes: () => (attributes ??= celAttributes(this.accessLogEntry())),
      grpc: this.grpc,
      grpcStatus,
      responseFlags: F.formatResponseFlags(this.flags),
      durationMs: Math.floor(performance.now() - this.startHr),
      // Wire bytes as HTTP/1.1 frames them (request line or status line, header lines, the body).
      requestBytes: this.method.length + path.length + protocol.length + 4 + headerListBytes(headers) + (this.body ? this.body.received : 0),
      responseBytes: 15 + reasonPhrase(this.status).length + headerListBytes(this.responseHeaders) + this.bytesSent,
      grpcMessages: this.state?.['envoy.filters.http.grpc_stats'],
    };
  }

  /** finalizeDownstreamSpan: the request's span (and its open attempt's) with what the stream ended with. */
  private finishTrace(t: StreamTrace): void {
    const i = this.info;
    const c = this.cluster;
    t.finish({
      headers: this.parsed.headers,
      method: this.method,
      authority: this.authority,
      path: this.path || i.url,
      protocol: protocolName(i),
      peerAddress: plainIp(i.remoteAddress),
      bytesReceived: this.body ? this.body.received : 0,
      bytesSent: this.bytesSent,
      status: this.status,
      flags: this.flags,
      cluster: c ? { name: c.name, observabilityName: c.spec.observabilityName } : undefined,
      responseHeaders: this.responseHeaders,
      metadata: this.metadataLookup,
      endHr: performance.now(),
    });
  }

  private accessLogEntry(): AccessLogEntry {
    const p = this.parsed as ParsedRequestHeaders | undefined;
    const i = this.info;
    const rewritten = this.path !== this.originalPath && this.servedRoute?.prefixRewrite !== undefined;
    return {
      startTime: this.startTime,
      method: this.method,
      path: this.path || i.url,
      originalPath: rewritten ? this.originalPath : '',
      protocol: protocolName(i),
      responseCode: this.status,
      responseFlags: this.flags,
      responseCodeDetails: this.details,
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: this.transportFailure,
      bytesReceived: this.body ? this.body.received : 0,
      bytesSent: this.bytesSent,
      durationMs: Math.floor(performance.now() - this.startHr),
      upstreamServiceTime: this.upstreamServiceTime,
      xForwardedFor: p?.xForwardedFor ?? '',
      userAgent: p?.userAgent ?? '',
      requestId: p?.requestId ?? '',
      authority: this.authority,
      upstreamHost: this.upstreamHostKey,
      upstreamCluster: this.upstreamClusterName,
      upstreamLocalAddress: '',
      downstreamLocalAddress: `${i.localAddress}:${i.localPort}`,
      downstreamRemoteAddress: `${i.remoteAddress}:${i.remotePort}`,
      requestedServerName: '',
      // The cached route, as Envoy's StreamInfo has it: a request a filter denied logs the route it matched.
      routeName: (this.servedRoute ?? this.cachedRoute)?.name ?? '',
      requestHeaders: p?.headers,
      responseHeaders: this.responseHeaders,
    };
  }
}
