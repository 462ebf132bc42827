// Two Gateways of one workload serving the same certificate (the same credentialName, or the same certificate
// and key files): IST0138 GatewayDuplicateCertificate. A client that reuses an HTTP/2 connection for the other
// Gateway's host (the certificate covers both) lands on the first one's filter chain and gets 404. After
// istioctl's gateway.CertificateAnalyzer (Gateways in every namespace, as PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off).
import type { ServerTLSSettings } from '../model/istio-types.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding, goList } from './messages.ts';

function sameCertificate(a: ServerTLSSettings, b: ServerTLSSettings): boolean {
  if (a.credentialName && b.credentialName) return a.credentialName === b.credentialName;
  if (a.credentialName || b.credentialName) return false;
  return !!a.serverCertificate && a.serverCertificate === b.serverCertificate && !!a.privateKey && a.privateKey === b.privateKey;
}

/** selectorSubset: every label of `x` is in `y` with the same value. */
const selectorSubset = (x: Readonly<Record<string, string>>, y: Readonly<Record<string, string>>): boolean => Object.entries(x).every(([k, v]) => y[k] === v);

export function duplicateCertificateFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  for (const gw of ctx.gateways) {
    const selector = gw.spec.selector ?? {};
    for (const other of ctx.gateways) {
      if (other === gw || !selectorSubset(selector, other.spec.selector ?? {})) continue;
      const shared = (gw.spec.servers ?? []).some(
        (s) => s.tls && (other.spec.servers ?? []).some((o) => o.tls && sameCertificate(s.tls as ServerTLSSettings, o.tls)),
      );
      if (!shared) continue;
      out.push(
        finding('GatewayDuplicateCertificate', {
          kind: 'Gateway',
          namespace: gw.namespace,
          name: gw.name,
          field: 'metadata.name',
          message: `Duplicate certificate in multiple gateways ${goList([`${gw.namespace}/${gw.name}`, `${other.namespace}/${other.name}`])} may cause 404s if clients re-use HTTP2 connections.`,
          hint: `serve the hosts of both from one Gateway server, or give each Gateway its own certificate`,
        }),
      );
    }
  }
  return out;
}
