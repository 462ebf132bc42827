// A Gateway that selects no workload (IST0101 ReferencedResourceNotFound "selector": no gateway serves it), and
// a server port the gateway's Service does not expose (IST0162 GatewayPortNotDefinedOnService: nothing outside
// reaches it), after istioctl's gateway.IngressGatewayPortAnalyzer.
import type { AnalysisContext } from './context.ts';
import { type Finding, finding, goQuote } from './messages.ts';
import { selectedPods, selectorField, selectorString } from './workloads.ts';

export function gatewayWorkloadFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  for (const gw of ctx.gateways) {
    const at = { kind: 'Gateway', namespace: gw.namespace, name: gw.name, field: selectorField(gw.spec.selector) };
    const selector = selectorString(gw.spec.selector);
    const pods = selectedPods(gw, ctx.pods);
    if (pods.length === 0) {
      out.push(
        finding('ReferencedResourceNotFound', {
          ...at,
          message: `Referenced selector not found: ${goQuote(selector)}`,
          hint: `no Pod has the labels ${selector || '(any)'}: no gateway serves this Gateway. Use the gateway pods' labels (e.g. istio: ingressgateway)`,
        }),
      );
      continue;
    }
    // The ports a client can reach: each TCP port of the Services selecting those pods, by its target port
    // (the port the gateway listens on) and by its service port. An unset protocol is TCP, as the API server
    // defaults it (istioctl, reading files, counts only ports that spell out TCP).
    const reachable = new Set<number>();
    let selected = false;
    for (const pod of pods) {
      for (const svc of ctx.services) {
        if (svc.namespace !== pod.namespace || !svc.spec.selector) continue;
        if (!Object.entries(svc.spec.selector).every(([k, v]) => pod.labels[k] === v)) continue;
        selected = true;
        for (const p of svc.spec.ports ?? []) {
          if ((p.protocol ?? 'TCP') !== 'TCP') continue;
          reachable.add(p.port);
          if (typeof p.targetPort === 'number' && p.targetPort !== 0) reachable.add(p.targetPort);
        }
      }
    }
    // No Service at all (a directory without the gateway's Service: `meshgate local` listens on the Gateway
    // ports themselves): nothing to compare with. istioctl, in a cluster, would report every port.
    if (!selected) continue;
    (gw.spec.servers ?? []).forEach((s, i) => {
      if (reachable.has(s.port.number)) return;
      out.push(
        finding('GatewayPortNotDefinedOnService', {
          ...at,
          field: `spec.servers[${i}].port.number`,
          message: `The gateway is listening on a target port (port ${s.port.number}) that is not defined in the Service associated with its workload instances (Pod selector ${selector}). If you need to access the gateway port through the gateway Service, it will not be available.`,
          hint: `add port ${s.port.number} to the gateway's Service (or use a port it has, e.g. ${[...reachable].sort((a, b) => a - b).join(', ') || 'none'})`,
        }),
      );
    });
  }
  return out;
}
