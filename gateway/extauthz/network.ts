// envoy.filters.network.ext_authz (source/extensions/filters/network/ext_authz/ext_authz.cc): a CUSTOM
// AuthorizationPolicy with a gRPC provider on a gateway's TCP server. istiod puts it after a network RBAC filter
// whose shadow rules record the matched policy in the connection's dynamic metadata; filter_enabled_metadata
// makes the check run only then (else `disabled`).
//
// The CheckRequest has the connection only: source (peer address, principal from the client certificate) and
// destination (local address, the SNI as its service). OK lets the connection go on; denied, or an error without
// failure_mode_allow, closes it without a byte (`cx_closed`). Counters `ext_authz.<stat_prefix>.` total, ok,
// denied, error, failure_mode_allowed, disabled, cx_closed, and the gauge active.
//
// Envoy checks on the connection's first bytes while tcp_proxy already connects upstream; here the check runs
// when the connection is handed to the chain and tcp_proxy starts only once it allows, as the network RBAC
// filter is decided here: a denied client never reaches the backend.
import type { Logger } from 'pino';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { connectionPeers, type CheckConnection } from './check-request.ts';
import type { NetworkExtAuthzSpec } from './config.ts';
import type { PendingCall } from './cluster-call.ts';
import { grpcCheck } from './grpc-client.ts';
import type { AuthzResponse } from './response.ts';

export const NETWORK_EXT_AUTHZ_FILTER = 'envoy.filters.network.ext_authz';

const COUNTERS = ['total', 'ok', 'denied', 'error', 'failure_mode_allowed', 'disabled', 'cx_closed'] as const;
type Counter = (typeof COUNTERS)[number];

export type MetadataLookup = (filter: string, path: readonly string[]) => unknown;

/** The decision for one connection: go on (with the service's dynamic metadata, if any) or close. */
export interface NetworkDecision {
  allowed: boolean;
  metadata: Record<string, unknown> | undefined;
}

export class NetworkExtAuthz {
  private readonly spec: NetworkExtAuthzSpec;
  private readonly store: StatsStore;
  private readonly clusters: ClusterManager;
  private readonly log: Logger;
  private readonly counters: Record<Counter, number>;
  private readonly active: number;

  constructor(spec: NetworkExtAuthzSpec, o: { store: StatsStore; clusters: ClusterManager; log: Logger }) {
    this.spec = spec;
    this.store = o.store;
    this.clusters = o.clusters;
    this.log = o.log;
    const c = {} as Record<Counter, number>;
    for (const n of COUNTERS) c[n] = o.store.counter(spec.statPrefix + n);
    this.counters = c;
    this.active = o.store.gauge(`${spec.statPrefix}active`);
  }

  /**
   * Checks a connection; `done` runs once, maybe before this returns (disabled, no cluster), never after the
   * returned call is cancelled (the client went away).
   */
  check(conn: CheckConnection, sni: string | undefined, metadata: MetadataLookup, done: (d: NetworkDecision) => void): PendingCall {
    const enabled = this.spec.filterEnabled;
    if (enabled && !enabled({ metadata })) {
      this.store.inc(this.counters.disabled);
      done({ allowed: true, metadata: undefined });
      return { cancel: () => undefined };
    }
    const peers = connectionPeers(conn, this.spec.includePeerCertificate);
    if (sni) peers.destination.service = sni;
    this.store.inc(this.counters.total);
    this.store.inc(this.active);
    let open = true;
    const finish = (): void => {
      if (!open) return;
      open = false;
      this.store.dec(this.active);
    };
    const call = grpcCheck(this.clusters, this.spec.service, { ...peers, timeMs: Date.now(), http: undefined }, (r: AuthzResponse) => {
      finish();
      done(this.decide(r));
    });
    return {
      cancel: () => {
        if (!open) return;
        finish();
        call.cancel();
      },
    };
  }

  private decide(r: AuthzResponse): NetworkDecision {
    const st = this.store;
    const c = this.counters;
    st.inc(r.status === 'ok' ? c.ok : r.status === 'denied' ? c.denied : c.error);
    if (r.status === 'denied' || (r.status === 'error' && !this.spec.failureModeAllow)) {
      st.inc(c.cx_closed);
      if (r.reason) this.log.debug({ reason: r.reason, cluster: this.spec.service.cluster }, 'ext_authz check failed; connection closed');
      return { allowed: false, metadata: undefined };
    }
    if (r.status === 'error') st.inc(c.failure_mode_allowed);
    return { allowed: true, metadata: r.dynamicMetadata };
  }

  release(): void {
    for (const n of COUNTERS) this.store.release(this.counters[n]);
    this.store.release(this.active);
  }
}
