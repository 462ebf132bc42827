// Everything translation needs, computed once per snapshot for one gateway proxy (istiod's PushContext
// plus the proxy's MergedGateway): validated Istio objects, the Gateways selecting this proxy merged into
// listeners, VirtualServices by gateway, DestinationRules, services and their endpoints. Pure: no clock,
// no I/O. Invalid objects are reported and skipped; the rest is served.
import type { StoreSnapshot } from './store.ts';
import type { StoredObject } from './objects.ts';
import type { ValidationError } from './validation.ts';
import type { GatewayIdentity } from '../xds/snapshot.ts';
import { type Config, compareByCreation, metaOf } from './config.ts';
import type { DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec } from './istio-types.ts';
import { ISTIO_API_GROUP, ISTIO_API_VERSIONS } from './istio-types.ts';
import { type FieldError, validateDestinationRule, validateGateway, validateServiceEntry, validateVirtualService } from './istio-validation.ts';
import { type MergedGateway, type ServiceTarget, mergeGateways, selectGateways } from './gateways.ts';
import { type VirtualServiceConfig, mergeDelegates, resolveVirtualService } from './virtual-services.ts';
import { type DestinationRuleIndex, indexDestinationRules } from './destination-rules.ts';
import {
  type ModelEndpoint,
  type ModelPort,
  type ModelService,
  type PodIndex,
  endpointsFromEndpoints,
  endpointsFromSlices,
  indexPods,
  kubeServiceToModel,
  resolveTargetPort,
  serviceEntryEndpoints,
  serviceEntryToModel,
} from './services.ts';
import { visibleTo } from './exports.ts';
import { convertGatewayApi } from './gateway-api.ts';
import { isSubset } from './labels.ts';
import { kubePortProtocol } from './protocol.ts';
import type { KubeServiceSpec } from './kube-types.ts';
import { type CredentialIndex, indexCredentials } from './credentials.ts';
import {
  type AuthorizationPolicies,
  type AuthorizationPolicyConfig,
  failClosedNote,
  failClosedSpec,
  selectAuthorizationPolicies,
} from './authorization-policies.ts';
import { validateAuthorizationPolicy } from './authorization-policy-validation.ts';
import {
  type RequestAuthenticationConfig,
  failClosedRequestAuthentication,
  failClosedRequestAuthenticationNote,
  selectRequestAuthentications,
} from './request-authentications.ts';
import { validateRequestAuthentication } from './request-authentication-validation.ts';
import { SECURITY_API_GROUP, SECURITY_API_VERSIONS } from './security-types.ts';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from './mesh-config.ts';
import { type ResolvedTelemetry, type TelemetryConfig, resolveTelemetry } from './telemetry.ts';
import { validateTelemetry } from './telemetry-validation.ts';
import { TELEMETRY_API_GROUP, TELEMETRY_API_VERSIONS, type TelemetrySpec } from './telemetry-types.ts';

export interface PushContext {
  identity: GatewayIdentity;
  /** The mesh config (meshConfig: rootNamespace, trustDomain, extensionProviders, defaultConfig). */
  mesh: MeshConfig;
  merged: MergedGateway;
  virtualServices: readonly VirtualServiceConfig[];
  destinationRules: DestinationRuleIndex;
  /** The services the gateway sees, one per hostname (gatewayServices). */
  services: readonly ModelService[];
  /**
   * The service a route destination host refers to: the gateway's own one for the hostname, or with
   * preferNamespace (an HTTP route's VirtualService namespace) that namespace's one when the gateway sees it.
   */
  serviceFor(hostname: string, preferNamespace?: string): ModelService | undefined;
  /** Ready endpoints of a service port. */
  endpoints(svc: ModelService, port: ModelPort): ModelEndpoint[];
  /**
   * ServiceIndex.HostnameAndNamespace: the namespaces holding a service (Kubernetes Service or ServiceEntry) of this
   * exact hostname, visible to the gateway or not (extension providers' service lookup, model.LookupCluster).
   */
  namespacesOfHost(hostname: string): string[];
  /** credentialName Secrets in the gateway's namespace (pilot/pkg/credentials/kube). */
  credentials: CredentialIndex;
  /** The AuthorizationPolicies applying to this gateway, by action. */
  authorizationPolicies: AuthorizationPolicies;
  /** The RequestAuthentications applying to this gateway, in istiod's order (its namespace, then the root one). */
  requestAuthentications: readonly RequestAuthenticationConfig[];
  /** The Telemetry API settings of this gateway (telemetry.ts: access logging, metrics, tracing). */
  telemetry: ResolvedTelemetry;
  /** The version of each Telemetry (by namespace/name) in effect: the next push's previousTelemetries. */
  acceptedTelemetries: ReadonlyMap<string, TelemetryConfig>;
  errors: ValidationError[];
}

