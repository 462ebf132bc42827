// meshgate's side of the differential: the controller's loader and translator on a case's objects, the
// resources normalised through the Envoy protos exactly as they go on the wire.
import { parseConfigFile } from '../../controller/sources/local-dir.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import { translate } from '../../controller/translate/translate.ts';
import { validateDestinationRule, validateGateway, validateServiceEntry, validateVirtualService } from '../../controller/model/istio-validation.ts';
import type { FieldError } from '../../controller/model/istio-validation.ts';
import { validateAuthorizationPolicy } from '../../controller/model/authorization-policy-validation.ts';
import { validateRequestAuthentication } from '../../controller/model/request-authentication-validation.ts';
import { validateTelemetry } from '../../controller/model/telemetry-validation.ts';
import type { KubeObject } from '../../controller/model/objects.ts';
import { normalizeJson } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import type { DiffCase } from './cases.ts';
import { DEFAULT_MESH_CONFIG, parseMeshConfig } from '../../controller/model/mesh-config.ts';
import type { Resources } from './normalize.ts';

/** What meshgate refuses as a whole, as istiod's webhook refuses an object: its validation of each Istio kind. */
const VALIDATE: Readonly<Record<string, (o: KubeObject) => FieldError[]>> = {
  Gateway: (o) => validateGateway(o.metadata.name, o.spec),
  VirtualService: (o) => validateVirtualService(o.spec),
  DestinationRule: (o) => validateDestinationRule(o.spec),
  ServiceEntry: (o) => validateServiceEntry(o.spec),
  AuthorizationPolicy: (o) =>
    validateAuthorizationPolicy({ name: o.metadata.name, namespace: o.metadata.namespace ?? 'default', annotations: o.metadata.annotations }, o.spec).errors,
  RequestAuthentication: (o) =>
    validateRequestAuthentication({ name: o.metadata.name, namespace: o.metadata.namespace ?? 'default', annotations: o.metadata.annotations }, o.spec).errors,
  Telemetry: (o) =>
    validateTelemetry({ name: o.metadata.name, namespace: o.metadata.namespace ?? 'default', annotations: o.metadata.annotations }, o.spec).errors,
};

export function meshgateResources(c: DiffCase): Resources {
  const parsed = parseConfigFile(c.yaml, `${c.name}.yaml`);
  if (parsed.errors.length) throw new Error(`${c.name}: ${parsed.errors.map((e) => e.message).join('; ')}`);
  const store = new ObjectStore();
  for (const o of parsed.objects) store.upsert(o.kind, o.obj, o.origin);
  const mesh = c.mesh === undefined ? { ok: true as const, mesh: DEFAULT_MESH_CONFIG } : parseMeshConfig(c.mesh, `${c.name} mesh config`);
  if (!mesh.ok) throw new Error(mesh.errors.join('; '));
  const { resources } = translate(store.snapshot(), c.identity, undefined, mesh.mesh);
  const rejected = parsed.objects
    .filter((o) => (VALIDATE[o.kind]?.(o.obj).length ?? 0) > 0)
    .map((o) => `${o.kind} ${o.obj.metadata.namespace}/${o.obj.metadata.name}`);
  return {
    listeners: resources.listeners.map((r) => normalizeJson(LISTENER_TYPE, r)),
    routes: resources.routes.map((r) => normalizeJson(ROUTE_TYPE, r)),
    clusters: resources.clusters.map((r) => normalizeJson(CLUSTER_TYPE, r)),
    endpoints: resources.endpoints.map((r) => normalizeJson(ENDPOINT_TYPE, r)),
    rejected: [...new Set(rejected)].sort(),
  };
}
