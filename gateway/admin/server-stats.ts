// Envoy's server.* stats (ALL_SERVER_STATS in source/server/server.h) and listener_manager.workers_started,
// computed when read. What has no meaning here (hot restart, debug assertions, certificate expiry) has a
// constant value, so dashboards built for Envoy find every name.
import type { StatsStore } from '../stats/store.ts';
import type { ServerState } from './server-state.ts';

/** Never-incremented counters Envoy's server scope has. */
const ZERO_COUNTERS = [
  'server.debug_assertion_failures',
  'server.envoy_bug_failures',
  'server.dynamic_unknown_fields',
  'server.static_unknown_fields',
  'server.wip_protos',
];

export function registerServerStats(store: StatsStore, state: ServerState, o: { started: number; concurrency: number; activeConnections: () => number }): void {
  store.computedGauge('server.state', () => state.value);
  store.computedGauge('server.live', () => (state.live ? 1 : 0));
  store.computedGauge('server.uptime', () => Math.floor((Date.now() - o.started) / 1000));
  store.computedGauge('server.concurrency', () => o.concurrency);
  store.computedGauge('server.memory_allocated', () => process.memoryUsage().heapUsed);
  store.computedGauge('server.memory_heap_size', () => process.memoryUsage().heapTotal);
  store.computedGauge('server.memory_physical_size', () => process.memoryUsage().rss);
  store.computedGauge('server.total_connections', o.activeConnections);
  store.computedGauge('server.parent_connections', () => 0);
  store.computedGauge('server.hot_restart_epoch', () => 0);
  store.computedGauge('server.days_until_first_cert_expiring', () => 2147483647);
  for (const c of ZERO_COUNTERS) store.counter(c);
  store.computedGauge('listener_manager.workers_started', () => (state.workersStarted ? 1 : 0));
}
