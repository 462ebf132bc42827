// A worker thread (--concurrency > 1): its own data plane bound to the same listener ports as the main
// thread (SO_REUSEPORT), fed the main thread's xDS updates in order.
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { forwardingAccessLogSinks, forwardingAccessLogger } from '../access-log/text-format.ts';
import { hostStatValues } from '../admin/clusters.ts';
import { createDataPlane } from '../data-plane.ts';
import { workerShare } from '../stats/merge.ts';
import type { FromWorker, ToWorker, WorkerSettings } from './protocol.ts';
import { SharedCounters } from './shared-counters.ts';

const settings = workerData as WorkerSettings;
const port = parentPort;
if (!port) throw new Error('gateway/workers/worker.ts runs only as a worker thread');

const log = pino({ level: settings.logLevel, base: { name: 'meshgate-proxy', worker: settings.index } });
const dp = createDataPlane({
  log,
  listenHost: settings.listenHost,
  drainMs: settings.drainMs,
  accessLog: settings.accessLog ? forwardingAccessLogger((text) => port.postMessage({ op: 'access_log', text } satisfies FromWorker)) : undefined,
  accessLogSinks: forwardingAccessLogSinks((path, text) => port.postMessage({ op: 'access_log', text, path } satisfies FromWorker)),
  dnsServer: settings.dnsServer,
  localAddress: settings.localAddress,
  node: settings.node,
  reusePort: true,
  worker: settings.index,
  sharing: {
    counters: new SharedCounters(settings.sharedCounters),
    leader: false,
    report: (cluster, host, type) => port.postMessage({ op: 'outlier', cluster, host, type } satisfies FromWorker),
    onEjection: () => undefined,
  },
});
dp.store.computedGauge('server.total_connections', () => dp.listeners.activeConnections);
dp.store.computedGauge('server.memory_allocated', () => getHeapStatistics().used_heap_size);
dp.store.computedGauge('server.memory_heap_size', () => getHeapStatistics().total_heap_size);

const reply = (m: FromWorker): void => port.postMessage(m);
// Updates apply one after another, as the main thread received them.
let updates = Promise.resolve();

port.on('message', (m: ToWorker) => {
  switch (m.op) {
    case 'apply':
      updates = updates.then(async () => {
        let errors: string[];
        try {
          const refused =
            m.refused && new Map(m.refused.map(([k, e]) => [k, Object.assign(new Error(e.message), e.code !== undefined ? { code: e.code } : {})]));
          errors = (await dp.apply(m.update, refused)).errors;
        } catch (e) {
          errors = [`worker ${settings.index}: ${(e as Error).message}`];
        }
        reply({ op: 'applied', id: m.id, errors });
      });
      break;
    case 'stats':
      reply({ op: 'stats', id: m.id, stats: workerShare(dp.store.snapshot()) });
      break;
    case 'histograms':
      reply({ op: 'histograms', id: m.id, deltas: dp.store.takeHistogramDeltas() });
      break;
    case 'hosts': {
      const hosts: [string, number[]][] = [];
      for (const c of dp.clusters.active.values()) for (const h of c.hosts) hosts.push([`${c.name}::${h.key}`, hostStatValues(h)]);
      reply({ op: 'hosts', id: m.id, hosts });
      break;
    }
    case 'drain':
      void dp.listeners.drainAll(m.ms).then(() => reply({ op: 'done', id: m.id }));
      break;
    case 'reset_counters':
      dp.store.resetCounters();
      break;
    case 'ejection':
      dp.clusters.get(m.cluster)?.outlier?.setEjected(m.host, m.ejected);
      break;
    case 'close':
      // After the pending updates, so no listener is bound after close.
      updates = updates.then(() => {
        dp.close();
        reply({ op: 'done', id: m.id });
      });
      break;
  }
});
