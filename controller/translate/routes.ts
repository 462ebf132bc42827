// Gateway RouteConfigurations (pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig):
// `http.<targetPort>` for plain HTTP servers, `https.<port>.<portName>.<gw>.<ns>` for terminated HTTPS.
import type { envoy } from '../../xds/envoy.ts';
import type { PushContext } from '../model/push-context.ts';
import type { GatewayServer } from '../model/gateways.ts';
import { compareMoreSpecific, intersection, namesForNamespace } from '../model/host.ts';
import { virtualServicesForGateway } from '../model/virtual-services.ts';
import { buildHTTPRoutesForVirtualService } from './http-routes.ts';
import { isCatchAllRoute } from './route-actions.ts';

/** Envoy caps direct_response bodies; Istio raises the cap to 1 MiB. */
const MAX_DIRECT_RESPONSE_BODY = 1048576;

interface VirtualHostBuild {
  name: string;
  domains: string[];
  /** Route objects are shared between vhosts built from the same VirtualService (collapse compares identity). */
  routes: envoy.config.route.v3.Route[];
  requireTls: boolean;
}

/** util.DomainName (net.JoinHostPort). */
function domainName(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * collapseDuplicateRoutes (PILOT_ENABLE_ROUTE_COLLAPSE_OPTIMIZATION, default on): in host order (most specific
 * first), a vhost whose route list holds the very same route objects as the last vhost seen with that list, and
 * the same require_tls, merges into it (its domains appended); otherwise it becomes the one later vhosts with that
 * list are compared with. istiod keys the lists by a hash of the route pointers and keeps only the last vhost per
 * key, so a vhost that differs in require_tls from the last one is not merged with an earlier one it matches.
 */
function collapse(vhosts: Map<string, VirtualHostBuild>): VirtualHostBuild[] {
  const hosts = [...vhosts.keys()].sort(compareMoreSpecific);
  const out: VirtualHostBuild[] = [];
  const ids = new Map<envoy.config.route.v3.Route, number>();
  const idOf = (r: envoy.config.route.v3.Route): number => {
    let id = ids.get(r);
    if (id === undefined) ids.set(r, (id = ids.size));
    return id;
  };
  const known = new Map<string, VirtualHostBuild>();
  for (const h of hosts) {
    const vh = vhosts.get(h);
    if (!vh) continue;
    const key = vh.routes.map(idOf).join(',');
    const last = known.get(key);
    if (last && last.requireTls === vh.requireTls) last.domains.push(...vh.domains);
    else {
      known.set(key, vh);
      out.push(vh);
    }
  }
  return out;
}

/** SortVHostRoutes: catch-all routes move to the end, relative order kept. */
function sortRoutes(routes: readonly envoy.config.route.v3.Route[]): envoy.config.route.v3.Route[] {
  return [...routes.filter((r) => !isCatchAllRoute(r)), ...routes.filter(isCatchAllRoute)];
}

function virtualHost(vh: VirtualHostBuild): envoy.config.route.v3.VirtualHost {
  const out: envoy.config.route.v3.VirtualHost = { name: vh.name, domains: vh.domains, routes: sortRoutes(vh.routes) };
  if (vh.requireTls) out.require_tls = 'ALL';
  out.include_request_attempt_count = true;
  return out;
}

export function buildRouteConfiguration(push: PushContext, routeName: string): envoy.config.route.v3.RouteConfiguration {
  const servers = push.merged.serversByRouteName.get(routeName);
  if (!servers?.length) {
    // A route name no server claims any more (e.g. a Gateway just deleted): empty, as istiod answers.
    return { name: routeName, virtual_hosts: [], validate_clusters: false };
  }
  const routesCache = new Map<string, envoy.config.route.v3.Route[]>();
  const vhosts = new Map<string, VirtualHostBuild>();
  for (const gs of servers) {
    const server = gs.server;
    const port = server.port.number;
    const redirect = server.tls?.httpsRedirect === true;
    for (const vs of virtualServicesForGateway(push.virtualServices, push.identity.namespace, gs.gatewayName)) {
      const hosts = intersection(namesForNamespace(server.hosts, vs.namespace), vs.spec.hosts ?? []);
      if (hosts.length === 0) continue;
      const key = `${gs.gatewayName}|${vs.namespace}/${vs.name}`;
      let routes = routesCache.get(key);
      if (!routes) {
        const built = buildHTTPRoutesForVirtualService({ push, listenPort: port, gatewayName: gs.gatewayName, isTLS: server.tls !== undefined }, vs);
        // istiod: "no routes matched" -> the VirtualService contributes no virtual host, and nothing is cached: the
        // Gateway's next server on this route name (another port, translated to the same one) builds them again.
        if (built.length === 0) continue;
        routes = built;
        routesCache.set(key, routes);
      }
      for (const h of hosts) {
        const host = h.toLowerCase();
        const existing = vhosts.get(host);
        if (existing) {
          existing.routes = [...existing.routes, ...routes];
          if (redirect) existing.requireTls = true;
        } else vhosts.set(host, { name: domainName(host, port), domains: [host], routes: [...routes], requireTls: redirect });
      }
    }
    // httpsRedirect: every server host gets a (possibly route-less) vhost answering 301 to https.
    if (redirect) {
      for (const raw of server.hosts) {
        const host = raw.toLowerCase();
        const existing = vhosts.get(host);
        if (existing) existing.requireTls = true;
        else vhosts.set(host, { name: domainName(host, port), domains: [host], routes: [], requireTls: true });
      }
    }
  }
  let virtualHosts: envoy.config.route.v3.VirtualHost[];
  if (vhosts.size === 0) {
    // Nothing bound: a catch-all vhost with no routes, so every request gets 404 (NR).
    const port = (servers[0] as GatewayServer).server.port.number;
    virtualHosts = [{ name: domainName('blackhole', port), domains: ['*'], routes: [] }];
  } else {
    virtualHosts = collapse(vhosts).map(virtualHost);
  }
  virtualHosts.sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0));
  return {
    name: routeName,
    virtual_hosts: virtualHosts,
    validate_clusters: false,
    max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY,
    ignore_port_in_host_matching: true,
  };
}
