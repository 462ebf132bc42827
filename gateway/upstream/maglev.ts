// MAGLEV (Envoy MaglevLoadBalancer): a lookup table of table_size entries (default 65537, a prime) filled
// by each host's permutation (offset = xxHash64(key) % M, skip = xxHash64(key, seed 1) % (M - 1) + 1),
// hosts taking turns in proportion to their weight. A request hash picks table[hash % M]; without a
// request hash a random one is used.
import type { Host } from './host.ts';
import type { LoadBalancer, Random } from './load-balancer.ts';
import { randomHash } from './ring-hash.ts';
import { xxHash64 } from './xxhash64.ts';

export const DEFAULT_TABLE_SIZE = 65537;

export class MaglevLoadBalancer implements LoadBalancer {
  readonly table: (Host | undefined)[];
  readonly tableSize: number;
  private readonly random: Random;

  constructor(hosts: readonly Host[], tableSize = DEFAULT_TABLE_SIZE, random: Random = Math.random) {
    this.random = random;
    this.tableSize = tableSize;
    const M = BigInt(tableSize);
    const table: (Host | undefined)[] = new Array<Host | undefined>(tableSize).fill(undefined);
    this.table = table;
    const total = hosts.reduce((s, h) => s + h.weight, 0);
    if (hosts.length === 0 || total <= 0) {
      this.table = [];
      return;
    }
    const entries = hosts.map((h) => ({
      host: h,
      offset: Number(xxHash64(h.key) % M),
      skip: Number((xxHash64(h.key, 1n) % (M - 1n)) + 1n),
      weight: h.weight / total,
      target: 0,
      next: 0,
    }));
    const maxWeight = Math.max(...entries.map((e) => e.weight));
    // offset + skip * next stays far below 2^53 for table sizes Envoy allows (< 5,000,011).
    const perm = (e: { offset: number; skip: number; next: number }): number => (e.offset + e.skip * e.next) % tableSize;
    let filled = 0;
    for (let iteration = 1; filled < tableSize; iteration++) {
      for (let i = 0; i < entries.length && filled < tableSize; i++) {
        const e = entries[i];
        if (!e) continue;
        // A host of weight maxWeight / k takes a slot every k iterations.
        if (iteration * e.weight < e.target) continue;
        e.target += maxWeight;
        let c = perm(e);
        while (table[c] !== undefined) {
          e.next++;
          c = perm(e);
        }
        table[c] = e.host;
        e.next++;
        filled++;
      }
    }
  }

  chooseByHash(h: bigint): Host | undefined {
    if (this.table.length === 0) return undefined;
    return this.table[Number(h % BigInt(this.tableSize))];
  }

  choose(hash?: bigint): Host | undefined {
    return this.chooseByHash(hash ?? randomHash(this.random));
  }
}
