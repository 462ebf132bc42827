// LDS and RDS: listeners bound, updated and removed on the fly, route configurations compiled and swapped
// atomically for new requests, Envoy's warming (a listener serves once its route configuration arrived;
// an updated listener keeps serving its old config until the new one is warm) and listener_manager stats.
import type { Logger } from 'pino';
import type { envoy } from '../../xds/envoy.ts';
import { ConfigError } from '../xds/json.ts';
import { compileRouteConfig } from '../router/route-config.ts';
import { HttpConnectionManager, type ProxyRuntime, type RouteProvider } from '../http/connection-manager.ts';
import { ActiveListener } from './listener.ts';
import { ChainDispatcher } from './chain-dispatcher.ts';
import { SecretStore } from '../tls/secrets.ts';
import { parseListener, type ListenerSpec } from './listener-config.ts';
import { bindErrorText } from './port-probe.ts';

/** host:port as a listener binds it. */
export type BindAddress = { host: string; port: number };

/** Bind errors found by the main thread's probe (port-probe.ts), by `host:port`: these listeners are not bound. */
export type RefusedBinds = ReadonlyMap<string, NodeJS.ErrnoException>;

type Listener = envoy.config.listener.v3.Listener;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

const bindKey = (host: string, port: number): string => `${host}:${port}`;

/** Releases the stats of a listener's HCM and of its dispatcher (tcp_proxy chains, the other HCMs). */
function release(s: Served): void {
  s.hcm.release();
  s.chains?.release();
}

export interface RouteConfigState extends RouteProvider {
  /**
   * The RouteConfiguration as received, serialized: only /config_dump and worker replays read it, so it is
   * kept as one string (a fraction of the parsed tree's heap at thousands of routes), and compared as text.
   */
  text: string | undefined;
  /** `text` parsed again (a new object on each read). */
  readonly json: RouteConfiguration | undefined;
  versionInfo: string;
  lastUpdated: string;
  refs: number;
}

/** A listener's HTTP connection manager and, for TLS / SNI / tcp_proxy listeners, its filter-chain dispatcher. */
interface Served {
  hcm: HttpConnectionManager;
  chains: ChainDispatcher | undefined;
}

interface PendingUpdate extends Served {
  spec: ListenerSpec;
  json: Listener;
  versionInfo: string;
}

export interface StaticListener {
  name: string;
  address: string;
  port: number;
  json: Listener;
  lastUpdated: string;
}

export interface ListenerManagerOptions {
  runtime: ProxyRuntime;
  log: Logger;
  /** Bind address override (tests): listeners keep their own address in admin output. */
  listenHost: string | undefined;
  drainMs: number;
  /** Bind with SO_REUSEPORT: other workers bind the same ports (--concurrency > 1). */
  reusePort?: boolean;
  /**
   * This worker's index (per-worker listener stats); default 0. -1: the main thread of a proxy whose worker
   * threads serve all traffic: it keeps the listeners' configuration (admin, replays) and binds nothing.
   */
  worker?: number;
}

export class ListenerManager {
  readonly active = new Map<string, ActiveListener>();
  readonly draining = new Set<ActiveListener>();
  readonly routes = new Map<string, RouteConfigState>();
  readonly staticListeners: StaticListener[] = [];
  private readonly pending = new Map<string, PendingUpdate>();
  private readonly hashes = new Map<string, string>();
  private readonly o: ListenerManagerOptions;
  private readonly s: Record<string, number>;
  /** Called when a listener finishes warming. */
  onWarm: () => void = () => undefined;

  /** The main thread of a proxy whose worker threads serve: configuration only, no socket is bound. */
  private readonly controlOnly: boolean;

  constructor(o: ListenerManagerOptions) {
    this.o = o;
    this.controlOnly = o.worker === -1;
    const st = o.runtime.store;
    this.s = {};
    for (const k of [
      'listener_added',
      'listener_modified',
      'listener_removed',
      'listener_create_success',
      'listener_create_failure',
      'listener_in_place_updated',
      'listener_stopped',
    ]) {
      this.s[k] = st.counter(`listener_manager.${k}`);
    }
    st.computedGauge('listener_manager.total_listeners_active', () => this.staticListeners.length + [...this.active.values()].filter((l) => l.warm).length);
    st.computedGauge('listener_manager.total_listeners_warming', () => [...this.active.values()].filter((l) => !l.warm).length + this.pending.size);
    st.computedGauge('listener_manager.total_listeners_draining', () => this.draining.size);
    st.computedGauge('listener_manager.total_filter_chains_draining', () => 0);
  }

  private inc(k: string): void {
    const i = this.s[k];
    if (i !== undefined) this.o.runtime.store.inc(i);
  }

  /** Number of listeners (dynamic) still warming. */
  get warmingCount(): number {
    return [...this.active.values()].filter((l) => !l.warm).length + this.pending.size;
  }

