// The Kubernetes source: one reflector per watched kind (and per namespace with --watch-namespaces) filling
// the object store. What is watched, and where, follows istiod for a gateway:
//   - networking.istio.io Gateway, VirtualService, DestinationRule, ServiceEntry and security.istio.io
//     AuthorizationPolicy, RequestAuthentication, telemetry.istio.io Telemetry (newest served version of each);
//   - Services, discovery.k8s.io/v1 EndpointSlices and Pods (routing destinations, endpoints, subset labels);
//   - Secrets only in the gateway's own namespace, where Istio reads credentialName certificates, and not the
//     types that never hold them (service-account tokens, Helm releases), as istiod's secret controller does;
//   - the Istio kinds meshgate does not implement (EnvoyFilter, Sidecar, ...), only so that status.ts can mark
//     them as not honoured: not part of `synced` (a cluster without their CRDs still gets a ready gateway);
//   - the Kubernetes Gateway API kinds (Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, GatewayClass), optional the same way,
//     and (watching every namespace) Namespaces, whose labels Gateway API listeners may select route namespaces by.
// With --watch-namespaces the namespaced watches are limited to those namespaces plus the gateway's own
// (its Service maps Gateway ports to listener ports, and its Pod carries the labels Gateways select on).
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Kind, KubeObject } from '../../model/objects.ts';
import type { ObjectStore } from '../../model/store.ts';
import { KubeClient, loadKubeConfig } from './client.ts';
import { GATEWAY_API, IstioDiscovery, NETWORKING, SECURITY, TELEMETRY, type IstioGroup } from './discovery.ts';
import { kubeSourceMetrics, type KubeSourceMetrics } from './metrics.ts';
import { Reflector, type ReflectorSpec, type ReflectorTiming } from './reflector.ts';

export interface KubeSourceOptions {
  /** A kubeconfig file; default: the pod's service account (or $KUBECONFIG outside a cluster). */
  kubeconfig?: string;
  /** Limits the namespaced watches; undefined or empty: all namespaces. The pod namespace is always added. */
  namespaces?: readonly string[];
  /** The gateway pod's namespace: Secrets are read here only. */
  podNamespace: string;
  /** The gateway pod's name: its labels from the registry are available through `ownPodLabels()`. */
  podName?: string;
  store: ObjectStore;
  log: Logger;
  /** prom-client registry for the source's metrics. */
  registry?: Registry;
  /** An already configured client (tests); otherwise built from `kubeconfig`. */
  client?: KubeClient;
  timing?: Partial<ReflectorTiming>;
}

export interface KubeSource {
  /** Resolves once the first list of every watched kind is in the store. */
  synced: Promise<void>;
  client: KubeClient;
  metrics: KubeSourceMetrics | undefined;
  /** The labels of the controller's own Pod as the API server has them; undefined while it is not found. */
  ownPodLabels(): Readonly<Record<string, string>> | undefined;
  close(): Promise<void>;
}

// Field selector of istiod's secret controller (pilot/pkg/credentials/kube): no token or Helm release Secrets.
export const SECRET_FIELD_SELECTOR = 'type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token';

const NETWORKING_PLURALS: Partial<Record<Kind, string>> = {
  Gateway: 'gateways',
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  ServiceEntry: 'serviceentries',
};

const SECURITY_PLURALS: Partial<Record<Kind, string>> = { AuthorizationPolicy: 'authorizationpolicies', RequestAuthentication: 'requestauthentications' };

const TELEMETRY_PLURALS: Partial<Record<Kind, string>> = { Telemetry: 'telemetries' };

const NOT_HONOURED: { group: IstioGroup; plurals: Partial<Record<Kind, string>> }[] = [
  {
    group: NETWORKING,
    plurals: {
      EnvoyFilter: 'envoyfilters',
      Sidecar: 'sidecars',
      WorkloadEntry: 'workloadentries',
      WorkloadGroup: 'workloadgroups',
      ProxyConfig: 'proxyconfigs',
    },
  },
  { group: { group: 'extensions.istio.io', versions: ['v1alpha1'] }, plurals: { WasmPlugin: 'wasmplugins', TrafficExtension: 'trafficextensions' } },
];

/**
 * Kubernetes Gateway API kinds (issue 19; docs/gateway-api.md). Optional like the kinds above: its CRDs are not part of
 * Istio's base chart, and a cluster without them must serve the Istio API as before. GatewayClass is cluster-scoped:
 * read only when the controller watches every namespace (the builtin `istio` class needs no object).
 */
const GATEWAY_API_PLURALS: Partial<Record<Kind, string>> = {
  KubernetesGateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  ReferenceGrant: 'referencegrants',
};

const CORE_PATHS: Partial<Record<Kind, { prefix: string; plural: string }>> = {
  Service: { prefix: '/api/v1', plural: 'services' },
  EndpointSlice: { prefix: '/apis/discovery.k8s.io/v1', plural: 'endpointslices' },
  Pod: { prefix: '/api/v1', plural: 'pods' },
};

const nsPath = (ns: string | undefined): string => (ns ? `/namespaces/${encodeURIComponent(ns)}` : '');

