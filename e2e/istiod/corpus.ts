// A generator of random but valid Istio configurations for one gateway, for the istiod differential
// (corpus.test.ts): Services with named and numbered targetPorts and several ports (protocols by port name and
// appProtocol), their Pods (version labels for subsets, some not ready) and EndpointSlices; Gateways selecting
// the gateway with mixed servers on shared ports (HTTP, HTTPS with credentialName Secrets that exist, TLS
// PASSTHROUGH and SIMPLE, TCP; hosts with namespaces and wildcards); VirtualServices with every match and action
// a gateway uses; DestinationRules with subsets and port-level traffic policies; ServiceEntries with DNS, STATIC
// and NONE resolution; AuthorizationPolicies of every action (dry-run too) with every source, operation and
// `when` field, selecting this gateway, another workload or every one; the mesh config's ext_authz extension
// providers (HTTP and gRPC, every field, services that resolve or not) that CUSTOM policies name; the mesh
// config's access log (file, TEXT or JSON, custom formats).
//
// Names come from small fixed pools (gw-a, svc-a, v1...) so that objects refer to each other often, and a
// reference to an object the config does not hold stays valid Istio: shrinking can drop any object or field and
// the config remains one istiod's webhook accepts. Valid means that webhook accepts it; the oracle reports what it
// refuses, and the corpus test counts it (a high rate means this generator is wrong).
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { GatewayIdentity } from '../../controller/xds/snapshot.ts';
import type {
  CorsPolicy,
  DestinationRuleSpec,
  HTTPFaultInjection,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPRetry,
  HTTPRewrite,
  HTTPRoute,
  Headers,
  LoadBalancerSettings,
  ConnectionPoolSettings,
  OutlierDetection,
  ClientTLSSettings,
  PortTrafficPolicy,
  RouteDestination,
  Server,
  ServiceEntrySpec,
  StringMatch,
  TrafficPolicy,
  VirtualServiceSpec,
} from '../../controller/model/istio-types.ts';
import type { AuthorizationPolicySpec, Condition, JWTRule, Operation, RequestAuthenticationSpec, Rule, Source } from '../../controller/model/security-types.ts';
import type { TelemetrySpec } from '../../controller/model/telemetry-types.ts';
import type { DiffCase } from './cases.ts';

/** The gateway every generated config is translated for (its Pod is part of every config). */
const IDENTITY: GatewayIdentity = {
  namespace: 'istio-system',
  podName: 'istio-ingressgateway-0',
  labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
};
const GATEWAY_POD_IP = '10.255.0.1';
/** The gateway Pod's container ports, for gateway Services with a named targetPort. */
const GATEWAY_CONTAINER_PORTS = { http: 8080, https: 8443 };

// ---- pools -------------------------------------------------------------------------------------

const NAMESPACES = ['default', 'ns1'] as const;
const ISTIO_NAMESPACES = ['istio-system', 'default', 'ns1'] as const;
const SERVICE_NAMES = ['svc-a', 'svc-b', 'svc-c'] as const;
const GATEWAY_NAMES = ['gw-a', 'gw-b'] as const;
/** Mostly the gateway's own namespace, as usual; a VirtualService names one of these often enough to bind. */
const GATEWAY_NAMESPACES = ['istio-system', 'istio-system', 'istio-system', 'default'] as const;
const CREDENTIALS = ['cred-a', 'cred-b'] as const;
/** A credential whose Secret also holds ca.crt (MUTUAL servers, DestinationRule credentialName). */
const CA_CREDENTIAL = 'cred-ca';
const SUBSETS = ['v1', 'v2', 'v3'] as const;
const SE_HOSTS = ['ext-a.example.org', 'ext-b.example.org'] as const;
const GATEWAY_PORTS = [80, 443, 8080, 8443, 9000] as const;
const SERVICE_PORTS = [80, 443, 8080, 9080, 5000, 3306] as const;
/** Container ports every backend Pod declares, for named targetPorts. */
const CONTAINER_PORTS: Readonly<Record<string, number>> = { web: 8081, alt: 9091 };

/** Fixed test certificates (the ones of golden tls-ingress-mutual): a key pair and its CA. */
const TLS_CRT =
  'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ4RENDQVdtZ0F3SUJBZ0lVQ0FWZ3dkUTZFOEZCR21Gd3VqWjJ2RXFwYWw4d0NnWUlLb1pJemowRUF3SXcKTFRFVk1CTUdBMVVFQ2d3TVpYaGhiWEJzWlNCSmJtTXVNUlF3RWdZRFZRUUREQXRsZUdGdGNHeGxMbU52YlRBZwpGdzB5TmpFeE1qTXdPVEkwTlRSYUdBOHlNVEkyTVRBek1EQTVNalExTkZvd01ERVFNQTRHQTFVRUNnd0haWGhoCmJYQnNaVEVjTUJvR0ExVUVBd3dUYUhSMGNHSnBiaTVsZUdGdGNHeGxMbU52YlRCWk1CTUdCeXFHU000OUFnRUcKQ0NxR1NNNDlBd0VIQTBJQUJPOXJsVkJVN21jRVhoajZxdlc3dlhHdVR6MkpOck1CamozTldvR3JaYjhabkhjeApyQm4rYU55aEp5bkJFcnZDQXdrZnliUGlkSU4xUDhsQStDTmpkSDZqWWpCZ01CNEdBMVVkRVFRWE1CV0NFMmgwCmRIQmlhVzR1WlhoaGJYQnNaUzVqYjIwd0hRWURWUjBPQkJZRUZJSDFRMEJ6OWlVZmVBdERFWVJqemwyRUZLWGgKTUI4R0ExVWRJd1FZTUJhQUZGY0o5OTkvaGtxSWcvSjRjWW96ak5YUzZaWHJNQW9HQ0NxR1NNNDlCQU1DQTBrQQpNRVlDSVFEd0JFenh3SUFxNjZJQmgrYlk1bHM1TWh1VWo0c3EvM0JtWjhQNGRzdTBwUUloQVA2Z1lnMzl1aVhDCkhNb0p3NDlRQ1JOMW85Yk1kRVhGbUlXenZBNHJoeFI0Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K';
const TLS_KEY =
  'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJNR0J5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEJHMHdhd0lCQVFRZzFJQVljMS9KbytPSUt0OHMKNzZiaTlibEIrUlR2emZyS2Y4U2JnMTJXbjBtaFJBTkNBQVR2YTVWUVZPNW5CRjRZK3FyMXU3MXhyazg5aVRhegpBWTQ5elZxQnEyVy9HWngzTWF3Wi9tamNvU2Nwd1JLN3dnTUpIOG16NG5TRGRUL0pRUGdqWTNSKwotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg==';
const CA_CRT =
  'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJzVENDQVZlZ0F3SUJBZ0lVRDFBMlFTRTFOcnI4cFRFTEQvRmRZK0Y3RmVBd0NnWUlLb1pJemowRUF3SXcKTFRFVk1CTUdBMVVFQ2d3TVpYaGhiWEJzWlNCSmJtTXVNUlF3RWdZRFZRUUREQXRsZUdGdGNHeGxMbU52YlRBZwpGdzB5TmpFeE1qTXdPVEkwTlRSYUdBOHlNVEkyTVRBek1EQTVNalExTkZvd0xURVZNQk1HQTFVRUNnd01aWGhoCmJYQnNaU0JKYm1NdU1SUXdFZ1lEVlFRRERBdGxlR0Z0Y0d4bExtTnZiVEJaTUJNR0J5cUdTTTQ5QWdFR0NDcUcKU000OUF3RUhBMElBQkNCbllteitFMUg5cmhwaHB5M25ydklUaXV2eTYxMVZHYUZVNnl2d1VFRzBxSDhtZWhMRQpSd1U5aUpFZzV4ZDl3b2RjRGVhVjk3YjhHMFcwY2l6RUs0U2pVekJSTUIwR0ExVWREZ1FXQkJSWENmZmZmNFpLCmlJUHllSEdLTTR6VjB1bVY2ekFmQmdOVkhTTUVHREFXZ0JSWENmZmZmNFpLaUlQeWVIR0tNNHpWMHVtVjZ6QVAKQmdOVkhSTUJBZjhFQlRBREFRSC9NQW9HQ0NxR1NNNDlCQU1DQTBnQU1FVUNJQ1BTUVFwaVhOazlhUVhuRUJkVQpHQUMwaXVMRWQ3OU52bld1WVJUN2NDTURBaUVBOU5nZ1A3TDQ1OWtlcUkvWEw2WUk1N1MvV0xWUDVKcnNjUEpZCkVNNUlJTHM9Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K';

// ---- the generated world -----------------------------------------------------------------------

type PodState = 'ready' | 'notReady' | 'terminating' | 'bare';

interface GenServicePort {
  name: string;
  port: number;
  targetPort?: number | string;
  appProtocol?: string;
}

interface GenService {
  namespace: string;
  name: string;
  headless: boolean;
  /** An Endpoints object instead of an EndpointSlice (Kubernetes mirrors it into one). */
  legacyEndpoints: boolean;
  ports: GenServicePort[];
  pods: { version: (typeof SUBSETS)[number]; state: PodState }[];
}

