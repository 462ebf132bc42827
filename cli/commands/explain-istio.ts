// `meshgate explain --config`: the Istio objects are at hand, so a 404 or 503 is said in their terms ("no
// VirtualService binds host X to Gateway Y on port 80", "subset v3 selects no ready pod: ..."), and each
// piece of the explanation names the file its object came from.
import type { StoreSnapshot } from '../../controller/model/store.ts';
import type { StoredObject } from '../../controller/model/objects.ts';
import type { GatewaySpec } from '../../controller/model/istio-types.ts';
import { isSubset } from '../../controller/model/labels.ts';
import { subsetOf } from '../../controller/model/host.ts';
import type { GatewayIdentity } from '../../controller/xds/snapshot.ts';
import type { IstioRef } from '../../gateway/explain/describe.ts';
import type { ClusterExplanation, EnvoyConfig, Explanation } from '../../gateway/explain/explain.ts';

const nsName = (o: StoredObject): string => `${o.obj.metadata.namespace ?? 'default'}/${o.obj.metadata.name}`;

function find(snapshot: StoreSnapshot, r: IstioRef): StoredObject | undefined {
  return snapshot.byKind(r.kind as StoredObject['kind']).find((o) => o.obj.metadata.name === r.name && (o.obj.metadata.namespace ?? 'default') === r.namespace);
}

/**
 * Where an object (or a field of it, `spec.subsets[0]`) is written: `file:line` when the CLI has the files' positions,
 * else the file (and document) the source recorded.
 */
export type Locate = (o: StoredObject, fieldPath?: string) => string | undefined;

const originFile: Locate = (o) => o.origin.file;

function withFile(snapshot: StoreSnapshot, r: IstioRef | undefined, locate: Locate, fieldPath?: (o: StoredObject) => string | undefined): void {
  if (!r) return;
  const o = find(snapshot, r);
  const where = o && locate(o, fieldPath?.(o));
  if (where !== undefined) r.file = where;
}

/** The Gateway port the request's listener serves: as asked for, or from istiod's virtual host names (`host:port`) of its routes. */
function gatewayPort(x: Explanation, config: EnvoyConfig): number {
  if (x.listener?.gatewayPort !== undefined) return x.listener.gatewayPort;
  const rc = config.routes.find((r) => r.name === x.routeConfiguration);
  for (const v of rc?.virtual_hosts ?? []) {
    const m = /:(\d+)$/.exec(v.name ?? '');
    if (m) return Number(m[1]);
  }
  return x.request.port;
}

/** Server hosts without their namespace part (`ns/host`, `*\/host`, `./host`). */
const serverHost = (h: string): string => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h).toLowerCase();

function noVirtualHostWhy(x: Explanation, config: EnvoyConfig, snapshot: StoreSnapshot, identity: GatewayIdentity, locate: Locate): string {
  const port = gatewayPort(x, config);
  const host = x.request.host.replace(/:\d+$/, '').toLowerCase();
  const gateways = snapshot.byKind('Gateway').filter((g) => isSubset((g.obj.spec as GatewaySpec | undefined)?.selector, identity.labels));
  const onPort = gateways.flatMap((g) => ((g.obj.spec as GatewaySpec).servers ?? []).filter((s) => s.port.number === port).map((s) => ({ g, s })));
  if (onPort.length === 0) {
    return `no Gateway selecting this gateway has a server on port ${port}${gateways.length ? ` (${gateways.map(nsName).join(', ')} have servers on ports ${[...new Set(gateways.flatMap((g) => ((g.obj.spec as GatewaySpec).servers ?? []).map((s) => s.port.number)))].join(', ')})` : ''}`;
  }
  const taking = onPort.filter(({ s }) => s.hosts.some((h) => subsetOf(host, serverHost(h))));
  if (taking.length === 0) {
    const listed = onPort.map(({ g, s }) => `Gateway ${nsName(g)} takes ${s.hosts.join(', ')}`).join('; ');
    return `no Gateway server on port ${port} takes host ${host}: ${listed}`;
  }
  const names = [...new Set(taking.map(({ g }) => nsName(g)))];
  const files = [...new Set(taking.flatMap(({ g, s }) => locate(g, `spec.servers[${((g.obj.spec as GatewaySpec).servers ?? []).indexOf(s)}]`) ?? []))];
  return `no VirtualService binds host ${host} to Gateway ${names.join(', ')} on port ${port}${files.length ? ` (${files.join(', ')})` : ''}`;
}

function podReady(pod: StoredObject): boolean {
  const status = pod.obj.status as { conditions?: { type?: string; status?: string }[] } | undefined;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  return ready === undefined || ready.status === 'True';
}

