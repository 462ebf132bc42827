// Name resolution for STRICT_DNS / LOGICAL_DNS clusters (Envoy's c-ares resolver with
// dns_lookup_family V4_ONLY, as Istio configures gateway DNS clusters). By default the system resolver
// (getaddrinfo, /etc/hosts included); with a resolver address configured (`--dns-server HOST:PORT` or env
// MESHGATE_DNS_SERVER) queries go to that server only, as a cluster's dns_resolution_config would make
// Envoy do. Tests point it at a DNS server of their own on loopback.
import { lookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';

export interface ResolvedAddress {
  address: string;
  /** Seconds, when the answer carried a TTL (respect_dns_ttl). */
  ttl: number | undefined;
}

let configured: string[] | undefined = parseServers(process.env.MESHGATE_DNS_SERVER);
let resolver: Resolver | undefined;

function parseServers(v: string | undefined): string[] | undefined {
  if (!v) return undefined;
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

/** Sets the DNS servers ("127.0.0.1:5353", comma-separated); empty/undefined: the system resolver. */
export function setDnsServers(servers: string | undefined): void {
  configured = parseServers(servers);
  resolver = undefined;
}

/** IPv4 addresses of `name` (V4_ONLY). Throws with the resolver's error (ENOTFOUND, ETIMEOUT, ...). */
export async function resolveHostname(name: string): Promise<ResolvedAddress[]> {
  if (!configured) {
    const addrs = await lookup(name, { all: true, family: 4 });
    return addrs.map((a) => ({ address: a.address, ttl: undefined }));
  }
  if (!resolver) {
    // One try, short timeout: the cluster re-resolves on its refresh interval anyway.
    resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers(configured);
  }
  const recs = await resolver.resolve4(name, { ttl: true });
  return recs.map((r) => ({ address: r.address, ttl: r.ttl }));
}
