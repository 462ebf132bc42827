// The HCM's `tracing` block and `request_id_extension`, validated and reduced to what a stream needs (Envoy's
// ConnectionManagerTracingConfig, the OpenTelemetry and Zipkin tracers' configs, the UUID request id extension).
// What is not implemented is NACKed with the field's name.
import { durationMs, unpackAny, type envoy } from '../../xds/envoy.ts';
import { OTEL_TRACER_TYPE, UUID_REQUEST_ID_TYPE, ZIPKIN_TRACER_TYPE } from '../../xds/type-urls.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';

type HcmTracing = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing;

/** One custom tag: its value from a literal, the proxy's environment, a request header or the RBAC filter's metadata. */
type CustomTagSpec =
  | { tag: string; kind: 'literal'; value: string }
  | { tag: string; kind: 'header'; name: string; dflt: string }
  | { tag: string; kind: 'metadata'; filter: string; path: readonly string[]; dflt: string };

/** Where the spans go: an OTLP collector (gRPC or HTTP) or a Zipkin collector (v2 JSON), through a cluster. */
export type TracerSpec =
  | {
      kind: 'opentelemetry';
      /** The resource's service.name (Envoy: unknown_service:envoy when empty). */
      serviceName: string;
      cluster: string;
      transport: 'grpc' | 'http';
      /** gRPC: the :authority; HTTP: the Host and path come from the URI. */
      authority: string;
      path: string;
      timeoutMs: number;
      /** gRPC initial metadata or HTTP request_headers_to_add: lowercase name, value. */
      headers: readonly (readonly [string, string])[];
    }
  | { kind: 'zipkin'; cluster: string; path: string; hostname: string; traceId128: boolean; sharedSpanContext: boolean };

export interface TracingConfig {
  /** client_sampling, overall_sampling: out of 100 (Envoy rounds the percentages). */
  clientSampling: number;
  overallSampling: number;
  /** random_sampling: out of 10000. */
  randomSampling: number;
  maxPathTagLength: number;
  customTags: readonly CustomTagSpec[];
  /** No provider: Envoy's null tracer (sampling and stats only, no span, no propagation). */
  tracer: TracerSpec | undefined;
  spawnUpstreamSpan: boolean;
  /** request_id_extension: whether the x-request-id carries the sampling decision. */
  useRequestIdForTraceSampling: boolean;
  packTraceReason: boolean;
}

const checkTracing = fieldTable('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing', {
  client_sampling: true,
  random_sampling: true,
  overall_sampling: true,
  max_path_tag_length: true,
  custom_tags: true,
  provider: true,
  spawn_upstream_span: true,
  verbose: 'only false is accepted: the verbose timing logs are not written, true is NACKed',
});
const checkCustomTag = fieldTable('envoy.type.tracing.v3.CustomTag', { tag: true, literal: true, environment: true, request_header: true, metadata: true });
const checkOtel = fieldTable(OTEL_TRACER_TYPE.slice('type.googleapis.com/'.length) as 'envoy.config.trace.v3.OpenTelemetryConfig', {
  grpc_service: true,
  http_service: true,
  service_name: true,
});
const checkGrpcService = fieldTable(
  'envoy.config.core.v3.GrpcService',
  { envoy_grpc: true, timeout: true, initial_metadata: true },
  'OpenTelemetryConfig.grpc_service',
);
const checkEnvoyGrpc = fieldTable('envoy.config.core.v3.GrpcService.EnvoyGrpc', { cluster_name: true, authority: true }, 'OpenTelemetryConfig.grpc_service');
const checkHttpService = fieldTable('envoy.config.core.v3.HttpService', { http_uri: true, request_headers_to_add: true }, 'OpenTelemetryConfig.http_service');
const checkZipkin = fieldTable('envoy.config.trace.v3.ZipkinConfig', {
  collector_cluster: true,
  collector_endpoint: true,
  trace_id_128bit: true,
  shared_span_context: true,
  collector_endpoint_version: true,
  collector_hostname: true,
  split_spans_for_request: 'only false is accepted: the gateway span and the upstream span are spawn_upstream_span, true is NACKed',
});
const checkUuid = fieldTable('envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig', { pack_trace_reason: true, use_request_id_for_trace_sampling: true });