interface GenGatewayService {
  name: string;
  ports: { name: string; port: number; targetPort: number | string }[];
  /** experimental.istio.io/disable-gateway-port-translation. */
  noTranslation: boolean;
}

interface GenGateway {
  namespace: string;
  name: string;
  /** false: selects another workload (not this gateway). */
  selected: boolean;
  servers: Server[];
}

interface Named<T> {
  namespace: string;
  name: string;
  spec: T;
}

export interface World {
  services: GenService[];
  gatewayServices: GenGatewayService[];
  gateways: GenGateway[];
  virtualServices: Named<VirtualServiceSpec>[];
  destinationRules: Named<DestinationRuleSpec>[];
  serviceEntries: Named<ServiceEntrySpec>[];
  authorizationPolicies: GenAuthorizationPolicy[];
  requestAuthentications: Named<RequestAuthenticationSpec>[];
  /** meshConfig.extensionProviders (none: no mesh config, istiod's defaults). */
  extensionProviders: Obj[];
  /** meshConfig's accessLogFile, accessLogEncoding, accessLogFormat, disableEnvoyListenerLog (none: no access log). */
  accessLog: Obj | undefined;
  telemetries: Named<TelemetrySpec>[];
  /** meshConfig.defaultProviders.accessLogging, and whether the file-x and json-x providers are defined. */
  telemetryMesh: { defaultAccessLogging?: string[]; fileProviders: boolean } | undefined;
}

interface GenAuthorizationPolicy extends Named<AuthorizationPolicySpec> {
  dryRun?: string;
}

// ---- helpers -----------------------------------------------------------------------------------

/** Absent 2 times in 3, shrinking to absent. */
function rare<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary: arb, weight: 1 });
}

/** Absent half the time, shrinking to absent. */
function maybe<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arb, { nil: undefined, freq: 2 });
}

/** The value without undefined fields, empty maps left as they are. */
function clean<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clean) as T;
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = clean(x);
    return out as T;
  }
  return v;
}

/** Whether two VirtualService hosts overlap (istiod refuses a VirtualService whose hosts do). */
function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const wa = a.startsWith('*.') ? a.slice(1) : undefined;
  const wb = b.startsWith('*.') ? b.slice(1) : undefined;
  if (wa && b.endsWith(wa)) return true;
  if (wb && a.endsWith(wb)) return true;
  return false;
}

const uniqueBy = <T>(arb: fc.Arbitrary<T>, key: (t: T) => string, minLength: number, maxLength: number): fc.Arbitrary<T[]> =>
  fc.uniqueArray(arb, { selector: key, minLength, maxLength });

/** exportTo values istiod accepts: own namespace, everyone, the gateway's namespace, another one, a pair. */
const exportToArb: fc.Arbitrary<string[] | undefined> = rare(
  fc.constantFrom<string[]>(['.'], ['*'], ['istio-system'], ['default'], ['ns1', 'istio-system'], ['ns1']).map((e) => [...e]),
);

// ---- Services, Pods, EndpointSlices ------------------------------------------------------------

const PORT_NAMES = ['http', 'http-web', 'http2', 'grpc', 'grpc-web', 'tcp', 'tcp-db', 'https', 'tls', 'redis', 'web', ''] as const;
const APP_PROTOCOLS = ['http', 'http2', 'grpc', 'tcp', 'https', 'kubernetes.io/h2c', 'kubernetes.io/ws'] as const;

const servicePortArb: fc.Arbitrary<GenServicePort> = fc.record({
  name: fc.constantFrom(...PORT_NAMES),
  port: fc.constantFrom(...SERVICE_PORTS),
  targetPort: fc.oneof(
    { withCrossShrink: true },
    { arbitrary: fc.constant(undefined), weight: 2 },
    { arbitrary: fc.constantFrom(8080, 8081, 9090), weight: 1 },
    { arbitrary: fc.constantFrom(...Object.keys(CONTAINER_PORTS)), weight: 1 },
  ),
  appProtocol: rare(fc.constantFrom(...APP_PROTOCOLS)),
});

const serviceArb: fc.Arbitrary<GenService> = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom(...SERVICE_NAMES),
    headlessRoll: fc.integer({ min: 0, max: 9 }),
    legacyRoll: fc.integer({ min: 0, max: 7 }),
    ports: uniqueBy(servicePortArb, (p) => String(p.port), 1, 3),
    pods: fc.array(
      fc.record({
        version: fc.constantFrom(...SUBSETS),
        state: fc.constantFrom<PodState>('ready', 'ready', 'ready', 'notReady', 'terminating', 'bare'),
      }),
      { maxLength: 3 },
    ),
  })
  .map(({ headlessRoll, legacyRoll, ...s }) => ({
    ...s,
    headless: headlessRoll === 9,
    legacyEndpoints: legacyRoll === 7,
    // Kubernetes: a Service with several ports names each, uniquely.
    ports: s.ports.map((p, i, all) => {
      if (all.length === 1) return p;
      const base = p.name || 'port';
      const name = all.slice(0, i).some((q) => (q.name || 'port') === base) || (base === 'port' && all.length > 1) ? `${base}-${i}` : base;
      return { ...p, name };
    }),
  }));

const gatewayServiceArb: fc.Arbitrary<GenGatewayService> = fc.record({
  name: fc.constantFrom('istio-ingressgateway', 'gw-alt'),
  ports: uniqueBy(
    fc.record({
      port: fc.constantFrom(...GATEWAY_PORTS),
      targetPort: fc.constantFrom<number | string>(8080, 8443, 9443, 'http', 'https'),
    }),
    (p) => String(p.port),
    1,
    3,
  ).map((ps) => ps.map((p, i) => ({ name: `port-${i}`, ...p }))),
  noTranslation: fc.integer({ min: 0, max: 5 }).map((n) => n === 5),
});

// ---- Gateways ----------------------------------------------------------------------------------

type ServerKind = 'HTTP' | 'HTTP-redirect' | 'HTTP2' | 'GRPC' | 'HTTPS' | 'HTTPS-MUTUAL' | 'HTTPS-passthrough' | 'TLS-passthrough' | 'TLS-SIMPLE' | 'TCP';
const SERVER_KINDS: readonly ServerKind[] = [
  'HTTP',
  'HTTP',
  'HTTP-redirect',
  'HTTP2',
  'GRPC',
  'HTTPS',
  'HTTPS',
  'HTTPS-MUTUAL',
  'HTTPS-passthrough',
  'TLS-passthrough',
  'TLS-SIMPLE',
  'TCP',
];
const SERVER_HOSTS = [
  '*',
  '*',
  '*.example.com',
  '*.example.com',
  'a.example.com',
  'a.example.com',
  'b.example.com',
  'c.example.com',
  'default/a.example.com',
  './b.example.com',
  '*/c.example.com',
  'ns1/*',
  'default/*.example.com',
  'istio-system/*',
] as const;

const serverArb = fc
  .record({
    kind: fc.constantFrom(...SERVER_KINDS),
    port: fc.constantFrom(...GATEWAY_PORTS),
    hosts: fc.uniqueArray(fc.constantFrom(...SERVER_HOSTS), { minLength: 1, maxLength: 3 }),
    credential: fc.constantFrom(...CREDENTIALS),
    tlsVersions: rare(fc.constantFrom({ minProtocolVersion: 'TLSV1_2' }, { minProtocolVersion: 'TLSV1_2', maxProtocolVersion: 'TLSV1_3' })),
    serverName: rare(fc.constantFrom('srv-1', 'srv-2')),
  })
  .map(({ kind, port, hosts, credential, tlsVersions, serverName }): { server: Server; kind: ServerKind } => {
    const protocol = kind.split('-')[0] ?? 'HTTP';
    const server: Server = { port: { number: port, name: '', protocol }, hosts };
    if (serverName) server.name = serverName;
    if (kind === 'HTTP-redirect') server.tls = { httpsRedirect: true };
    if (kind === 'HTTPS' || kind === 'TLS-SIMPLE') server.tls = { mode: 'SIMPLE', credentialName: credential, ...tlsVersions };
    if (kind === 'HTTPS-MUTUAL') server.tls = { mode: 'MUTUAL', credentialName: CA_CREDENTIAL, ...tlsVersions };
    if (kind === 'HTTPS-passthrough' || kind === 'TLS-passthrough') server.tls = { mode: 'PASSTHROUGH' };
    if (kind === 'TCP') server.hosts = hosts.includes('*') ? ['*'] : hosts;
    return { server, kind };
  });

const gatewayArb: fc.Arbitrary<GenGateway> = fc
  .record({
    namespace: fc.constantFrom(...GATEWAY_NAMESPACES),
    name: fc.constantFrom(...GATEWAY_NAMES),
    selectedRoll: fc.integer({ min: 0, max: 11 }),
    servers: fc.array(serverArb, { minLength: 1, maxLength: 4 }),
  })
  .map(({ namespace, name, selectedRoll, servers }) => ({
    namespace,
    name,
    selected: selectedRoll !== 11,
    // Port names are unique in a Gateway.
    servers: servers.map(({ server, kind }, i) => ({ ...server, port: { ...server.port, name: `${kind.toLowerCase()}-${server.port.number}-${i}` } })),
  }));

