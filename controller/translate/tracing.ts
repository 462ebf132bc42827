// The tracing block and request id extension istiod puts on every gateway HCM (pilot/pkg/networking/core/tracing.go
// configureTracingFromTelemetry, pilot/pkg/model/telemetry.go Telemetries.Tracing,
// pilot/pkg/xds/requestidextension). Two paths, as in istiod:
// - no tracing provider (no defaultProviders.tracing, no Telemetry resource): the legacy mesh config. With
//   enableTracing (default true) a tracing block without a tracer: sampling from defaultConfig.tracing.sampling
//   (else PILOT_TRACE_SAMPLING, 1 %), Istio's tags and defaultConfig.tracing.customTags, maxPathTagLength.
// - a provider (zipkin or opentelemetry extension provider): the tracer's config with the collector's outbound
//   cluster, spawn_upstream_span (a gateway is a Router), the provider's maxTagLength.
// The translation is a function of the resolved TracingSpec: the CLIENT side (a gateway's) of what the Telemetry
// resources that apply and the mesh's defaultProviders.tracing make (model/telemetry.ts resolveTelemetry).
import type { envoy } from '../../xds/envoy.ts';
import { typedAny } from '../../xds/envoy.ts';
import { OTEL_TRACER_TYPE, UUID_REQUEST_ID_TYPE, ZIPKIN_TRACER_TYPE } from '../../xds/type-urls.ts';
import type {
  ExtensionProvider,
  OpenTelemetryTracingProvider,
  ProviderHttpHeader,
  ProtoDuration,
  ProxyConfig,
  ZipkinTracingProvider,
} from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';
import type { TracingCustomTag } from '../model/telemetry-types.ts';
import type { TracingSpec } from '../model/telemetry.ts';
import type { ValidationError } from '../model/validation.ts';
import { gatewayProxyConfig } from '../model/proxy-config.ts';
import { lookupCluster } from './ext-authz.ts';

type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type HcmTracing = NonNullable<Hcm['tracing']>;
type CustomTag = envoy.type.tracing.v3.CustomTag;

/** PILOT_TRACE_SAMPLING's default: 1 % of requests. */
const PILOT_TRACE_SAMPLING = 1;
/** The istiod cluster id meshgate reports (as in endpoints.ts). */
const CLUSTER_ID = 'Kubernetes';

/** What a gateway HCM gets: the tracing block (none when tracing is off) and the request id extension. */
export interface HcmTracingConfig {
  tracing?: HcmTracing;
  request_id_extension: NonNullable<Hcm['request_id_extension']>;
}

const requestIdExtension = (useForSampling: boolean): HcmTracingConfig['request_id_extension'] => ({
  typed_config: typedAny(UUID_REQUEST_ID_TYPE, { use_request_id_for_trace_sampling: useForSampling }),
});

/** proxyConfigSamplingValue: defaultConfig.tracing.sampling when set (above 100 is 1), else PILOT_TRACE_SAMPLING. */
function proxyConfigSampling(pc: ProxyConfig): number {
  const s = pc.tracing?.sampling ?? 0;
  if (s === 0) return PILOT_TRACE_SAMPLING;
  return s > 100 ? 1 : s;
}

/** configureSampling: client and overall 100 %, random the given percentage. */
function sampling(random: number): Pick<HcmTracing, 'client_sampling' | 'random_sampling' | 'overall_sampling'> {
  return { client_sampling: { value: 100 }, random_sampling: { value: random }, overall_sampling: { value: 100 } };
}

const literal = (tag: string, value: string): CustomTag => ({ tag, literal: { value } });

/** The RBAC filter's shadow (dry-run) results in its dynamic metadata (optionalPolicyTags). */
function dryRunTag(tag: string, key: string): CustomTag {
  return { tag, metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key }] } } };
}

/** buildServiceTags + optionalPolicyTags: the istio.* literals of this proxy and the dry-run RBAC results. */
function istioTags(push: PushContext): CustomTag[] {
  const labels = push.identity.labels;
  return [
    literal('istio.canonical_revision', labels['service.istio.io/canonical-revision'] || 'latest'),
    literal('istio.canonical_service', labels['service.istio.io/canonical-name'] || 'unknown'),
    // The node's MESH_ID metadata: meshgate's identity carries none (istiod then writes "unknown").
    literal('istio.mesh_id', 'unknown'),
    literal('istio.namespace', push.identity.namespace || 'default'),
    literal('istio.cluster_id', CLUSTER_ID),
    dryRunTag('istio.authorization.dry_run.allow_policy.name', 'istio_dry_run_allow_shadow_effective_policy_id'),
    dryRunTag('istio.authorization.dry_run.allow_policy.result', 'istio_dry_run_allow_shadow_engine_result'),
    dryRunTag('istio.authorization.dry_run.deny_policy.name', 'istio_dry_run_deny_shadow_effective_policy_id'),
    dryRunTag('istio.authorization.dry_run.deny_policy.result', 'istio_dry_run_deny_shadow_engine_result'),
  ];
}