const PORT_TRANSLATION_OPT_OUT = 'experimental.istio.io/disable-gateway-port-translation';

function toErrors(o: StoredObject, errs: readonly FieldError[]): ValidationError[] {
  const m = metaOf(o);
  return errs.map((e) => ({ kind: o.kind, namespace: m.namespace, name: m.name, origin: o.origin, field: e.field, message: e.message }));
}

function checkApiVersion(o: StoredObject): FieldError[] {
  const [group, version] = o.obj.apiVersion.split('/');
  if (group !== ISTIO_API_GROUP || !(ISTIO_API_VERSIONS as readonly string[]).includes(version ?? '')) {
    return [
      {
        field: 'apiVersion',
        message: `unsupported apiVersion ${JSON.stringify(o.obj.apiVersion)} for ${o.kind}: use ${ISTIO_API_GROUP}/v1 (v1beta1 and v1alpha3 are also served)`,
      },
    ];
  }
  return [];
}

function validated<S>(objs: readonly StoredObject[], validate: (o: StoredObject) => FieldError[], errors: ValidationError[]): Config<S>[] {
  const out: Config<S>[] = [];
  for (const o of objs) {
    const errs = [...checkApiVersion(o), ...validate(o)];
    if (errs.length > 0) {
      errors.push(...toErrors(o, errs));
      continue;
    }
    out.push({ ...metaOf(o), spec: o.obj.spec as S });
  }
  return out.sort(compareByCreation);
}

/**
 * Valid AuthorizationPolicies (security.istio.io v1 or v1beta1), in creation order, with their specs as
 * istiod decodes them; invalid ones are reported and skipped.
 */
function validAuthorizationPolicies(objs: readonly StoredObject[], errors: ValidationError[]): AuthorizationPolicyConfig[] {
  const out: AuthorizationPolicyConfig[] = [];
  for (const o of objs) {
    const meta = metaOf(o);
    const [group, version] = o.obj.apiVersion.split('/');
    if (group !== SECURITY_API_GROUP || !(SECURITY_API_VERSIONS as readonly string[]).includes(version ?? '')) {
      const closed = failClosedSpec({}, false);
      const message = `unsupported apiVersion ${JSON.stringify(o.obj.apiVersion)} for ${o.kind}: use ${SECURITY_API_GROUP}/v1 (v1beta1 is also served); ${failClosedNote(closed)}`;
      errors.push(...toErrors(o, [{ field: 'apiVersion', message }]));
      if (closed) out.push({ ...meta, annotations: {}, spec: closed });
      continue;
    }
    const { spec, errors: errs, decoded } = validateAuthorizationPolicy(meta, o.obj.spec);
    if (errs.length === 0) {
      out.push({ ...meta, spec });
      continue;
    }
    // Refused, but never by opening the gateway: it is enforced in its closed form (failClosedSpec).
    const closed = failClosedSpec(spec, decoded);
    const note = failClosedNote(closed);
    errors.push(
      ...toErrors(
        o,
        errs.map((e) => ({ ...e, message: `${e.message}; ${note}` })),
      ),
    );
    if (closed) out.push({ ...meta, annotations: {}, spec: closed });
  }
  return out.sort(compareByCreation);
}

/**
 * Valid RequestAuthentications (security.istio.io v1 or v1beta1), in creation order. A refused one is reported and
 * enforced in its closed form (failClosedRequestAuthentication): its tokens are rejected rather than left unverified.
 */