// ---- VirtualServices ---------------------------------------------------------------------------

const VS_HOSTS = ['a.example.com', 'a.example.com', 'b.example.com', 'c.example.com', '*.example.com', '*', 'd.other.org'] as const;
const DESTINATION_HOSTS = [
  'svc-a',
  'svc-b',
  'svc-c',
  'svc-a.default.svc.cluster.local',
  'svc-b.ns1.svc.cluster.local',
  'svc-c.default.svc.cluster.local',
  'svc-a.ns1.svc.cluster.local',
  'ext-a.example.org',
  'ext-b.example.org',
  'missing.default.svc.cluster.local',
] as const;

const stringMatchArb = (exact: string[], prefix: string[], regex: string[]): fc.Arbitrary<StringMatch> =>
  fc.oneof(
    fc.constantFrom(...exact).map((v) => ({ exact: v })),
    fc.constantFrom(...prefix).map((v) => ({ prefix: v })),
    fc.constantFrom(...regex).map((v) => ({ regex: v })),
  );

const headerMatchArb = stringMatchArb(['a', 'b', ''], ['x', 'Mozilla'], ['a.*', '[0-9]+']);

const destinationArb = fc.record({
  host: fc.constantFrom(...DESTINATION_HOSTS),
  subset: rare(fc.constantFrom(...SUBSETS)),
  port: maybe(fc.constantFrom(...SERVICE_PORTS, 443).map((number) => ({ number }))),
});

