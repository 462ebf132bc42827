// envoy.filters.http.grpc_stats, which istiod puts on every gateway HCM: for a gRPC request (content-type
// application/grpc or application/grpc+...), counts the messages of the request and response bodies by their
// 5-byte length prefix as the bytes pass (never buffering them), charges the route's cluster with Envoy's
// `grpc.*` counters and, with emit_filter_state, keeps the counts in the stream's filter state, where Istio's
// stats filter reads them for istio_request_messages_total / istio_response_messages_total.
//
// Cluster stats (cluster.<name>. + these), as Grpc::ContextImpl names them; `<prefix>` is `grpc.`, or
// `grpc.<service>.<method>.` for a call that stats_for_all_methods or individual_method_stats_allowlist selects:
//   <prefix><grpc-status>, <prefix>success or <prefix>failure, <prefix>total   (a grpc-status in the response
//                                              headers, trailers-only answers and local replies, or trailers)
//   <prefix>request_message_count, <prefix>response_message_count            (per message, when counted)
// A call is tracked when its :path is `/<service>/<method>` and its route goes to a cluster.
import { firstHeaderValue } from '../../../xds/header-list.ts';
import type { envoy } from '../../../xds/envoy.ts';
import { ACTION_ROUTE } from '../../router/route-config.ts';
import type { GrpcMessageCounts } from '../../stats/istio-metrics.ts';
import type { Cluster } from '../../upstream/cluster.ts';
import { fieldTable } from '../../xds/fields.ts';
import { ConfigError } from '../../xds/json.ts';
import type { FilterCallbacks, HttpFilterFactory, StreamFilter, StreamObserver } from '../filter.ts';
import { isGrpcContentType } from '../local-reply.ts';

const GRPC_STATS = 'envoy.filters.http.grpc_stats';

/** envoy.extensions.filters.http.grpc_stats.v3.FilterConfig as the filter applies it. */
export interface GrpcStatsConfig {
  /** emit_filter_state: the counts go to the stream's filter state (Istio's stats filter reads them). */
  emitFilterState: boolean;
  /** stats_for_all_methods: every call's stats under `grpc.<service>.<method>.`. */
  allMethods: boolean;
  /** replace_dots_in_grpc_service_name (with stats_for_all_methods): `.` in the service name becomes `_`. */
  replaceDots: boolean;
  /** individual_method_stats_allowlist, as `<service>/<method>`: these calls get per-method stats. */
  allowlist: ReadonlySet<string> | undefined;
}

type FilterConfig = envoy.extensions.filters.http.grpc_stats.v3.FilterConfig;

// enable_upstream_stats is refused with its reason below.
const checkConfig = fieldTable('envoy.extensions.filters.http.grpc_stats.v3.FilterConfig', {
  emit_filter_state: true,
  individual_method_stats_allowlist: true,
  stats_for_all_methods: true,
  replace_dots_in_grpc_service_name: true,
});
const checkMethodList = fieldTable('envoy.config.core.v3.GrpcMethodList', { services: true });
const checkService = fieldTable('envoy.config.core.v3.GrpcMethodList.Service', { name: true, method_names: true });

export function parseGrpcStatsConfig(c: FilterConfig, where: string): GrpcStatsConfig {
  if (c.enable_upstream_stats === true) throw new ConfigError(`${where}.enable_upstream_stats: the grpc.upstream_rq_time histogram is not kept by this proxy`);
  checkConfig(c, where);
  let allowlist: Set<string> | undefined;
  const list = c.individual_method_stats_allowlist;
  if (list !== undefined) {
    checkMethodList(list, `${where}.individual_method_stats_allowlist`);
    allowlist = new Set();
    (list.services ?? []).forEach((s, i) => {
      checkService(s, `${where}.individual_method_stats_allowlist.services[${i}]`);
      for (const m of s.method_names ?? []) allowlist?.add(`${s.name ?? ''}/${m}`);
    });
  }
  // Envoy's default (stats_for_all_methods unset, no allowlist) is false: one set of stats per cluster.
  return {
    emitFilterState: c.emit_filter_state === true,
    allMethods: c.stats_for_all_methods === true,
    replaceDots: c.replace_dots_in_grpc_service_name === true,
    allowlist,
  };
}

/**
 * Grpc::FrameInspector: counts length-prefixed gRPC messages (a flag byte, a 4-byte big-endian length, the
 * message) in a body that arrives in chunks of any size; a message counts as soon as its flag byte arrives.
 * The response counter (ResponseFrameCounter) stops at a frame flagged as Connect's end of stream (0x02),
 * which is not a message; nothing after it is counted.
 */
export class GrpcFrameCounter {
  /** Messages seen so far. */
  count = 0;
  private readonly response: boolean;
  /** Header bytes still to read: 5 at a frame boundary. */
  private header = 5;
  private length = 0;
  /** Message bytes still to pass over. */
  private remaining = 0;
  private stopped = false;

  constructor(response: boolean) {
    this.response = response;
  }

  /** The messages that started in `c`. */
  inspect(c: Buffer): number {
    if (this.stopped) return 0;
    const n = c.length;
    let i = 0;
    let delta = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      const b = c[i++] as number;
      if (this.header === 5) {
        if (this.response && (b & 0x02) !== 0) {
          this.stopped = true;
          break;
        }
        delta++;
        this.length = 0;
      } else this.length = this.length * 256 + b;
      if (--this.header === 0) {
        this.remaining = this.length;
        this.header = 5;
      }
    }
    this.count += delta;
    return delta;
  }
}

