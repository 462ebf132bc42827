// Istio's MeshConfig: the YAML under the `mesh` key of istiod's ConfigMap `istio` (what `meshConfig:` in Istio's
// Helm values holds), parsed and validated as istiod does (pkg/config/mesh ApplyMeshConfig,
// pkg/config/validation/agent ValidateMeshConfig), reduced to what meshgate uses.
//
// istiod decodes the YAML with golang/protobuf's jsonpb onto DefaultMeshConfig(): a field may be written with its
// JSON name (rootNamespace) or its proto name (root_namespace); a value of the wrong type fails the whole file; an
// unknown field fails a strict first pass, after which istiod decodes again allowing unknown fields, so unknown
// fields are accepted and ignored (protomarshal.ApplyJSON). `null` leaves the default. `defaultConfig` (ProxyConfig)
// merges onto the default proxy config; `extensionProviders` merge by name onto the default ones (prometheus,
// stackdriver, envoy): a provider with a known name replaces its kind, a new name is appended. An invalid extension
// provider is only a warning (istiod logs it and fails the CUSTOM policies that name it, see translate/ext-authz.ts).
import { parseDocument } from 'yaml';
import { checkWildcardDomain, isDNS1123Label, isIPAddress } from './host.ts';
import { fqdnError } from './istio-validation.ts';

/** The duration istiod read (Go time.ParseDuration syntax): seconds and nanoseconds, as google.protobuf.Duration holds it. */
export interface ProtoDuration {
  seconds: number;
  nanos: number;
}

/** MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationRequestBody. */
export interface ExtAuthzRequestBody {
  maxRequestBytes: number;
  allowPartialMessage: boolean;
  packAsBytes: boolean;
}

/** MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider (proto3 zero values when unset): the gRPC provider's fields and more. */
export interface EnvoyExtAuthzHttpProvider extends EnvoyExtAuthzGrpcProvider {
  pathPrefix: string;
  /** Deprecated; used only when includeRequestHeadersInCheck is empty. */
  includeHeadersInCheck: readonly string[];
  includeRequestHeadersInCheck: readonly string[];
  includeAdditionalHeadersInCheck: Readonly<Record<string, string>>;
  headersToUpstreamOnAllow: readonly string[];
  headersToDownstreamOnDeny: readonly string[];
  headersToDownstreamOnAllow: readonly string[];
}

/** MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider. */
interface EnvoyExtAuthzGrpcProvider {
  service: string;
  port: number;
  timeout?: ProtoDuration;
  failOpen: boolean;
  clearRouteCache: boolean;
  statusOnError: string;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
}

/** MeshConfig.ExtensionProvider.EnvoyFileAccessLogProvider (logFormat: its oneof, text or labels, when given). */
export interface EnvoyFileAccessLogProvider {
  path: string;
  logFormat?: { text?: string; labels?: Readonly<Record<string, unknown>> };
  omitEmptyValues: boolean;
}

/** MeshConfig.ExtensionProvider.HttpHeader: a value, or the name of an environment variable of istiod holding it. */
export interface ProviderHttpHeader {
  name: string;
  value?: string;
  envName?: string;
}

/** MeshConfig.ExtensionProvider.ZipkinTracingProvider. */
export interface ZipkinTracingProvider {
  service: string;
  port: number;
  maxTagLength: number;
  enable64bitTraceId: boolean;
  path: string;
  traceContextOption: 'USE_B3' | 'USE_B3_WITH_W3C_PROPAGATION';
  timeout?: ProtoDuration;
  headers: readonly ProviderHttpHeader[];
}

/** MeshConfig.ExtensionProvider.OpenTelemetryTracingProvider: OTLP over HTTP when `http` is set, else gRPC. */
export interface OpenTelemetryTracingProvider {
  service: string;
  port: number;
  maxTagLength: number;
  http?: { path: string; timeout?: ProtoDuration; headers: readonly ProviderHttpHeader[] };
  grpc?: { timeout?: ProtoDuration; initialMetadata: readonly ProviderHttpHeader[] };
  /** The fields given that meshgate does not translate (resourceDetectors, dynatraceSampler, serviceAttributeEnrichment). */
  unsupported?: string;
}

/**
 * One extension provider: the two ext_authz kinds typed, any other kind (tracing, logging, metrics) by its key only,
 * an envoyFileAccessLog, zipkin or opentelemetry one with its fields too.
 */
export type ExtensionProvider =
  | { name: string; kind: 'envoyExtAuthzHttp'; envoyExtAuthzHttp: EnvoyExtAuthzHttpProvider }
  | { name: string; kind: 'envoyExtAuthzGrpc'; envoyExtAuthzGrpc: EnvoyExtAuthzGrpcProvider }
  | {
      name: string;
      kind: 'other';
      provider: string;
      envoyFileAccessLog?: EnvoyFileAccessLogProvider;
      zipkin?: ZipkinTracingProvider;
      opentelemetry?: OpenTelemetryTracingProvider;
    };