function validRequestAuthentications(objs: readonly StoredObject[], errors: ValidationError[]): RequestAuthenticationConfig[] {
  const out: RequestAuthenticationConfig[] = [];
  for (const o of objs) {
    const meta = metaOf(o);
    const [group, version] = o.obj.apiVersion.split('/');
    if (group !== SECURITY_API_GROUP || !(SECURITY_API_VERSIONS as readonly string[]).includes(version ?? '')) {
      const message = `unsupported apiVersion ${JSON.stringify(o.obj.apiVersion)} for ${o.kind}: use ${SECURITY_API_GROUP}/v1 (v1beta1 is also served); ${failClosedRequestAuthenticationNote(false)}`;
      errors.push(...toErrors(o, [{ field: 'apiVersion', message }]));
      out.push({ ...meta, annotations: {}, spec: failClosedRequestAuthentication({}, false) });
      continue;
    }
    const { spec, errors: errs, decoded } = validateRequestAuthentication(meta, o.obj.spec);
    if (errs.length === 0) {
      out.push({ ...meta, spec });
      continue;
    }
    const note = failClosedRequestAuthenticationNote(decoded);
    errors.push(
      ...toErrors(
        o,
        errs.map((e) => ({ ...e, message: `${e.message}; ${note}` })),
      ),
    );
    out.push({ ...meta, annotations: {}, spec: failClosedRequestAuthentication(spec, decoded) });
  }
  return out.sort(compareByCreation);
}

/**
 * Valid Telemetries (telemetry.istio.io v1 or v1alpha1), in creation order, and each one's accepted version by
 * namespace/name. An invalid one is reported; when an earlier push accepted a valid version of it (`previous`), that
 * version stays in effect, as in a cluster where istiod's webhook refuses the update and the object keeps its last
 * valid spec; otherwise it is left out. The Telemetries that remain still apply.
 */
function validTelemetries(
  objs: readonly StoredObject[],
  errors: ValidationError[],
  previous: ReadonlyMap<string, TelemetryConfig>,
): { telemetries: TelemetryConfig[]; accepted: Map<string, TelemetryConfig> } {
  const accepted = new Map<string, TelemetryConfig>();
  for (const o of objs) {
    const meta = metaOf(o);
    const key = `${meta.namespace}/${meta.name}`;
    const [group, version] = o.obj.apiVersion.split('/');
    let errs: FieldError[];
    let spec: TelemetrySpec | undefined;
    if (group !== TELEMETRY_API_GROUP || !(TELEMETRY_API_VERSIONS as readonly string[]).includes(version ?? '')) {
      errs = [
        {
          field: 'apiVersion',
          message: `unsupported apiVersion ${JSON.stringify(o.obj.apiVersion)} for ${o.kind}: use ${TELEMETRY_API_GROUP}/v1 (v1alpha1 is also served)`,
        },
      ];
    } else {
      const r = validateTelemetry(meta, o.obj.spec);
      errs = r.errors;
      spec = r.spec;
    }
    if (spec && errs.length === 0) {
      accepted.set(key, { ...meta, spec });
      continue;
    }
    const kept = previous.get(key);
    const note = kept ? 'its last valid version stays in effect until it is fixed' : 'it is left out until it is fixed';
    errors.push(
      ...toErrors(
        o,
        errs.map((e) => ({ ...e, message: `${e.message}; ${note}` })),
      ),
    );
    if (kept) accepted.set(key, kept);
  }
  return { telemetries: [...accepted.values()].sort(compareByCreation), accepted };
}