/** One custom tag of ProxyConfig.Tracing or of a Telemetry resource (the same three kinds); null ones are skipped. */
function customTag(tag: string, t: TracingCustomTag | null): CustomTag | undefined {
  if (t?.header) return { tag, request_header: { name: t.header.name ?? '', default_value: t.header.defaultValue ?? '' } };
  if (t?.environment) return { tag, environment: { name: t.environment.name ?? '', default_value: t.environment.defaultValue ?? '' } };
  if (t?.literal) return { tag, literal: { value: t.literal.value ?? '' } };
  return undefined;
}

/** configureCustomTags: Istio's tags (unless turned off), then the spec's tags or else the proxy config's, sorted by tag. */
function customTags(push: PushContext, spec: TracingSpec | undefined, pc: ProxyConfig): CustomTag[] {
  const withIstio = spec ? spec.enableIstioTags : (pc.tracing?.enableIstioTags ?? true);
  const own = spec?.customTags && Object.keys(spec.customTags).length ? spec.customTags : (pc.tracing?.customTags ?? {});
  const tags = [...(withIstio ? istioTags(push) : []), ...Object.entries(own).flatMap(([k, t]) => customTag(k, t) ?? [])];
  // Go's sort.Slice by tag name (byte order).
  return tags.sort((a, b) => ((a.tag ?? '') < (b.tag ?? '') ? -1 : (a.tag ?? '') > (b.tag ?? '') ? 1 : 0));
}

const protoDuration = (d: ProtoDuration): `${number}s` => `${d.seconds + d.nanos / 1e9}s`;

/** buildHTTPHeaders: each header overwrites or adds; an envName header's value is read from istiod's environment, which meshgate's controller does not have. */
function headerValue(h: ProviderHttpHeader): string {
  return h.envName !== undefined ? (process.env[h.envName] ?? '') : (h.value ?? '');
}

/**
 * Go's url.JoinPath(hostname, path) as otelConfig uses it: the segments joined by one '/', cleaned (`.` and `..`
 * resolved), a trailing '/' of the path kept.
 */
