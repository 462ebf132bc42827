// VirtualServices as istiod indexes them for gateways (push_context.go initVirtualServices,
// VirtualServicesForGateway; virtualservice.go ResolveVirtualServiceShortnames).
import type { Config } from './config.ts';
import { compareByCreation } from './config.ts';
import type { Destination, HTTPRoute, VirtualServiceSpec } from './istio-types.ts';
import { resolveGatewayName, resolveShortName } from './host.ts';

/** A VirtualService with short names resolved: hosts, destinations, mirrors and gateway names. */
export type VirtualServiceConfig = Config<VirtualServiceSpec> & {
  /** Resolved `gateways` ( `["mesh"]` when empty: sidecars only, never a gateway). */
  gatewayNames: readonly string[];
};

function resolveDestination(d: Destination, ns: string): Destination {
  return { ...d, host: resolveShortName(d.host, ns) };
}

export function resolveVirtualService(c: Config<VirtualServiceSpec>): VirtualServiceConfig {
  const ns = c.namespace;
  const spec = c.spec;
  const http = spec.http?.map((r): HTTPRoute => {
    const out: HTTPRoute = { ...r };
    if (r.match) out.match = r.match.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => resolveGatewayName(g, ns)) } : m));
    if (r.route) out.route = r.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, ns) }));
    if (r.mirror) out.mirror = resolveDestination(r.mirror, ns);
    if (r.mirrors) out.mirrors = r.mirrors.map((m) => ({ ...m, destination: resolveDestination(m.destination, ns) }));
    return out;
  });
  const resolved: VirtualServiceSpec = { ...spec, hosts: (spec.hosts ?? []).map((h) => resolveShortName(h, ns)) };
  if (http) resolved.http = http;
  for (const k of ['tcp', 'tls'] as const) {
    const routes = spec[k];
    if (routes) {
      resolved[k] = routes.map((r) => {
        const out = { ...r };
        if (r.route) out.route = r.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, ns) }));
        if (r.match) out.match = r.match.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => resolveGatewayName(g, ns)) } : m));
        return out;
      });
    }
  }
  const gatewayNames = spec.gateways?.length ? spec.gateways.map((g) => resolveGatewayName(g, ns)) : ['mesh'];
  return { ...c, spec: resolved, gatewayNames };
}

/**
 * VirtualServices bound to `gatewayName` as seen from a gateway pod in `proxyNamespace`: the private ones
 * of that namespace, then those exported to it, then public ones; each group in creation order.
 * A VS with `exportTo: ["."]` in `default` is thus invisible to an `istio-system` gateway pod.
 */
export function virtualServicesForGateway(all: readonly VirtualServiceConfig[], proxyNamespace: string, gatewayName: string): VirtualServiceConfig[] {
  const priv: VirtualServiceConfig[] = [];
  const exported: VirtualServiceConfig[] = [];
  const pub: VirtualServiceConfig[] = [];
  for (const vs of all) {
    if (!vs.gatewayNames.includes(gatewayName)) continue;
    const exportTo = vs.spec.exportTo?.length ? vs.spec.exportTo : ['*'];
    if (exportTo.includes('*')) {
      pub.push(vs);
      continue;
    }
    if (exportTo.includes('~')) continue;
    const set = new Set(exportTo.map((e) => (e === '.' ? vs.namespace : e)));
    if (!set.has(proxyNamespace)) continue;
    if (vs.namespace === proxyNamespace) priv.push(vs);
    else exported.push(vs);
  }
  for (const l of [priv, exported, pub]) l.sort(compareByCreation);
  return [...priv, ...exported, ...pub];
}