/** ProxyConfig.Topology, the gateway's place in the network (numTrustedProxies: XFF hops trusted). */
export interface GatewayTopology {
  numTrustedProxies: number;
  forwardClientCertDetails: string;
  proxyProtocol?: Readonly<Record<string, unknown>>;
}

/**
 * meshConfig.defaultConfig: the mesh default ProxyConfig, which a pod's `proxy.istio.io/config` annotation
 * overrides field by field. `raw` is the object as written (keys as the user spelt them, after YAML decoding) for
 * fields meshgate does not type; `gatewayTopology` is typed and validated.
 */
export interface ProxyConfig {
  raw: Readonly<Record<string, unknown>>;
  gatewayTopology?: GatewayTopology;
  tracing?: ProxyTracing;
  /** The stats the proxy exports beyond Istio's inclusion list (gateway/stats/stats-matcher.ts). */
  proxyStatsMatcher?: ProxyStatsMatcher;
}

/** ProxyConfig.ProxyStatsMatcher: Envoy stat name patterns (prefixes, suffixes, RE2 regexps) to export. */
interface ProxyStatsMatcher {
  inclusionPrefixes: readonly string[];
  inclusionSuffixes: readonly string[];
  inclusionRegexps: readonly string[];
}

/** ProxyConfig.Tracing.CustomTag: one of a literal, an environment variable of the proxy, a request header. */
interface ProxyTracingCustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue: string };
  header?: { name: string; defaultValue: string };
}

/** ProxyConfig.Tracing, the fields the legacy (no Telemetry provider) tracing reads; 0 means unset. */
interface ProxyTracing {
  sampling: number;
  maxPathTagLength: number;
  customTags: Readonly<Record<string, ProxyTracingCustomTag | null>>;
  enableIstioTags?: boolean;
}

/** What meshgate reads from the mesh config. */
export interface MeshConfig {
  /** DestinationRules, AuthorizationPolicies and RequestAuthentications here apply mesh-wide. */
  rootNamespace: string;
  trustDomain: string;
  /** Sorted, without duplicates (ApplyMeshConfig). */
  trustDomainAliases: readonly string[];
  /** In istiod's order: the defaults (prometheus, stackdriver, envoy), then the new names in the order given. */
  extensionProviders: readonly ExtensionProvider[];
  defaultConfig: ProxyConfig;
  /** Where Envoy writes its access log (`/dev/stdout`); empty: no access log (without Telemetry API providers). */
  accessLogFile: string;
  accessLogEncoding: 'TEXT' | 'JSON';
  /** A text format (TEXT) or a JSON object of command operators (JSON); empty: Istio's default format. */
  accessLogFormat: string;
  /** No listener-level access log (the one for connections no filter chain matched). */
  disableEnvoyListenerLog: boolean;
  /** defaultProviders.accessLogging: extension provider names; any replaces the accessLogFile logger (Telemetry API). */
  defaultAccessLogging: readonly string[];
  /** defaultProviders.metrics: extension provider names (istiod's chart sets `[prometheus]`: the istio.stats filter). */
  defaultMetrics: readonly string[];
  /** defaultProviders.tracing: extension provider names (zipkin, opentelemetry ...). */
  defaultTracing: readonly string[];
  /** Without a tracing provider (Telemetry API), whether HCMs get Envoy's tracing block (default true). */
  enableTracing: boolean;
}

/** DefaultMeshConfig(), the fields meshgate reads: what applies when no mesh config is given. */
export const DEFAULT_MESH_CONFIG: MeshConfig = Object.freeze<MeshConfig>({
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  extensionProviders: [
    { name: 'prometheus', kind: 'other', provider: 'prometheus' },
    { name: 'stackdriver', kind: 'other', provider: 'stackdriver' },
    { name: 'envoy', kind: 'other', provider: 'envoyFileAccessLog', envoyFileAccessLog: { path: '/dev/stdout', omitEmptyValues: false } },
  ],
  defaultConfig: { raw: {} },
  accessLogFile: '',
  accessLogEncoding: 'TEXT',
  accessLogFormat: '',
  disableEnvoyListenerLog: false,
  defaultAccessLogging: [],
  defaultMetrics: [],
  defaultTracing: [],
  enableTracing: true,
});

/**
 * The mesh config of an Istio install whose `meshConfig` values are empty: istiod's chart adds
 * `defaultProviders: {metrics: [prometheus]}` (Istio's standard metrics) unless meshConfig sets defaultProviders.
 * What meshgate uses without --mesh-config; the gateway chart renders the same into its ConfigMap.
 */
export const INSTALLED_MESH_CONFIG: MeshConfig = Object.freeze<MeshConfig>({ ...DEFAULT_MESH_CONFIG, defaultMetrics: ['prometheus'] });

export type MeshConfigResult = { ok: true; mesh: MeshConfig; warnings: string[] } | { ok: false; errors: string[] };

// ---- a small jsonpb decoder -----------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Decoder {
  readonly errors: string[] = [];
  fail(path: string, message: string): void {
    this.errors.push(`${path}: ${message}`);
  }
}

/** The value of a field given by its JSON (lowerCamel) name or its proto (snake_case) name; the JSON name wins. */
function field(o: Obj, jsonName: string): unknown {
  const protoName = jsonName.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const v = o[jsonName] ?? o[protoName];
  return v === null ? undefined : v;
}

