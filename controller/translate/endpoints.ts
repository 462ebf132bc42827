// ClusterLoadAssignments (pilot/pkg/xds/endpoints/endpoint_builder.go): endpoints grouped by locality,
// each with health, weight and Istio's compressed workload metadata.
import type { envoy } from '../../xds/envoy.ts';
import type { ModelEndpoint } from '../model/services.ts';
import { canonicalService } from '../../xds/canonical-service.ts';

const CLUSTER_ID = 'Kubernetes';

/** `workload;namespace;canonical-name;canonical-revision;cluster-id` ("latest" revision is sent as ''). */
function workloadMetadata(e: ModelEndpoint): string {
  const c = canonicalService(e.labels, e.workloadName);
  return [e.workloadName, e.namespace, c.name, c.revision === 'latest' ? '' : c.revision, CLUSTER_ID].join(';');
}

function localityJson(locality: string): envoy.config.core.v3.Locality {
  const [region, zone, subZone] = locality.split('/');
  const out: envoy.config.core.v3.Locality = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return out;
}

function lbEndpoint(e: ModelEndpoint): envoy.config.endpoint.v3.LbEndpoint {
  return {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    ...(e.health ? { health_status: e.health } : {}),
    metadata: { filter_metadata: { istio: { workload: workloadMetadata(e) } } },
    load_balancing_weight: e.weight,
  };
}

/**
 * Endpoints grouped into LocalityLbEndpoints sorted by locality; a locality's weight is the sum of its endpoints'.
 * An address listed twice is sent twice, as istiod does for a ServiceEntry (Kubernetes endpoints are deduplicated
 * where they are read, services.ts).
 */
function localityLbEndpoints(endpoints: readonly ModelEndpoint[]): envoy.config.endpoint.v3.LocalityLbEndpoints[] {
  const byLocality = new Map<string, ModelEndpoint[]>();
  for (const e of endpoints) {
    let l = byLocality.get(e.locality);
    if (!l) byLocality.set(e.locality, (l = []));
    l.push(e);
  }
  return [...byLocality.keys()].sort().map((loc) => {
    const eps = byLocality.get(loc) ?? [];
    return {
      locality: localityJson(loc),
      lb_endpoints: eps.map(lbEndpoint),
      load_balancing_weight: eps.reduce((s, e) => s + e.weight, 0),
    };
  });
}

export function clusterLoadAssignment(clusterName: string, endpoints: readonly ModelEndpoint[]): envoy.config.endpoint.v3.ClusterLoadAssignment {
  const groups = localityLbEndpoints(endpoints);
  return groups.length > 0 ? { cluster_name: clusterName, endpoints: groups } : { cluster_name: clusterName };
}
