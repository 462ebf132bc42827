// What the translator produces and the ADS server serves: Envoy resources as proto3 JSON, by type URL.
import type { envoy } from '../../xds/envoy.ts';

export interface XdsResources {
  listeners: envoy.config.listener.v3.Listener[];
  routes: envoy.config.route.v3.RouteConfiguration[];
  clusters: envoy.config.cluster.v3.Cluster[];
  endpoints: envoy.config.endpoint.v3.ClusterLoadAssignment[];
  secrets: envoy.extensions.transport_sockets.tls.v3.Secret[];
}

/** The proxy this snapshot is for: a gateway workload as istiod sees it. */
export interface GatewayIdentity {
  /** Pod namespace (the "config namespace"): VirtualService/DestinationRule visibility and Secret lookup. */
  namespace: string;
  /** Pod (or workload) name. */
  podName: string;
  /** Pod labels: Gateway selectors match these. */
  labels: Readonly<Record<string, string>>;
  /**
   * The pod annotations Istio's agent reads at start and sends istiod (model/proxy-config.ts): only
   * `proxy.istio.io/config`, the ProxyConfig override (gatewayTopology.numTrustedProxies ...).
   */
  annotations?: Readonly<Record<string, string>>;
}