const formatLabels = (l: Record<string, string>): string =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** Why a cluster has no usable endpoint, in terms of its Service, DestinationRule subset and pods. */
function noEndpointWhy(c: ClusterExplanation, snapshot: StoreSnapshot): string | undefined {
  const svcRef = c.services[0];
  const svc = svcRef && find(snapshot, svcRef);
  const selector = (svc?.obj.spec as { selector?: Record<string, string> } | undefined)?.selector;
  if (!svc || !selector) return undefined;
  const ns = svc.obj.metadata.namespace ?? 'default';
  const pods = snapshot.byKind('Pod').filter((p) => (p.obj.metadata.namespace ?? 'default') === ns && isSubset(selector, p.obj.metadata.labels ?? {}));
  const sel = formatLabels(selector);
  if (pods.length === 0) return `no pod matches Service ${ns}/${svc.obj.metadata.name}'s selector ${sel}`;
  if (c.subset !== undefined && c.source?.kind === 'DestinationRule') {
    const dr = find(snapshot, c.source);
    const subset = (dr?.obj.spec as { subsets?: { name: string; labels?: Record<string, string> }[] } | undefined)?.subsets?.find((s) => s.name === c.subset);
    const want = subset?.labels ?? {};
    const selected = pods.filter((p) => isSubset(want, p.obj.metadata.labels ?? {}));
    if (selected.length === 0) {
      const have = Object.keys(want)
        .map((k) => `${k} ${[...new Set(pods.map((p) => p.obj.metadata.labels?.[k] ?? '(unset)'))].join(', ')}`)
        .join('; ');
      return `subset ${c.subset} selects no ready pod: it needs ${formatLabels(want)}, pods with ${sel} have ${have}`;
    }
    if (!selected.some(podReady)) return `subset ${c.subset} selects no ready pod: ${selected.map((p) => p.obj.metadata.name).join(', ')} not ready`;
    return undefined;
  }
  if (!pods.some(podReady)) return `no ready pod behind Service ${ns}/${svc.obj.metadata.name}: ${pods.map((p) => p.obj.metadata.name).join(', ')} not ready`;
  return undefined;
}

/** Adds the files of the Istio objects, and says a 404 or 503 in terms of them. */
export function annotateWithIstio(
  x: Explanation,
  config: EnvoyConfig,
  snapshot: StoreSnapshot,
  identity: GatewayIdentity,
  locate: Locate = originFile,
): Explanation {
  // A named route is its VirtualService's http[] entry of that name (istiod: `<http name>` or `<http name>.<match name>`).
  const httpEntry =
    (name: string) =>
    (o: StoredObject): string | undefined => {
      const http = (o.obj.spec as { http?: { name?: string }[] } | undefined)?.http ?? [];
      const i = http.findIndex((h) => h.name !== undefined && (name === h.name || name.startsWith(`${h.name}.`)));
      return i < 0 ? undefined : `spec.http[${i}]`;
    };
  if (x.route) withFile(snapshot, x.route.source, locate, httpEntry(x.route.name));
  for (const p of x.policies ?? []) withFile(snapshot, p.source, locate);
  for (const s of x.skippedRoutes) withFile(snapshot, s.source, locate, httpEntry(s.name));
  for (const c of x.clusters) {
    const subset = c.subset;
    const subsetEntry = (o: StoredObject): string | undefined => {
      const i = ((o.obj.spec as { subsets?: { name: string }[] } | undefined)?.subsets ?? []).findIndex((x) => x.name === subset);
      return i < 0 ? undefined : `spec.subsets[${i}]`;
    };
    withFile(snapshot, c.source, locate, subset === undefined ? undefined : subsetEntry);
    for (const s of c.services) withFile(snapshot, s, locate);
    if (c.outcome === 'no_healthy_upstream') {
      const why = noEndpointWhy(c, snapshot);
      if (why !== undefined) {
        if (c.why !== undefined && x.why?.endsWith(c.why) === true) x.why = c.percent < 100 ? `${Math.round(c.percent * 100) / 100}% of requests: ${why}` : why;
        c.why = why;
      }
    }
  }
  // istiod's catch-all for a Gateway server without any VirtualService: `blackhole:<port>`, no routes.
  const blackhole = x.outcome === 'no_route' && x.virtualHost?.name.startsWith('blackhole:') === true;
  if (x.outcome === 'no_virtual_host' || blackhole) x.why = noVirtualHostWhy(x, config, snapshot, identity, locate);
  return x;
}