  private provider(name: string): RouteConfigState {
    let p = this.routes.get(name);
    if (!p) {
      p = {
        name,
        current: undefined,
        text: undefined,
        get json(): RouteConfiguration | undefined {
          return this.text === undefined ? undefined : (JSON.parse(this.text) as RouteConfiguration);
        },
        versionInfo: '',
        lastUpdated: '',
        refs: 0,
      };
      this.routes.set(name, p);
    }
    return p;
  }

  private makeHcm(spec: ListenerSpec): Served & { warm: boolean } {
    let routes: RouteProvider;
    if (spec.hcm.rdsName !== undefined) {
      const p = this.provider(spec.hcm.rdsName);
      p.refs++;
      routes = p;
    } else routes = { name: '', current: spec.hcm.inlineRoutes };
    const hcm = new HttpConnectionManager(spec.hcm, routes, this.o.runtime, spec.bufferLimit);
    let chains: ChainDispatcher | undefined;
    if (spec.chains) {
      // TLS / SNI / tcp_proxy chains: the other HCM chains get their own HCM and RDS subscription.
      chains = new ChainDispatcher(spec.chains, hcm, spec.hcm, {
        runtime: this.o.runtime,
        secrets: (this.o.runtime.secrets ??= new SecretStore(this.o.log)),
        listenerStatName: `${spec.address}_${spec.port}`,
        accessLogs: spec.accessLogs,
        factory: { makeHcm: (s) => this.makeHcm({ ...spec, hcm: s, chains: undefined }).hcm },
      });
    }
    return { hcm, chains, warm: routes.current !== undefined };
  }

  /** Drops the RDS subscriptions of a listener's HCMs (the dispatcher's extra ones too). */
  private unref(s: Served): void {
    for (const h of s.chains?.extraHcms ?? []) this.unref({ hcm: h, chains: undefined });
    const name = s.hcm.spec.rdsName;
    if (name === undefined) return;
    const p = this.routes.get(name);
    if (p && --p.refs <= 0) this.routes.delete(name);
  }

  /** Where a listener of this manager binds (listenHost overrides every listener's own address). */
  private bindHost(address: string): string {
    return this.o.listenHost ?? address;
  }

  /**
   * The addresses of an LDS update that no listener of this manager (active or draining) holds yet: the ones
   * a bind would newly take, which the main thread probes before any worker binds them.
   */
  newBindAddresses(resources: readonly Listener[]): BindAddress[] {
    const held = new Set([...this.active.values(), ...this.draining].map((l) => bindKey(this.bindHost(l.spec.address), l.spec.port)));
    const out = new Map<string, BindAddress>();
    for (const r of resources) {
      const sa = r.address?.socket_address;
      const port = sa?.port_value ?? 0;
      if (sa?.address === undefined || !Number.isInteger(port) || port <= 0) continue;
      const host = this.bindHost(sa.address);
      const key = bindKey(host, port);
      if (!held.has(key)) out.set(key, { host, port });
    }
    return [...out.values()];
  }

  /**
   * State-of-the-world LDS. Valid listeners apply (bind / update / remove); invalid ones keep their old version.
   * A listener whose address is in `refused` (another process holds it) is not bound, as one whose bind fails.
   */
  async applyLds(resources: readonly Listener[], version: string, refused?: RefusedBinds): Promise<{ errors: string[] }> {
    const errors: string[] = [];
    const names = new Set(resources.map((r) => r.name ?? ''));
    for (const [name, l] of [...this.active]) {
      if (names.has(name)) continue;
      this.active.delete(name);
      this.hashes.delete(name);
      const p = this.pending.get(name);
      if (p) {
        this.pending.delete(name);
        this.unref(p);
        release(p);
      }
      this.inc('listener_removed');
      this.drainListener(l);
    }
    for (const r of resources) {
      const name = r.name ?? '';
      const hash = JSON.stringify(r);
      if (this.hashes.get(name) === hash) continue;
      let spec: ListenerSpec;
      try {
        spec = parseListener(r);
      } catch (e) {
        errors.push(e instanceof ConfigError ? e.message : `listener '${name}': ${(e as Error).message}`);
        continue;
      }
      const existing = this.active.get(name);
      if (existing && existing.spec.address === spec.address && existing.spec.port === spec.port) {
        // In-place update: same socket, new config for new connections once warm.
        const { hcm, chains, warm } = this.makeHcm(spec);
        const old = this.pending.get(name);
        if (old) {
          this.unref(old);
          release(old);
          this.pending.delete(name);
        }
        this.hashes.set(name, hash);
        this.inc('listener_modified');
        this.inc('listener_in_place_updated');
        const u: PendingUpdate = { spec, json: r, hcm, chains, versionInfo: version };
        if (warm && existing.warm) this.swap(existing, u);
        else if (!existing.warm) {
          // Still warming its first config: replace what it will serve.
          this.swap(existing, u);
        } else this.pending.set(name, u);
        continue;
      }
      // New listener (or a new address: a new socket, the old listener drains).
      const { hcm, chains, warm } = this.makeHcm(spec);
      const l = new ActiveListener(spec, r, hcm, chains, {
        versionInfo: version,
        store: this.o.runtime.store,
        log: this.o.log,
        warm,
        worker: this.o.worker ?? 0,
      });
      try {
        const probed = refused?.get(bindKey(this.bindHost(spec.address), spec.port));
        if (probed) throw probed;
        if (!this.controlOnly) await l.listen(this.bindHost(spec.address), spec.port, this.o.reusePort === true);
      } catch (e) {
        this.unref(l);
        l.release();
        this.inc('listener_create_failure');
        // Envoy's NACK: "cannot bind '0.0.0.0:8080': Address already in use"; the other listeners still apply.
        const err = e as NodeJS.ErrnoException;
        errors.push(`listener '${name}': cannot bind '${spec.address}:${spec.port}': ${bindErrorText(err)}`);
        // Once per process: the main thread (it probed), or the first worker for a failure only binding showed.
        const worker = this.o.worker ?? 0;
        if (worker === -1 || (worker === 0 && !refused?.has(bindKey(this.bindHost(spec.address), spec.port)))) this.logBindFailure(name, spec, err);
        continue;
      }
      this.inc('listener_create_success');
      this.hashes.set(name, hash);
      if (existing) {
        this.inc('listener_modified');
        this.drainListener(existing);
      } else this.inc('listener_added');
      this.active.set(name, l);
      if (warm) this.onWarm();
    }
    return { errors };
  }

