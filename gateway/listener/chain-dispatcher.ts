// Connection dispatch for listeners with several filter chains, TLS or tcp_proxy (HTTPS, TLS passthrough and
// TCP gateway servers): Envoy's tls_inspector reads the ClientHello (SNI) without consuming it, the filter
// chain is selected (filter-chains.ts), then TLS is terminated with the chain's DownstreamTlsContext, or not
// (passthrough), and the connection goes to the chain's HTTP connection manager or tcp_proxy.
// An unknown SNI matches no chain: the connection is closed before any handshake, as Envoy does.
import { IstioMetrics, localNodeFromMetadata } from '../stats/istio-metrics.ts';
import type { CompiledAccessLog } from '../access-log/access-log-config.ts';
import { connectionEntry, connectionLog } from '../access-log/connection-entry.ts';
import { NR } from '../http/response-flags.ts';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { HttpConnectionManager, ProxyRuntime } from '../http/connection-manager.ts';
import { DownstreamTls } from '../tls/server-context.ts';
import type { SecretStore } from '../tls/secrets.ts';
import { MAX_CLIENT_HELLO, parseClientHello } from '../tls/client-hello.ts';
import { FilterChainMatcher, type FilterChainSpec } from './filter-chains.ts';
import { TcpProxy } from './tcp-proxy.ts';
import type { HcmSpec } from '../http/hcm-config.ts';
import { connectionRbacRequest } from '../http/rbac-request.ts';
import { rbacCounters } from '../rbac/stage.ts';
import { decideHttpRbac, type RbacFilter } from '../rbac/engine.ts';
import { metadataValue } from '../router/metadata-matcher.ts';
import { NETWORK_EXT_AUTHZ_FILTER, NetworkExtAuthz, type NetworkDecision } from '../extauthz/network.ts';
import type { PendingCall } from '../extauthz/cluster-call.ts';

/** What ALPN may offer behind TLS for an HCM's codec_type (intersected with the context's alpn_protocols). */
const CODEC_ALPN: Record<HcmSpec['codec'], string[]> = { AUTO: ['h2', 'http/1.1'], HTTP1: ['http/1.1'], HTTP2: ['h2'] };

/** Envoy's listener_filters_timeout default: the ClientHello must arrive within 15 s. */
const LISTENER_FILTERS_TIMEOUT_MS = 15_000;
/** How long a handshake waits for a secret not yet received over SDS (Envoy's initial_fetch_timeout default). */
const SDS_WARM_MS = 15_000;

const NETWORK_RBAC_FILTER = 'envoy.filters.network.rbac';

/** A network filter before tcp_proxy, ready to run: RBAC decides at once, ext_authz asks its service. */
type PreStage = { kind: 'rbac'; filter: RbacFilter; counters: Map<string, number> } | { kind: 'ext_authz'; filter: NetworkExtAuthz };

interface ChainRuntime {
  spec: FilterChainSpec;
  tls: DownstreamTls | undefined;
  hcm: HttpConnectionManager | undefined;
  tcp: TcpProxy | undefined;
  pre: PreStage[];
}

function rbacPreStage(filter: RbacFilter & { statPrefix: string }, store: ProxyRuntime['store']): PreStage {
  return { kind: 'rbac', filter, counters: rbacCounters(filter, (name) => store.counter(filter.statPrefix + name)) };
}

export interface ChainFactory {
  /** An HCM for a chain other than the listener's first one (RDS subscription included). */
  makeHcm(spec: HcmSpec): HttpConnectionManager;
}

export class ChainDispatcher {
  private readonly chains: ChainRuntime[];
  private readonly matcher: FilterChainMatcher<ChainRuntime>;
  private readonly log: Logger;
  private readonly runtime: ProxyRuntime;
  private readonly noMatch: number;
  /** The listener's access_log: offered connections no filter chain matched. */
  private readonly accessLogs: readonly CompiledAccessLog[];
  /** listener.<address>.ssl.* (Envoy's per-listener TLS counters). */
  private readonly ssl: Record<string, number> = {};
  /** HCMs created for chains after the first: the listener manager keeps their RDS subscriptions. */
  readonly extraHcms: HttpConnectionManager[] = [];

