// The load-balancer contract: built for one set of eligible hosts (rebuilt when membership or health
// changes), `choose()` per request. `random` returns a float in [0, 1) and is injectable for tests.
import type { Host } from './host.ts';

export type Random = () => number;

export interface LoadBalancer {
  /** `hash`: the request's consistent-hash key (RING_HASH / MAGLEV); other balancers ignore it. */
  choose(hash?: bigint): Host | undefined;
}

export function allWeightsEqual(hosts: readonly Host[]): boolean {
  const w = hosts[0]?.weight;
  for (const h of hosts) if (h.weight !== w) return false;
  return true;
}