function joinPath(base: string, path: string): string {
  if (path === '') return base;
  const parts: string[] = [];
  for (const seg of `${base}/${path}`.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.join('/') + (path.endsWith('/') ? '/' : '');
}

/**
 * The gateway's service cluster (pkg/bootstrap getServiceCluster with the default APP_LABEL_AND_NAMESPACE): its
 * app label (app, app.kubernetes.io/name, service.istio.io/canonical-name) or workload name, dot, its namespace.
 * Istio's OpenTelemetry tracer names the service of its spans after it.
 */
function serviceCluster(push: PushContext): string {
  const l = push.identity.labels;
  const app = l.app ?? l['app.kubernetes.io/name'] ?? l['service.istio.io/canonical-name'];
  return `${app ?? push.identity.podName ?? 'istio-proxy'}.${push.identity.namespace}`;
}

function zipkinConfig(hostname: string, cluster: string, z: ZipkinTracingProvider): envoy.config.trace.v3.ZipkinConfig {
  // The fields istiod sends proxies older than 1.29 (collector_service, trace_context_option and the provider's timeout
  // and headers are newer than the Envoy API meshgate encodes with).
  return {
    collector_cluster: cluster,
    collector_endpoint: z.path || '/api/v2/spans',
    trace_id_128bit: !z.enable64bitTraceId,
    shared_span_context: false,
    collector_endpoint_version: 'HTTP_JSON',
    collector_hostname: hostname,
  };
}

function otelConfig(push: PushContext, hostname: string, cluster: string, o: OpenTelemetryTracingProvider): envoy.config.trace.v3.OpenTelemetryConfig {
  const exporter: Pick<envoy.config.trace.v3.OpenTelemetryConfig, 'grpc_service' | 'http_service'> = o.http
    ? {
        http_service: {
          http_uri: { uri: joinPath(hostname, o.http.path), cluster, ...(o.http.timeout ? { timeout: protoDuration(o.http.timeout) } : {}) },
          ...(o.http.headers.length
            ? {
                request_headers_to_add: o.http.headers.map((h) => ({
                  header: { key: h.name, value: headerValue(h) },
                  append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' as const,
                })),
              }
            : {}),
        },
      }
    : {
        grpc_service: {
          envoy_grpc: { cluster_name: cluster, authority: hostname },
          ...(o.grpc?.timeout ? { timeout: protoDuration(o.grpc.timeout) } : {}),
          ...(o.grpc?.initialMetadata.length ? { initial_metadata: o.grpc.initialMetadata.map((h) => ({ key: h.name, value: headerValue(h) })) } : {}),
        },
      };
  return { ...exporter, service_name: serviceCluster(push) };
}

/**
 * configureFromProviderConfig + buildHCMTracing: the tracer of a zipkin or opentelemetry provider, or why there is
 * none (istiod then configures no tracing at all on the HCM).
 */
function providerTracing(push: PushContext, p: ExtensionProvider): { tracing: HcmTracing } | { error: string } {
  const z = p.kind === 'other' ? p.zipkin : undefined;
  const o = p.kind === 'other' ? p.opentelemetry : undefined;
  const target = z ?? o;
  if (!target) {
    const kind = p.kind === 'other' ? p.provider : p.kind;
    return {
      error: ['datadog', 'skywalking', 'lightstep'].includes(kind)
        ? `the ${kind} tracer is not implemented by meshgate's proxy: no tracing is configured (use a zipkin or opentelemetry provider)`
        : `provider ${kind || '<nil>'} does not support tracing`,
    };
  }
  if (o?.unsupported) return { error: `opentelemetry ${o.unsupported}: not implemented by meshgate; no tracing is configured` };
  const found = lookupCluster(push, target.service, target.port);
  if ('error' in found) return { error: `could not find cluster for tracing provider: ${found.error}` };
  const provider = z
    ? { name: 'envoy.tracers.zipkin', typed_config: typedAny(ZIPKIN_TRACER_TYPE, zipkinConfig(found.hostname, found.cluster, z)) }
    : { name: 'envoy.tracers.opentelemetry', typed_config: typedAny(OTEL_TRACER_TYPE, otelConfig(push, found.hostname, found.cluster, o!)) };
  return { tracing: { spawn_upstream_span: true, provider, ...(target.maxTagLength ? { max_path_tag_length: target.maxTagLength } : {}) } };
}

/**
 * configureTracingFromTelemetry for a gateway HCM: `spec` undefined is the legacy mesh config path. `pc` is the
 * gateway's ProxyConfig (meshConfig.defaultConfig with its pod annotation). Errors name the provider that could not
 * be used.
 */
export function gatewayHcmTracing(push: PushContext, spec: TracingSpec | undefined, pc: ProxyConfig): HcmTracingConfig & { errors: ValidationError[] } {
  const errors: ValidationError[] = [];
  const maxPath = pc.tracing?.maxPathTagLength ?? 0;
  if (!spec) {
    if (!push.mesh.enableTracing) return { request_id_extension: requestIdExtension(true), errors };
    return {
      tracing: { ...sampling(proxyConfigSampling(pc)), ...(maxPath ? { max_path_tag_length: maxPath } : {}), custom_tags: customTags(push, undefined, pc) },
      request_id_extension: requestIdExtension(true),
      errors,
    };
  }
  if (spec.disabled || !spec.provider) return { request_id_extension: requestIdExtension(true), errors };
  // About the gateway's tracing (istiod logs it per proxy): reported on the gateway's Pod, as its proxy config is.
  const fail = (message: string): void =>
    void errors.push({
      kind: 'Pod',
      namespace: push.identity.namespace,
      name: push.identity.podName,
      origin: {},
      field: `meshConfig.extensionProviders[name=${spec.provider?.name ?? ''}]`,
      message,
    });
  const built = providerTracing(push, spec.provider);
  if ('error' in built) {
    fail(`tracing provider ${spec.provider.name}: ${built.error}; this gateway does not trace`);
    return { request_id_extension: requestIdExtension(true), errors };
  }
  // istiod sets the HCM's no_context_propagation (Istio 1.30+ proxies), a field newer than the Envoy API meshgate
  // encodes with: the setting is reported, and context still propagates.
  if (spec.disableContextPropagation)
    fail(`tracing provider ${spec.provider.name}: disableContextPropagation is not supported by meshgate (the trace context still goes upstream)`);
  const tracing: HcmTracing = {
    ...sampling(spec.randomSamplingPercentage ?? proxyConfigSampling(pc)),
    ...built.tracing,
    custom_tags: customTags(push, spec, pc),
  };
  if (tracing.max_path_tag_length === undefined && maxPath) tracing.max_path_tag_length = maxPath;
  return { tracing, request_id_extension: requestIdExtension(spec.useRequestIdForTraceSampling), errors };
}

const perPush = new WeakMap<PushContext, HcmTracingConfig>();

/**
 * The tracing of every HCM of this push's gateway (the same for all its HCMs: Telemetry resources and the mesh
 * config), computed once per push so that a provider's error is reported once.
 */
export function gatewayTracing(push: PushContext): HcmTracingConfig {
  let t = perPush.get(push);
  if (!t) {
    const pc = gatewayProxyConfig(push.mesh.defaultConfig, push.identity.annotations);
    const { errors, ...config } = gatewayHcmTracing(push, push.telemetry.tracing?.client, pc.ok ? pc.config : push.mesh.defaultConfig);
    push.errors.push(...errors);
    perPush.set(push, (t = config));
  }
  return t;
}