function str(d: Decoder, o: Obj, name: string, path: string): string {
  const v = field(o, name);
  if (v === undefined) return '';
  if (typeof v !== 'string') {
    d.fail(`${path}.${name}`, `must be a string, got ${JSON.stringify(v)}`);
    return '';
  }
  return v;
}

function bool(d: Decoder, o: Obj, name: string, path: string): boolean {
  const v = field(o, name);
  if (v === undefined) return false;
  if (typeof v !== 'boolean') {
    d.fail(`${path}.${name}`, `must be true or false, got ${JSON.stringify(v)}`);
    return false;
  }
  return v;
}

/** A uint32: a JSON number or a quoted one (jsonpb strips the quotes), an integer in [0, 2^32). */
function uint32(d: Decoder, o: Obj, name: string, path: string): number {
  const v = field(o, name);
  if (v === undefined) return 0;
  // The quoted text is then read as a JSON number: no leading zeros ("007" is refused, as by jsonpb).
  const n = typeof v === 'string' && /^(0|[1-9]\d*)$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    d.fail(`${path}.${name}`, `must be an unsigned 32-bit integer, got ${JSON.stringify(v)}`);
    return 0;
  }
  return n;
}

function strings(d: Decoder, o: Obj, name: string, path: string): string[] {
  const v = field(o, name);
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    d.fail(`${path}.${name}`, `must be a list of strings, got ${JSON.stringify(v)}`);
    return [];
  }
  return v as string[];
}

function stringMap(d: Decoder, o: Obj, name: string, path: string): Record<string, string> {
  const v = field(o, name);
  if (v === undefined) return {};
  if (!isObj(v) || Object.values(v).some((s) => typeof s !== 'string')) {
    d.fail(`${path}.${name}`, `must be a map of strings, got ${JSON.stringify(v)}`);
    return {};
  }
  return v as Record<string, string>;
}