export function startKubeSource(o: KubeSourceOptions): KubeSource {
  const log = o.log.child({ component: 'kube' });
  const client = o.client ?? new KubeClient(loadKubeConfig(o.kubeconfig));
  const metrics = o.registry ? kubeSourceMetrics(o.registry) : undefined;
  const discoveries = [
    { discovery: new IstioDiscovery(client, log, NETWORKING), plurals: NETWORKING_PLURALS },
    { discovery: new IstioDiscovery(client, log, SECURITY), plurals: SECURITY_PLURALS },
    { discovery: new IstioDiscovery(client, log, TELEMETRY), plurals: TELEMETRY_PLURALS },
  ];
  const limited = o.namespaces && o.namespaces.length > 0 ? [...new Set([...o.namespaces, o.podNamespace])].sort() : undefined;
  const scopes: (string | undefined)[] = limited ?? [undefined];

  let ownPod: KubeObject | undefined;
  const isOwnPod = (p: KubeObject): boolean => p.metadata.name === o.podName && p.metadata.namespace === o.podNamespace;
  const observeOwnPod: ReflectorSpec['observe'] = (c) => {
    if ('listed' in c) {
      ownPod = c.listed.find(isOwnPod);
    } else if ('upserted' in c) {
      if (isOwnPod(c.upserted)) ownPod = c.upserted;
    } else if (isOwnPod(c.deleted)) ownPod = undefined;
  };

  const specs: ReflectorSpec[] = [];
  const optional: ReflectorSpec[] = [];
  const notHonoured = NOT_HONOURED.map(({ group, plurals }) => ({ discovery: new IstioDiscovery(client, log, group), plurals }));
  const gatewayApi = new IstioDiscovery(client, log, GATEWAY_API);
  const gatewayApiSpec = (kind: Kind, plural: string, ns: string | undefined): ReflectorSpec => ({
    kind,
    ...(ns ? { namespace: ns } : {}),
    path: async () => `/apis/${gatewayApi.group}/${await gatewayApi.version(plural)}${nsPath(ns)}/${plural}`,
    onNotFound: () => gatewayApi.invalidate(),
  });
  if (!limited) {
    optional.push(gatewayApiSpec('GatewayClass', 'gatewayclasses', undefined));
    // Namespace labels, for Gateway API listeners allowing routes from namespaces by selector.
    optional.push({ kind: 'Namespace', path: () => Promise.resolve('/api/v1/namespaces') });
  }
  for (const ns of scopes) {
    for (const [kind, plural] of Object.entries(GATEWAY_API_PLURALS) as [Kind, string][]) optional.push(gatewayApiSpec(kind, plural, ns));
    for (const { discovery, plurals } of notHonoured) {
      for (const [kind, plural] of Object.entries(plurals) as [Kind, string][]) {
        optional.push({
          kind,
          ...(ns ? { namespace: ns } : {}),
          path: async () => `/apis/${discovery.group}/${await discovery.version(plural)}${nsPath(ns)}/${plural}`,
          onNotFound: () => discovery.invalidate(),
        });
      }
    }
    for (const { discovery, plurals } of discoveries) {
      for (const [kind, plural] of Object.entries(plurals) as [Kind, string][]) {
        specs.push({
          kind,
          ...(ns ? { namespace: ns } : {}),
          path: async () => `/apis/${discovery.group}/${await discovery.version(plural)}${nsPath(ns)}/${plural}`,
          onNotFound: () => discovery.invalidate(),
        });
      }
    }
    for (const [kind, { prefix, plural }] of Object.entries(CORE_PATHS) as [Kind, { prefix: string; plural: string }][]) {
      const coversOwnPod = kind === 'Pod' && o.podName !== undefined && (ns === undefined || ns === o.podNamespace);
      specs.push({
        kind,
        ...(ns ? { namespace: ns } : {}),
        path: () => Promise.resolve(`${prefix}${nsPath(ns)}/${plural}`),
        ...(coversOwnPod ? { observe: observeOwnPod } : {}),
      });
    }
  }
  specs.push({
    kind: 'Secret',
    namespace: o.podNamespace,
    fieldSelector: SECRET_FIELD_SELECTOR,
    path: () => Promise.resolve(`/api/v1${nsPath(o.podNamespace)}/secrets`),
  });

  const reflectorOf = (spec: ReflectorSpec): Reflector =>
    new Reflector({ spec, client, store: o.store, log, ...(metrics ? { metrics } : {}), ...(o.timing ? { timing: o.timing } : {}) });
  const required = specs.map(reflectorOf);
  const reflectors = [...required, ...optional.map(reflectorOf)];
  for (const r of reflectors) r.start();
  const started = Date.now();
  const synced = Promise.all(required.map((r) => r.synced)).then(() => {
    log.info(
      { reflectors: required.length, optional: reflectors.length - required.length, namespaces: limited ?? 'all', ms: Date.now() - started },
      'initial list of every watched kind is in the store (the kinds meshgate does not implement may follow)',
    );
  });
  log.info({ server: client.server, namespaces: limited ?? 'all', secretsNamespace: o.podNamespace }, 'watching the Kubernetes API');

  return {
    synced,
    client,
    metrics,
    ownPodLabels: () => (ownPod ? (ownPod.metadata.labels ?? {}) : undefined),
    async close() {
      await Promise.all(reflectors.map((r) => r.stop()));
    },
  };
}
