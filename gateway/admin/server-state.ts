// Envoy's server state (envoy.admin.v3.ServerInfo.State: the server.state gauge, /ready, /server_info) and its
// init manager: PRE_INITIALIZING until the xDS client starts, INITIALIZING until the first CDS and LDS are
// applied and every cluster and listener is warm, then LIVE; DRAINING once drain starts. /healthcheck/fail
// shows a LIVE server as DRAINING and fails readiness until /healthcheck/ok.
import type { Logger } from 'pino';
import type { StatsStore } from '../stats/store.ts';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../../xds/type-urls.ts';

/** The values of Envoy's server.state gauge, by name. */
const STATE = { LIVE: 0, DRAINING: 1, PRE_INITIALIZING: 2, INITIALIZING: 3 } as const;
export type ServerStateName = keyof typeof STATE;
const NAMES: readonly ServerStateName[] = ['LIVE', 'DRAINING', 'PRE_INITIALIZING', 'INITIALIZING'];

export class ServerState {
  /** Resolves when the server is first LIVE. */
  readonly ready: Promise<void>;
  private state: number = STATE.PRE_INITIALIZING;
  private healthcheckFailed = false;
  private initialized = false;
  private cdsSeen = false;
  private ldsSeen = false;
  private resolveReady!: () => void;
  private readonly store: StatsStore;
  private readonly log: Logger;
  private readonly started: number;
  private readonly warm: () => boolean;
  /** server.initialization_time_ms: from the process start until LIVE (Envoy's initialization_timer_). */
  private readonly initTime: number;

  /** `warm`: no cluster or listener is warming. `started`: the process start (Date.now()), for the log. */
  constructor(o: { store: StatsStore; log: Logger; started: number; warm: () => boolean }) {
    this.store = o.store;
    this.log = o.log;
    this.started = o.started;
    this.warm = o.warm;
    this.initTime = o.store.histogram('server.initialization_time_ms');
    this.ready = new Promise<void>((r) => (this.resolveReady = r));
  }

  /** The value of the server.state gauge: a LIVE server that fails health checks counts as DRAINING. */
  get value(): number {
    return this.healthcheckFailed && this.state === STATE.LIVE ? STATE.DRAINING : this.state;
  }

  /** The state's name, as /ready and /server_info print it. */
  get name(): ServerStateName {
    return NAMES[this.value] ?? 'LIVE';
  }

  /** The server.live gauge: LIVE and passing health checks. */
  get live(): boolean {
    return this.state === STATE.LIVE && !this.healthcheckFailed;
  }

  /** The first configuration has been applied and warmed (listener_manager.workers_started). */
  get workersStarted(): boolean {
    return this.initialized;
  }

  /** Readiness (15021 /healthz/ready): LIVE, passing health checks, and a CDS and an LDS accepted. */
  isReady(): boolean {
    return (
      (this.store.valueOf('cluster_manager.cds.update_success') ?? 0) > 0 &&
      (this.store.valueOf('listener_manager.lds.update_success') ?? 0) > 0 &&
      this.state === STATE.LIVE &&
      !this.healthcheckFailed
    );
  }

  /** The xDS client has started: the server waits for its first configuration. */
  initializing(): void {
    this.state = STATE.INITIALIZING;
  }

  /** An xDS response of `typeUrl` was applied (accepted or not). */
  applied(typeUrl: string): void {
    if (typeUrl === CLUSTER_TYPE) this.cdsSeen = true;
    if (typeUrl === LISTENER_TYPE) this.ldsSeen = true;
    this.checkInit();
  }

  /** Envoy's init manager: LIVE once CDS and LDS answered and every cluster and listener is warm. */
  checkInit(): void {
    if (this.initialized || !this.cdsSeen || !this.ldsSeen) return;
    if (!this.warm()) return;
    this.initialized = true;
    this.store.record(this.initTime, Date.now() - this.started);
    if (this.state === STATE.INITIALIZING) this.state = STATE.LIVE;
    this.log.info({ ms: Date.now() - this.started }, 'initial configuration applied; server is LIVE');
    this.resolveReady();
  }

  draining(): void {
    this.state = STATE.DRAINING;
  }

  healthcheckFail(): void {
    this.healthcheckFailed = true;
  }

  healthcheckOk(): void {
    this.healthcheckFailed = false;
  }
}