const headerOpsArb = fc.record(
  {
    set: fc.dictionary(fc.constantFrom('x-a', 'x-b'), fc.constantFrom('1', 'v', '%DOWNSTREAM_REMOTE_ADDRESS%'), { minKeys: 1, maxKeys: 2 }),
    add: fc.dictionary(fc.constantFrom('x-c', 'x-a'), fc.constantFrom('2', 'w'), { minKeys: 1, maxKeys: 2 }),
    remove: fc.uniqueArray(fc.constantFrom('x-d', 'x-a', 'server'), { minLength: 1, maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const headersArb: fc.Arbitrary<Headers> = fc.record({ request: headerOpsArb, response: headerOpsArb }, { requiredKeys: [] });

const gatewayRefArb = fc.record({ namespace: fc.constantFrom(...GATEWAY_NAMESPACES), name: fc.constantFrom(...GATEWAY_NAMES) });
type GatewayRef = { namespace: string; name: string };
const refName = (r: GatewayRef, vsNamespace: string): string => (r.namespace === vsNamespace ? r.name : `${r.namespace}/${r.name}`);

const matchArb = fc.record(
  {
    name: fc.constantFrom('m1', 'm2'),
    uri: fc.oneof(
      fc.constantFrom({ exact: '/exact' }, { prefix: '/api' }, { prefix: '/' }, { prefix: '/api/' }, { regex: '/v[0-9]+/.*' }),
      fc.constantFrom({ exact: '/' }),
    ),
    // At most one JWT claim per map: istiod takes claim matches from a Go map, in random order.
    headers: fc
      .tuple(
        fc.dictionary(fc.constantFrom('x-user', 'x-env', 'user-agent'), headerMatchArb, { minKeys: 1, maxKeys: 2 }),
        rare(fc.tuple(fc.constantFrom('@request.auth.claims.groups', '@request.auth.claims[nested][key]'), headerMatchArb)),
      )
      .map(([headers, claim]) => (claim ? { ...headers, [claim[0]]: claim[1] } : headers)),
    queryParams: fc.dictionary(fc.constantFrom('q', 'debug'), stringMatchArb(['1', 'yes'], ['a'], ['[a-z]+']), { minKeys: 1, maxKeys: 2 }),
    method: fc.constantFrom({ exact: 'GET' }, { exact: 'POST' }, { regex: 'GET|HEAD' }, { prefix: 'P' }),
    authority: stringMatchArb(['a.example.com', 'b.example.com:8080'], ['a.'], ['.*\\.example\\.com']),
    scheme: fc.constantFrom({ exact: 'https' }, { exact: 'http' }),
    withoutHeaders: fc.dictionary(fc.constantFrom('x-debug', 'x-env', '@request.auth.claims.iss'), fc.oneof(headerMatchArb, fc.constant({ regex: '*' })), {
      minKeys: 1,
      maxKeys: 1,
    }),
    port: fc.constantFrom(...GATEWAY_PORTS),
    ignoreUriCase: fc.boolean(),
    sourceLabels: fc.constantFrom({ istio: 'ingressgateway' }, { app: 'other' }),
    sourceNamespace: fc.constantFrom('istio-system', 'default'),
    gateways: fc.uniqueArray(gatewayRefArb, { minLength: 1, maxLength: 1, selector: (r) => `${r.namespace}/${r.name}` }),
  },
  { requiredKeys: [] },
);

const retriesArb: fc.Arbitrary<HTTPRetry> = fc.oneof(
  fc.constant({ attempts: 0 }),
  fc.record(
    {
      attempts: fc.integer({ min: 1, max: 3 }),
      perTryTimeout: fc.constantFrom('2s', '500ms'),
      retryOn: fc.constantFrom('5xx', 'gateway-error,connect-failure', 'retriable-4xx,503', 'reset,refused-stream', 'retriable-status-codes,429'),
      retryRemoteLocalities: fc.boolean(),
      retryIgnorePreviousHosts: fc.boolean(),
      backoff: fc.constantFrom('25ms', '1s'),
    },
    { requiredKeys: ['attempts'] },
  ),
);

const percentArb = fc.constantFrom(0, 0.5, 10, 50, 100).map((value) => ({ value }));

const faultArb: fc.Arbitrary<HTTPFaultInjection> = fc
  .record(
    {
      delay: fc.record({ fixedDelay: fc.constantFrom('1s', '500ms'), percentage: maybe(percentArb) }),
      abort: fc.record({
        status: fc.oneof(
          fc.constantFrom(503, 429, 500).map((httpStatus) => ({ httpStatus })),
          fc.constant({ grpcStatus: 'UNAVAILABLE' }),
        ),
        percentage: maybe(percentArb),
      }),
    },
    { requiredKeys: [] },
  )
  .map((f) => ({ delay: f.delay, abort: f.abort ? { ...f.abort.status, percentage: f.abort.percentage } : undefined }))
  .map((f) => (f.delay || f.abort ? f : { delay: { fixedDelay: '1s' } }));

const corsArb: fc.Arbitrary<CorsPolicy> = fc.record(
  {
    allowOrigins: fc.array(stringMatchArb(['https://a.example.com', '*'], ['https://'], ['https://.*\\.example\\.com']), { minLength: 1, maxLength: 2 }),
    allowMethods: fc.subarray(['GET', 'POST', 'PUT', 'OPTIONS'], { minLength: 1 }),
    allowHeaders: fc.subarray(['x-a', 'content-type'], { minLength: 1 }),
    exposeHeaders: fc.subarray(['x-b', 'x-c'], { minLength: 1 }),
    maxAge: fc.constantFrom('24h', '60s'),
    allowCredentials: fc.boolean(),
    unmatchedPreflights: fc.constantFrom<'FORWARD' | 'IGNORE'>('FORWARD', 'IGNORE'),
  },
  { requiredKeys: ['allowOrigins'] },
);

const rewriteArb: fc.Arbitrary<HTTPRewrite> = fc
  .record({
    path: fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('/', '/v2', '/v2/').map((uri) => ({ uri })),
      fc.constant({ uriRegexRewrite: { match: '^/api/(.*)$', rewrite: '/\\1' } }),
    ),
    authority: maybe(fc.constantFrom('internal.example.com', 'svc-a.default.svc.cluster.local')),
  })
  .map(({ path, authority }) => (path || authority ? { ...path, authority } : { uri: '/' }));

const redirectArb: fc.Arbitrary<HTTPRedirect> = fc
  .record(
    {
      path: fc.oneof(
        fc.constantFrom('/moved', '/').map((uri) => ({ uri })),
        fc.constantFrom('/new', '/').map((prefixRewrite) => ({ prefixRewrite })),
      ),
      authority: fc.constantFrom('new.example.com', 'b.example.com'),
      port: fc.oneof(
        fc.constantFrom(8443, 80).map((port) => ({ port })),
        fc.constant({ derivePort: 'FROM_REQUEST_PORT' as const }),
      ),
      scheme: fc.constantFrom('https', 'http'),
      redirectCode: fc.constantFrom(301, 302, 307, 308),
    },
    { requiredKeys: [] },
  )
  .map(({ path, port, ...r }): HTTPRedirect => (path || port || r.authority || r.scheme ? { ...path, ...port, ...r } : { ...r, uri: '/moved' }));

const httpRouteArb = fc.record({
  name: rare(fc.constantFrom('r1', 'r2')),
  match: maybe(fc.array(matchArb, { minLength: 1, maxLength: 2 })),
  action: fc.oneof(
    {
      arbitrary: fc
        .array(fc.record({ destination: destinationArb, weight: maybe(fc.integer({ min: 0, max: 100 })), headers: rare(headersArb) }), {
          minLength: 1,
          maxLength: 3,
        })
        .map((route) => ({ route })),
      weight: 6,
    },
    { arbitrary: redirectArb.map((redirect) => ({ redirect })), weight: 1 },
    {
      arbitrary: fc
        .record({ status: fc.constantFrom(200, 404, 503), body: rare(fc.constantFrom({ string: 'hello' }, { bytes: 'aGVsbG8=' })) })
        .map((directResponse) => ({ directResponse })),
      weight: 1,
    },
  ),
  rewrite: rare(rewriteArb),
  timeout: rare(fc.constantFrom('5s', '1.5s', '250ms')),
  retries: rare(retriesArb),
  fault: rare(faultArb),
  mirror: rare(
    fc.oneof(
      fc.record({ mirror: destinationArb, mirrorPercentage: maybe(percentArb) }),
      fc.array(fc.record({ destination: destinationArb, percentage: maybe(percentArb) }), { minLength: 1, maxLength: 2 }).map((mirrors) => ({ mirrors })),
    ),
  ),
  corsPolicy: rare(corsArb),
  headers: rare(headersArb),
});

type GenHttpRoute = typeof httpRouteArb extends fc.Arbitrary<infer T> ? T : never;

/** An HTTP route as istiod accepts it: rewrite and fault only with a route; prefixRewrite only under prefix matches. */
function httpRouteOf(g: GenHttpRoute, vsNamespace: string): HTTPRoute {
  const match = g.match?.map(({ gateways, ...m }): HTTPMatchRequest => ({
    ...(m as HTTPMatchRequest),
    gateways: gateways?.map((r) => refName(r, vsNamespace)),
  }));
  const r: HTTPRoute = { name: g.name, match, timeout: g.timeout, retries: g.retries, corsPolicy: g.corsPolicy, headers: g.headers, ...g.mirror };
  if ('route' in g.action) {
    const route = g.action.route;
    // Several destinations need a weight in total above 0.
    if (route.length > 1 && route.every((d) => !d.weight)) route[0] = { ...route[0]!, weight: 100 };
    Object.assign(r, { route, rewrite: g.rewrite, fault: g.fault });
    // Authority rewritten once: rewrite.authority or a host header, not both.
  } else if ('redirect' in g.action) {
    let redirect = g.action.redirect;
    if (redirect.prefixRewrite !== undefined && match?.some((m) => m.uri && m.uri.prefix === undefined)) {
      const { prefixRewrite, ...rest } = redirect;
      redirect = { ...rest, uri: prefixRewrite };
    }
    r.redirect = redirect;
  } else r.directResponse = g.action.directResponse;
  return r;
}

const l4RouteArb = fc.array(
  fc.record({ destination: destinationArb, weight: maybe(fc.integer({ min: 0, max: 100 })) }).map(({ destination, weight }): RouteDestination => ({
    destination: { ...destination, subset: destination.subset },
    weight,
  })),
  { minLength: 1, maxLength: 2 },
);

function fixWeights(route: RouteDestination[]): RouteDestination[] {
  if (route.length > 1 && route.every((d) => !d.weight)) return [{ ...route[0]!, weight: 100 }, ...route.slice(1)];
  return route;
}

const virtualServiceArb: fc.Arbitrary<Named<VirtualServiceSpec>> = fc
  .record({
    namespace: fc.constantFrom(...ISTIO_NAMESPACES),
    name: fc.constantFrom('vs-a', 'vs-b', 'vs-c', 'vs-d'),
    hosts: fc.uniqueArray(fc.constantFrom(...VS_HOSTS), { minLength: 1, maxLength: 2 }),
    gateways: fc.uniqueArray(gatewayRefArb, { minLength: 1, maxLength: 2, selector: (r) => `${r.namespace}/${r.name}` }),
    http: fc.array(httpRouteArb, { maxLength: 3 }),
    tcp: rare(fc.array(fc.record({ port: maybe(fc.constantFrom(...GATEWAY_PORTS)), route: l4RouteArb }), { minLength: 1, maxLength: 2 })),
    tls: rare(fc.array(fc.record({ port: maybe(fc.constantFrom(...GATEWAY_PORTS)), route: l4RouteArb }), { minLength: 1, maxLength: 2 })),
    exportTo: exportToArb,
  })
  .map(({ namespace, name, hosts, gateways, http, tcp, tls, exportTo }) => {
    const distinct = hosts.filter((h, i) => !hosts.slice(0, i).some((o) => hostsOverlap(o, h)));
    const sni = distinct.map((h) => (h === '*' ? 'a.example.com' : h));
    const spec: VirtualServiceSpec = {
      hosts: distinct,
      gateways: gateways.map((r) => refName(r, namespace)),
      http: http.length ? http.map((g) => httpRouteOf(g, namespace)) : undefined,
      tcp: tcp?.map((t) => ({ match: t.port ? [{ port: t.port }] : undefined, route: fixWeights(t.route) })),
      tls: tls?.map((t) => ({ match: [{ sniHosts: sni, port: t.port }], route: fixWeights(t.route) })),
      exportTo,
    };
    if (!spec.http && !spec.tcp && !spec.tls) spec.http = [{ route: [{ destination: { host: 'svc-a' } }] }];
    return { namespace, name, spec };
  });

// ---- DestinationRules --------------------------------------------------------------------------

const DR_HOSTS = [
  'svc-a',
  'svc-b',
  'svc-a.default.svc.cluster.local',
  'svc-b.ns1.svc.cluster.local',
  'svc-c.default.svc.cluster.local',
  'svc-a.ns1.svc.cluster.local',
  'ext-a.example.org',
  'ext-b.example.org',
  '*.default.svc.cluster.local',
] as const;

const loadBalancerArb: fc.Arbitrary<LoadBalancerSettings> = fc
  .record({
    kind: fc.oneof(
      fc.constantFrom('ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH', 'LEAST_CONN').map((simple) => ({ simple })),
      fc
        .record({
          key: fc.oneof(
            fc.constant({ httpHeaderName: 'x-user' }),
            fc.record({ httpCookie: fc.record({ name: fc.constant('session'), ttl: maybe(fc.constantFrom('0s', '3600s')), path: rare(fc.constant('/')) }) }),
            fc.constant({ useSourceIp: true }),
            fc.constant({ httpQueryParameterName: 'user' }),
          ),
          table: rare(
            fc.oneof(fc.constant({ ringHash: { minimumRingSize: 1024 } }), fc.constant({ maglev: { tableSize: 131 } }), fc.constant({ minimumRingSize: 2048 })),
          ),
        })
        .map(({ key, table }) => ({ consistentHash: { ...key, ...table } })),
    ),
    warmupDurationSecs: rare(fc.constant('10s')),
  })
  .map(({ kind, warmupDurationSecs }) => ({ ...kind, warmupDurationSecs }));

const connectionPoolArb: fc.Arbitrary<ConnectionPoolSettings> = fc
  .record(
    {
      tcp: fc.record(
        {
          maxConnections: fc.constantFrom(1, 100),
          connectTimeout: fc.constantFrom('1s', '250ms'),
          tcpKeepalive: fc.record({ probes: fc.constant(3), time: fc.constant('60s'), interval: fc.constant('10s') }, { requiredKeys: [] }),
          maxConnectionDuration: fc.constant('30m'),
          idleTimeout: fc.constantFrom('1h', '0s'),
        },
        { requiredKeys: [] },
      ),
      http: fc.record(
        {
          http1MaxPendingRequests: fc.constantFrom(1, 1024),
          http2MaxRequests: fc.constantFrom(10, 1000),
          maxRequestsPerConnection: fc.constantFrom(1, 10),
          maxRetries: fc.constantFrom(0, 3),
          idleTimeout: fc.constantFrom('30s', '1h'),
          h2UpgradePolicy: fc.constantFrom<'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE'>('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'),
          useClientProtocol: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  )
  .map((cp) => {
    if (cp.http?.h2UpgradePolicy === 'UPGRADE' && cp.http.useClientProtocol) cp = { ...cp, http: { ...cp.http, useClientProtocol: false } };
    return cp.tcp || cp.http ? cp : { tcp: { maxConnections: 100 } };
  });

const outlierArb: fc.Arbitrary<OutlierDetection> = fc
  .record(
    {
      consecutive5xxErrors: fc.constantFrom(0, 1, 5),
      consecutiveGatewayErrors: fc.constantFrom(0, 3),
      interval: fc.constantFrom('1s', '10s'),
      baseEjectionTime: fc.constantFrom('30s', '1m'),
      maxEjectionPercent: fc.constantFrom(10, 100),
      minHealthPercent: fc.constantFrom(0, 50),
      splitExternalLocalOriginErrors: fc.boolean(),
      consecutiveLocalOriginFailures: fc.constantFrom(2, 5),
    },
    { requiredKeys: [] },
  )
  .map((o) => (o.consecutiveLocalOriginFailures && !o.splitExternalLocalOriginErrors ? { ...o, consecutiveLocalOriginFailures: undefined } : o));

const clientTlsArb: fc.Arbitrary<ClientTLSSettings> = fc.constantFrom<ClientTLSSettings>(
  { mode: 'DISABLE' },
  { mode: 'SIMPLE' },
  { mode: 'SIMPLE', sni: 'backend.example.com' },
  { mode: 'SIMPLE', insecureSkipVerify: true },
  { mode: 'SIMPLE', subjectAltNames: ['backend.example.com'] },
  { mode: 'SIMPLE', credentialName: CA_CREDENTIAL },
  { mode: 'MUTUAL', credentialName: CA_CREDENTIAL, sni: 'backend.example.com' },
);

const policyFieldsArb = fc.record(
  { loadBalancer: loadBalancerArb, connectionPool: connectionPoolArb, outlierDetection: outlierArb, tls: clientTlsArb },
  { requiredKeys: [] },
);

const trafficPolicyArb: fc.Arbitrary<TrafficPolicy> = fc
  .record({
    fields: policyFieldsArb,
    portLevelSettings: rare(
      uniqueBy(
        fc.record({ port: fc.constantFrom(...SERVICE_PORTS, 443).map((number) => ({ number })), fields: policyFieldsArb }),
        (p) => String(p.port.number),
        1,
        2,
      ),
    ),
  })
  .map(({ fields, portLevelSettings }) => {
    const pls = portLevelSettings?.map(({ port, fields: f }): PortTrafficPolicy =>
      Object.keys(f).length ? { port, ...f } : { port, loadBalancer: { simple: 'RANDOM' } },
    );
    const tp: TrafficPolicy = { ...fields, portLevelSettings: pls };
    return Object.keys(fields).length || pls ? tp : { loadBalancer: { simple: 'LEAST_REQUEST' } };
  });

const destinationRuleArb: fc.Arbitrary<Named<DestinationRuleSpec>> = fc
  .record({
    namespace: fc.constantFrom(...ISTIO_NAMESPACES),
    name: fc.constantFrom('dr-a', 'dr-b', 'dr-c'),
    host: fc.constantFrom(...DR_HOSTS),
    trafficPolicy: maybe(trafficPolicyArb),
    subsets: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom(...SUBSETS),
        labels: fc.oneof(
          fc.constantFrom(...SUBSETS).map((version) => ({ version })),
          fc.constant({}),
        ),
        trafficPolicy: rare(trafficPolicyArb),
      }),
      { selector: (s) => s.name, maxLength: 3 },
    ),
    exportTo: exportToArb,
  })
  .map(({ namespace, name, host, trafficPolicy, subsets, exportTo }) => ({
    namespace,
    name,
    spec: {
      host,
      trafficPolicy,
      subsets: subsets.length ? subsets.map((s) => (Object.keys(s.labels).length ? s : { ...s, labels: undefined })) : undefined,
      exportTo,
    },
  }));

// ---- ServiceEntries ----------------------------------------------------------------------------

const serviceEntryArb: fc.Arbitrary<Named<ServiceEntrySpec>> = fc
  .record({
    namespace: fc.constantFrom('default', 'istio-system'),
    name: fc.constantFrom('se-a', 'se-b'),
    hosts: fc.uniqueArray(fc.constantFrom(...SE_HOSTS), { minLength: 1, maxLength: 2 }),
    ports: uniqueBy(
      fc.record({
        number: fc.constantFrom(80, 443, 8443, 9000),
        protocol: fc.constantFrom('HTTP', 'HTTPS', 'TLS', 'TCP', 'GRPC'),
        targetPort: rare(fc.constantFrom(8080, 9443)),
      }),
      (p) => String(p.number),
      1,
      2,
    ),
    location: fc.constantFrom<'MESH_EXTERNAL' | 'MESH_INTERNAL'>('MESH_EXTERNAL', 'MESH_EXTERNAL', 'MESH_INTERNAL'),
    resolution: fc.constantFrom<'DNS' | 'STATIC' | 'NONE' | 'DNS_ROUND_ROBIN'>('DNS', 'DNS', 'STATIC', 'STATIC', 'NONE', 'DNS_ROUND_ROBIN'),
    endpoints: fc.array(
      fc.record({
        n: fc.integer({ min: 1, max: 4 }),
        labels: rare(fc.constantFrom(...SUBSETS).map((version) => ({ version }))),
        portOverride: rare(fc.constantFrom(8081, 9444)),
        weight: rare(fc.constantFrom(1, 5)),
      }),
      { maxLength: 2 },
    ),
    exportTo: exportToArb,
  })
  .map(({ namespace, name, hosts, ports, location, resolution, endpoints, exportTo }) => {
    const sePorts = ports.map((p) => ({ ...p, name: `${p.protocol.toLowerCase()}-${p.number}` }));
    const firstPort = sePorts[0]?.name ?? 'http';
    const eps =
      resolution === 'NONE'
        ? undefined
        : (resolution === 'DNS_ROUND_ROBIN' ? endpoints.slice(0, 1) : endpoints).map((e) => ({
            address: resolution === 'STATIC' ? `192.0.2.${e.n}` : `backend-${e.n}.example.net`,
            labels: e.labels,
            ports: e.portOverride ? { [firstPort]: e.portOverride } : undefined,
            weight: e.weight,
          }));
    // STATIC without endpoints has nothing to send to: give it one.
    const endpointsOut = resolution === 'STATIC' && !eps?.length ? [{ address: '192.0.2.9' }] : eps?.length ? eps : undefined;
    return { namespace, name, spec: { hosts, ports: sePorts, location, resolution, endpoints: endpointsOut, exportTo } };
  });

// ---- AuthorizationPolicies ---------------------------------------------------------------------

/** Values istiod accepts for each source field (the `not` forms draw from the same pools). */
const SOURCE_VALUES = {
  principals: ['cluster.local/ns/default/sa/a', '*/sa/b', 'cluster.local/ns/ns1/*', '*', 'cluster*/ns/x/sa/y', 'td.example/ns/a/sa/b'],
  requestPrincipals: ['iss.example.com/sub', '*', '*/sub', 'iss/*', 'https://accounts.example.com/u1', 'prefix*', '*suffix'],
  namespaces: ['default', 'ns1', 'team-*', '*-test', '*'],
  serviceAccounts: ['sa-a', 'ns1/sa-b'],
  ipBlocks: ['10.0.0.0/8', '192.168.1.7', '2001:DB8::/32', '10.1.2.3/16', '::ffff:1.2.3.4'],
  remoteIpBlocks: ['203.0.113.0/24', '198.51.100.7', 'fd00::1'],
  trustDomains: ['cluster.local', 'td-*', '*.example', '*'],
} as const;
const OPERATION_VALUES = {
  hosts: ['a.example.com', '*.example.com', 'api.*', '*', 'A.Example.com'],
  ports: ['80', '8080', '8443', '9000', '080'],
  methods: ['GET', 'POST', 'P*', '*'],
  paths: ['/exact', '/api/*', '*/suffix', '*', '/v1/{*}/items', '/files/{**}', '/x/**'],
} as const;
const CONDITIONS: readonly [string, readonly string[]][] = [
  ['request.headers[x-token]', ['abc', 'pre*', '*suf', '*']],
  ['source.ip', ['10.0.0.0/8', '10.1.2.3']],
  ['remote.ip', ['203.0.113.0/24']],
  ['source.namespace', ['default', 'ns-*']],
  ['source.principal', ['cluster.local/ns/a/sa/b', '*/sa/c']],
  ['source.serviceAccount', ['sa-a', 'ns1/sa-b']],
  ['source.trustDomain', ['cluster.local', 'td-*']],
  ['request.auth.principal', ['iss/sub', '*/admin']],
  ['request.auth.audiences', ['aud1', 'aud2*']],
  ['request.auth.presenter', ['presenter']],
  ['request.auth.claims[groups]', ['admin', 'dev*']],
  ['request.auth.claims[nested][key]', ['v']],
  ['destination.ip', ['10.0.0.1', 'fd00::/8']],
  ['destination.port', ['8080', '9000']],
  ['connection.sni', ['*.example.com', 'a.example.com']],
  ['experimental.envoy.filters.network.mysql_proxy[db.table]', ['[update]', 'select*']],
];
/** What a CUSTOM policy may not use (ValidateAuthorizationPolicy). */
const IDENTITY_SOURCE_FIELDS = new Set(['principals', 'requestPrincipals', 'namespaces', 'serviceAccounts', 'trustDomains']);
const isIdentityKey = (k: string): boolean => (k.startsWith('source.') && k !== 'source.ip' ? true : k.startsWith('request.auth.'));

/** Some values of a pool, or none. */
const someOf = (pool: readonly string[], max = 2): fc.Arbitrary<string[] | undefined> =>
  maybe(fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: max }));

const sourceArb: fc.Arbitrary<Source> = fc
  .record(
    Object.fromEntries(
      Object.entries(SOURCE_VALUES).flatMap(([k, pool]) => [
        [k, rare(someOf(pool))],
        [`not${k[0]?.toUpperCase()}${k.slice(1)}`, rare(someOf(pool, 1))],
      ]),
    ),
  )
  .map((r) => clean(r) as Source);

const operationArb: fc.Arbitrary<Operation> = fc
  .record(
    Object.fromEntries(
      Object.entries(OPERATION_VALUES).flatMap(([k, pool]) => [
        [k, someOf(pool, 3)],
        [`not${k[0]?.toUpperCase()}${k.slice(1)}`, rare(someOf(pool, 1))],
      ]),
    ),
  )
  .map((r) => clean(r) as Operation);

const conditionArb: fc.Arbitrary<Condition> = fc
  .record({ c: fc.constantFrom(...CONDITIONS), values: fc.boolean(), notValues: fc.boolean() })
  .chain(({ c: [key, pool], values, notValues }) =>
    fc.record({
      key: fc.constant(key),
      values: values || !notValues ? fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 2 }) : fc.constant(undefined),
      notValues: notValues ? fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 1 }) : fc.constant(undefined),
    }),
  )
  .map((c) => clean(c) as Condition);