function message(d: Decoder, o: Obj, name: string, path: string): Obj | undefined {
  const v = field(o, name);
  if (v === undefined) return undefined;
  if (!isObj(v)) {
    d.fail(`${path}.${name}`, `must be a map, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

const GO_UNITS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** time.ParseDuration, as jsonpb decodes google.protobuf.Duration: a sign, then number-unit pairs; "0" alone. */
export function parseGoDuration(s: string): ProtoDuration | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return { seconds: 0, nanos: 0 };
  if (rest === '') return undefined;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0n;
  let i = 0;
  while (i < rest.length) {
    re.lastIndex = i;
    const m = re.exec(rest);
    if (!m) return undefined;
    const [whole = '', frac = ''] = (m[1] ?? '').split('.');
    const unit = BigInt(GO_UNITS[m[2] ?? ''] ?? 0);
    total += BigInt(whole || '0') * unit;
    if (frac) total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    i = re.lastIndex;
  }
  if (total > 9223372036854775807n) return undefined;
  const ns = total * BigInt(sign);
  return { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
}

function duration(d: Decoder, o: Obj, name: string, path: string): ProtoDuration | undefined {
  const v = field(o, name);
  if (v === undefined) return undefined;
  const parsed = typeof v === 'string' ? parseGoDuration(v) : undefined;
  if (!parsed) d.fail(`${path}.${name}`, `must be a duration such as "1s", "500ms" or "1m30s", got ${JSON.stringify(v)}`);
  return parsed;
}

const durationNanos = (p: ProtoDuration): number => p.seconds * 1e9 + p.nanos;

/** A well-known message meshgate does not look into: it must at least be a map. */
function anyMessage(d: Decoder, o: Obj, name: string, path: string): void {
  message(d, o, name, path);
}

/** An enum field: a name of `values` or a number. */
function enumField(d: Decoder, o: Obj, name: string, path: string, values: readonly string[]): string {
  const v = field(o, name);
  if (v === undefined) return values[0] ?? '';
  if (typeof v === 'string' && values.includes(v)) return v;
  if (typeof v === 'number' && Number.isInteger(v)) return values[v] ?? String(v);
  d.fail(`${path}.${name}`, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return values[0] ?? '';
}

function requestBody(d: Decoder, o: Obj, path: string): ExtAuthzRequestBody | undefined {
  const b = message(d, o, 'includeRequestBodyInCheck', path);
  if (!b) return undefined;
  const p = `${path}.includeRequestBodyInCheck`;
  return {
    maxRequestBytes: uint32(d, b, 'maxRequestBytes', p),
    allowPartialMessage: bool(d, b, 'allowPartialMessage', p),
    packAsBytes: bool(d, b, 'packAsBytes', p),
  };
}

function extAuthzHttp(d: Decoder, o: Obj, path: string): EnvoyExtAuthzHttpProvider {
  return {
    ...extAuthzGrpc(d, o, path),
    pathPrefix: str(d, o, 'pathPrefix', path),
    includeHeadersInCheck: strings(d, o, 'includeHeadersInCheck', path),
    includeRequestHeadersInCheck: strings(d, o, 'includeRequestHeadersInCheck', path),
    includeAdditionalHeadersInCheck: stringMap(d, o, 'includeAdditionalHeadersInCheck', path),
    headersToUpstreamOnAllow: strings(d, o, 'headersToUpstreamOnAllow', path),
    headersToDownstreamOnDeny: strings(d, o, 'headersToDownstreamOnDeny', path),
    headersToDownstreamOnAllow: strings(d, o, 'headersToDownstreamOnAllow', path),
  };
}

/** The fields both providers have (the HTTP one adds its own to these). */
function extAuthzGrpc(d: Decoder, o: Obj, path: string): EnvoyExtAuthzGrpcProvider {
  const timeout = duration(d, o, 'timeout', path);
  const body = requestBody(d, o, path);
  return {
    service: str(d, o, 'service', path),
    port: uint32(d, o, 'port', path),
    ...(timeout ? { timeout } : {}),
    failOpen: bool(d, o, 'failOpen', path),
    clearRouteCache: bool(d, o, 'clearRouteCache', path),
    statusOnError: str(d, o, 'statusOnError', path),
    ...(body ? { includeRequestBodyInCheck: body } : {}),
  };
}

/** A double (jsonpb: a JSON number, or a quoted one). */
function double(d: Decoder, o: Obj, name: string, path: string): number {
  const v = field(o, name);
  if (v === undefined) return 0;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || Number.isNaN(n)) {
    d.fail(`${path}.${name}`, `must be a number, got ${JSON.stringify(v)}`);
    return 0;
  }
  return n;
}

function httpHeaders(d: Decoder, o: Obj, name: string, path: string): ProviderHttpHeader[] {
  const v = field(o, name);
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    d.fail(`${path}.${name}`, `must be a list, got ${JSON.stringify(v)}`);
    return [];
  }
  return v.flatMap((h: unknown, i: number) => {
    const p = `${path}.${name}[${i}]`;
    if (!isObj(h)) {
      d.fail(p, `must be a map with a name and a value or envName, got ${JSON.stringify(h)}`);
      return [];
    }
    // The oneof header_value: envName is declared after value, so it wins when both are given.
    const envName = field(h, 'envName') !== undefined ? str(d, h, 'envName', p) : undefined;
    const value = field(h, 'value') !== undefined ? str(d, h, 'value', p) : undefined;
    return [{ name: str(d, h, 'name', p), ...(envName !== undefined ? { envName } : value !== undefined ? { value } : {}) }];
  });
}

function zipkinProvider(d: Decoder, o: Obj, path: string): ZipkinTracingProvider {
  const timeout = duration(d, o, 'timeout', path);
  // The JSON name of enable_64bit_trace_id is enable64bitTraceId (field() cannot derive one from the other).
  const e64 = o.enable64bitTraceId ?? o.enable_64bit_trace_id;
  if (e64 !== undefined && e64 !== null && typeof e64 !== 'boolean') d.fail(`${path}.enable64bitTraceId`, `must be true or false, got ${JSON.stringify(e64)}`);
  const option = enumField(d, o, 'traceContextOption', path, ['USE_B3', 'USE_B3_WITH_W3C_PROPAGATION']);
  return {
    service: str(d, o, 'service', path),
    port: uint32(d, o, 'port', path),
    maxTagLength: uint32(d, o, 'maxTagLength', path),
    enable64bitTraceId: e64 === true,
    path: str(d, o, 'path', path),
    traceContextOption: option === 'USE_B3_WITH_W3C_PROPAGATION' ? option : 'USE_B3',
    ...(timeout ? { timeout } : {}),
    headers: httpHeaders(d, o, 'headers', path),
  };
}

function openTelemetryProvider(d: Decoder, o: Obj, path: string): OpenTelemetryTracingProvider {
  const h = message(d, o, 'http', path);
  const g = message(d, o, 'grpc', path);
  const extras = ['resourceDetectors', 'dynatraceSampler', 'serviceAttributeEnrichment'].filter((k) => field(o, k) !== undefined);
  const httpTimeout = h ? duration(d, h, 'timeout', `${path}.http`) : undefined;
  const grpcTimeout = g ? duration(d, g, 'timeout', `${path}.grpc`) : undefined;
  return {
    service: str(d, o, 'service', path),
    port: uint32(d, o, 'port', path),
    maxTagLength: uint32(d, o, 'maxTagLength', path),
    ...(h
      ? {
          http: {
            path: str(d, h, 'path', `${path}.http`),
            ...(httpTimeout ? { timeout: httpTimeout } : {}),
            headers: httpHeaders(d, h, 'headers', `${path}.http`),
          },
        }
      : {}),
    ...(g ? { grpc: { ...(grpcTimeout ? { timeout: grpcTimeout } : {}), initialMetadata: httpHeaders(d, g, 'initialMetadata', `${path}.grpc`) } } : {}),
    ...(extras.length ? { unsupported: extras.join(', ') } : {}),
  };
}

/** The oneof `provider` of MeshConfig.ExtensionProvider: the kinds istio's API defines, in declaration order. */
const PROVIDER_KINDS = [
  'envoyExtAuthzHttp',
  'envoyExtAuthzGrpc',
  'zipkin',
  'lightstep',
  'datadog',
  'stackdriver',
  'opencensus',
  'skywalking',
  'opentelemetry',
  'prometheus',
  'envoyFileAccessLog',
  'envoyHttpAls',
  'envoyTcpAls',
  'envoyOtelAls',
  'sds',
] as const;

function extensionProvider(d: Decoder, v: unknown, path: string): ExtensionProvider | undefined {
  // jsonpb decodes a null list element as an empty message: a provider without name or kind.
  if (v === null) return { name: '', kind: 'other', provider: '' };
  if (!isObj(v)) {
    d.fail(path, `an extension provider must be a map with a name and one provider kind, got ${JSON.stringify(v)}`);
    return undefined;
  }
  const name = str(d, v, 'name', path);
  // jsonpb sets the oneof's fields in declaration order, each replacing the one before: the last one given wins.
  const kinds = PROVIDER_KINDS.filter((k) => field(v, k) !== undefined);
  for (const k of kinds.slice(0, -1)) anyMessage(d, v, k, path);
  const kind = kinds.at(-1);
  if (kind === 'envoyExtAuthzHttp') {
    const o = message(d, v, kind, path);
    return o ? { name, kind, envoyExtAuthzHttp: extAuthzHttp(d, o, `${path}.${kind}`) } : undefined;
  }
  if (kind === 'envoyExtAuthzGrpc') {
    const o = message(d, v, kind, path);
    return o ? { name, kind, envoyExtAuthzGrpc: extAuthzGrpc(d, o, `${path}.${kind}`) } : undefined;
  }
  if (kind === 'envoyFileAccessLog') {
    const o = message(d, v, kind, path);
    if (!o) return undefined;
    const p = `${path}.${kind}`;
    const f = message(d, o, 'logFormat', p);
    let logFormat: EnvoyFileAccessLogProvider['logFormat'];
    if (f) {
      // The oneof: labels (declared second) wins over text when both are given.
      const labels = message(d, f, 'labels', `${p}.logFormat`);
      const text = str(d, f, 'text', `${p}.logFormat`);
      logFormat = labels ? { labels } : field(f, 'text') !== undefined ? { text } : {};
    }
    return {
      name,
      kind: 'other',
      provider: kind,
      envoyFileAccessLog: { path: str(d, o, 'path', p), ...(logFormat ? { logFormat } : {}), omitEmptyValues: bool(d, o, 'omitEmptyValues', p) },
    };
  }
  if (kind === 'zipkin' || kind === 'opentelemetry') {
    const o = message(d, v, kind, path);
    if (!o) return undefined;
    const p = `${path}.${kind}`;
    return kind === 'zipkin'
      ? { name, kind: 'other', provider: kind, zipkin: zipkinProvider(d, o, p) }
      : { name, kind: 'other', provider: kind, opentelemetry: openTelemetryProvider(d, o, p) };
  }
  if (kind) anyMessage(d, v, kind, path);
  // No kind at all: istiod keeps the provider (its oneof unset) and reports it as unsupported.
  return { name, kind: 'other', provider: kind ?? '' };
}

function proxyTracing(d: Decoder, o: Obj, path: string): ProxyTracing {
  const tags: Record<string, ProxyTracingCustomTag | null> = {};
  for (const [tag, t] of Object.entries(message(d, o, 'customTags', path) ?? {})) {
    const p = `${path}.customTags.${tag}`;
    if (t !== null && !isObj(t)) {
      d.fail(p, `must be a map with literal, environment or header, got ${JSON.stringify(t)}`);
      continue;
    }
    // The oneof: the last declared kind given wins (literal, environment, header); none is a tag istiod skips.
    const header = t && message(d, t, 'header', p);
    const env = t && message(d, t, 'environment', p);
    const literal = t && message(d, t, 'literal', p);
    if (header) tags[tag] = { header: { name: str(d, header, 'name', `${p}.header`), defaultValue: str(d, header, 'defaultValue', `${p}.header`) } };
    else if (env) tags[tag] = { environment: { name: str(d, env, 'name', `${p}.environment`), defaultValue: str(d, env, 'defaultValue', `${p}.environment`) } };
    else if (literal) tags[tag] = { literal: { value: str(d, literal, 'value', `${p}.literal`) } };
    else tags[tag] = null;
  }
  const istioTags = field(o, 'enableIstioTags');
  if (istioTags !== undefined && typeof istioTags !== 'boolean') d.fail(`${path}.enableIstioTags`, `must be true or false, got ${JSON.stringify(istioTags)}`);
  return {
    sampling: double(d, o, 'sampling', path),
    maxPathTagLength: uint32(d, o, 'maxPathTagLength', path),
    customTags: tags,
    ...(typeof istioTags === 'boolean' ? { enableIstioTags: istioTags } : {}),
  };
}

const FORWARD_CLIENT_CERT = ['UNDEFINED', 'SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'] as const;

/** ProxyConfig: the typed fields meshgate reads, the rest kept raw. `path` names it in errors. */
export function decodeProxyConfig(v: unknown, path: string): { config: ProxyConfig; errors: string[] } {
  const d = new Decoder();
  if (!isObj(v)) {
    d.fail(path, `must be a map (a ProxyConfig), got ${JSON.stringify(v)}`);
    return { config: { raw: {} }, errors: d.errors };
  }
  const config: ProxyConfig = { raw: v };
  const t = message(d, v, 'gatewayTopology', path);
  if (t) {
    const p = `${path}.gatewayTopology`;
    const proxyProtocol = message(d, t, 'proxyProtocol', p);
    config.gatewayTopology = {
      numTrustedProxies: uint32(d, t, 'numTrustedProxies', p),
      forwardClientCertDetails: enumField(d, t, 'forwardClientCertDetails', p, FORWARD_CLIENT_CERT),
      ...(proxyProtocol ? { proxyProtocol } : {}),
    };
  }
  const tracing = message(d, v, 'tracing', path);
  if (tracing) config.tracing = proxyTracing(d, tracing, `${path}.tracing`);
  const statsMatcher = message(d, v, 'proxyStatsMatcher', path);
  if (statsMatcher) {
    const p = `${path}.proxyStatsMatcher`;
    config.proxyStatsMatcher = {
      inclusionPrefixes: strings(d, statsMatcher, 'inclusionPrefixes', p),
      inclusionSuffixes: strings(d, statsMatcher, 'inclusionSuffixes', p),
      inclusionRegexps: strings(d, statsMatcher, 'inclusionRegexps', p),
    };
  }
  const drain = duration(d, v, 'drainDuration', path);
  // ValidateDrainDuration: at least 1ms, whole seconds.
  if (drain && (durationNanos(drain) < 1e6 || drain.nanos !== 0))
    d.fail(`${path}.drainDuration`, 'drain time must be at least 1ms and only supports durations to seconds precision');
  for (const name of ['terminationDrainDuration', 'parentShutdownDuration']) duration(d, v, name, path);
  for (const name of ['configPath', 'binaryPath', 'serviceCluster', 'discoveryAddress', 'statsdUdpAddress']) str(d, v, name, path);
  for (const name of ['proxyAdminPort', 'statNameLength', 'statusPort']) uint32(d, v, name, path);
  if (field(v, 'configPath') === '') d.fail(`${path}.configPath`, 'config path must be set');
  if (field(v, 'binaryPath') === '') d.fail(`${path}.binaryPath`, 'binary path must be set');
  if (field(v, 'discoveryAddress') === '') d.fail(`${path}.discoveryAddress`, 'discovery address must be set to the proxy discovery service');
  stringMap(d, v, 'proxyMetadata', path);
  return { config, errors: d.errors };
}

/** ValidateTrustDomain: DNS-1123 labels joined by dots, a trailing dot allowed. */
function trustDomainError(domain: string): string | undefined {
  if (domain === '') return 'empty domain name not allowed';
  const parts = domain.split('.');
  for (const [i, label] of parts.entries()) {
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isDNS1123Label(label)) return `trust domain name ${JSON.stringify(domain)} invalid`;
  }
  return undefined;
}

/** validateExtensionProviderService: `<hostname>` (an FQDN or an IP) or `<namespace>/<hostname>`. */
function serviceError(service: string): string | undefined {
  if (service === '') return 'service must not be empty';
  const parts = service.split('/');
  if (parts.length === 1) return fqdnError(service) && !isIPAddress(service) ? `invalid service fmt ${service}: ${service} is not a valid IP` : undefined;
  if (parts.length > 2) return `host ${JSON.stringify(service)} must be of the form [namespace/]dnsName`;
  const [ns = '', host = ''] = parts;
  if (ns !== '*' && ns !== '.' && !isDNS1123Label(ns)) return `namespace ${JSON.stringify(ns)} must be "*", "." or a DNS-1123 label`;
  return checkWildcardDomain(host);
}

/** A status code Envoy's type.v3.StatusCode names (the statusOnError values istiod accepts). */
const ENVOY_STATUS_CODES: ReadonlySet<number> = new Set([
  0, 100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411,
  412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/** validateExtensionProviderEnvoyExtAuthzStatusOnError (strconv.ParseInt then the StatusCode enum). */
function statusOnErrorError(status: string): string | undefined {
  if (status === '') return undefined;
  if (!/^[+-]?\d+$/.test(status)) return `invalid statusOnError value ${status}: strconv.ParseInt: parsing ${JSON.stringify(status)}: invalid syntax`;
  if (!ENVOY_STATUS_CODES.has(Number(status))) return `unsupported statusOnError value ${status}`;
  return undefined;
}

/** Go's url.Parse failures a path can hit: a control character, or a `%` not followed by two hex digits. */
function urlParseError(s: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(s)) return 'net/url: invalid control character in URL';
  const bad = /%(?![0-9a-fA-F]{2})(.{0,2})/.exec(s);
  return bad ? `invalid URL escape "%${bad[1] ?? ''}"` : undefined;
}

/** ValidateExtensionProviderEnvoyExtAuthzHTTP / GRPC: the provider's errors (istiod warns, then fails its policies). */
export function extAuthzProviderErrors(p: ExtensionProvider): string[] {
  if (p.kind === 'other') return [];
  const c = p.kind === 'envoyExtAuthzHttp' ? p.envoyExtAuthzHttp : p.envoyExtAuthzGrpc;
  const errs: string[] = [];
  if (c.port < 1 || c.port > 65535)
    errs.push(`${p.kind === 'envoyExtAuthzGrpc' ? 'invalid service port: ' : ''}port number ${c.port} must be in the range 1..65535`);
  const s = serviceError(c.service);
  if (s) errs.push(s);
  const st = statusOnErrorError(c.statusOnError);
  if (st) errs.push(st);
  const prefix = p.kind === 'envoyExtAuthzHttp' ? p.envoyExtAuthzHttp.pathPrefix : '';
  if (prefix !== '') {
    const u = urlParseError(prefix);
    if (u) errs.push(`invalid pathPrefix ${prefix}: ${u}`);
    if (!prefix.startsWith('/')) errs.push(`pathPrefix should begin with \`/\` but found ${JSON.stringify(prefix)}`);
  }
  return errs;
}

