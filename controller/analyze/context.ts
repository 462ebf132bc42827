// What the analyzers read: the objects of one snapshot, the Istio ones that passed validation (an invalid one
// is reported by schema.ts and, as the controller skips it, left out of the other analyses), typed.
import type { StoreSnapshot } from '../model/store.ts';
import { type Config, type ConfigMeta, metaOf } from '../model/config.ts';
import type { DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec } from '../model/istio-types.ts';
import type { KubeServiceSpec } from '../model/kube-types.ts';
import { type Kind, NOT_HONOURED_KINDS, type StoredObject } from '../model/objects.ts';
import type { Finding } from './messages.ts';
import { schemaFindings } from './schema.ts';

export interface AnalysisContext {
  gateways: readonly Config<GatewaySpec>[];
  virtualServices: readonly Config<VirtualServiceSpec>[];
  destinationRules: readonly Config<DestinationRuleSpec>[];
  serviceEntries: readonly Config<ServiceEntrySpec>[];
  services: readonly Config<KubeServiceSpec>[];
  /** Pods: the workloads a Gateway selector can select. */
  pods: readonly ConfigMeta[];
  secrets: readonly StoredObject[];
}

export function analysisContext(snapshot: StoreSnapshot): { context: AnalysisContext; findings: Finding[] } {
  const findings: Finding[] = [];
  const valid = <S>(kind: Kind): Config<S>[] => {
    const out: Config<S>[] = [];
    for (const o of snapshot.byKind(kind)) {
      const f = schemaFindings(o);
      findings.push(...f);
      if (f.length === 0) out.push({ ...metaOf(o), spec: (o.obj.spec ?? {}) as S });
    }
    return out;
  };
  const context: AnalysisContext = {
    gateways: valid<GatewaySpec>('Gateway'),
    virtualServices: valid<VirtualServiceSpec>('VirtualService'),
    destinationRules: valid<DestinationRuleSpec>('DestinationRule'),
    serviceEntries: valid<ServiceEntrySpec>('ServiceEntry'),
    services: snapshot.byKind('Service').map((o) => ({ ...metaOf(o), spec: o.obj.spec ?? {} })),
    pods: snapshot.byKind('Pod').map((o) => metaOf(o)),
    secrets: snapshot.byKind('Secret'),
  };
  for (const kind of ['AuthorizationPolicy', 'RequestAuthentication', 'Telemetry', ...NOT_HONOURED_KINDS] as const) valid(kind);
  return { context, findings };
}
