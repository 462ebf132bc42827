// Two Gateways that select the same workload and declare the same host (and bind) on the same port:
// IST0145 ConflictingGateways, reported on each of them. The gateway keeps the first server by creation time
// and drops the other. After istioctl's gateway.ConflictingGatewayAnalyzer: hosts compare as written; two
// selectors are the same workload when they are equal or, one containing the other, a Pod matches both.
import type { Config } from '../model/config.ts';
import type { GatewaySpec } from '../model/istio-types.ts';
import { isSubset } from '../model/labels.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding } from './messages.ts';
import { selectorString } from './workloads.ts';

function sameWorkload(a: Config<GatewaySpec>, b: Config<GatewaySpec>, ctx: AnalysisContext): boolean {
  const sa = selectorString(a.spec.selector);
  const sb = selectorString(b.spec.selector);
  if (sa === sb) return true;
  if (!sa.includes(sb) && !sb.includes(sa)) return false;
  return ctx.pods.some((p) => isSubset(a.spec.selector, p.labels) && isSubset(b.spec.selector, p.labels));
}

export function conflictingGatewayFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  for (const gw of ctx.gateways) {
    const selector = selectorString(gw.spec.selector);
    // A selector no Pod has is reported by gateway-workload.ts.
    if (selector === '' || !ctx.pods.some((p) => isSubset(gw.spec.selector, p.labels))) continue;
    const others = ctx.gateways.filter((o) => o !== gw && sameWorkload(gw, o, ctx));
    (gw.spec.servers ?? []).forEach((s, i) => {
      const conflicts = others.filter((o) =>
        (o.spec.servers ?? []).some(
          (os) => os.port.number === s.port.number && (os.bind ?? '') === (s.bind ?? '') && os.hosts.some((h) => s.hosts.includes(h)),
        ),
      );
      if (conflicts.length === 0) return;
      const names = conflicts.map((o) => `${o.namespace}/${o.name}`).sort();
      out.push(
        finding('ConflictingGateways', {
          kind: 'Gateway',
          namespace: gw.namespace,
          name: gw.name,
          field: `spec.servers[${i}].hosts`,
          message: `Conflict with gateways ${names.join(',')} (workload selector ${selector}, port ${s.port.number}, hosts ${s.hosts.join(',')}).`,
          hint: `only the oldest Gateway's server for a host and port is served: merge the servers into one Gateway, or give each its own hosts or port`,
        }),
      );
    });
  }
  return out;
}
