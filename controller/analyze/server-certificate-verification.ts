// A DestinationRule that originates TLS (SIMPLE or MUTUAL) without caCertificates: the gateway does not
// verify the upstream's certificate (IST0128 NoServerCertificateVerificationDestinationLevel, IST0129 ...PortLevel
// for portLevelSettings). After istioctl's destinationrule.CaCertificateAnalyzer: a credentialName counts as
// verification only with a workloadSelector (it then holds the CA).
import type { ClientTLSSettings } from '../model/istio-types.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding } from './messages.ts';

function unverified(tls: ClientTLSSettings | undefined, hasWorkloadSelector: boolean): tls is ClientTLSSettings & { mode: 'SIMPLE' | 'MUTUAL' } {
  if (tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') return false;
  return !tls.caCertificates && !(tls.credentialName && hasWorkloadSelector);
}

const HINT =
  'set caCertificates (a CA file the gateway can read) or credentialName (a Secret with ca.crt), and subjectAltNames: any certificate is accepted until then';

export function serverCertificateVerificationFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  for (const dr of ctx.destinationRules) {
    const at = { kind: 'DestinationRule', namespace: dr.namespace, name: dr.name };
    const selected = dr.spec.workloadSelector !== undefined;
    const tls = dr.spec.trafficPolicy?.tls;
    if (unverified(tls, selected)) {
      out.push(
        finding('NoServerCertificateVerificationDestinationLevel', {
          ...at,
          field: 'spec.trafficPolicy.tls.caCertificates',
          message: `DestinationRule ${dr.namespace}/${dr.name} in namespace ${dr.namespace} has TLS mode set to ${tls.mode} but no caCertificates are set to validate server identity for host: ${dr.spec.host}`,
          hint: HINT,
        }),
      );
    }
    (dr.spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => {
      if (!unverified(p.tls, selected)) return;
      out.push(
        finding('NoServerCertificateVerificationPortLevel', {
          ...at,
          field: `spec.trafficPolicy.portLevelSettings[${i}].tls.caCertificates`,
          message: `DestinationRule ${dr.namespace}/${dr.name} in namespace ${dr.namespace} has TLS mode set to ${p.tls.mode} but no caCertificates are set to validate server identity for host: ${dr.spec.host} at port ${portSelectorString(p.port?.number)}`,
          hint: HINT,
        }),
      );
    });
  }
  return out;
}

/** Go's String() of a PortSelector proto: `number:443`. */
const portSelectorString = (n: number | undefined): string => (n === undefined ? '' : `number:${n}`);
