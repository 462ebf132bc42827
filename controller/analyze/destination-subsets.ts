// A route or mirror to a subset no DestinationRule defines for its host: IST0101 ReferencedResourceNotFound
// ("host+subset in destinationrule", "mirror+subset in destinationrule"). The gateway has no cluster for it and
// the route answers 503 (response flag NC, no cluster). After istioctl's
// virtualservice.DestinationRuleAnalyzer: a host names a resource as util.GetResourceNameFromHost does
// (`name.ns.svc.cluster.local` is ns/name; any other host is itself in the object's namespace).
import type { Destination } from '../model/istio-types.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding, goQuote } from './messages.ts';

const FQDN = /^(.+)\.(.+)\.svc\.cluster\.local$/;

function resourceName(namespace: string, host: string): string {
  const m = FQDN.exec(host);
  return m ? `${m[2]}/${m[1]}` : `${namespace}/${host}`;
}

interface Placed {
  dest: Destination;
  field: string;
  what: 'host+subset' | 'mirror+subset';
}

function destinations(spec: AnalysisContext['virtualServices'][number]['spec']): Placed[] {
  const out: Placed[] = [];
  for (const kind of ['tcp', 'tls', 'http'] as const) {
    (spec[kind] ?? []).forEach((r, i) => {
      (r.route ?? []).forEach((d, j) => out.push({ dest: d.destination, field: `spec.${kind}[${i}].route[${j}].destination.subset`, what: 'host+subset' }));
    });
  }
  (spec.http ?? []).forEach((r, i) => {
    if (r.mirror) out.push({ dest: r.mirror, field: `spec.http[${i}].mirror.subset`, what: 'mirror+subset' });
    (r.mirrors ?? []).forEach((m, j) => out.push({ dest: m.destination, field: `spec.http[${i}].mirrors[${j}].destination.subset`, what: 'mirror+subset' }));
  });
  return out;
}

export function destinationSubsetFindings(ctx: AnalysisContext): Finding[] {
  const defined = new Map<string, string[]>();
  for (const dr of ctx.destinationRules) {
    const key = resourceName(dr.namespace, dr.spec.host);
    defined.set(key, [...(defined.get(key) ?? []), ...(dr.spec.subsets ?? []).map((s) => s.name)]);
  }
  const out: Finding[] = [];
  for (const vs of ctx.virtualServices) {
    for (const { dest, field, what } of destinations(vs.spec)) {
      if (!dest.subset) continue;
      const key = resourceName(vs.namespace, dest.host);
      const subsets = defined.get(key);
      if (subsets?.includes(dest.subset)) continue;
      out.push(
        finding('ReferencedResourceNotFound', {
          kind: 'VirtualService',
          namespace: vs.namespace,
          name: vs.name,
          field,
          message: `Referenced ${what} in destinationrule not found: ${goQuote(`${dest.host}+${dest.subset}`)}`,
          hint: subsets
            ? `the DestinationRules for ${dest.host} define ${subsets.length ? subsets.join(', ') : 'no subset'}: add subset ${dest.subset} (with the pods' labels) or route to one of those; until then this route answers 503`
            : `no DestinationRule for ${dest.host} (as ${key}): add one defining subset ${dest.subset}; until then this route answers 503`,
        }),
      );
    }
  }
  return out;
}
