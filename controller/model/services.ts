// Services as istiod's registries model them: one per Kubernetes Service and one per ServiceEntry host,
// each with ports and a way to enumerate its endpoints (EndpointSlices, Endpoints, ServiceEntry endpoints).
import type { StoredObject } from './objects.ts';
import type { Config } from './config.ts';
import { metaOf } from './config.ts';
import type { ServiceEntrySpec } from './istio-types.ts';
import type { EndpointSliceBody, EndpointSubset, KubeServicePort, KubeServiceSpec, PodSpec, PodStatus } from './kube-types.ts';
import { DOMAIN_SUFFIX, isIPAddress } from './host.ts';
import { type ExportTo, parseExportTo } from './exports.ts';
import { type Protocol, kubePortProtocol, parseProtocol } from './protocol.ts';
import type { Labels } from './labels.ts';

type Resolution = 'ClientSideLB' | 'DNSLB' | 'DNSRoundRobinLB' | 'Passthrough';

export interface ModelPort {
  name: string;
  port: number;
  protocol: Protocol;
  /** Kubernetes targetPort (number or container port name) or ServiceEntry targetPort. */
  targetPort?: number | string;
}

export interface ModelService {
  kind: 'Service' | 'ServiceEntry';
  hostname: string;
  /** Kubernetes Service name, or the ServiceEntry host (istiod's Attributes.Name). */
  name: string;
  namespace: string;
  creationTimestamp: string;
  labels: Labels;
  ports: ModelPort[];
  resolution: Resolution;
  meshExternal: boolean;
  exportTo: ExportTo;
  /** The object it came from (errors, metadata). */
  configName: string;
  origin: StoredObject['origin'];
  /** ServiceEntry spec (endpoints); undefined for Kubernetes Services. */
  serviceEntry?: ServiceEntrySpec;
}

/** One endpoint address+port of a service port, as istiod's IstioEndpoint. */
export interface ModelEndpoint {
  address: string;
  port: number;
  /** The service port this endpoint serves (EndpointSlice port name; '' when unnamed). */
  servicePortName: string;
  labels: Labels;
  /** `region/zone/subzone`, or ''. */
  locality: string;
  weight: number;
  workloadName: string;
  namespace: string;
  /** False for DNS endpoints (hostnames). */
  isIP: boolean;
  /**
   * The EDS health_status: HEALTHY or UNHEALTHY for a Kubernetes endpoint (endpointslice.go endpointHealthStatus),
   * unset (Envoy's UNKNOWN, which it treats as healthy) for a ServiceEntry endpoint, as istiod leaves it.
   */
  health?: 'HEALTHY' | 'UNHEALTHY';
}

