// `meshgate validate`'s analysis: istiod's validation of every Istio object, then the analyzers of
// `istioctl analyze` that concern a gateway, and meshgate's own, over one snapshot of objects (the store the
// controller translates). Pure: the findings come back sorted and deduplicated as istioctl prints them.
import type { StoreSnapshot } from '../model/store.ts';
import { analysisContext, type AnalysisContext } from './context.ts';
import { type Finding, LEVELS } from './messages.ts';
import type { PositionIndex } from '../sources/positions.ts';
import { gatewayWorkloadFindings } from './gateway-workload.ts';
import { gatewaySecretFindings } from './gateway-secrets.ts';
import { conflictingGatewayFindings } from './conflicting-gateways.ts';
import { duplicateCertificateFindings } from './duplicate-certificates.ts';
import { virtualServiceGatewayFindings } from './virtual-service-gateways.ts';
import { destinationSubsetFindings } from './destination-subsets.ts';
import { destinationHostFindings } from './destination-hosts.ts';
import { serverCertificateVerificationFindings } from './server-certificate-verification.ts';
import { unreachableRuleFindings } from './unreachable-rules.ts';
import { shadowedCatchAllFindings } from './shadowed-catch-all.ts';

const ANALYZERS: readonly ((ctx: AnalysisContext) => Finding[])[] = [
  gatewayWorkloadFindings,
  gatewaySecretFindings,
  conflictingGatewayFindings,
  duplicateCertificateFindings,
  virtualServiceGatewayFindings,
  destinationHostFindings,
  destinationSubsetFindings,
  serverCertificateVerificationFindings,
  unreachableRuleFindings,
  shadowedCatchAllFindings,
];

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** istioctl's order (Messages.Sort): level, code, kind/name/namespace, then the text; then the line. */
function compareFindings(a: Finding, b: Finding): number {
  return (
    LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) ||
    cmp(a.code, b.code) ||
    cmp(`${a.kind}/${a.name}/${a.namespace}`, `${b.kind}/${b.name}/${b.namespace}`) ||
    cmp(a.message, b.message) ||
    (a.position?.line ?? 0) - (b.position?.line ?? 0)
  );
}

/** Every finding on the snapshot's objects, with the file and line of each when `positions` knows the object. */
export function analyze(snapshot: StoreSnapshot, positions?: PositionIndex, extra: readonly Finding[] = []): Finding[] {
  const { context, findings } = analysisContext(snapshot);
  const all = [...extra, ...findings, ...ANALYZERS.flatMap((a) => a(context))].map((f) => {
    const position = f.position ?? positions?.locate(f.kind, f.namespace, f.name, f.field);
    return position ? { ...f, position } : f;
  });
  all.sort(compareFindings);
  // The same message on the same object once (several of istioctl's analyzers report a selector that selects nothing).
  const seen = new Set<string>();
  return all.filter((f) => {
    const key = `${f.code} ${f.kind} ${f.namespace}/${f.name} ${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