  constructor(
    chains: readonly FilterChainSpec[],
    mainHcm: HttpConnectionManager,
    mainHcmSpec: HcmSpec,
    o: { runtime: ProxyRuntime; secrets: SecretStore; listenerStatName: string; factory: ChainFactory; accessLogs?: readonly CompiledAccessLog[] },
  ) {
    this.runtime = o.runtime;
    this.accessLogs = o.accessLogs ?? [];
    this.log = o.runtime.log.child({ listener: o.listenerStatName });
    this.noMatch = o.runtime.store.counter(`listener.${o.listenerStatName}.no_filter_chain_match`);
    if (chains.some((c) => c.tls)) {
      for (const k of ['handshake', 'connection_error', 'fail_verify_no_cert', 'fail_verify_error', 'fail_verify_san', 'no_certificate']) {
        this.ssl[k] = o.runtime.store.counter(`listener.${o.listenerStatName}.ssl.${k}`);
      }
    }
    this.chains = chains.map((spec) => {
      let hcm: HttpConnectionManager | undefined;
      if (spec.hcm === mainHcmSpec) hcm = mainHcm;
      else if (spec.hcm) {
        hcm = o.factory.makeHcm(spec.hcm);
        this.extraHcms.push(hcm);
      }
      return {
        spec,
        // Behind TLS an HTTP chain serves what its codec does (AUTO: h2 and HTTP/1.1): ALPN offers those of the
        // configured protocols.
        tls: spec.tls ? new DownstreamTls(spec.tls, o.secrets, spec.hcm ? CODEC_ALPN[spec.hcm.codec] : undefined) : undefined,
        hcm,
        tcp: spec.tcp
          ? new TcpProxy(spec.tcp, {
              store: o.runtime.store,
              clusters: o.runtime.clusters,
              log: this.log,
              accessLogSinks: o.runtime.accessLogSinks,
              istio: spec.istioStats ? new IstioMetrics(o.runtime.store, o.runtime.node ?? localNodeFromMetadata(undefined), spec.istioStats) : undefined,
            })
          : undefined,
        pre: spec.network.map((f): PreStage =>
          f.kind === 'rbac'
            ? rbacPreStage(f.rbac, o.runtime.store)
            : { kind: 'ext_authz', filter: new NetworkExtAuthz(f.extAuthz, { store: o.runtime.store, clusters: o.runtime.clusters, log: this.log }) },
        ),
      };
    });
    this.matcher = new FilterChainMatcher(this.chains);
  }

