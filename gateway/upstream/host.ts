// One upstream endpoint (Envoy's Host): address, weight, EDS health, the load balancer's active-request
// count, per-host counters shown by /clusters, and its connection pool (created on first use).
import type { UpstreamPool } from './connection-pool.ts';

const HEALTH_UNKNOWN = 0;
const HEALTH_HEALTHY = 1;
export const HEALTH_UNHEALTHY = 2;
export const HEALTH_DRAINING = 3;
export const HEALTH_TIMEOUT = 4;
export const HEALTH_DEGRADED = 5;

export const HEALTH_BY_NAME: Record<string, number> = {
  UNKNOWN: HEALTH_UNKNOWN,
  HEALTHY: HEALTH_HEALTHY,
  UNHEALTHY: HEALTH_UNHEALTHY,
  DRAINING: HEALTH_DRAINING,
  TIMEOUT: HEALTH_TIMEOUT,
  DEGRADED: HEALTH_DEGRADED,
};

/**
 * Minimal view of a connection pool, so the load balancer and host code do not depend on the pools (h1-pool,
 * h2-pool): the router's contract (connection-pool.ts), and closing when the host leaves.
 */
export interface HostPool extends UpstreamPool {
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export interface Locality {
  region: string;
  zone: string;
  sub_zone: string;
}

export class Host {
  readonly address: string;
  readonly port: number;
  /** `ip:port`, as Envoy prints hosts. */
  readonly key: string;
  weight = 1;
  health = HEALTH_UNKNOWN;
  priority = 0;
  hostname = '';
  locality: Locality = { region: '', zone: '', sub_zone: '' };
  /** Istio's endpoint metadata (`name;namespace;canonical;revision;cluster`), '' without: istio_stats' destination peer. */
  workload = '';
  /** In-flight requests (least-request LB and /clusters rq_active). */
  activeRq = 0;
  // Per-host stats as /clusters prints them.
  cxActive = 0;
  cxConnectFail = 0;
  cxTotal = 0;
  rqError = 0;
  rqSuccess = 0;
  rqTimeout = 0;
  rqTotal = 0;
  pool: HostPool | undefined;
  /** The HTTP/2 pool HTTP/2 clients use when the cluster follows the downstream protocol (use_downstream_protocol_config). */
  h2Pool: HostPool | undefined;
  /** EDF scheduler state (weighted round robin / least request). */
  edfDeadline = 0;
  /** Ejected by outlier detection (Envoy's FAILED_OUTLIER_CHECK health flag). */
  outlierEjected = false;
  /** When the host joined the cluster (performance.now()), for slow start. */
  readonly createdAt = performance.now();

  constructor(address: string, port: number) {
    this.address = address;
    this.port = port;
    this.key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  }

  /** Usable by the load balancer without panic mode (Envoy: HEALTHY or UNKNOWN; DEGRADED is a lower tier). */
  get healthy(): boolean {
    return (this.health === HEALTH_HEALTHY || this.health === HEALTH_UNKNOWN) && !this.outlierEjected;
  }

  /** DEGRADED and not ejected: used only when its priority level has no healthy host (Envoy's degraded hosts). */
  get degraded(): boolean {
    return this.health === HEALTH_DEGRADED && !this.outlierEjected;
  }

  /**
   * DRAINING: left out of load balancing and of the panic computation (Envoy's EDS_STATUS_DRAINING flag puts the
   * host in the excluded set). UNHEALTHY and TIMEOUT hosts are not excluded: they count as unhealthy.
   */
  get excluded(): boolean {
    return this.health === HEALTH_DRAINING;
  }
}