/** A rule istiod accepts for the action: non-empty sources and operations, serviceAccounts apart, CUSTOM without identities. */
function ruleArb(custom: boolean): fc.Arbitrary<Rule> {
  const valid = (src: Source): Source | undefined => {
    const out: Record<string, unknown> = { ...src };
    if (custom) for (const k of Object.keys(out)) if (IDENTITY_SOURCE_FIELDS.has(k.replace(/^not(.)/, (_m, c: string) => c.toLowerCase()))) delete out[k];
    if (out.serviceAccounts || out.notServiceAccounts) for (const k of ['principals', 'notPrincipals', 'namespaces', 'notNamespaces']) delete out[k];
    return Object.keys(out).length ? out : undefined;
  };
  return fc
    .record({
      from: maybe(fc.array(sourceArb, { minLength: 1, maxLength: 2 })),
      to: maybe(fc.array(operationArb, { minLength: 1, maxLength: 2 })),
      when: rare(fc.array(conditionArb, { minLength: 1, maxLength: 3 })),
    })
    .map(({ from, to, when }) => {
      const sources = (from ?? []).map(valid).filter((x): x is Source => x !== undefined);
      const operations = (to ?? []).filter((o) => Object.keys(o).length > 0);
      const conditions = (when ?? []).filter((c) => !custom || !isIdentityKey(c.key ?? ''));
      return clean({
        from: sources.length ? sources.map((source) => ({ source })) : undefined,
        to: operations.length ? operations.map((operation) => ({ operation })) : undefined,
        when: conditions.length ? conditions : undefined,
      });
    });
}