/** The top-level fields meshgate does not use, by kind, so that a value of the wrong type is refused as istiod does. */
const OTHER_FIELDS: Readonly<Record<string, 'string' | 'bool' | 'uint32' | 'duration' | 'strings' | 'message' | 'messages' | 'boolValue'>> = {
  ingressClass: 'string',
  ingressService: 'string',
  ingressSelector: 'string',
  enableEnvoyAccessLogService: 'bool',
  outboundTrafficPolicy: 'message',
  inboundTrafficPolicy: 'message',
  configSources: 'messages',
  enableAutoMtls: 'boolValue',
  caCertificates: 'messages',
  defaultServiceExportTo: 'strings',
  defaultVirtualServiceExportTo: 'strings',
  defaultDestinationRuleExportTo: 'strings',
  dnsRefreshRate: 'duration',
  hboneIdleTimeout: 'duration',
  inboundClusterStatName: 'string',
  outboundClusterStatName: 'string',
  certificates: 'messages',
  serviceSettings: 'messages',
  serviceScopeConfigs: 'messages',
  enablePrometheusMerge: 'boolValue',
  verifyCertificateAtClient: 'boolValue',
  ca: 'message',
  discoverySelectors: 'messages',
  pathNormalization: 'message',
  defaultHttpRetryPolicy: 'message',
  meshMTLS: 'message',
  tlsDefaults: 'message',
  localityLbSetting: 'message',
  zoneAwareLbSetting: 'message',
  h2UpgradePolicy: 'string',
  tcpKeepalive: 'message',
  thriftConfig: 'message',
  defaultTrafficPolicy: 'message',
};

