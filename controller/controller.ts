// The control loop shared by every source (Kubernetes informers, local YAML directory): store changes
// -> debounce -> snapshot -> translate -> report new validation errors -> ADS server.
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ObjectStore } from './model/store.ts';
import { type ErrorReporter, type ValidationError, formatError } from './model/validation.ts';
import type { GatewayIdentity } from './xds/snapshot.ts';
import { AdsServer, type XdsListenAddress } from './xds/ads-server.ts';
import { Translator } from './translate/translate.ts';
import type { Kind } from './model/objects.ts';
import { JwksResolver } from './jwks/resolver.ts';
import type { MeshConfigSource } from './sources/mesh-config-file.ts';
import { INSTALLED_MESH_CONFIG } from './model/mesh-config.ts';

export interface ControllerOptions {
  store: ObjectStore;
  /** Called on every push: the gateway pod's labels can change (relabel), so they are read each time. */
  identity: () => GatewayIdentity;
  log: Logger;
  xds: XdsListenAddress;
  reporter: ErrorReporter;
  /**
   * Called after every translation with all the errors of the current configuration (the reporter gets only the
   * new ones): the Kubernetes source writes status conditions from these, and clears those no longer in the list.
   */
  onErrors?: (errors: readonly ValidationError[]) => void;
  /** Quiet period before a push (istiod's PILOT_DEBOUNCE_AFTER, 100 ms). */
  debounceMs?: number;
  /** Longest a busy source can delay a push (1 s, so changes are applied within a second). */
  maxDelayMs?: number;
  /** Where the ADS server's pilot_* metrics go. */
  registry?: Registry;
  /** How often the identity is re-read to notice a relabelled pod without a store change (1 s). */
  identityPollMs?: number;
  /**
   * Fetches the JWKS of RequestAuthentication rules with a jwksUri (default: a JwksResolver configured from
   * istiod's environment variables, closed with the controller). A fetch that completes triggers a push.
   */
  jwks?: JwksResolver;
  /** The mesh config (`--mesh-config`; default: an Istio install's, INSTALLED_MESH_CONFIG). A 'change' triggers a push that builds everything. */
  mesh?: MeshConfigSource;
}

export interface Controller {
  port: number;
  /**
   * The sources have delivered their first full state: push now and start serving xDS (once the JWKS fetches this
   * state started have an answer, when there are any).
   */
  markSynced(): void;
  close(): Promise<void>;
  server: AdsServer;
  /** Translates and pushes at once (tests, and markSynced). */
  pushNow(): void;
}

const errorKey = (e: ValidationError): string => `${formatError(e)}`;

export async function startController(o: ControllerOptions): Promise<Controller> {
  const log = o.log.child({ component: 'controller' });
  const debounceMs = o.debounceMs ?? 100;
  const maxDelayMs = o.maxDelayMs ?? 1000;
  const server = await AdsServer.start({ ...o.xds, log: o.log, ...(o.registry ? { registry: o.registry } : {}) });

  let reported = new Set<string>();
  const translator = new Translator();
  const ownJwks = o.jwks === undefined;
  const jwks = o.jwks ?? new JwksResolver({ log, ...JwksResolver.optionsFromEnv(process.env) });
  let lastJwksGeneration = -1;
  let lastMesh = o.mesh?.current() ?? INSTALLED_MESH_CONFIG;
  /** Kinds changed since the last translation (undefined: not known, build everything). */
  let changedKinds: Set<Kind> | undefined;
  let lastRevision = -1;
  let lastIdentity = '';
  let quietTimer: NodeJS.Timeout | undefined;
  let maxTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const push = (): void => {
    clearTimeout(quietTimer);
    clearTimeout(maxTimer);
    quietTimer = maxTimer = undefined;
    if (closed) return;
    const snapshot = o.store.snapshot();
    const identity = o.identity();
    const identityKey = JSON.stringify(identity);
    const jwksGeneration = jwks.generation;
    const mesh = o.mesh?.current() ?? INSTALLED_MESH_CONFIG;
    if (snapshot.revision === lastRevision && identityKey === lastIdentity && jwksGeneration === lastJwksGeneration && mesh === lastMesh) return;
    lastMesh = mesh;
    // Fetched keys go into listeners: after a JWKS change everything is built again.
    const jwksChanged = jwksGeneration !== lastJwksGeneration;
    lastRevision = snapshot.revision;
    lastIdentity = identityKey;
    lastJwksGeneration = jwksGeneration;
    const started = performance.now();
    let result;
    const changed = jwksChanged ? undefined : changedKinds;
    changedKinds = new Set();
    try {
      result = translator.translate(snapshot, identity, changed, jwks, mesh);
    } catch (err) {
      // A translator bug must not take the gateway down: keep serving the last good config.
      log.error(
        { err: (err as Error).stack ?? String(err), revision: snapshot.revision },
        'translation failed: keeping the last configuration (this is a meshgate bug, please report it)',
      );
      return;
    }
    // Report each problem once while it lasts: the same error is not re-logged on every push, and one
    // that disappears and comes back is reported again.
    const current = new Map(result.errors.map((e) => [errorKey(e), e]));
    const fresh = [...current].filter(([k]) => !reported.has(k)).map(([, e]) => e);
    reported = new Set(current.keys());
    if (fresh.length > 0) o.reporter.report(fresh);
    o.onErrors?.(result.errors);
    server.setResources(result.resources);
    log.debug(
      {
        revision: snapshot.revision,
        ms: Math.round(performance.now() - started),
        listeners: result.resources.listeners.length,
        routes: result.resources.routes.length,
        clusters: result.resources.clusters.length,
        endpointsOnly: translator.reused,
        errors: result.errors.length,
      },
      'translated',
    );
  };

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(quietTimer);
    quietTimer = setTimeout(push, debounceMs);
    maxTimer ??= setTimeout(push, maxDelayMs);
  };
  const onChange = (kinds: ReadonlySet<Kind>): void => {
    if (changedKinds) for (const k of kinds) changedKinds.add(k);
    schedule();
  };
  o.store.on('change', onChange);
  jwks.on('change', schedule);
  o.mesh?.on('change', schedule);
  // Whatever the store already holds.
  schedule();
  const identityPoll = setInterval(() => {
    if (lastRevision >= 0 && JSON.stringify(o.identity()) !== lastIdentity) schedule();
  }, o.identityPollMs ?? 1000);
  identityPoll.unref();

  return {
    get port() {
      return server.port;
    },
    server,
    pushNow: push,
    markSynced() {
      // Translate the complete state first, so the first answer a proxy gets is the full config.
      push();
      const serve = (): void => {
        server.markSynced();
        log.info({ versions: server.versions() }, 'sources synced: serving xDS');
      };
      if (!jwks.hasPending()) return serve();
      // The JWKS of RequestAuthentications are being fetched: serve once each has an answer (at most its rule's
      // timeout), so that the first config has the keys, as istiod's first push waits for its fetches.
      log.info('sources synced: fetching JWKS before serving xDS');
      void jwks.answered().then(() => {
        if (closed) return;
        push();
        serve();
      });
    },
    async close() {
      closed = true;
      clearInterval(identityPoll);
      clearTimeout(quietTimer);
      clearTimeout(maxTimer);
      o.store.off('change', onChange);
      jwks.off('change', schedule);
      o.mesh?.off('change', schedule);
      if (ownJwks) jwks.close();
      await server.close();
    },
  };
}