  /** Says which port, who holds it and what to change; once per process (the main thread's manager). */
  private logBindFailure(name: string, spec: ListenerSpec, err: NodeJS.ErrnoException): void {
    const address = `${this.bindHost(spec.address)}:${spec.port}`;
    const fields = { listener: name, address, code: err.code };
    if (err.code === 'EADDRINUSE') {
      this.o.log.error(
        fields,
        `listener ${name} cannot bind ${address}: another process holds port ${spec.port} (another meshgate, a quick start or Envoy on this machine?). ` +
          `The listener is not created and the LDS update is rejected; the other listeners keep serving. Stop that process, or serve this Gateway port on another one: change the targetPort the gateway Service maps it to`,
      );
    } else {
      this.o.log.error(
        fields,
        `listener ${name} cannot bind ${address}: ${bindErrorText(err)}. The listener is not created and the LDS update is rejected; change the targetPort the gateway Service maps this Gateway port to`,
      );
    }
  }

  private swap(l: ActiveListener, u: PendingUpdate): void {
    const old: Served = { hcm: l.hcm, chains: l.chains };
    l.update(u.spec, u.json, u.hcm, u.chains, u.versionInfo);
    if (old.hcm !== u.hcm) this.unref(old);
    if (!l.warm && u.hcm.routes.current !== undefined) {
      l.setWarm();
      this.onWarm();
    }
  }

  private drainListener(l: ActiveListener): void {
    this.draining.add(l);
    this.unref(l);
    void l.drain(this.o.drainMs).then(() => {
      this.draining.delete(l);
      l.release();
    });
  }

  /** RDS: compile each route configuration; listeners waiting for it start serving. */
  applyRds(resources: readonly RouteConfiguration[], version: string): { errors: string[] } {
    const errors: string[] = [];
    for (const r of resources) {
      const name = r.name ?? '';
      const p = this.routes.get(name);
      if (!p) continue; // not (or no longer) subscribed
      const text = JSON.stringify(r);
      if (p.text === text) continue;
      try {
        p.current = compileRouteConfig(r);
      } catch (e) {
        errors.push(e instanceof ConfigError ? e.message : `route configuration '${name}': ${(e as Error).message}`);
        continue;
      }
      p.text = text;
      p.versionInfo = version;
      p.lastUpdated = new Date().toISOString();
    }
    // Warm listeners and pending updates whose routes are now present.
    for (const l of this.active.values()) {
      if (!l.warm && l.hcm.routes.current !== undefined) {
        l.setWarm();
        this.onWarm();
      }
    }
    for (const [name, u] of [...this.pending]) {
      if (u.hcm.routes.current === undefined) continue;
      const l = this.active.get(name);
      this.pending.delete(name);
      if (l) this.swap(l, u);
    }
    return { errors };
  }

  /** RDS names to subscribe to. */
  rdsNames(): string[] {
    return [...this.routes.keys()].sort();
  }

  /**
   * Graceful drain of every listener (drain_listeners?graceful / SIGTERM), Envoy's immediate drain strategy:
   * responses carry `connection: close`, idle connections close, new connections are still accepted (and
   * drained right away) until the drain time is over or no connection is left; then the listeners stop.
   */
  async drainAll(drainMs: number): Promise<void> {
    for (const l of this.active.values()) l.startDrainSequence();
    const end = Date.now() + drainMs;
    while (Date.now() < end && this.activeConnections > 0) await new Promise((r) => setTimeout(r, 50));
    await Promise.all([...this.active.values()].map((l) => l.drain(0)));
  }

  get activeConnections(): number {
    let n = 0;
    for (const l of this.active.values()) n += l.activeConnections;
    for (const l of this.draining) n += l.activeConnections;
    return n;
  }

  close(): void {
    for (const l of [...this.active.values(), ...this.draining]) {
      l.close();
      l.release();
    }
    this.active.clear();
    this.draining.clear();
  }
}