const authorizationPolicyArb: fc.Arbitrary<GenAuthorizationPolicy> = fc
  .record({
    namespace: fc.constantFrom('istio-system', 'istio-system', 'default'),
    name: fc.constantFrom('ap-a', 'ap-b', 'ap-c'),
    action: fc.constantFrom<'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM'>('ALLOW', 'ALLOW', 'DENY', 'DENY', 'AUDIT', 'CUSTOM', 'CUSTOM'),
    // Mostly one provider per gateway: two different ones fail closed (PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS).
    provider: fc.constantFrom('ext-a', 'ext-a', 'ext-a', 'ext-b'),
    selector: fc.constantFrom<('ingress' | 'other' | 'empty' | undefined)[]>(undefined, undefined, 'ingress', 'other', 'empty'),
    dryRun: rare(fc.constantFrom('true', 'false', '1', 'True')),
    noRules: fc.boolean(),
    rules: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
  })
  .chain((p) => fc.tuple(fc.constant(p), fc.tuple(...p.rules.map(() => ruleArb(p.action === 'CUSTOM')))))
  .map(([p, rules]) => {
    const labels: Record<string, Record<string, string>> = { ingress: { istio: 'ingressgateway' }, other: { app: 'other' }, empty: {} };
    const selector = p.selector ? { matchLabels: labels[p.selector] ?? {} } : undefined;
    // DENY and CUSTOM need rules; dry-run is for ALLOW and DENY only.
    const withRules = !p.noRules || p.action === 'DENY' || p.action === 'CUSTOM';
    const spec: AuthorizationPolicySpec = clean({
      selector,
      action: p.action,
      provider: p.action === 'CUSTOM' ? { name: p.provider } : undefined,
      rules: withRules ? rules : undefined,
    });
    const dryRun = p.action === 'ALLOW' || p.action === 'DENY' ? p.dryRun : undefined;
    return { namespace: p.namespace, name: p.name, spec, ...(dryRun ? { dryRun } : {}) };
  });

// ---- mesh config: ext_authz extension providers ---------------------------------------------------

/** The Service of the ext_authz server, in every config that has extension providers. */
const AUTHZ_SERVICE = { name: 'ext-authz', namespace: 'ns1', ports: [8000, 9000] } as const;

/**
 * A provider's service: mostly the ext_authz Service (by FQDN or <namespace>/<FQDN>), else a generated Service, a
 * ServiceEntry host, or one nothing declares.
 */
const authzServiceArb = (wild: boolean): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: fc.constant(`${AUTHZ_SERVICE.name}.${AUTHZ_SERVICE.namespace}.svc.cluster.local`), weight: 6 },
    { arbitrary: fc.constant(`${AUTHZ_SERVICE.namespace}/${AUTHZ_SERVICE.name}.${AUTHZ_SERVICE.namespace}.svc.cluster.local`), weight: 3 },
    { arbitrary: fc.tuple(fc.constantFrom(...SERVICE_NAMES), fc.constantFrom(...NAMESPACES)).map(([s, ns]) => `${s}.${ns}.svc.cluster.local`), weight: 3 },
    {
      arbitrary: fc.tuple(fc.constantFrom(...SERVICE_NAMES), fc.constantFrom(...NAMESPACES)).map(([s, ns]) => `${ns}/${s}.${ns}.svc.cluster.local`),
      weight: 2,
    },
    { arbitrary: fc.constantFrom(...SE_HOSTS), weight: 1 },
    { arbitrary: fc.constant('missing.example.org'), weight: wild ? 1 : 0 },
  );
/**
 * One provider of each kind, `wild` with values istiod refuses (port 0, a lone `*` header, statusOnError 299 or x,
 * a pathPrefix without /), which make the CUSTOM policies naming it fail closed; otherwise values it takes.
 */
function providerArb(name: string, wild: boolean): fc.Arbitrary<Obj> {
  const headers = rare(fc.uniqueArray(fc.constantFrom('x-a', 'x-b-*', '*-id', 'authorization', ...(wild ? ['*'] : [])), { minLength: 1, maxLength: 3 }));
  const common = {
    service: authzServiceArb(wild),
    port: fc.constantFrom(...AUTHZ_SERVICE.ports, ...AUTHZ_SERVICE.ports, ...SERVICE_PORTS, ...(wild ? [0] : [])),
    timeout: rare(fc.constantFrom('1s', '0.25s', '2m')),
    failOpen: maybe(fc.boolean()),
    statusOnError: rare(fc.constantFrom('403', '503', ...(wild ? ['299', 'x'] : []))),
    includeRequestBodyInCheck: rare(
      fc.record({ maxRequestBytes: fc.constantFrom(0, 1024), allowPartialMessage: fc.boolean(), packAsBytes: fc.boolean() }, { requiredKeys: [] }),
    ),
  };
  const http = fc.record(
    {
      ...common,
      pathPrefix: rare(fc.constantFrom('/check', ...(wild ? ['check'] : []))),
      includeRequestHeadersInCheck: headers,
      includeHeadersInCheck: headers,
      includeAdditionalHeadersInCheck: rare(fc.constantFrom({ 'x-add': 'v' }, { 'x-b': '2', 'a-first': '' })),
      headersToUpstreamOnAllow: headers,
      headersToDownstreamOnDeny: headers,
      headersToDownstreamOnAllow: headers,
    },
    { requiredKeys: ['service', 'port'] },
  );
  const grpc = fc.record(common, { requiredKeys: ['service', 'port'] });
  return fc.oneof(
    http.map((p) => clean({ name, envoyExtAuthzHttp: p })),
    grpc.map((p) => clean({ name, envoyExtAuthzGrpc: p })),
  );
}
const extensionProviderArb = (name: string): fc.Arbitrary<Obj> =>
  fc.oneof({ arbitrary: providerArb(name, false), weight: 3 }, { arbitrary: providerArb(name, true), weight: 1 });
/** ext-a and ext-b, each there or not (a policy naming a missing one fails closed). */
const extensionProvidersArb: fc.Arbitrary<Obj[]> = fc
  .tuple(fc.option(extensionProviderArb('ext-a'), { nil: undefined, freq: 5 }), rare(extensionProviderArb('ext-b')))
  .map((l) => l.filter((p): p is Obj => p !== undefined));

// ---- mesh config: the access log ----------------------------------------------------------------

/** The access log fields of the mesh config: default and custom TEXT and JSON formats, some JSON that does not parse. */
const accessLogArb: fc.Arbitrary<Obj | undefined> = rare(
  fc
    .record(
      {
        accessLogFile: fc.constantFrom('/dev/stdout', '/var/log/access.log', ''),
        accessLogEncoding: fc.constantFrom('TEXT', 'JSON'),
        accessLogFormat: fc.constantFrom(
          '',
          '%START_TIME% %REQ(:METHOD)% %RESPONSE_CODE%',
          '%REQ_WITHOUT_QUERY(:PATH)% %RESPONSE_FLAGS%\n',
          '{"code": "%RESPONSE_CODE%", "path": "%REQ_WITHOUT_QUERY(:PATH)%", "n": 1, "nested": {"m": "%REQ(:METHOD)%"}}',
          '{"flags": "%RESPONSE_FLAGS%", "b": true}',
          '[1, 2]',
          '{not json',
        ),
        disableEnvoyListenerLog: fc.boolean(),
      },
      { requiredKeys: ['accessLogFile'] },
    )
    .map(clean),
);

