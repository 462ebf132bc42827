// A route or mirror to a host no Service or ServiceEntry visible to the VirtualService declares: IST0101
// ReferencedResourceNotFound ("host", "mirror host"); to a port the service does not have: IST0101 "host:port";
// without a port to a service with several: IST0112 VirtualServiceDestinationPortSelectorRequired. The gateway
// has no cluster for it: 503. After istioctl's
// virtualservice.DestinationHostAnalyzer (util.GetDestinationHost): a short name is a Service in the
// VirtualService's namespace; Services are visible as their networking.istio.io/exportTo annotation says
// (everywhere by default), ServiceEntries as their exportTo; a wildcard ServiceEntry host covers its subdomains.
import type { Destination, VirtualServiceSpec } from '../model/istio-types.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding, goList, goQuote } from './messages.ts';

const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

/** ConvertHostToFQDN: a name without dots (and not a wildcard) is a Service of `namespace`. */
const fqdn = (namespace: string, host: string): string => (host.startsWith('*') || host.includes('.') ? host : `${host}.${namespace}.svc.cluster.local`);

/** Every visible host as `scope/fqdn` (scope `*` for every namespace), with its service's port numbers. */
function visibleHosts(ctx: AnalysisContext): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const se of ctx.serviceEntries) {
    const exportTo = se.spec.exportTo ?? [];
    for (const h of se.spec.hosts) {
      const scopes = exportTo.length === 0 || exportTo.includes('*') ? ['*'] : exportTo.map((e) => (e === '.' ? se.namespace : e));
      for (const scope of scopes)
        out.set(
          `${scope}/${fqdn(se.namespace, h)}`,
          (se.spec.ports ?? []).map((p) => p.number),
        );
    }
  }
  for (const svc of ctx.services) {
    const anno = svc.annotations[EXPORT_TO_ANNOTATION];
    const scopes = anno ? anno.split(',').map((e) => (e.trim() === '.' ? svc.namespace : e.trim())) : ['*'];
    for (const scope of scopes)
      out.set(
        `${scope}/${svc.name}.${svc.namespace}.svc.cluster.local`,
        (svc.spec.ports ?? []).map((p) => p.port),
      );
  }
  return out;
}

/** The ports of the service `host` names from `namespace`, or undefined when none is visible. */
function lookup(visible: ReadonlyMap<string, number[]>, namespace: string, exportTo: readonly string[], host: string): number[] | undefined {
  const name = fqdn(namespace, host);
  const all = visible.get(`*/${name}`);
  if (all) return all;
  const scopes = exportTo.length === 0 ? [namespace] : exportTo.map((e) => (e === '.' ? namespace : e));
  for (const s of scopes) {
    const ports = visible.get(`${s}/${name}`);
    if (ports) return ports;
  }
  const bare = host.replace(/^\*/, '');
  for (const [key, ports] of visible) {
    const slash = key.indexOf('/');
    const scope = key.slice(0, slash);
    const seHost = key.slice(slash + 1);
    if (!seHost.startsWith('*') || (scope !== '*' && scope !== namespace)) continue;
    if (bare.endsWith(seHost.slice(1))) return ports;
  }
  return undefined;
}

function destinations(spec: VirtualServiceSpec): { dest: Destination; field: string; what: 'host' | 'mirror host' }[] {
  const out: { dest: Destination; field: string; what: 'host' | 'mirror host' }[] = [];
  for (const kind of ['tcp', 'tls', 'http'] as const) {
    (spec[kind] ?? []).forEach((r, i) => {
      (r.route ?? []).forEach((d, j) => out.push({ dest: d.destination, field: `spec.${kind}[${i}].route[${j}].destination.host`, what: 'host' }));
    });
  }
  (spec.http ?? []).forEach((r, i) => {
    if (r.mirror) out.push({ dest: r.mirror, field: `spec.http[${i}].mirror.host`, what: 'mirror host' });
    (r.mirrors ?? []).forEach((m, j) => out.push({ dest: m.destination, field: `spec.http[${i}].mirrors[${j}].destination.host`, what: 'mirror host' }));
  });
  return out;
}

export function destinationHostFindings(ctx: AnalysisContext): Finding[] {
  const visible = visibleHosts(ctx);
  const out: Finding[] = [];
  for (const vs of ctx.virtualServices) {
    for (const { dest, field, what } of destinations(vs.spec)) {
      const at = { kind: 'VirtualService', namespace: vs.namespace, name: vs.name, field };
      const ports = lookup(visible, vs.namespace, vs.spec.exportTo ?? [], dest.host);
      if (!ports) {
        out.push(
          finding('ReferencedResourceNotFound', {
            ...at,
            message: `Referenced ${what} not found: ${goQuote(dest.host)}`,
            hint: `no Service or ServiceEntry ${fqdn(vs.namespace, dest.host)} is visible to namespace ${vs.namespace} (a short name is a Service in the VirtualService's namespace): create it or fix the host; until then this route answers 503`,
          }),
        );
        continue;
      }
      const port = dest.port?.number;
      if (port === undefined) {
        if (ports.length > 1)
          out.push(
            finding('VirtualServiceDestinationPortSelectorRequired', {
              ...at,
              message: `This VirtualService routes to a service ${goQuote(dest.host)} that exposes multiple ports ${goList(ports.map(String))}. Specifying a port in the destination is required to disambiguate.`,
              hint: `add port: {number: N} to the destination, N one of ${ports.join(', ')}: without one the gateway routes to its listener's port, which the service may not have (503)`,
            }),
          );
        continue;
      }
      if (!ports.includes(port))
        out.push(
          finding('ReferencedResourceNotFound', {
            ...at,
            field: field.replace(/\.host$/, '.port.number'),
            message: `Referenced host:port not found: ${goQuote(`${dest.host}:${port}`)}`,
            hint: `${dest.host} has port${ports.length === 1 ? '' : 's'} ${ports.join(', ') || '(none)'}: route to one of those (the service port, not the pods' target port); until then this route answers 503`,
          }),
        );
    }
  }
  return out;
}
