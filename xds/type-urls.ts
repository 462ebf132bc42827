// Envoy xDS v3 resource type URLs: the contract between controller and proxy (docs/architecture.md).
export const TYPE_PREFIX = 'type.googleapis.com/';

export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const NETWORK_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const CORS_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
export const GRPC_STATS_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig';
export const CORS_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
export const TLS_INSPECTOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
export const DOWNSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';
export const PREVIOUS_PRIORITIES_TYPE = 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';
/** Istio's stats filter config (xds/protos/istio/stats.proto). */
export const ISTIO_STATS_TYPE = 'type.googleapis.com/stats.PluginConfig';

/** Push order on a full push, as istiod does it (CDS, EDS, LDS, RDS, SDS). */
export const PUSH_ORDER = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE] as const;

/** Short names used in logs, stats and config_dump (cds, eds, lds, rds, sds). */
export const SHORT_NAMES: Readonly<Record<string, string>> = {
  [LISTENER_TYPE]: 'lds',
  [ROUTE_TYPE]: 'rds',
  [CLUSTER_TYPE]: 'cds',
  [ENDPOINT_TYPE]: 'eds',
  [SECRET_TYPE]: 'sds',
};
export const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const REQ_WITHOUT_QUERY_TYPE = 'type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery';
/** The CEL access log filter a Telemetry's accessLogging filter becomes (envoy.access_loggers.extension_filters.cel). */
export const CEL_FILTER_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
export const OTEL_TRACER_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
export const ZIPKIN_TRACER_TYPE = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
export const UUID_REQUEST_ID_TYPE = 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig';
