// Envoy resources shaped as istiod sends them to an ingress gateway (research: istio-control-plane.md
// §2-§8): listener 0.0.0.0_<port> with an HCM on RDS http.<port>, EDS clusters outbound|<port>||<fqdn>,
// ClusterLoadAssignments and a RouteConfiguration with one vhost per host.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { envoy } from '../../xds/envoy.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, type TestAdsServer } from './ads-server.ts';

export const HTTPBIN = 'outbound|8000||httpbin.default.svc.cluster.local';

export function gatewayListener(port: number, opts: { routeName?: string; extraHcm?: Record<string, unknown> } = {}): Record<string, unknown> {
  const name = `0.0.0.0_${port}`;
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: `outbound_${name};`,
              rds: { config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, route_config_name: opts.routeName ?? `http.${port}` },
              http_filters: [
                { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } },
                { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
                { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
              ],
              tracing: { client_sampling: { value: 100 }, random_sampling: { value: 1 }, overall_sampling: { value: 100 } },
              use_remote_address: true,
              forward_client_cert_details: 'SANITIZE_SET',
              set_current_client_cert_details: { subject: true, cert: true, uri: true, dns: true },
              upgrade_configs: [{ upgrade_type: 'websocket' }],
              stream_idle_timeout: '0s',
              normalize_path: true,
              path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
              server_name: 'istio-envoy',
              http_protocol_options: {},
              ...opts.extraHcm,
            },
          },
        ],
      },
    ],
    traffic_direction: 'OUTBOUND',
    max_connections_to_accept_per_socket_event: 1,
  };
}

export function edsCluster(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const host = name.split('|')[3] ?? name;
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, service_name: name },
    connect_timeout: '10s',
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: {
      thresholds: [
        { max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: false },
      ],
    },
    alt_stat_name: `${name};`,
    metadata: { filter_metadata: { istio: { services: [{ host, name: host.split('.')[0], namespace: host.split('.')[1] }] } } },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        common_http_protocol_options: { idle_timeout: '3600s' },
        explicit_http_config: { http_protocol_options: {} },
      },
    },
    ...extra,
  };
}

export function assignment(name: string, endpoints: { ip: string; port: number; health?: string; weight?: number }[]): Record<string, unknown> {
  return {
    cluster_name: name,
    endpoints: endpoints.length
      ? [
          {
            locality: {},
            lb_endpoints: endpoints.map((e) => ({
              endpoint: { address: { socket_address: { address: e.ip, port_value: e.port } } },
              health_status: e.health ?? 'HEALTHY',
              load_balancing_weight: e.weight ?? 1,
              metadata: { filter_metadata: { istio: { workload: 'httpbin;default;httpbin;;Kubernetes' } } },
            })),
            load_balancing_weight: endpoints.reduce((s, e) => s + (e.weight ?? 1), 0),
          },
        ]
      : [],
  };
}

/** Istio's default retry policy (no VirtualService retries). */
export const ISTIO_DEFAULT_RETRY: envoy.config.route.v3.RetryPolicy = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: 2,
  retry_host_predicate: [
    {
      name: 'envoy.retry_host_predicates.previous_hosts',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
    },
  ],
  host_selection_retry_max_attempts: '5',
};

/** Istio's translation of DestinationRule `outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 10s, maxEjectionPercent: 50}`. */
export const ISTIO_OUTLIER_DETECTION: envoy.config.cluster.v3.OutlierDetection = {
  consecutive_5xx: 3,
  enforcing_consecutive_5xx: 100,
  enforcing_success_rate: 0,
  interval: '1s',
  base_ejection_time: '10s',
  max_ejection_percent: 50,
};