/** Network-wide DNS suffix: a Service's hostname is `<name>.<ns>.svc.cluster.local`. */
function kubeServiceHostname(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${DOMAIN_SUFFIX}`;
}

const EXPORT_ANNOTATION = 'networking.istio.io/exportTo';

export function kubeServiceToModel(o: StoredObject): ModelService | undefined {
  const meta = metaOf(o);
  const spec = (o.obj.spec ?? {}) as KubeServiceSpec;
  // ExternalName services are aliases in current Istio; not modelled yet.
  if (spec.type === 'ExternalName') return undefined;
  const ports: ModelPort[] = [];
  for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
    if (typeof p.port !== 'number') continue;
    const port: ModelPort = { name: p.name ?? '', port: p.port, protocol: kubePortProtocol(p.port, p.name, p.protocol, p.appProtocol) };
    port.targetPort = p.targetPort ?? p.port;
    ports.push(port);
  }
  const exportAnn = meta.annotations[EXPORT_ANNOTATION];
  return {
    kind: 'Service',
    hostname: kubeServiceHostname(meta.name, meta.namespace),
    name: meta.name,
    namespace: meta.namespace,
    creationTimestamp: meta.creationTimestamp,
    labels: meta.labels,
    ports,
    resolution: 'ClientSideLB',
    meshExternal: false,
    exportTo: parseExportTo(exportAnn ? exportAnn.split(',').map((s) => s.trim()) : undefined, meta.namespace),
    configName: `${meta.namespace}/${meta.name}`,
    origin: o.origin,
  };
}

const RESOLUTION: Readonly<Record<string, Resolution>> = {
  NONE: 'Passthrough',
  STATIC: 'ClientSideLB',
  DNS: 'DNSLB',
  DNS_ROUND_ROBIN: 'DNSRoundRobinLB',
};

/** One model service per ServiceEntry host (serviceentry/conversion.go convertServices). */
export function serviceEntryToModel(c: Config<ServiceEntrySpec>): ModelService[] {
  const spec = c.spec;
  const ports: ModelPort[] = (spec.ports ?? []).map((p) => {
    const mp: ModelPort = { name: p.name, port: p.number, protocol: parseProtocol(p.protocol) };
    if (p.targetPort !== undefined) mp.targetPort = p.targetPort;
    return mp;
  });
  return spec.hosts.map((h) => ({
    kind: 'ServiceEntry',
    hostname: h,
    name: h,
    namespace: c.namespace,
    creationTimestamp: c.creationTimestamp,
    labels: c.labels,
    ports,
    resolution: RESOLUTION[spec.resolution ?? 'NONE'] ?? 'Passthrough',
    meshExternal: (spec.location ?? 'MESH_EXTERNAL') === 'MESH_EXTERNAL',
    exportTo: parseExportTo(spec.exportTo, c.namespace),
    configName: `${c.namespace}/${c.name}`,
    origin: c.origin,
    serviceEntry: spec,
  }));
}

// ---- endpoints ----------------------------------------------------------------------------------

export interface PodInfo {
  name: string;
  namespace: string;
  labels: Labels;
  workloadName: string;
  locality: string;
  ips: string[];
  spec: PodSpec;
}

/** The workload (Deployment) name istiod derives from a Pod's owner (kubelib workload name). */
function workloadNameOf(o: StoredObject): string {
  const m = o.obj.metadata as { name: string; labels?: Record<string, string>; ownerReferences?: { kind?: string; name?: string; controller?: boolean }[] };
  const owner = m.ownerReferences?.find((r) => r.controller) ?? m.ownerReferences?.[0];
  if (!owner?.name) return m.name;
  const hash = m.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return owner.name.slice(0, -hash.length - 1);
  if (owner.kind === 'Job') {
    const jm = /^(.*)-\d+$/.exec(owner.name);
    if (jm?.[1]) return jm[1];
  }
  return owner.name;
}

function podInfo(o: StoredObject): PodInfo {
  const meta = metaOf(o);
  const status = (o.obj.status ?? {}) as PodStatus;
  const ips = new Set<string>();
  if (status.podIP) ips.add(status.podIP);
  for (const p of status.podIPs ?? []) if (p.ip) ips.add(p.ip);
  // Istio's pod label `istio-locality` ("region.zone.subzone", dots because '/' is not allowed in label values).
  const loc = meta.labels['istio-locality'];
  return {
    name: meta.name,
    namespace: meta.namespace,
    labels: meta.labels,
    workloadName: workloadNameOf(o),
    locality: loc ? loc.replaceAll('.', '/') : '',
    ips: [...ips],
    spec: o.obj.spec ?? {},
  };
}

export interface PodIndex {
  byName(namespace: string, name: string): PodInfo | undefined;
  byIP(ip: string): PodInfo | undefined;
}

export function indexPods(pods: readonly StoredObject[]): PodIndex {
  const byName = new Map<string, PodInfo>();
  const byIP = new Map<string, PodInfo>();
  for (const o of pods) {
    const p = podInfo(o);
    byName.set(`${p.namespace}/${p.name}`, p);
    for (const ip of p.ips) if (!byIP.has(ip)) byIP.set(ip, p);
  }
  return { byName: (ns, n) => byName.get(`${ns}/${n}`), byIP: (ip) => byIP.get(ip) };
}

function endpointFromPod(
  address: string,
  port: number,
  portName: string,
  pod: PodInfo | undefined,
  namespace: string,
  health: 'HEALTHY' | 'UNHEALTHY',
): ModelEndpoint {
  return {
    address,
    port,
    servicePortName: portName,
    labels: pod?.labels ?? {},
    locality: pod?.locality ?? '',
    weight: 1,
    workloadName: pod?.workloadName ?? '',
    namespace,
    isIP: true,
    health,
  };
}

/**
 * endpointHealthStatus: an endpoint is HEALTHY when `ready` is true or unset, whatever `terminating` says. A
 * not-ready one is UNHEALTHY only when it says `terminating: false`: with `terminating` true or unset istiod
 * takes it for a terminating pod and never sends it (Kubernetes' EndpointSlice controller always sets the
 * three conditions; a slice mirrored from an Endpoints object has `ready` alone). UNHEALTHY endpoints are
 * sent (PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS, on by default) so Envoy knows how many hosts a cluster has; the
 * cluster leaves them out when its outlierDetection sets minHealthPercent (clusters.ts). A Service's
 * publishNotReadyAddresses needs nothing here: Kubernetes then marks the endpoints ready in the slice itself.
 */
function sliceEndpointHealth(c: { ready?: boolean | null; terminating?: boolean | null }): 'HEALTHY' | 'UNHEALTHY' | undefined {
  if (c.ready !== false) return 'HEALTHY';
  return c.terminating === false ? 'UNHEALTHY' : undefined;
}

/** Endpoints of a Kubernetes Service from its EndpointSlices (endpointslice.go updateEndpointCacheForSlice). */
export function endpointsFromSlices(slices: readonly StoredObject[], pods: PodIndex, namespace: string): ModelEndpoint[] {
  const out: ModelEndpoint[] = [];
  // endpointSliceCache.get: an address is one endpoint per service port name, whatever slices repeat it.
  const seen = new Set<string>();
  for (const s of slices) {
    const body = s.obj as unknown as EndpointSliceBody;
    if (body.addressType === 'FQDN') continue;
    const ports = Array.isArray(body.ports) ? body.ports : [];
    for (const ep of Array.isArray(body.endpoints) ? body.endpoints : []) {
      const health = sliceEndpointHealth(ep.conditions ?? {});
      if (!health) continue;
      for (const address of Array.isArray(ep.addresses) ? ep.addresses : []) {
        if (!isIPAddress(address)) continue;
        const pod =
          ep.targetRef?.kind === 'Pod' && ep.targetRef.name ? pods.byName(ep.targetRef.namespace ?? namespace, ep.targetRef.name) : pods.byIP(address);
        for (const p of ports) {
          if (typeof p.port !== 'number') continue;
          const key = `${address}/${p.name ?? ''}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(endpointFromPod(address, p.port, p.name ?? '', pod, namespace, health));
        }
      }
    }
  }
  return out;
}

