// A server's credentialName Secret, read as the gateway reads it: in the namespace of the gateway workload
// (not of the Gateway object). Missing there: IST0101 ReferencedResourceNotFound "credentialName"; there but not
// a certificate and key the gateway can serve: IST0161 InvalidGatewayCredential. After istioctl's
// gateway.SecretAnalyzer; whether a Secret is valid is the controller's own check (model/credentials.ts), which
// also matches the key to the certificate.
import { indexCredentials } from '../model/credentials.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding, goQuote } from './messages.ts';
import { selectedPods } from './workloads.ts';

export function gatewaySecretFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  for (const gw of ctx.gateways) {
    // A Gateway selecting no Pod is reported by gateway-workload.ts.
    const workloadNamespace = selectedPods(gw, ctx.pods)[0]?.namespace;
    if (workloadNamespace === undefined) continue;
    const credentials = indexCredentials(ctx.secrets, workloadNamespace);
    (gw.spec.servers ?? []).forEach((s, i) => {
      const cn = s.tls?.credentialName;
      if (!cn) return;
      const at = { kind: 'Gateway', namespace: gw.namespace, name: gw.name, field: `spec.servers[${i}].tls.credentialName` };
      const c = credentials.certificate(cn);
      if (c.ok) return;
      if (!c.secret) {
        const elsewhere = ctx.secrets
          .filter((x) => x.obj.metadata.name === cn.replace(/^kubernetes:\/\//, ''))
          .map((x) => x.obj.metadata.namespace ?? 'default');
        out.push(
          finding('ReferencedResourceNotFound', {
            ...at,
            message: `Referenced credentialName not found: ${goQuote(cn)}`,
            hint: `${c.reason}${elsewhere.length ? `; a Secret of that name is in ${elsewhere.join(', ')}, but the gateway reads only ${workloadNamespace}` : ''}`,
          }),
        );
        return;
      }
      out.push(
        finding('InvalidGatewayCredential', {
          ...at,
          message: `The credential referenced by the Gateway ${gw.name} in namespace ${workloadNamespace} is invalid, which can cause the traffic not to work as expected.`,
          hint: `${c.reason}: use a kubernetes.io/tls Secret (kubectl create secret tls ${cn} -n ${workloadNamespace} --cert=... --key=...)`,
        }),
      );
    });
  }
  return out;
}