function checkOther(d: Decoder, o: Obj, name: string, kind: (typeof OTHER_FIELDS)[string]): void {
  const v = field(o, name);
  if (v === undefined) return;
  const fail = (what: string): void => d.fail(name, `must be ${what}, got ${JSON.stringify(v)}`);
  switch (kind) {
    case 'string':
      // h2UpgradePolicy is an enum: a name or a number.
      if (typeof v !== 'string' && !(name === 'h2UpgradePolicy' && typeof v === 'number')) fail('a string');
      return;
    case 'bool':
      if (typeof v !== 'boolean') fail('true or false');
      return;
    case 'boolValue':
      if (typeof v !== 'boolean') fail('true or false');
      return;
    case 'uint32':
      uint32(d, o, name, 'meshConfig');
      return;
    case 'duration':
      duration(d, o, name, 'meshConfig');
      return;
    case 'strings':
      strings(d, o, name, 'meshConfig');
      return;
    case 'message':
      if (!isObj(v)) fail('a map');
      return;
    case 'messages':
      if (!Array.isArray(v) || v.some((e) => !isObj(e))) fail('a list of maps');
      return;
  }
}

/**
 * Parses mesh config YAML (the `mesh` key of istiod's ConfigMap) onto the defaults, as istiod's ApplyMeshConfigDefaults
 * does. `where` names the input in messages (a file path). An empty document is the defaults.
 */
