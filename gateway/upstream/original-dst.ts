// ORIGINAL_DST clusters (Envoy's OriginalDstCluster, lb_policy CLUSTER_PROVIDED; Istio DestinationRule
// loadBalancer PASSTHROUGH): no configured hosts; the load balancer picks the downstream's original destination
// and creates a host for that address on demand.
//
// Host choice, as Envoy's OriginalDstCluster::LoadBalancer::chooseHost (filter-state and metadata overrides do
// not exist here):
//  1. with original_dst_lb_config.use_http_header, the first `x-envoy-original-dst-host` (or http_header_name)
//     request header, which must be `ip:port` / `[ipv6]:port`; an invalid value counts
//     `original_dst_host_invalid` and is ignored;
//  2. otherwise the downstream connection's local address, but only when the listener restored it
//     (use_original_dst / the original_dst listener filter reading SO_ORIGINAL_DST). Envoy does not fall back
//     to a plain local address: without a restored destination there is no host, and the router answers
//     503 `no healthy upstream` (UH). This proxy NACKs use_original_dst, so on it only the header selects hosts;
//  3. upstream_port_override replaces the port.
// Hosts live in the cluster until a cleanup pass (every cleanup_interval, default 5 s) finds one neither chosen
// since the previous pass nor holding connections or requests (Envoy's used_ bit plus
// original_dst_rely_on_idle_timeout); its idle pool is then closed.
import { isIPv4, isIPv6 } from 'node:net';
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { Host } from './host.ts';
import { firstHeaderValue } from '../../xds/header-list.ts';

const ORIGINAL_DST_HOST_HEADER = 'x-envoy-original-dst-host';
export const DEFAULT_CLEANUP_INTERVAL_MS = 5000;

export interface OriginalDstConfig {
  /** Lowercase request header to read, or undefined when use_http_header is off. */
  headerName: string | undefined;
  portOverride: number | undefined;
  cleanupIntervalMs: number;
}

/** What the router (or tcp_proxy) knows about the downstream when it asks for a host. */
export interface ChooseContext {
  /** Request headers as a flat lowercase [name, value, ...] array (HTTP only). */
  headers?: readonly string[] | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
  /** The listener restored the original destination into the local address (SO_ORIGINAL_DST). */
  localAddressRestored?: boolean | undefined;
}

const checkOriginalDstLbConfig = fieldTable('envoy.config.cluster.v3.Cluster.OriginalDstLbConfig', {
  use_http_header: true,
  http_header_name: true,
  upstream_port_override: true,
});

/** original_dst_lb_config and cleanup_interval of a Cluster, validated as Envoy's OriginalDstClusterFactory does. */
export function parseOriginalDstConfig(o: envoy.config.cluster.v3.Cluster.OriginalDstLbConfig, where: string, cleanupMs: number): OriginalDstConfig {
  const w = `${where}.original_dst_lb_config`;
  if (o.metadata_key !== undefined) throw new ConfigError(`${w}.metadata_key is not supported by this proxy`);
  checkOriginalDstLbConfig(o, w);
  const use = o.use_http_header === true;
  const name = o.http_header_name ?? '';
  if (!use && name !== '') {
    throw new ConfigError(
      `${where}: ORIGINAL_DST cluster: invalid config http_header_name=${name} and use_http_header is false. Set use_http_header to true if http_header_name is desired.`,
    );
  }
  const portOverride = o.upstream_port_override;
  if (portOverride !== undefined && (!Number.isInteger(portOverride) || portOverride < 0 || portOverride > 65535))
    throw new ConfigError(`${w}.upstream_port_override must be a port number`);
  return { headerName: use ? (name || ORIGINAL_DST_HOST_HEADER).toLowerCase() : undefined, portOverride, cleanupIntervalMs: cleanupMs };
}

/**
 * Network::Utility::parseInternetAddressAndPortNoThrow(v, v6only=false): `a.b.c.d:port` or `[v6]:port`,
 * port 0-65535; anything else (hostnames, a missing port, spaces) is undefined.
 */
export function parseAddressAndPort(v: string): { address: string; port: number } | undefined {
  let ip: string;
  let port: string;
  if (v.startsWith('[')) {
    const end = v.indexOf(']:');
    if (end < 0) return undefined;
    ip = v.slice(1, end);
    port = v.slice(end + 2);
    if (!isIPv6(ip)) return undefined;
    ip = new URL(`http://[${ip}]/`).hostname.slice(1, -1); // canonical form, as Envoy prints it
  } else {
    const colon = v.lastIndexOf(':');
    if (colon < 0) return undefined;
    ip = v.slice(0, colon);
    port = v.slice(colon + 1);
    if (!isIPv4(ip)) return undefined;
  }
  if (!/^\d{1,5}$/.test(port)) return undefined;
  const p = Number(port);
  return p > 65535 ? undefined : { address: ip, port: p };
}

/** The host map of one ORIGINAL_DST cluster and its load balancer. */
export class OriginalDstHosts {
  readonly config: OriginalDstConfig;
  private readonly byKey = new Map<string, { host: Host; used: boolean }>();
  private timer: NodeJS.Timeout | undefined;
  /** Called with the new host list whenever hosts are added or removed (membership, /clusters). */
  private readonly onChange: (hosts: Host[]) => void;
  /** Called when an override header does not parse (cluster.<name>.original_dst_host_invalid). */
  private readonly onInvalid: () => void;

  constructor(config: OriginalDstConfig, hooks: { onChange: (hosts: Host[]) => void; onInvalid: () => void }) {
    this.config = config;
    this.onChange = hooks.onChange;
    this.onInvalid = hooks.onInvalid;
    this.timer = setInterval(() => this.cleanup(), config.cleanupIntervalMs);
    this.timer.unref();
  }

  get hosts(): Host[] {
    return [...this.byKey.values()].map((e) => e.host);
  }

  /** The destination for this request or connection, or undefined (the caller answers 503 UH). */
  choose(ctx: ChooseContext | undefined): Host | undefined {
    if (!ctx) return undefined;
    let dst: { address: string; port: number } | undefined;
    const name = this.config.headerName;
    if (name && ctx.headers) {
      const v = firstHeaderValue(ctx.headers, name);
      if (v !== undefined) {
        dst = parseAddressAndPort(v);
        if (!dst) this.onInvalid();
      }
    }
    if (!dst && ctx.localAddressRestored && ctx.localAddress !== undefined && ctx.localPort !== undefined) {
      dst = { address: ctx.localAddress, port: ctx.localPort };
    }
    if (!dst) return undefined;
    if (this.config.portOverride !== undefined) dst = { address: dst.address, port: this.config.portOverride };
    const probe = new Host(dst.address, dst.port);
    const e = this.byKey.get(probe.key);
    if (e) {
      e.used = true;
      return e.host;
    }
    // A new host: weight 1, health UNKNOWN, no locality (as Envoy creates it).
    this.byKey.set(probe.key, { host: probe, used: true });
    this.onChange(this.hosts);
    return probe;
  }

  /** One cleanup pass: drops hosts not chosen since the last pass that hold no connection or request. */
  cleanup(): void {
    let removed = false;
    for (const [k, e] of this.byKey) {
      if (e.used) {
        e.used = false;
        continue;
      }
      const h = e.host;
      if (h.activeRq > 0 || h.cxActive > 0) continue;
      this.byKey.delete(k);
      removed = true;
      const p = h.pool;
      h.pool = undefined;
      if (p) p.close().catch(() => undefined);
    }
    if (removed) this.onChange(this.hosts);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
