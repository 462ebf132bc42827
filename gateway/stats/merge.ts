// Stats across workers. Every worker counts its own traffic in its own store; /stats and /stats/prometheus
// show one process-wide set, as Envoy's shared store does. Traffic stats are summed over the workers.
// Stats that describe configuration (membership, update counts, listener and cluster manager totals,
// server state) are the same in every worker because every worker applies the same updates: they are taken
// from the main thread's store alone, or they would count once per worker. Outlier-detection stats are
// counted by the main thread's detector alone (it decides ejections for all workers). Circuit-breaker state
// gauges (1 while a limit is reached) come from the process-wide counts, so every worker has the same value:
// the largest is taken rather than the sum. Histograms do not go through here: each stats flush the workers
// hand their values to the main thread's store (StatsStore.mergeHistograms), as Envoy's TLS histograms merge
// into their parent, so the main thread's samples hold every thread's histograms.
import { HISTOGRAM, type StatSample } from './store.ts';

export type MergeRule = 'sum' | 'main' | 'max';

const SUMMED_SERVER = new Set(['server.total_connections', 'server.memory_allocated', 'server.memory_heap_size']);
/** istio_build: 1 in every thread that built Istio's stats filter; one process reports it once. */
const ISTIO_BUILD = 'istiocustom.istio_build.';
const MAIN_PREFIX = /^(server|cluster_manager|listener_manager|control_plane|runtime|sds)\./;
const CLUSTER_CONFIG =
  /\.(outlier_detection\.[a-z_0-9]+|membership_(total|healthy|degraded|excluded|change)|max_host_weight|version|update_(attempt|success|failure|empty|no_rebuild|rejected)|assignment_(stale|timeout_received|use_cached)|init_fetch_timeout|warming_state)$/;
const CIRCUIT_BREAKER = /\.circuit_breakers\.(default|high)\.[a-z_]+$/;

export function mergeRule(name: string): MergeRule {
  if (SUMMED_SERVER.has(name)) return 'sum';
  if (MAIN_PREFIX.test(name) || name.startsWith(ISTIO_BUILD)) return 'main';
  if (name.startsWith('cluster.')) {
    if (CIRCUIT_BREAKER.test(name)) return 'max';
    if (CLUSTER_CONFIG.test(name)) return 'main';
  }
  return 'sum';
}

/** The stats a worker contributes (its configuration stats are the main thread's already). */
export function workerShare(samples: StatSample[]): StatSample[] {
  return samples.filter((s) => s.kind !== HISTOGRAM && mergeRule(s.name) !== 'main');
}

/**
 * One sorted set from the main thread's samples and the workers' shares. A stat a worker created and the
 * main thread has not (a response code only that worker has seen) is added with the worker's kind.
 */
export function mergeSamples(main: StatSample[], workers: StatSample[][]): StatSample[] {
  const byName = new Map<string, StatSample>();
  for (const s of main) byName.set(s.name, { ...s });
  for (const list of workers) {
    for (const s of list) {
      const rule = mergeRule(s.name);
      if (rule === 'main' || s.kind === HISTOGRAM) continue;
      const cur = byName.get(s.name);
      if (!cur) {
        byName.set(s.name, { ...s });
        continue;
      }
      cur.value = rule === 'max' ? Math.max(cur.value, s.value) : cur.value + s.value;
      cur.used = cur.used || s.used;
    }
  }
  const out = [...byName.values()];
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}
