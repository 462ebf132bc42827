// What the translator produces and the ADS server serves: Envoy resources as proto3 JSON, by type URL.
import type { JsonObject } from '../../xds/protos.ts';

export interface XdsResources {
  listeners: JsonObject[];
  routes: JsonObject[];
  clusters: JsonObject[];
  endpoints: JsonObject[];
  secrets: JsonObject[];
}

/** The proxy this snapshot is for: a gateway workload as istiod sees it. */
export interface GatewayIdentity {
  /** Pod namespace (the "config namespace"): VirtualService/DestinationRule visibility and Secret lookup. */
  namespace: string;
  /** Pod (or workload) name. */
  podName: string;
  /** Pod labels: Gateway selectors match these. */
  labels: Readonly<Record<string, string>>;
}