  /** Takes an accepted connection: inspect, select a chain, terminate TLS if configured, hand over. */
  dispatch(sock: Socket, serveHttp: (s: Socket | TLSSocket, hcm: HttpConnectionManager) => void): void {
    if (!this.matcher.needsInspection) {
      this.route(sock, undefined, false, serveHttp);
      return;
    }
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      cleanup();
      sock.destroy();
    }, LISTENER_FILTERS_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
    };
    const onEnd = (): void => {
      cleanup();
      sock.destroy();
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseClientHello(buf);
      if (r.state === 'incomplete' && buf.length <= MAX_CLIENT_HELLO) return;
      cleanup();
      sock.pause();
      // Give the bytes back: the TLS handshake (or the passthrough upstream) reads them first.
      sock.unshift(buf);
      if (r.state === 'tls') this.route(sock, r.sni, true, serveHttp);
      else this.route(sock, undefined, false, serveHttp);
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', () => sock.destroy());
  }

  /**
   * The chain's network filters before tcp_proxy (AuthorizationPolicy on a TCP server), in chain order: RBAC
   * filters decide on the connection (their shadow rules leave the effective policy in the connection's dynamic
   * metadata, which a CUSTOM policy's ext_authz filter_enabled_metadata reads), ext_authz asks its service. Envoy
   * decides on the connection's first byte; here before tcp_proxy connects upstream, so a denied client never
   * reaches the backend, not even to read a server-first greeting. Denied: closed without a reply (NoFlush).
   */
  private runPreFilters(chain: ChainRuntime, s: Duplex, sni: string | undefined, go: () => void): void {
    if (chain.pre.length === 0) {
      go();
      return;
    }
    const sock = s as Socket;
    const tlsSocket = (s as { encrypted?: boolean }).encrypted === true ? (s as TLSSocket) : undefined;
    const conn = { remoteAddress: sock.remoteAddress ?? '', localAddress: sock.localAddress ?? '', localPort: sock.localPort ?? 0, tlsSocket };
    const req = connectionRbacRequest(conn, sni);
    const metadata: Record<string, Record<string, unknown>> = {};
    const lookup = (f: string, p: readonly string[]): unknown => metadataValue(metadata[f], p);
    let pending: PendingCall | undefined;
    let closed = false;
    const onClose = (): void => {
      closed = true;
      pending?.cancel();
    };
    const onError = (): void => undefined;
    // While a check is out the client may go away (the call is cancelled) or reset (no unhandled 'error').
    s.once('close', onClose);
    s.on('error', onError);
    const deny = (): void => {
      s.off('close', onClose);
      s.off('error', onError);
      s.destroy();
    };
    const step = (from: number): void => {
      for (let i = from; i < chain.pre.length; i++) {
        const p = chain.pre[i] as PreStage;
        if (p.kind === 'rbac') {
          const d = decideHttpRbac(p.filter, req);
          for (const name of d.counters) {
            const idx = p.counters.get(name);
            if (idx !== undefined) this.runtime.store.inc(idx);
          }
          if (d.metadata) metadata[NETWORK_RBAC_FILTER] = { ...(metadata[NETWORK_RBAC_FILTER] ?? {}), ...d.metadata };
          if (!d.allowed) return deny();
          continue;
        }
        let inline: NetworkDecision | undefined;
        let calling = true;
        const next = i + 1;
        const onDecision = (d: NetworkDecision): void => {
          if (!d.allowed) return deny();
          if (d.metadata) metadata[NETWORK_EXT_AUTHZ_FILTER] = d.metadata;
          step(next);
        };
        pending = p.filter.check(
          {
            remoteAddress: conn.remoteAddress,
            remotePort: sock.remotePort ?? 0,
            localAddress: conn.localAddress,
            localPort: conn.localPort,
            tlsSocket,
          },
          sni,
          lookup,
          (d) => {
            pending = undefined;
            if (calling) inline = d;
            else if (!closed) onDecision(d);
          },
        );
        calling = false;
        if (inline !== undefined) onDecision(inline);
        return;
      }
      s.off('close', onClose);
      s.off('error', onError);
      go();
    };
    step(0);
  }

  private route(sock: Socket, sni: string | undefined, isTls: boolean, serveHttp: (s: Socket | TLSSocket, hcm: HttpConnectionManager) => void): void {
    const chain = this.matcher.select(sni, isTls);
    if (!chain) {
      this.runtime.store.inc(this.noMatch);
      this.log.debug({ sni, peer: sock.remoteAddress }, 'no filter chain matches the connection (unknown SNI); closing it');
      if (this.accessLogs.length) {
        const c = connectionLog(sock, sni);
        c.responseFlags = NR;
        const e = connectionEntry(c);
        for (const l of this.accessLogs) if (!l.filter || l.filter(e)) this.runtime.accessLogSinks.write(l.path, l.format(e));
      }
      sock.destroy();
      return;
    }
    const next = (s: Duplex): void => {
      if (chain.hcm) serveHttp(s as Socket, chain.hcm);
      else if (chain.tcp) {
        const tcp = chain.tcp;
        this.runPreFilters(chain, s, sni, () => tcp.handle(s, sni, sock));
      } else s.destroy();
    };
    if (!chain.tls) {
      next(sock);
      return;
    }
    void chain.tls
      .accept(sock, { timeoutMs: chain.spec.handshakeTimeoutMs, warmMs: SDS_WARM_MS, log: this.log, sni }, (t) => {
        if (!t.getPeerX509Certificate()) this.runtime.store.inc(this.ssl.no_certificate as number);
        next(t);
      })
      .then((r) => {
        const c = this.ssl[r.ok ? 'handshake' : (r.failure ?? 'connection_error')];
        if (c !== undefined) this.runtime.store.inc(c);
        if (!r.ok) this.log.debug({ sni, peer: sock.remoteAddress, reason: r.reason }, 'TLS handshake failed; connection closed');
      });
  }

  /** Stats of the tcp_proxy chains and of the extra HCMs (their connections are gone). */
  release(): void {
    this.runtime.store.release(this.noMatch);
    for (const i of Object.values(this.ssl)) this.runtime.store.release(i);
    for (const c of this.chains) {
      c.tcp?.release();
      for (const p of c.pre) if (p.kind === 'ext_authz') p.filter.release();
    }
    for (const h of this.extraHcms) h.release();
  }
}
