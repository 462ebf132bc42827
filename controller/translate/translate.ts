// The translation entry point: a snapshot of objects and the proxy's identity in, Envoy resources and
// validation errors out. Pure: no clock, network or file system, so it is golden-tested and cacheable.
import type { StoreSnapshot } from '../model/store.ts';
import type { ValidationError } from '../model/validation.ts';
import type { GatewayIdentity, XdsResources } from '../xds/snapshot.ts';
import type { JsonObject } from '../../xds/protos.ts';
import { buildPushContext } from '../model/push-context.ts';
import { buildListeners } from './listeners.ts';
import { buildRouteConfiguration } from './routes.ts';
import { buildClusters } from './clusters.ts';
import { buildSecrets, referencedSecrets } from './secrets.ts';

export interface TranslateResult {
  resources: XdsResources;
  errors: ValidationError[];
}

/** RDS names the listeners refer to, in listener order. */
function referencedRouteNames(listeners: readonly JsonObject[]): string[] {
  const names: string[] = [];
  for (const l of listeners) {
    for (const fc of (l.filter_chains as JsonObject[] | undefined) ?? []) {
      for (const f of (fc.filters as JsonObject[] | undefined) ?? []) {
        const rds = (f.typed_config as JsonObject | undefined)?.rds as JsonObject | undefined;
        const name = rds?.route_config_name;
        if (typeof name === 'string' && !names.includes(name)) names.push(name);
      }
    }
  }
  return names;
}

export function translate(snapshot: StoreSnapshot, identity: GatewayIdentity): TranslateResult {
  const push = buildPushContext(snapshot, identity);
  const listeners = buildListeners(push);
  const routes = referencedRouteNames(listeners).map((n) => buildRouteConfiguration(push, n));
  const built = buildClusters(push);
  const clusters = built.map((b) => b.cluster);
  return {
    resources: {
      listeners,
      routes,
      clusters,
      endpoints: built.flatMap((b) => (b.loadAssignment ? [b.loadAssignment] : [])),
      secrets: buildSecrets(push.credentials, referencedSecrets([...listeners, ...clusters])),
    },
    errors: push.errors,
  };
}