// ---- RequestAuthentications --------------------------------------------------------------------

/** Inline JWKS istiod's jwk.Parse takes (RSA, EC, OKP, oct, a set or one key). */
const JWKS = [
  '{"keys":[{"kty":"RSA","kid":"r1","e":"AQAB","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV"}]}',
  '{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}',
  '{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}',
  '{"keys":[]}',
] as const;
/**
 * Issuers; a rule without jwks or jwksUri makes istiod fetch the issuer's OpenID discovery document, so those are
 * unreachable at once (no scheme, or a closed port): both sides then send the public-only JWKS.
 */
const ISSUERS = ['iss.example.com', 'testing@secure.istio.io', 'https://127.0.0.1:1/realms/a'] as const;
/** Unreachable: istiod's fetch fails, as meshgate's translation without a resolver, and both send the public-only JWKS. */
const JWKS_URIS = ['https://127.0.0.1:1/jwks.json', 'http://127.0.0.1:1/keys'] as const;

const jwtRuleArb: fc.Arbitrary<JWTRule> = fc
  .record({
    issuer: fc.constantFrom<string | undefined>(...ISSUERS, ...ISSUERS, undefined),
    keys: fc.constantFrom<'jwks' | 'jwksUri' | 'none'>('jwks', 'jwks', 'jwksUri', 'none'),
    jwks: fc.constantFrom(...JWKS),
    jwksUri: fc.constantFrom(...JWKS_URIS),
    audiences: rare(fc.uniqueArray(fc.constantFrom('aud-a', 'aud-b'), { minLength: 1, maxLength: 2 })),
    fromHeaders: rare(
      fc.array(fc.record({ name: fc.constantFrom('authorization', 'x-jwt', 'x-token'), prefix: maybe(fc.constantFrom('Bearer ', 'Token ')) }), {
        minLength: 1,
        maxLength: 2,
      }),
    ),
    fromParams: rare(fc.uniqueArray(fc.constantFrom('token', 'access_token'), { minLength: 1, maxLength: 2 })),
    fromCookies: rare(fc.uniqueArray(fc.constantFrom('session', 'jwt'), { minLength: 1, maxLength: 2 })),
    outputPayloadToHeader: rare(fc.constantFrom('x-jwt-payload')),
    forwardOriginalToken: rare(fc.boolean()),
    outputClaimToHeaders: rare(
      fc.array(fc.record({ header: fc.constantFrom('x-sub', 'x-group'), claim: fc.constantFrom('sub', 'groups', 'nested.key') }), {
        minLength: 1,
        maxLength: 2,
      }),
    ),
    timeout: rare(fc.constantFrom('1s', '1500ms', '10s')),
    spaceDelimitedClaims: rare(fc.uniqueArray(fc.constantFrom('roles', 'scope', 'groups'), { minLength: 1, maxLength: 2 })),
  })
  .map(({ keys, jwks, jwksUri, issuer, ...rest }) => {
    // istiod refuses a rule with neither issuer nor jwksUri.
    const withUri = keys === 'jwksUri' || issuer === undefined;
    return clean({ issuer, ...rest, jwks: keys === 'jwks' && issuer !== undefined ? jwks : undefined, jwksUri: withUri ? jwksUri : undefined });
  });

const requestAuthenticationArb: fc.Arbitrary<Named<RequestAuthenticationSpec>> = fc
  .record({
    namespace: fc.constantFrom('istio-system', 'istio-system', 'default'),
    name: fc.constantFrom('ra-a', 'ra-b', 'ra-c'),
    selector: fc.constantFrom<('ingress' | 'other' | 'empty' | 'targetRef' | undefined)[]>(undefined, undefined, 'ingress', 'other', 'empty', 'targetRef'),
    // At most 3 rules a policy and 3 policies: istiod's sort of rules by issuer is an insertion sort (stable) up to 12.
    jwtRules: fc.array(jwtRuleArb, { minLength: 0, maxLength: 3 }),
  })
  .map((p) => {
    const labels: Record<string, Record<string, string>> = { ingress: { istio: 'ingressgateway' }, other: { app: 'other' }, empty: {} };
    const spec: RequestAuthenticationSpec = clean({
      selector: p.selector && p.selector !== 'targetRef' ? { matchLabels: labels[p.selector] ?? {} } : undefined,
      targetRefs: p.selector === 'targetRef' ? [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw-a' }] : undefined,
      jwtRules: p.jwtRules.length ? p.jwtRules : undefined,
    });
    return { namespace: p.namespace, name: p.name, spec };
  });

// ---- Telemetries (access logging) ---------------------------------------------------------------

/**
 * Provider names: the built-in one, file providers the mesh may define, and names that log nothing. Not `ENVOY` beside
 * `envoy`: with both in scope istiod makes two loggers for the one provider and orders them at random (a sort on equal
 * names over a Go map), so no fixed answer exists; names matched in any case are covered by the golden
 * access-log-default-providers.
 */
const TELEMETRY_PROVIDERS = ['envoy', 'file-x', 'json-x', 'missing', 'prometheus'] as const;
const FILE_PROVIDERS: Obj[] = [
  { name: 'file-x', envoyFileAccessLog: { path: '/var/log/x.log', logFormat: { text: '%RESPONSE_CODE% %REQ(:PATH)%' } } },
  { name: 'json-x', envoyFileAccessLog: { path: '/dev/stderr', omitEmptyValues: true, logFormat: { labels: { code: '%RESPONSE_CODE%' } } } },
];

const accessLoggingArb: fc.Arbitrary<Obj> = fc
  .record({
    providers: maybe(fc.uniqueArray(fc.constantFrom(...TELEMETRY_PROVIDERS), { minLength: 1, maxLength: 2 })),
    disabled: rare(fc.boolean()),
    filter: rare(fc.constantFrom('response.code >= 400', "request.headers['x-debug'] == 'on'")),
    mode: rare(fc.constantFrom('CLIENT', 'SERVER', 'CLIENT_AND_SERVER')),
  })
  .map((a) =>
    clean({
      providers: a.providers?.map((name) => ({ name })),
      disabled: a.disabled,
      filter: a.filter === undefined ? undefined : { expression: a.filter },
      match: a.mode === undefined ? undefined : { mode: a.mode },
    }),
  );

const telemetryArb: fc.Arbitrary<Named<TelemetrySpec>> = fc
  .record({
    namespace: fc.constantFrom('istio-system', 'istio-system', 'default'),
    name: fc.constantFrom('tel-a', 'tel-b', 'tel-c'),
    selector: fc.constantFrom<('ingress' | 'other' | 'empty' | 'targetRef' | undefined)[]>(
      undefined,
      undefined,
      'ingress',
      'ingress',
      'other',
      'empty',
      'targetRef',
    ),
    accessLogging: fc.array(accessLoggingArb, { minLength: 0, maxLength: 3 }),
  })
  .map((t) => {
    const labels: Record<string, Record<string, string>> = { ingress: { istio: 'ingressgateway' }, other: { app: 'other' }, empty: {} };
    const spec: TelemetrySpec = clean({
      selector: t.selector && t.selector !== 'targetRef' ? { matchLabels: labels[t.selector] ?? {} } : undefined,
      targetRefs: t.selector === 'targetRef' ? [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw-a' }] : undefined,
      accessLogging: t.accessLogging.length ? t.accessLogging : undefined,
    });
    return { namespace: t.namespace, name: t.name, spec };
  });

const telemetryMeshArb = rare(
  fc.record({
    defaultAccessLogging: maybe(fc.uniqueArray(fc.constantFrom('envoy', 'file-x', 'json-x', 'missing'), { minLength: 1, maxLength: 2 })),
    fileProviders: fc.boolean(),
  }),
).map((m) => (m === undefined ? undefined : clean(m)));

// ---- the world ---------------------------------------------------------------------------------

const key = (o: { namespace: string; name: string }): string => `${o.namespace}/${o.name}`;

export const worldArb: fc.Arbitrary<World> = fc.record({
  services: uniqueBy(serviceArb, key, 0, 3),
  gatewayServices: rare(uniqueBy(gatewayServiceArb, (g) => g.name, 1, 2)).map((l) => l ?? []),
  gateways: uniqueBy(gatewayArb, key, 1, 3),
  virtualServices: uniqueBy(virtualServiceArb, key, 0, 4),
  destinationRules: uniqueBy(destinationRuleArb, key, 0, 3),
  serviceEntries: uniqueBy(serviceEntryArb, key, 0, 2),
  authorizationPolicies: uniqueBy(authorizationPolicyArb, key, 0, 3),
  requestAuthentications: uniqueBy(requestAuthenticationArb, key, 0, 3),
  extensionProviders: extensionProvidersArb,
  accessLog: accessLogArb,
  telemetries: uniqueBy(telemetryArb, key, 0, 3),
  telemetryMesh: telemetryMeshArb,
});

// ---- objects -----------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function endpointConditions(state: PodState): Obj {
  switch (state) {
    case 'ready':
      return { ready: true, serving: true, terminating: false };
    case 'notReady':
      return { ready: false, serving: false, terminating: false };
    case 'terminating':
      return { ready: false, serving: true, terminating: true };
    case 'bare':
      return { ready: true };
  }
}

function serviceObjects(s: GenService, index: number): Obj[] {
  const out: Obj[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: s.namespace },
      spec: {
        ...(s.headless ? { clusterIP: 'None' } : {}),
        selector: { app: s.name },
        ports: s.ports.map((p) => ({
          ...(p.name ? { name: p.name } : {}),
          port: p.port,
          protocol: 'TCP',
          targetPort: p.targetPort,
          appProtocol: p.appProtocol,
        })),
      },
    },
  ];
  if (s.pods.length === 0) return out;
  const pods = s.pods.map((p, i) => ({ ...p, name: `${s.name}-${p.version}-${i}`, ip: `10.${index + 1}.0.${i + 1}` }));
  for (const p of pods) {
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: s.namespace, labels: { app: s.name, version: p.version } },
      spec: {
        containers: [{ name: 'app', ports: Object.entries(CONTAINER_PORTS).map(([name, containerPort]) => ({ name, containerPort, protocol: 'TCP' })) }],
      },
      status: { podIP: p.ip, conditions: [{ type: 'Ready', status: p.state === 'ready' || p.state === 'bare' ? 'True' : 'False' }] },
    });
  }
  const targetPortOf = (p: GenServicePort): number | undefined => (typeof p.targetPort === 'string' ? CONTAINER_PORTS[p.targetPort] : (p.targetPort ?? p.port));
  if (s.legacyEndpoints) {
    const address = (p: (typeof pods)[number]): Obj => ({ ip: p.ip, targetRef: { kind: 'Pod', name: p.name, namespace: s.namespace } });
    const ready = pods.filter((p) => p.state === 'ready' || p.state === 'bare');
    const notReady = pods.filter((p) => p.state !== 'ready' && p.state !== 'bare');
    out.push({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: s.name, namespace: s.namespace },
      subsets: [
        {
          addresses: ready.length ? ready.map(address) : undefined,
          notReadyAddresses: notReady.length ? notReady.map(address) : undefined,
          ports: s.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: targetPortOf(p), protocol: 'TCP', appProtocol: p.appProtocol })),
        },
      ],
    });
    return out;
  }
  out.push({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${s.name}-slice`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.name } },
    addressType: 'IPv4',
    ports: s.ports.map((p) => ({
      name: p.name,
      port: targetPortOf(p),
      protocol: 'TCP',
      appProtocol: p.appProtocol,
    })),
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: endpointConditions(p.state),
      targetRef: { kind: 'Pod', name: p.name, namespace: s.namespace },
    })),
  });
  return out;
}

function gatewayServiceObjects(g: GenGatewayService): Obj[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: g.name,
        namespace: IDENTITY.namespace,
        ...(g.noTranslation ? { labels: { 'experimental.istio.io/disable-gateway-port-translation': 'true' } } : {}),
      },
      spec: { selector: { istio: 'ingressgateway' }, ports: g.ports.map((p) => ({ ...p, protocol: 'TCP' })) },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${g.name}-slice`, namespace: IDENTITY.namespace, labels: { 'kubernetes.io/service-name': g.name } },
      addressType: 'IPv4',
      ports: g.ports.map((p) => ({
        name: p.name,
        port: typeof p.targetPort === 'string' ? GATEWAY_CONTAINER_PORTS[p.targetPort as keyof typeof GATEWAY_CONTAINER_PORTS] : p.targetPort,
        protocol: 'TCP',
      })),
      endpoints: [
        { addresses: [GATEWAY_POD_IP], conditions: { ready: true }, targetRef: { kind: 'Pod', name: IDENTITY.podName, namespace: IDENTITY.namespace } },
      ],
    },
  ];
}

