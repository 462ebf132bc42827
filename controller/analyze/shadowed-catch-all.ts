// meshgate's own check (MG0101), where Istio has no analyzer: VirtualServices bound to one Gateway for one host
// are merged into one virtual host, their routes in creation order with the catch-all routes (no match, uri
// prefix "/" or regex ".*" and nothing else) moved last (SortVHostRoutes). Of several catch-alls only the first,
// the oldest VirtualService's, is ever used: a later VirtualService's catch-all is dead, silently.
import { compareByCreation } from '../model/config.ts';
import { resolveGatewayName } from '../model/host.ts';
import type { HTTPRoute } from '../model/istio-types.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding } from './messages.ts';

/** The first rule of a VirtualService that the translation turns into a catch-all route, if any. */
function catchAllRule(http: readonly HTTPRoute[]): number | undefined {
  const i = http.findIndex(
    (r) =>
      !r.delegate &&
      (!r.match?.length ||
        r.match.some((m) => {
          const keys = Object.keys(m).filter((k) => k !== 'name' && k !== 'ignoreUriCase');
          return keys.length === 1 && keys[0] === 'uri' && (m.uri?.prefix === '/' || m.uri?.regex === '.*');
        })),
  );
  return i < 0 ? undefined : i;
}

export function shadowedCatchAllFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  // gateway / host -> the first VirtualService (oldest) with a catch-all there.
  const first = new Map<string, { vs: string; rule: number }>();
  for (const vs of [...ctx.virtualServices].sort(compareByCreation)) {
    const rule = catchAllRule(vs.spec.http ?? []);
    if (rule === undefined) continue;
    for (const gw of new Set((vs.spec.gateways ?? []).filter((g) => g !== 'mesh').map((g) => resolveGatewayName(g, vs.namespace)))) {
      for (const host of vs.spec.hosts ?? []) {
        const key = `${gw} ${host}`;
        const winner = first.get(key);
        if (!winner) {
          first.set(key, { vs: `${vs.namespace}/${vs.name}`, rule });
          continue;
        }
        out.push(
          finding('RouteShadowedByEarlierVirtualService', {
            kind: 'VirtualService',
            namespace: vs.namespace,
            name: vs.name,
            field: `spec.http[${rule}]`,
            message: `VirtualService rule #${rule} is a catch-all for host ${host} on Gateway ${gw}, where VirtualService ${winner.vs} (older) has one too (rule #${winner.rule}): only the older one is used`,
            hint: `the VirtualServices of one host are merged oldest first with catch-alls last: keep one catch-all for ${host}, or give this rule a match`,
          }),
        );
      }
    }
  }
  return out;
}