export function istioRoute(
  prefix: string,
  cluster: string,
  extra: Record<string, unknown> = {},
  action: Record<string, unknown> = {},
): Record<string, unknown> {
  const host = cluster.split('|')[3] ?? cluster;
  const port = cluster.split('|')[1] ?? '80';
  return {
    match: { prefix, case_sensitive: true },
    route: {
      cluster,
      timeout: '0s',
      retry_policy: ISTIO_DEFAULT_RETRY,
      max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' },
      ...action,
    },
    metadata: { filter_metadata: { istio: { config: '/apis/networking.istio.io/v1/namespaces/default/virtual-service/httpbin' } } },
    decorator: { operation: `${host}:${port}${prefix}*` },
    ...extra,
  };
}

export function routeConfig(name: string, vhosts: { name: string; domains: string[]; routes: Record<string, unknown>[] }[]): Record<string, unknown> {
  return {
    name,
    virtual_hosts: vhosts.map((v) => ({ ...v, include_request_attempt_count: true })),
    validate_clusters: false,
    max_direct_response_body_size_bytes: 1048576,
    ignore_port_in_host_matching: true,
  };
}

/**
 * One host on listener 0.0.0.0_<port>, every request to the EDS cluster `cluster` (edsCluster(HTTPBIN) unless
 * given), whose endpoints are `endpoints`: the listener, route, cluster and assignment set on the test ADS server.
 */
export function routeOneHost(
  ads: TestAdsServer,
  o: { port: number; host: string; endpoints: { ip: string; port: number; health?: string; weight?: number }[]; cluster?: Record<string, unknown> },
): void {
  const cluster = o.cluster ?? edsCluster(HTTPBIN);
  const name = String(cluster.name);
  ads.set(CLUSTER_TYPE, [cluster]);
  ads.set(ENDPOINT_TYPE, [assignment(name, o.endpoints)]);
  ads.set(LISTENER_TYPE, [gatewayListener(o.port)]);
  ads.set(ROUTE_TYPE, [routeConfig(`http.${o.port}`, [{ name: `${o.host}:80`, domains: [o.host], routes: [istioRoute('/', name)] }])]);
}

/** A backend echoing what it received: the raw header list in order, method, url and body. */
export interface Echo {
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
  instance: string;
}

export async function startEchoBackend(
  host: string,
  name: string,
  handler?: (req: IncomingMessage, body: string) => { status?: number; headers?: string[]; body?: string; delayMs?: number } | undefined,
): Promise<{ server: Server; port: number; seen: Echo[] }> {
  const seen: Echo[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const echo: Echo = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body, instance: name };
      seen.push(echo);
      const custom = handler?.(req, body);
      const send = (): void => {
        const payload = custom?.body ?? JSON.stringify(echo);
        res.writeHead(
          custom?.status ?? 200,
          custom?.headers ?? ['content-type', 'application/json', 'x-instance', name, 'content-length', String(Buffer.byteLength(payload))],
        );
        res.end(payload);
      };
      if (custom?.delayMs) setTimeout(send, custom.delayMs);
      else send();
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, host, () => resolve((server.address() as { port: number }).port)));
  return { server, port, seen };
}

/** Polls `fn` until it returns a value (not undefined) or the time runs out. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A raw TCP backend for hostile-upstream tests: its connections, and the path of every bodiless request head it read. */
export interface RawBackend {
  server: NetServer;
  port: number;
  seen: string[];
  sockets: Set<Socket>;
  connections: () => number;
}

/**
 * Starts a raw backend on `host`: every request head (requests without bodies) is recorded and handed to
 * `answer`, which writes whatever bytes the test wants on the socket; a destroyed socket reads no further heads.
 */
export async function startRawBackend(host: string, answer: (path: string, s: Socket) => void): Promise<RawBackend> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createNetServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0 && !s.destroyed; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(0, end).split(' ')[1] ?? '';
        buf = buf.slice(end + 4);
        seen.push(path);
        answer(path, s);
      }
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, host, () => resolve((server.address() as { port: number }).port)));
  return { server, port, seen, sockets, connections: () => connections };
}