function secret(name: string, withCa: boolean): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: IDENTITY.namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': TLS_CRT, 'tls.key': TLS_KEY, ...(withCa ? { 'ca.crt': CA_CRT } : {}) },
  };
}

/** Every Kubernetes and Istio object of a world, the Secrets its servers and DestinationRules name included. */
function objectsOf(w: World): Obj[] {
  const gatewayPod: Obj = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: IDENTITY.podName, namespace: IDENTITY.namespace, labels: { ...IDENTITY.labels } },
    spec: {
      containers: [
        { name: 'istio-proxy', ports: Object.entries(GATEWAY_CONTAINER_PORTS).map(([name, containerPort]) => ({ name, containerPort, protocol: 'TCP' })) },
      ],
    },
    status: { podIP: GATEWAY_POD_IP, conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const credentials = new Set<string>();
  for (const g of w.gateways) for (const s of g.servers) if (s.tls?.credentialName) credentials.add(s.tls.credentialName);
  for (const dr of w.destinationRules) {
    const policies = [dr.spec.trafficPolicy, ...(dr.spec.subsets ?? []).map((s) => s.trafficPolicy)];
    for (const tp of policies)
      for (const t of [tp?.tls, ...(tp?.portLevelSettings ?? []).map((p) => p.tls)]) if (t?.credentialName) credentials.add(t.credentialName);
  }
  const objects: Obj[] = [
    gatewayPod,
    ...w.gatewayServices.flatMap(gatewayServiceObjects),
    ...[...credentials].sort().map((c) => secret(c, c === CA_CREDENTIAL)),
    ...w.services.flatMap(serviceObjects),
    ...w.gateways.map((g) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: g.name, namespace: g.namespace },
      spec: { selector: g.selected ? { istio: 'ingressgateway' } : { istio: 'egressgateway' }, servers: g.servers },
    })),
    ...w.virtualServices.map((v) => istioObject('VirtualService', v)),
    ...w.destinationRules.map((d) => istioObject('DestinationRule', d)),
    // Distinct creation times: istiod keeps the oldest of two ServiceEntries declaring one host in one namespace,
    // and picks at random between two created in the same second.
    ...w.serviceEntries.map((s, i) => istioObject('ServiceEntry', s, `2024-01-01T00:00:0${i}Z`)),
    ...w.authorizationPolicies.map((p) => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: p.name, namespace: p.namespace, ...(p.dryRun ? { annotations: { 'istio.io/dry-run': p.dryRun } } : {}) },
      spec: p.spec,
    })),
    ...(w.extensionProviders.length
      ? [
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: AUTHZ_SERVICE.name, namespace: AUTHZ_SERVICE.namespace },
            spec: {
              selector: { app: AUTHZ_SERVICE.name },
              ports: [
                { name: 'http', port: 8000 },
                { name: 'grpc', port: 9000 },
              ],
            },
          },
        ]
      : []),
    ...w.requestAuthentications.map((r) => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: r.name, namespace: r.namespace },
      spec: r.spec,
    })),
    ...w.telemetries.map((t) => ({
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: t.name, namespace: t.namespace },
      spec: t.spec,
    })),
  ];
  return objects.map(clean);
}

function istioObject(kind: string, n: Named<unknown>, creationTimestamp?: string): Obj {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name: n.name, namespace: n.namespace, creationTimestamp }, spec: n.spec };
}

/** The mesh config of a world, when it has one. */
function meshOf(w: World): { mesh?: string } {
  const providers = [...w.extensionProviders, ...(w.telemetryMesh?.fileProviders ? FILE_PROVIDERS : [])];
  const defaults = w.telemetryMesh?.defaultAccessLogging;
  if (!providers.length && !w.accessLog && !defaults) return {};
  const mesh = {
    ...(providers.length ? { extensionProviders: providers } : {}),
    ...w.accessLog,
    ...(defaults ? { defaultProviders: { accessLogging: defaults } } : {}),
  };
  return { mesh: stringify(mesh, { lineWidth: 0, version: '1.1' }) };
}

/** The differential's input for a world: YAML 1.1, as cases.ts writes it for istiod's decoder. */
export function caseOf(name: string, w: World): DiffCase {
  return {
    name,
    identity: IDENTITY,
    yaml: objectsOf(w)
      .map((o) => stringify(o, { lineWidth: 0, version: '1.1' }))
      .join('---\n'),
    ...meshOf(w),
  };
}

/** A golden input file (controller/translate/testdata/<name>.in.yaml) holding a case, under a comment. */
export function goldenInput(c: DiffCase, comment: string): string {
  const header = comment
    .split('\n')
    .map((l) => `# ${l}`.trimEnd())
    .join('\n');
  const identity = stringify({ kind: 'Identity', identity: c.identity }, { lineWidth: 0 });
  const mesh = c.mesh === undefined ? '' : `${stringify({ kind: 'MeshConfig', mesh: c.mesh }, { lineWidth: 0 })}---\n`;
  return `${header}\n${identity}---\n${mesh}${c.yaml}`;
}