export function parseMeshConfig(text: string, where = 'mesh config'): MeshConfigResult {
  // sigs.k8s.io/yaml reads YAML 1.1 (yes/no are booleans).
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true });
  if (doc.errors.length) return { ok: false, errors: doc.errors.map((e) => `${where}: not valid YAML: ${e.message}`) };
  const v: unknown = doc.toJS({ maxAliasCount: 100 });
  if (v === null || v === undefined) return { ok: true, mesh: DEFAULT_MESH_CONFIG, warnings: [] };
  if (!isObj(v)) return { ok: false, errors: [`${where}: must be a map of MeshConfig fields (the content of meshConfig:), got ${JSON.stringify(v)}`] };

  const d = new Decoder();
  const rootNamespace = field(v, 'rootNamespace') === undefined ? DEFAULT_MESH_CONFIG.rootNamespace : str(d, v, 'rootNamespace', 'meshConfig');
  const trustDomain = field(v, 'trustDomain') === undefined ? DEFAULT_MESH_CONFIG.trustDomain : str(d, v, 'trustDomain', 'meshConfig');
  const aliases = strings(d, v, 'trustDomainAliases', 'meshConfig');
  const pc = field(v, 'defaultConfig');
  let defaultConfig = DEFAULT_MESH_CONFIG.defaultConfig;
  if (pc !== undefined) {
    const decoded = decodeProxyConfig(pc, 'meshConfig.defaultConfig');
    d.errors.push(...decoded.errors);
    defaultConfig = decoded.config;
  }
  const providers: ExtensionProvider[] = [...DEFAULT_MESH_CONFIG.extensionProviders];
  const given = field(v, 'extensionProviders');
  if (given !== undefined && !Array.isArray(given)) d.fail('meshConfig.extensionProviders', `must be a list, got ${JSON.stringify(given)}`);
  else
    (given ?? []).forEach((e: unknown, i: number) => {
      const p = extensionProvider(d, e, `meshConfig.extensionProviders[${i}]`);
      if (!p) return;
      // ApplyMeshConfig: a new provider with the name of an existing one replaces its kind (the first of that name).
      const at = providers.findIndex((q) => q.name === p.name);
      if (at >= 0) providers[at] = p;
      else providers.push(p);
    });
  for (const [name, kind] of Object.entries(OTHER_FIELDS)) checkOther(d, v, name, kind);
  if (field(v, 'proxyListenPort') !== undefined) {
    const port = uint32(d, v, 'proxyListenPort', 'meshConfig');
    if (port < 1 || port > 65535) d.fail('meshConfig.proxyListenPort', `invalid proxy listen port: port number ${port} must be in the range 1..65535`);
  }
  for (const name of ['proxyInboundListenPort', 'proxyHttpPort']) if (field(v, name) !== undefined) uint32(d, v, name, 'meshConfig');
  const connect = duration(d, v, 'connectTimeout', 'meshConfig');
  if (connect && (durationNanos(connect) < 1e6 || durationNanos(connect) % 1e6 !== 0))
    d.fail('meshConfig.connectTimeout', 'invalid connect timeout: duration must be greater than 1ms, to ms precision');
  const detection = duration(d, v, 'protocolDetectionTimeout', 'meshConfig');
  if (detection && durationNanos(detection) % 1e6 !== 0)
    d.fail('meshConfig.protocolDetectionTimeout', 'invalid protocol detection timeout: only durations to ms precision are supported');
  const accessLogEncoding = enumField(d, v, 'accessLogEncoding', 'meshConfig', ['TEXT', 'JSON']) === 'JSON' ? 'JSON' : 'TEXT';
  enumField(d, v, 'ingressControllerMode', 'meshConfig', ['UNSPECIFIED', 'OFF', 'DEFAULT', 'STRICT']);
  const defaultProviders = message(d, v, 'defaultProviders', 'meshConfig') ?? {};
  const accessLog = {
    accessLogFile: str(d, v, 'accessLogFile', 'meshConfig'),
    accessLogEncoding,
    accessLogFormat: str(d, v, 'accessLogFormat', 'meshConfig'),
    disableEnvoyListenerLog: bool(d, v, 'disableEnvoyListenerLog', 'meshConfig'),
    defaultAccessLogging: strings(d, defaultProviders, 'accessLogging', 'meshConfig.defaultProviders'),
    defaultMetrics: strings(d, defaultProviders, 'metrics', 'meshConfig.defaultProviders'),
    defaultTracing: strings(d, defaultProviders, 'tracing', 'meshConfig.defaultProviders'),
    enableTracing: field(v, 'enableTracing') === undefined ? DEFAULT_MESH_CONFIG.enableTracing : bool(d, v, 'enableTracing', 'meshConfig'),
  } as const;

  const td = trustDomainError(trustDomain);
  if (td) d.fail('meshConfig.trustDomain', td);
  aliases.forEach((a, i) => {
    const e = trustDomainError(a);
    if (e) d.fail(`meshConfig.trustDomainAliases[${i}]`, `domain \`${a}\` : ${e}`);
  });
  if (d.errors.length) return { ok: false, errors: d.errors.map((e) => `${where}: ${e.replace(/^(?!meshConfig)/, 'meshConfig.')}`) };

  // validateExtensionProvider: logged, not refused.
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const p of providers) {
    const errs: string[] = [];
    if (p.name === '') errs.push('empty extension provider name');
    else if (seen.has(p.name)) errs.push(`duplicate extension provider name ${p.name}`);
    seen.add(p.name);
    if (p.kind === 'other' && p.provider === '') errs.push('unsupported provider: <nil> of type <nil>');
    errs.push(...extAuthzProviderErrors(p));
    if (errs.length) warnings.push(`${where}: invalid extension provider ${p.name}: ${errs.join('; ')} (policies naming it are enforced as denials)`);
  }
  return {
    ok: true,
    mesh: { rootNamespace, trustDomain, trustDomainAliases: [...new Set(aliases)].sort(), extensionProviders: providers, defaultConfig, ...accessLog },
    warnings,
  };
}