/** PROTOBUF_PERCENT_TO_ROUNDED_INTEGER_OR_DEFAULT: a Percent out of `max`, rounded; `dflt` when unset. */
function rounded(p: { value?: number } | undefined, max: number, dflt: number): number {
  return p === undefined ? dflt : Math.round(((p.value ?? 0) * max) / 100);
}

function customTag(t: envoy.type.tracing.v3.CustomTag, where: string): CustomTagSpec {
  checkCustomTag(t, where);
  const tag = t.tag ?? '';
  if (tag === '') throw new ConfigError(`${where}.tag: must not be empty`);
  if (t.literal) return { tag, kind: 'literal', value: t.literal.value ?? '' };
  // The proxy's environment is read once, when the config is loaded (as Envoy's EnvironmentCustomTag does).
  if (t.environment) return { tag, kind: 'literal', value: process.env[t.environment.name ?? ''] ?? t.environment.default_value ?? '' };
  if (t.request_header) return { tag, kind: 'header', name: (t.request_header.name ?? '').toLowerCase(), dflt: t.request_header.default_value ?? '' };
  if (t.metadata) {
    const m = t.metadata;
    if (m.kind?.request === undefined) throw new ConfigError(`${where}.metadata.kind: only request (the stream's dynamic metadata) is supported by this proxy`);
    const path = (m.metadata_key?.path ?? []).map((s, i) => {
      if (s.key === undefined) throw new ConfigError(`${where}.metadata.metadata_key.path[${i}]: only key segments are supported`);
      return s.key;
    });
    return { tag, kind: 'metadata', filter: m.metadata_key?.key ?? '', path, dflt: m.default_value ?? '' };
  }
  throw new ConfigError(`${where}: a custom tag needs literal, environment, request_header or metadata`);
}

