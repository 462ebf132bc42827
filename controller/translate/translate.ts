// The translation entry point: a snapshot of objects and the proxy's identity in, Envoy resources and
// validation errors out. Pure: no clock, network or file system, so it is golden-tested and cacheable.
import type { StoreSnapshot } from '../model/store.ts';
import type { Kind, KubeObject } from '../model/objects.ts';
import type { ValidationError } from '../model/validation.ts';
import type { GatewayIdentity, XdsResources } from '../xds/snapshot.ts';
import { unpackAny, type envoy } from '../../xds/envoy.ts';
import { HCM_TYPE } from '../../xds/type-urls.ts';
import { buildPushContext } from '../model/push-context.ts';
import type { TelemetryConfig } from '../model/telemetry.ts';
import { buildListeners } from './listeners.ts';
import { buildRouteConfiguration } from './routes.ts';
import { buildClusters } from './clusters.ts';
import { buildSecrets, referencedSecrets } from './secrets.ts';
import { type JwksSource, NO_JWKS_FETCH } from './jwt-authn.ts';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../model/mesh-config.ts';

export interface TranslateResult {
  resources: XdsResources;
  errors: ValidationError[];
}

/** RDS names the listeners refer to, in listener order. */
function referencedRouteNames(listeners: readonly envoy.config.listener.v3.Listener[]): string[] {
  const names: string[] = [];
  for (const l of listeners) {
    for (const fc of l.filter_chains ?? []) {
      for (const f of fc.filters ?? []) {
        if (f.typed_config?.['@type'] !== HCM_TYPE) continue;
        const name = unpackAny(f.typed_config, HCM_TYPE).rds?.route_config_name;
        if (name !== undefined && !names.includes(name)) names.push(name);
      }
    }
  }
  return names;
}

/**
 * `jwks`: the keys fetched for RequestAuthentication jwksUris (none: every such rule gets the never-verifying JWKS);
 * `mesh`: the mesh config (default: istiod's DefaultMeshConfig).
 */
export function translate(
  snapshot: StoreSnapshot,
  identity: GatewayIdentity,
  jwks: JwksSource = NO_JWKS_FETCH,
  mesh: MeshConfig = DEFAULT_MESH_CONFIG,
): TranslateResult {
  return translateWith(snapshot, identity, jwks, mesh).result;
}

interface ListenersAndRoutes {
  listeners: envoy.config.listener.v3.Listener[];
  routes: envoy.config.route.v3.RouteConfiguration[];
  /** The validation errors building them reported. */
  errors: ValidationError[];
}

function translateWith(
  snapshot: StoreSnapshot,
  identity: GatewayIdentity,
  jwks: JwksSource,
  mesh: MeshConfig,
  reuse?: ListenersAndRoutes,
  previousTelemetries?: ReadonlyMap<string, TelemetryConfig>,
): { result: TranslateResult; built: ListenersAndRoutes; telemetries: ReadonlyMap<string, TelemetryConfig> } {
  const push = buildPushContext(snapshot, identity, mesh, previousTelemetries);
  let lr = reuse;
  if (lr) push.errors.push(...lr.errors);
  else {
    const before = push.errors.length;
    const listeners = buildListeners(push, jwks);
    // Every server's route table, also for an HTTPS server whose filter chain is left out (ISTIO_MUTUAL, a
    // credential that cannot be served): istiod builds its chain and RDS alike, with whatever VirtualServices
    // bind to it (routes.ts), so the routes match istiod's whichever way the listener differs.
    const names = referencedRouteNames(listeners);
    for (const n of push.merged.serversByRouteName.keys()) if (!names.includes(n)) names.push(n);
    const routes = names.map((n) => buildRouteConfiguration(push, n));
    lr = { listeners, routes, errors: push.errors.slice(before) };
  }
  const built = buildClusters(push);
  const clusters = built.map((b) => b.cluster);
  const result: TranslateResult = {
    resources: {
      listeners: lr.listeners,
      routes: lr.routes,
      clusters,
      endpoints: built.flatMap((b) => (b.loadAssignment ? [b.loadAssignment] : [])),
      secrets: buildSecrets(push.credentials, referencedSecrets(lr.listeners, clusters)),
    },
    errors: push.errors,
  };
  return { result, built: lr, telemetries: push.acceptedTelemetries };
}

/**
 * Kinds that feed only endpoints: ClusterLoadAssignments, and which endpoints a cluster or subset gets.
 * Listeners and routes never read them, except the gateway's own Pod (a Service targetPort by name
 * resolves against it), which is checked separately.
 */
const ENDPOINT_KINDS: ReadonlySet<Kind> = new Set<Kind>(['EndpointSlice', 'Endpoints', 'Pod']);

function gatewayPod(snapshot: StoreSnapshot, identity: GatewayIdentity): KubeObject | undefined {
  return snapshot.byKind('Pod').find((p) => p.obj.metadata.name === identity.podName && (p.obj.metadata.namespace ?? 'default') === identity.namespace)?.obj;
}

function samePod(a: KubeObject | undefined, b: KubeObject | undefined): boolean {
  if (a === b) return true;
  const v = a?.metadata.resourceVersion;
  return v !== undefined && v === b?.metadata.resourceVersion;
}

/**
 * translate() for a control loop: when only endpoint kinds changed since the last call (and not the
 * gateway's own Pod nor its identity), the listeners and routes of the last call are reused as they are
 * (the same objects, so the ADS server sees them unchanged at no cost) and only clusters, endpoints and
 * secrets are built again. The output equals translate()'s, except that a Telemetry updated into an invalid one
 * keeps the version this translator accepted before (translate() alone has no earlier version to keep).
 */
export class Translator {
  private last: { identityKey: string; mesh: MeshConfig; pod: KubeObject | undefined; built: ListenersAndRoutes } | undefined;
  /** The Telemetries in effect after the last call: an invalid update of one keeps this version. */
  private telemetries: ReadonlyMap<string, TelemetryConfig> = new Map();
  /** Whether the last call reused listeners and routes. */
  reused = false;

  /**
   * changed: the kinds changed since the previous call; undefined when unknown (everything is built), which is also
   * what a change of the fetched JWKS must pass. A new mesh config (another object) builds everything.
   */
  translate(
    snapshot: StoreSnapshot,
    identity: GatewayIdentity,
    changed: ReadonlySet<Kind> | undefined,
    jwks: JwksSource = NO_JWKS_FETCH,
    mesh: MeshConfig = DEFAULT_MESH_CONFIG,
  ): TranslateResult {
    const identityKey = JSON.stringify(identity);
    const pod = gatewayPod(snapshot, identity);
    const last = this.last;
    this.last = undefined; // until this call succeeds
    const endpointsOnly = changed !== undefined && [...changed].every((k) => ENDPOINT_KINDS.has(k));
    const reuse = last && endpointsOnly && last.identityKey === identityKey && last.mesh === mesh && samePod(last.pod, pod) ? last.built : undefined;
    const { result, built, telemetries } = translateWith(snapshot, identity, jwks, mesh, reuse, this.telemetries);
    this.telemetries = telemetries;
    this.reused = reuse !== undefined;
    this.last = { identityKey, mesh, pod, built };
    return result;
  }
}