/**
 * The legacy Endpoints object, used when a Service has no EndpointSlice. istiod reads only EndpointSlices, which
 * Kubernetes mirrors from such an Endpoints object with `ready` alone: a notReadyAddresses entry becomes
 * `ready: false` without `terminating`, which istiod drops as terminating (sliceEndpointHealth). So ready
 * addresses only, HEALTHY.
 */
export function endpointsFromEndpoints(o: StoredObject, pods: PodIndex, namespace: string): ModelEndpoint[] {
  const out: ModelEndpoint[] = [];
  const seen = new Set<string>();
  const subsets = (o.obj as { subsets?: EndpointSubset[] }).subsets ?? [];
  for (const ss of Array.isArray(subsets) ? subsets : []) {
    for (const a of ss.addresses ?? []) {
      if (!isIPAddress(a.ip)) continue;
      const pod = a.targetRef?.kind === 'Pod' && a.targetRef.name ? pods.byName(a.targetRef.namespace ?? namespace, a.targetRef.name) : pods.byIP(a.ip);
      for (const p of ss.ports ?? []) {
        const key = `${a.ip}/${p.name ?? ''}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(endpointFromPod(a.ip, p.port, p.name ?? '', pod, namespace, 'HEALTHY'));
      }
    }
  }
  return out;
}

/**
 * ServiceEntry endpoints for one port (conversion.go convertEndpoint): the listed endpoints with their
 * per-port override, or for DNS resolution without endpoints one endpoint per host: the hostname itself.
 */
export function serviceEntryEndpoints(svc: ModelService, port: ModelPort): ModelEndpoint[] {
  const spec = svc.serviceEntry;
  if (!spec) return [];
  const defaultPort = typeof port.targetPort === 'number' ? port.targetPort : port.port;
  if (!spec.endpoints?.length) {
    if (spec.workloadSelector) return [];
    if (svc.resolution !== 'DNSLB' && svc.resolution !== 'DNSRoundRobinLB') return [];
    return [
      {
        address: svc.hostname,
        port: defaultPort,
        servicePortName: port.name,
        labels: {},
        locality: '',
        weight: 1,
        workloadName: '',
        namespace: svc.namespace,
        isIP: false,
      },
    ];
  }
  return spec.endpoints.map((e) => ({
    address: e.address ?? '',
    port: e.ports?.[port.name] ?? defaultPort,
    servicePortName: port.name,
    labels: e.labels ?? {},
    locality: e.locality ?? '',
    weight: e.weight && e.weight > 0 ? e.weight : 1,
    workloadName: '',
    namespace: svc.namespace,
    isIP: isIPAddress(e.address ?? ''),
  }));
}

/** A named Service targetPort resolved through the pod's container ports (FindPort). */
export function resolveTargetPort(target: number | string | undefined, servicePort: KubeServicePort | ModelPort, pod: PodInfo | undefined): number | undefined {
  if (target === undefined || target === '') return 'port' in servicePort ? servicePort.port : undefined;
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const c of pod?.spec.containers ?? []) {
    for (const cp of c.ports ?? []) if (cp.name === target && (cp.protocol ?? 'TCP') === 'TCP') return cp.containerPort;
  }
  return undefined;
}