/** "http://host/path" or "host/path" (what istiod writes): the path and the host. */
function splitUri(uri: string): { host: string; path: string } {
  const rest = uri.replace(/^[a-z]+:\/\//i, '');
  const slash = rest.indexOf('/');
  return slash < 0 ? { host: rest, path: '/' } : { host: rest.slice(0, slash), path: rest.slice(slash) };
}

function otelTracer(c: envoy.config.trace.v3.OpenTelemetryConfig, where: string): TracerSpec {
  checkOtel(c, where);
  const serviceName = c.service_name ?? '';
  if (c.grpc_service && c.http_service) throw new ConfigError(`${where}: grpc_service and http_service are exclusive`);
  if (c.grpc_service) {
    const g = c.grpc_service;
    checkGrpcService(g, `${where}.grpc_service`);
    if (!g.envoy_grpc) throw new ConfigError(`${where}.grpc_service: only envoy_grpc is supported by this proxy`);
    checkEnvoyGrpc(g.envoy_grpc, `${where}.grpc_service.envoy_grpc`);
    const cluster = g.envoy_grpc.cluster_name ?? '';
    return {
      kind: 'opentelemetry',
      serviceName,
      cluster,
      transport: 'grpc',
      authority: g.envoy_grpc.authority || cluster,
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      timeoutMs: durationMs(g.timeout, 0),
      headers: (g.initial_metadata ?? []).map((h) => [(h.key ?? '').toLowerCase(), h.value ?? ''] as const),
    };
  }
  if (c.http_service) {
    const h = c.http_service;
    checkHttpService(h, `${where}.http_service`);
    const { host, path } = splitUri(h.http_uri?.uri ?? '');
    const cluster = h.http_uri?.cluster ?? '';
    return {
      kind: 'opentelemetry',
      serviceName,
      cluster,
      transport: 'http',
      authority: host || cluster,
      path,
      timeoutMs: durationMs(h.http_uri?.timeout, 0),
      headers: (h.request_headers_to_add ?? []).map((o) => [(o.header?.key ?? '').toLowerCase(), o.header?.value ?? ''] as const),
    };
  }
  throw new ConfigError(`${where}: needs grpc_service or http_service (an OTLP exporter)`);
}

function zipkinTracer(c: envoy.config.trace.v3.ZipkinConfig, where: string): TracerSpec {
  checkZipkin(c, where);
  if (c.split_spans_for_request === true) throw new ConfigError(`${where}.split_spans_for_request: not supported by this proxy`);
  const version = c.collector_endpoint_version ?? 'DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE';
  if (version !== 'HTTP_JSON')
    throw new ConfigError(`${where}.collector_endpoint_version: only HTTP_JSON (Zipkin v2 JSON) is supported by this proxy, got ${version}`);
  const cluster = c.collector_cluster ?? '';
  if (cluster === '' || !c.collector_endpoint) throw new ConfigError(`${where}: collector_cluster and collector_endpoint are required`);
  return {
    kind: 'zipkin',
    cluster,
    path: c.collector_endpoint,
    hostname: c.collector_hostname || cluster,
    traceId128: c.trace_id_128bit === true,
    sharedSpanContext: c.shared_span_context ?? true,
  };
}

function tracer(p: NonNullable<HcmTracing['provider']>, where: string): TracerSpec {
  const cfg = p.typed_config;
  const type = cfg ? anyType(cfg) : '';
  if (cfg && `type.googleapis.com/${type}` === OTEL_TRACER_TYPE) return otelTracer(unpackAny(cfg, OTEL_TRACER_TYPE), `${where}.typed_config`);
  if (cfg && `type.googleapis.com/${type}` === ZIPKIN_TRACER_TYPE) return zipkinTracer(unpackAny(cfg, ZIPKIN_TRACER_TYPE), `${where}.typed_config`);
  throw new ConfigError(
    `${where}: tracer '${p.name ?? ''}'${type ? ` (${type})` : ''} is not supported by this proxy (envoy.tracers.opentelemetry and envoy.tracers.zipkin are)`,
  );
}

/** The request id extension: the UUID one (what Istio configures), or its defaults when none is given. */
export function parseRequestIdExtension(
  r: { typed_config?: envoy.extensions.filters.network.http_connection_manager.v3.RequestIDExtension['typed_config'] } | undefined,
  where: string,
): { useForSampling: boolean; pack: boolean } {
  const cfg = r?.typed_config;
  if (!cfg) return { useForSampling: true, pack: true };
  if (`type.googleapis.com/${anyType(cfg)}` !== UUID_REQUEST_ID_TYPE)
    throw new ConfigError(`${where}.typed_config: request id extension ${anyType(cfg)} is not supported by this proxy (the UUID one is)`);
  const u = unpackAny(cfg, UUID_REQUEST_ID_TYPE);
  checkUuid(u, `${where}.typed_config`);
  return { useForSampling: u.use_request_id_for_trace_sampling ?? true, pack: u.pack_trace_reason ?? true };
}

/** The HCM's tracing config; undefined when the HCM has no `tracing` (nothing is sampled or counted). */
export function parseTracing(t: HcmTracing | undefined, rid: { useForSampling: boolean; pack: boolean }, where: string): TracingConfig | undefined {
  if (t === undefined) return undefined;
  checkTracing(t, where);
  if (t.verbose === true) throw new ConfigError(`${where}.verbose: not supported by this proxy`);
  return {
    clientSampling: rounded(t.client_sampling, 100, 100),
    randomSampling: rounded(t.random_sampling, 10000, 10000),
    overallSampling: rounded(t.overall_sampling, 100, 100),
    maxPathTagLength: t.max_path_tag_length ?? 256,
    customTags: (t.custom_tags ?? []).map((c, i) => customTag(c, `${where}.custom_tags[${i}]`)),
    tracer: t.provider ? tracer(t.provider, `${where}.provider`) : undefined,
    spawnUpstreamSpan: t.spawn_upstream_span === true,
    useRequestIdForTraceSampling: rid.useForSampling,
    packTraceReason: rid.pack,
  };
}
