// Kubernetes and Istio objects as the sources deliver them (plain JSON, as in YAML or the API server).
const ISTIO_KINDS = ['Gateway', 'VirtualService', 'DestinationRule', 'ServiceEntry', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry'] as const;
/** Istio kinds charts/base serves that meshgate does not implement: watched only to mark them (kube/status.ts). */
export const NOT_HONOURED_KINDS = ['EnvoyFilter', 'Sidecar', 'WorkloadEntry', 'WorkloadGroup', 'ProxyConfig', 'WasmPlugin', 'TrafficExtension'] as const;
/** Namespace: only its labels, for Gateway API listeners that allow routes from namespaces by selector. */
const CORE_KINDS = ['Service', 'EndpointSlice', 'Endpoints', 'Pod', 'Secret', 'Namespace'] as const;
/**
 * Kubernetes Gateway API kinds (gateway.networking.k8s.io). Its Gateway is stored as `KubernetesGateway` (istiod's
 * name for it) so that it never collides with an Istio Gateway of the same namespace and name.
 */
const GATEWAY_API_KINDS = ['GatewayClass', 'KubernetesGateway', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant'] as const;
export const KINDS = [...ISTIO_KINDS, ...NOT_HONOURED_KINDS, ...CORE_KINDS, ...GATEWAY_API_KINDS] as const;
export type Kind = (typeof KINDS)[number];

export function isKind(k: unknown): k is Kind {
  return typeof k === 'string' && (KINDS as readonly string[]).includes(k);
}

interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  resourceVersion?: string;
  uid?: string;
  generation?: number;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  [key: string]: unknown;
}

/** Where an object came from: a file (local mode) or the API server. Used in error reports. */
export interface Origin {
  file?: string;
}

export interface StoredObject {
  kind: Kind;
  obj: KubeObject;
  origin: Origin;
}

export const objectKey = (kind: string, namespace: string | undefined, name: string): string => `${kind}/${namespace ?? ''}/${name}`;

/** The store kind of a document: `KubernetesGateway` for a Gateway API Gateway, else its own kind. */
export function storeKind(apiVersion: unknown, kind: unknown): unknown {
  return kind === 'Gateway' && typeof apiVersion === 'string' && apiVersion.startsWith('gateway.networking.k8s.io/') ? 'KubernetesGateway' : kind;
}
