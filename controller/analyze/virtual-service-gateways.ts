// A VirtualService bound to a Gateway that does not exist (IST0101 ReferencedResourceNotFound "gateway"), or
// whose hosts are in none of that Gateway's servers (IST0132 VirtualServiceHostNotFoundInGateway): either way
// its routes are on no listener and requests for its hosts get 404. After istioctl's
// virtualservice.GatewayAnalyzer, with the gateway names resolved as the controller resolves them.
import { matches, namesForNamespace, resolveGatewayName } from '../model/host.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding, goList, goQuote } from './messages.ts';

/** A Gateway's server hosts as the analyzer compares them: `./h` in the Gateway's namespace, `*\/h` as h. */
function gatewayHosts(hosts: readonly string[], namespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const [ns, name] = h.includes('/') ? (h.split('/', 2) as [string, string]) : [undefined, h];
    if (ns === '.') out.push(`${namespace}/${name}`);
    else if (ns === '*') {
      if (name === '*') return ['*'];
      out.push(name);
    } else out.push(h);
  }
  return out;
}

export function virtualServiceGatewayFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  const byName = new Map(ctx.gateways.map((g) => [`${g.namespace}/${g.name}`, g]));
  for (const vs of ctx.virtualServices) {
    const hosts = vs.spec.hosts ?? [];
    (vs.spec.gateways ?? []).forEach((ref, i) => {
      if (ref === 'mesh') return;
      const full = resolveGatewayName(ref, vs.namespace);
      const at = { kind: 'VirtualService', namespace: vs.namespace, name: vs.name, field: `spec.gateways[${i}]` };
      const gw = byName.get(full);
      if (!gw) {
        const [ns, name] = full.split('/') as [string, string];
        const elsewhere = ctx.gateways.filter((g) => g.name === name).map((g) => `${g.namespace}/${g.name}`);
        out.push(
          finding('ReferencedResourceNotFound', {
            ...at,
            message: `Referenced gateway not found: ${goQuote(ref)}`,
            hint: elsewhere.length
              ? `there is no Gateway ${full}; write the namespace of the one you mean: ${elsewhere.join(', ')} (a name without namespace is looked up in ${vs.namespace})`
              : `create Gateway ${name} in namespace ${ns}, or fix the name (namespace/name; a bare name is looked up in ${vs.namespace})`,
          }),
        );
      }
      const served = gatewayHosts(
        (gw?.spec.servers ?? []).flatMap((s) => s.hosts),
        gw?.namespace ?? '',
      );
      const names = namesForNamespace(served, vs.namespace);
      if (names.some((g) => hosts.some((h) => matches(g, h)))) return;
      out.push(
        finding('VirtualServiceHostNotFoundInGateway', {
          ...at,
          message: `one or more host ${goList(hosts)} defined in VirtualService ${vs.namespace}/${vs.name} not found in Gateway ${full}.`,
          hint: gw
            ? `Gateway ${full} serves ${served.length ? served.join(', ') : 'no host'}: add the VirtualService's host to a server's hosts, or bind it to a Gateway that serves it; until then its requests get 404`
            : `requests for these hosts get 404 until the Gateway exists and serves them`,
        }),
      );
    });
  }
  return out;
}