/** Services in the pod's namespace selecting the pod, with resolved target ports (GetProxyServiceTargets). */
function serviceTargets(snapshot: StoreSnapshot, identity: GatewayIdentity, pods: PodIndex): ServiceTarget[] {
  const pod = pods.byName(identity.namespace, identity.podName);
  const out: ServiceTarget[] = [];
  for (const o of snapshot.byKind('Service')) {
    const meta = metaOf(o);
    if (meta.namespace !== identity.namespace) continue;
    const spec = (o.obj.spec ?? {}) as KubeServiceSpec;
    if (!spec.selector || Object.keys(spec.selector).length === 0 || !isSubset(spec.selector, identity.labels)) continue;
    // GetProxyServiceTargetsByPod: one target per target port and protocol, the Service's first port to it
    // winning (istiod dedupes them so that two Service ports to one pod port make one listener).
    const seen = new Set<string>();
    for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
      if (typeof p.port !== 'number' || p.protocol === 'UDP') continue;
      const targetPort = resolveTargetPort(p.targetPort, p, pod);
      if (targetPort === undefined) continue;
      const key = `${targetPort}/${kubePortProtocol(p.port, p.name, p.protocol, p.appProtocol)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        serviceName: meta.name,
        namespace: meta.namespace,
        creationTimestamp: meta.creationTimestamp,
        hostname: `${meta.name}.${meta.namespace}.svc.cluster.local`,
        port: p.port,
        targetPort,
        disableTranslation: PORT_TRANSLATION_OPT_OUT in meta.labels,
      });
    }
  }
  // Sorted by Service creation time, then hostname (SetServiceTargets); stable for port order.
  return out.sort((a, b) => {
    const ta = Date.parse(a.creationTimestamp) || 0;
    const tb = Date.parse(b.creationTimestamp) || 0;
    if (ta !== tb) return ta - tb;
    return a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0;
  });
}

/**
 * SortServicesByCreationTime: creation time, then istiod's Attributes.Name (a Kubernetes Service's name, a
 * ServiceEntry's host), then namespace; then, as the ServiceEntry registry orders two ServiceEntries declaring one
 * host in one namespace, the ServiceEntry's name.
 */
function compareServices(a: ModelService, b: ModelService): number {
  const ta = Date.parse(a.creationTimestamp) || 0;
  const tb = Date.parse(b.creationTimestamp) || 0;
  if (ta !== tb) return ta - tb;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.configName < b.configName ? -1 : a.configName > b.configName ? 1 : 0;
}

const samePorts = (a: readonly ModelPort[], b: readonly ModelPort[]): boolean =>
  a.length === b.length && a.every((p, i) => p.name === b[i]?.name && p.port === b[i]?.port && p.protocol === b[i]?.protocol);

const sameMap = (a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean => {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b ?? {}).length && ka.every((k) => a?.[k] === b?.[k]);
};

/** canMergeServices compares exportTo as written: unset is not the same as `*`. */
const sameExportTo = (a: ModelService, b: ModelService): boolean => {
  const ea = new Set(a.serviceEntry?.exportTo ?? []);
  const eb = new Set(b.serviceEntry?.exportTo ?? []);
  return ea.size === eb.size && [...ea].every((e) => eb.has(e));
};

/**
 * The services a gateway sees, one per hostname (DefaultSidecarScopeForGateway: servicesExportedToNamespace, then
 * appendSidecarServices): those exported to the gateway's namespace by name first, then the public ones, each in
 * creation order. The first service of a hostname wins, except that a Kubernetes Service replaces a ServiceEntry
 * (and a ServiceEntry never joins a Kubernetes Service); a later ServiceEntry of the same namespace, resolution,
 * labels, workload selector and exportTo adds the ports the first one lacks.
 */
function gatewayServices(sorted: readonly ModelService[], namespace: string): ModelService[] {
  const ordered = [...sorted.filter((s) => !s.exportTo.all && s.exportTo.namespaces.has(namespace)), ...sorted.filter((s) => s.exportTo.all)];
  const out: ModelService[] = [];
  const index = new Map<string, number>();
  for (const s of ordered) {
    const i = index.get(s.hostname);
    if (i === undefined) {
      index.set(s.hostname, out.length);
      out.push(s);
      continue;
    }
    const existing = out[i] as ModelService;
    if (existing === s || (existing.kind === 'Service' && s.kind !== 'Service')) continue;
    if (existing.kind !== 'Service' && s.kind === 'Service') {
      out[i] = s;
      continue;
    }
    if (samePorts(existing.ports, s.ports)) continue;
    const canMerge =
      existing.namespace === s.namespace &&
      existing.resolution === s.resolution &&
      existing.kind === s.kind &&
      sameMap(existing.labels, s.labels) &&
      sameMap(existing.serviceEntry?.workloadSelector?.labels, s.serviceEntry?.workloadSelector?.labels) &&
      sameExportTo(existing, s);
    if (!canMerge) continue;
    out[i] = { ...existing, ports: [...existing.ports, ...s.ports.filter((p) => !existing.ports.some((q) => q.port === p.port))] };
  }
  return out;
}

/**
 * `previousTelemetries`: the accepted Telemetries of the previous push (PushContext.acceptedTelemetries), so that an
 * invalid update keeps the version before it; none for a stateless translation.
 */
export function buildPushContext(
  snapshot: StoreSnapshot,
  identity: GatewayIdentity,
  mesh: MeshConfig = DEFAULT_MESH_CONFIG,
  previousTelemetries: ReadonlyMap<string, TelemetryConfig> = new Map(),
): PushContext {
  const errors: ValidationError[] = [];
  // Gateway API objects become Gateways and VirtualServices beside the Istio ones, as istiod's gateway controller does.
  const gatewayApi = convertGatewayApi(snapshot);
  errors.push(...gatewayApi.errors);
  const gateways = [
    ...validated<GatewaySpec>(snapshot.byKind('Gateway'), (o) => validateGateway(o.obj.metadata.name, o.obj.spec), errors),
    ...gatewayApi.gateways,
  ].sort(compareByCreation);
  const vsConfigs = [
    ...validated<VirtualServiceSpec>(snapshot.byKind('VirtualService'), (o) => validateVirtualService(o.obj.spec), errors),
    ...gatewayApi.virtualServices,
  ].sort(compareByCreation);
  const drConfigs = validated<DestinationRuleSpec>(snapshot.byKind('DestinationRule'), (o) => validateDestinationRule(o.obj.spec), errors);
  const seConfigs = validated<ServiceEntrySpec>(snapshot.byKind('ServiceEntry'), (o) => validateServiceEntry(o.obj.spec), errors);
  const authorizationPolicies = validAuthorizationPolicies(snapshot.byKind('AuthorizationPolicy'), errors);
  const requestAuthentications = validRequestAuthentications(snapshot.byKind('RequestAuthentication'), errors);
  const { telemetries, accepted: acceptedTelemetries } = validTelemetries(snapshot.byKind('Telemetry'), errors, previousTelemetries);

  const pods = indexPods(snapshot.byKind('Pod'));
  const targets = serviceTargets(snapshot, identity, pods);
  const { selected, bound } = selectGateways(gateways, identity.labels, targets);
  const merged = mergeGateways(selected, targets, bound);
  for (const r of merged.rejected) {
    errors.push({
      kind: 'Gateway',
      namespace: r.gateway.namespace,
      name: r.gateway.name,
      origin: r.gateway.origin,
      field: `spec.servers[${r.index}]`,
      message: `${r.reason} (the first Gateway by creation time wins; give this server another port or remove the conflict)`,
    });
  }

  const services: ModelService[] = [];
  for (const o of snapshot.byKind('Service')) {
    const s = kubeServiceToModel(o);
    if (s) services.push(s);
  }
  for (const se of seConfigs) services.push(...serviceEntryToModel(se));
  services.sort(compareServices);
  const visible = gatewayServices(services, identity.namespace);
  const byHost = new Map(visible.map((s) => [s.hostname, s]));
  // ServiceIndex.HostnameAndNamespace: per hostname and namespace the first service, a Kubernetes one first.
  const byHostAndNamespace = new Map<string, ModelService>();
  for (const s of services) {
    const key = `${s.hostname}/${s.namespace}`;
    const existing = byHostAndNamespace.get(key);
    if (!existing || (existing.kind !== 'Service' && s.kind === 'Service')) byHostAndNamespace.set(key, s);
  }
  // mergeServicesInstancesByNamespaceHost: the endpoints of a ServiceEntry host are those of every ServiceEntry in
  // the namespace declaring it, oldest first. A DNS cluster's load assignment takes those of its port number
  // (LegacyClusterPortKey, ServiceEndpointsByPort); EDS those of its port name, IP addresses only (hostnames
  // cannot go over EDS: BuildClusterLoadAssignment).
  const serviceEntriesByHost = new Map<string, ModelService[]>();
  for (const s of services) {
    if (s.kind !== 'ServiceEntry') continue;
    const key = `${s.hostname}/${s.namespace}`;
    serviceEntriesByHost.set(key, [...(serviceEntriesByHost.get(key) ?? []), s]);
  }
  const serviceEntryEndpointsOf = (svc: ModelService, port: ModelPort): ModelEndpoint[] => {
    const out: ModelEndpoint[] = [];
    const ports = new Set<number>();
    const dns = svc.resolution === 'DNSLB' || svc.resolution === 'DNSRoundRobinLB';
    for (const se of serviceEntriesByHost.get(`${svc.hostname}/${svc.namespace}`) ?? [svc]) {
      // A DNS_ROUND_ROBIN ServiceEntry adds nothing to a port number an older one already serves.
      const instances = se.ports.map((p) => ({ p, eps: ports.has(p.port) && se.resolution === 'DNSRoundRobinLB' ? [] : serviceEntryEndpoints(se, p) }));
      for (const { p, eps } of instances) {
        if (eps.length) ports.add(p.port);
        if (dns ? p.port === port.port : p.name === port.name) out.push(...(dns ? eps : eps.filter((e) => e.isIP)));
      }
    }
    return out;
  };

  // Endpoints of Kubernetes Services: EndpointSlices labelled with the service name; the Endpoints
  // object only when the Service has no EndpointSlice at all.
  const slicesByService = new Map<string, StoredObject[]>();
  for (const o of snapshot.byKind('EndpointSlice')) {
    const svc = o.obj.metadata.labels?.['kubernetes.io/service-name'];
    if (!svc) continue;
    const key = `${o.obj.metadata.namespace ?? 'default'}/${svc}`;
    let l = slicesByService.get(key);
    if (!l) slicesByService.set(key, (l = []));
    l.push(o);
  }
  const endpointsObjects = new Map<string, StoredObject>();
  for (const o of snapshot.byKind('Endpoints')) endpointsObjects.set(`${o.obj.metadata.namespace ?? 'default'}/${o.obj.metadata.name}`, o);
  const kubeEndpoints = new Map<string, ModelEndpoint[]>();
  const endpointsOfKubeService = (svc: ModelService): ModelEndpoint[] => {
    const key = `${svc.namespace}/${svc.name}`;
    let eps = kubeEndpoints.get(key);
    if (!eps) {
      const slices = slicesByService.get(key);
      const legacy = endpointsObjects.get(key);
      eps = slices ? endpointsFromSlices(slices, pods, svc.namespace) : legacy ? endpointsFromEndpoints(legacy, pods, svc.namespace) : [];
      kubeEndpoints.set(key, eps);
    }
    return eps;
  };

  const { virtualServices, problems } = mergeDelegates(vsConfigs.map(resolveVirtualService));
  for (const p of problems) {
    errors.push({
      kind: 'VirtualService',
      namespace: p.root.namespace,
      name: p.root.name,
      origin: p.root.origin,
      field: `spec.http[${p.index}].delegate`,
      message: p.message,
    });
  }

  return {
    identity,
    mesh,
    merged,
    virtualServices,
    destinationRules: indexDestinationRules(drConfigs, identity.namespace, identity.labels, mesh.rootNamespace),
    services: visible,
    serviceFor(hostname, preferNamespace) {
      // buildGatewayVirtualHostRoutes: the service of the VirtualService's namespace when the gateway sees it, else
      // the gateway's own one for that hostname.
      const own = preferNamespace === undefined ? undefined : byHostAndNamespace.get(`${hostname}/${preferNamespace}`);
      if (own && visibleTo(own.exportTo, identity.namespace)) return own;
      return byHost.get(hostname);
    },
    namespacesOfHost(hostname) {
      return [...byHostAndNamespace.values()].filter((s) => s.hostname === hostname).map((s) => s.namespace);
    },
    endpoints(svc, port) {
      if (svc.kind === 'ServiceEntry') return serviceEntryEndpointsOf(svc, port);
      return endpointsOfKubeService(svc).filter((e) => e.servicePortName === port.name);
    },
    credentials: indexCredentials(snapshot.byKind('Secret'), identity.namespace),
    authorizationPolicies: selectAuthorizationPolicies(authorizationPolicies, mesh.rootNamespace, identity.namespace, identity.labels),
    requestAuthentications: selectRequestAuthentications(requestAuthentications, mesh.rootNamespace, identity.namespace, identity.labels),
    telemetry: resolveTelemetry(
      telemetries,
      { rootNamespace: mesh.rootNamespace, namespace: identity.namespace, labels: identity.labels },
      { accessLogging: mesh.defaultAccessLogging, metrics: mesh.defaultMetrics, tracing: mesh.defaultTracing },
      mesh.extensionProviders,
    ),
    acceptedTelemetries,
    errors,
  };
}
