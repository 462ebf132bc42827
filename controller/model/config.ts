// A validated Istio or Kubernetes object as the model sees it: metadata flattened, spec typed.
import type { Origin, StoredObject } from './objects.ts';

export interface ConfigMeta {
  kind: string;
  apiVersion: string;
  name: string;
  namespace: string;
  /** RFC 3339; '' when absent (sorts first, as a zero time does in istiod). */
  creationTimestamp: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  origin: Origin;
}

export interface Config<S> extends ConfigMeta {
  spec: S;
}

export function metaOf(o: StoredObject, defaultNamespace = 'default'): ConfigMeta {
  const m = o.obj.metadata;
  return {
    kind: o.kind,
    apiVersion: o.obj.apiVersion,
    name: m.name,
    namespace: m.namespace ?? defaultNamespace,
    creationTimestamp: m.creationTimestamp ?? '',
    labels: m.labels ?? {},
    annotations: m.annotations ?? {},
    origin: o.origin,
  };
}

/** istiod's configCompareByCreationTime: creation time, then name, then namespace. */
export function compareByCreation(a: ConfigMeta, b: ConfigMeta): number {
  const ta = a.creationTimestamp ? Date.parse(a.creationTimestamp) : 0;
  const tb = b.creationTimestamp ? Date.parse(b.creationTimestamp) : 0;
  if (ta !== tb) return (Number.isNaN(ta) ? 0 : ta) - (Number.isNaN(tb) ? 0 : tb);
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return 0;
}

/** `/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>` (BuildConfigInfoMetadata, v1 since Istio 1.22). */
export function configPath(kind: 'virtual-service' | 'destination-rule' | 'service-entry' | 'gateway', namespace: string, name: string): string {
  return `/apis/networking.istio.io/v1/namespaces/${namespace}/${kind}/${name}`;
}
