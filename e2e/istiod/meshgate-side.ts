// meshgate's side of the differential: the controller's loader and translator on a case's objects, the
// resources normalised through the Envoy protos exactly as they go on the wire.
import { parseConfigFile } from '../../controller/sources/local-dir.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import { translate } from '../../controller/translate/translate.ts';
import { normalizeJson } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import type { DiffCase } from './cases.ts';
import type { Resources } from './normalize.ts';

export function meshgateResources(c: DiffCase): Resources {
  const parsed = parseConfigFile(c.yaml, `${c.name}.yaml`);
  if (parsed.errors.length) throw new Error(`${c.name}: ${parsed.errors.map((e) => e.message).join('; ')}`);
  const store = new ObjectStore();
  for (const o of parsed.objects) store.upsert(o.kind, o.obj, o.origin);
  const { resources, errors } = translate(store.snapshot(), c.identity);
  return {
    listeners: resources.listeners.map((r) => normalizeJson(LISTENER_TYPE, r)),
    routes: resources.routes.map((r) => normalizeJson(ROUTE_TYPE, r)),
    clusters: resources.clusters.map((r) => normalizeJson(CLUSTER_TYPE, r)),
    endpoints: resources.endpoints.map((r) => normalizeJson(ENDPOINT_TYPE, r)),
    rejected: [...new Set(errors.map((e) => `${e.kind} ${e.namespace}/${e.name}`))].sort(),
  };
}
