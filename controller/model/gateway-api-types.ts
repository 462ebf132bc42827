// The Kubernetes Gateway API objects meshgate reads (gateway.networking.k8s.io, standard channel), as far as
// the translation uses them. Field names as in the CRDs (sigs.k8s.io/gateway-api apis/v1).
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/** The controller name of the classes istiod (and so meshgate) serves. */
export const ISTIO_GATEWAY_CONTROLLER = 'istio.io/gateway-controller';

export interface GatewayClassSpec {
  controllerName?: string;
}

interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

interface ListenerTLSConfig {
  mode?: 'Terminate' | 'Passthrough';
  certificateRefs?: SecretObjectReference[];
  options?: Record<string, string>;
}

export interface Listener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: ListenerTLSConfig;
  allowedRoutes?: { namespaces?: { from?: 'All' | 'Same' | 'Selector'; selector?: LabelSelector }; kinds?: RouteGroupKind[] };
}

export interface KubernetesGatewaySpec {
  gatewayClassName: string;
  listeners?: Listener[];
  addresses?: { type?: string; value: string }[];
  /** Gateway-level TLS (client certificate validation of the frontend): not supported yet. */
  tls?: { frontend?: unknown };
}

interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPHeaderFilter {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type: string;
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestRedirect?: { scheme?: string; hostname?: string; path?: HTTPPathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: { backendRef: HTTPBackendRef; percent?: number; fraction?: { numerator: number; denominator?: number } };
}

export interface HTTPBackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
  queryParams?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
  method?: string;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  /** Experimental channel: not supported yet (reported, ignored). */
  retry?: unknown;
}

export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
}

export interface GRPCMethodMatch {
  type?: 'Exact' | 'RegularExpression';
  service?: string;
  method?: string;
}

export interface GRPCRouteMatch {
  method?: GRPCMethodMatch;
  headers?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
}

export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: { name?: string; matches?: GRPCRouteMatch[]; filters?: HTTPRouteFilter[]; backendRefs?: HTTPBackendRef[] }[];
}

export interface ReferenceGrantSpec {
  from?: { group: string; kind: string; namespace: string }[];
  to?: { group: string; kind: string; name?: string }[];
}
