// RING_HASH (Envoy RingHashLoadBalancer, a Ketama ring): every host gets entries `xxHash64("<ip:port>_<i>")`
// in proportion to its normalized weight, scaled so that the lightest host gets a whole number of entries
// and the ring has at least minimum_ring_size (default 1024) and at most maximum_ring_size (default 8M)
// entries. A request hash picks the first entry whose hash is >= it (wrapping to the first entry).
// Without a request hash (no hash policy matched) Envoy picks a random hash.
import type { Host } from './host.ts';
import type { LoadBalancer, Random } from './load-balancer.ts';
import { xxHash64 } from './xxhash64.ts';

export const DEFAULT_MIN_RING_SIZE = 1024;
export const DEFAULT_MAX_RING_SIZE = 8 * 1024 * 1024;

export class RingHashLoadBalancer implements LoadBalancer {
  /** Sorted entry hashes and the host of each entry. */
  readonly hashes: BigUint64Array;
  readonly hosts: Host[];
  private readonly random: Random;

  constructor(hosts: readonly Host[], minRingSize = DEFAULT_MIN_RING_SIZE, maxRingSize = DEFAULT_MAX_RING_SIZE, random: Random = Math.random) {
    this.random = random;
    const total = hosts.reduce((s, h) => s + h.weight, 0);
    const entries: { hash: bigint; host: Host }[] = [];
    if (hosts.length > 0 && total > 0) {
      const normalized = hosts.map((h) => h.weight / total);
      const minNormalized = Math.min(...normalized);
      const scale = Math.min(Math.ceil(minNormalized * minRingSize) / minNormalized, maxRingSize);
      let current = 0;
      let target = 0;
      hosts.forEach((h, idx) => {
        target += scale * (normalized[idx] as number);
        for (let i = 0; current < target; i++, current++) entries.push({ hash: xxHash64(`${h.key}_${i}`), host: h });
      });
      entries.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    }
    this.hashes = BigUint64Array.from(entries.map((e) => e.hash));
    this.hosts = entries.map((e) => e.host);
  }

  get size(): number {
    return this.hosts.length;
  }

  /** Ketama lookup (ketama_get_server, as Envoy ports it). */
  chooseByHash(h: bigint): Host | undefined {
    const ring = this.hashes;
    const n = ring.length;
    if (n === 0) return undefined;
    let lowp = 0;
    let highp = n;
    for (;;) {
      const midp = Math.floor((lowp + highp) / 2);
      if (midp === n) return this.hosts[0];
      const midval = ring[midp] as bigint;
      const midval1 = midp === 0 ? 0n : (ring[midp - 1] as bigint);
      if (h <= midval && h > midval1) return this.hosts[midp];
      if (midval < h) lowp = midp + 1;
      else highp = midp - 1;
      if (lowp > highp) return this.hosts[0];
    }
  }

  choose(hash?: bigint): Host | undefined {
    return this.chooseByHash(hash ?? randomHash(this.random));
  }
}

/** A uniformly random 64-bit value (Envoy's random hash when the request has none). */
export function randomHash(random: Random): bigint {
  const hi = BigInt(Math.floor(random() * 0x100000000));
  const lo = BigInt(Math.floor(random() * 0x100000000));
  return (hi << 32n) | lo;
}