/** Grpc::Common::resolveServiceAndMethod: a :path of exactly two non-empty segments (query left out). */
export function serviceAndMethod(path: string): [service: string, method: string] | undefined {
  const q = path.indexOf('?');
  const parts = (q < 0 ? path : path.slice(0, q)).split('/').filter((p) => p !== '');
  return parts.length === 2 ? [parts[0] as string, parts[1] as string] : undefined;
}

/** Where a call's stats go in its cluster's scope, undefined when the call is not tracked (not `/<service>/<method>`). */
export function grpcStatPrefix(config: GrpcStatsConfig, path: string): string | undefined {
  const names = serviceAndMethod(path);
  if (!names) return undefined;
  const [service, method] = names;
  if (config.allMethods) return `grpc.${config.replaceDots ? service.replaceAll('.', '_') : service}.${method}.`;
  if (config.allowlist?.has(`${service}/${method}`)) return `grpc.${service}.${method}.`;
  return 'grpc.';
}

/** One gRPC stream: its counters, its filter state, the cluster it charges. */
class GrpcStream implements StreamObserver {
  private readonly config: GrpcStatsConfig;
  private readonly cb: FilterCallbacks;
  /** The stats prefix, undefined when the call is not tracked (no stats, the filter state still kept). */
  private readonly prefix: string | undefined;
  private cluster: Cluster | undefined;
  private readonly request = new GrpcFrameCounter(false);
  /** Set when the response is gRPC (Grpc::Common::isGrpcResponseHeaders: a 200 with a gRPC content type). */
  private response: GrpcFrameCounter | undefined;
  private state: GrpcMessageCounts | undefined;
  /** The message counters' indexes, resolved on first use (no name built per chunk). */
  private requestCounter = -1;
  private responseCounter = -1;

  constructor(config: GrpcStatsConfig, cb: FilterCallbacks, prefix: string | undefined) {
    this.config = config;
    this.cb = cb;
    this.prefix = prefix;
  }

  decodeData(chunk: Buffer): void {
    const d = this.request.inspect(chunk);
    if (d === 0) return;
    this.writeState();
    if (this.requestCounter < 0) this.requestCounter = this.counter('request_message_count');
    this.add(this.requestCounter, d);
  }

  encodeHeaders(status: number, headers: readonly string[]): void {
    if (status === 200 && isGrpcContentType(firstHeaderValue(headers, 'content-type'))) this.response = new GrpcFrameCounter(true);
    const gs = firstHeaderValue(headers, 'grpc-status');
    if (gs !== undefined) this.chargeStatus(gs);
  }

  encodeData(chunk: Buffer): void {
    const r = this.response;
    if (!r) return;
    const d = r.inspect(chunk);
    if (d === 0) return;
    this.writeState();
    if (this.responseCounter < 0) this.responseCounter = this.counter('response_message_count');
    this.add(this.responseCounter, d);
  }

  encodeTrailers(trailers: Readonly<Record<string, string | string[] | undefined>>): void {
    const gs = trailers['grpc-status'];
    const v = Array.isArray(gs) ? gs[0] : gs;
    if (v !== undefined) this.chargeStatus(v);
  }

  /** maybeWriteFilterState: the counts so far, in the object Istio's stats filter reads. */
  private writeState(): void {
    if (!this.config.emitFilterState) return;
    let s = this.state;
    if (!s) {
      s = this.state = { requestMessageCount: 0, responseMessageCount: 0 };
      this.cb.setFilterState(GRPC_STATS, s);
    }
    s.requestMessageCount = this.request.count;
    s.responseMessageCount = this.response?.count ?? 0;
  }

  /** ContextImpl::chargeStat: the status itself, success (status 0) or failure, and total. */
  private chargeStatus(status: string): void {
    this.add(this.counter(status), 1);
    this.add(this.counter(status === '0' ? 'success' : 'failure'), 1);
    this.add(this.counter('total'), 1);
  }

  /** The cluster's counter `<prefix><stat>`; -1 when the call is not tracked or its cluster is not known (yet). */
  private counter(stat: string): number {
    if (this.prefix === undefined) return -1;
    // The router's cluster, known once it chose (a weighted route's is not known before).
    const c = (this.cluster ??= this.cb.clusterInfo());
    return c ? c.counter(this.prefix + stat) : -1;
  }

  private add(idx: number, by: number): void {
    if (idx >= 0) (this.cluster as Cluster).store.inc(idx, by);
  }
}

/** The per-request filter: stateless, so a request that is not gRPC costs nothing. */
function filterFor(config: GrpcStatsConfig): StreamFilter {
  return {
    decodeHeaders(cb) {
      if (!cb.grpc) return 'continue';
      // Tracked when the route goes to a cluster (Envoy's clusterInfo() at decodeHeaders) and the path names a method.
      const route = cb.route();
      const prefix = route !== undefined && route.action === ACTION_ROUTE ? grpcStatPrefix(config, cb.path) : undefined;
      cb.observe(new GrpcStream(config, cb, prefix));
      return 'continue';
    },
  };
}

export function grpcStatsFilterFactory(config: GrpcStatsConfig): HttpFilterFactory {
  const filter = filterFor(config);
  return { name: GRPC_STATS, createFilter: () => filter };
}
