// The Kubernetes source's own metrics (prom-client), in the spirit of istiod's pilot_k8s_reg_events.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Kind } from '../../model/objects.ts';
import type { ReflectorMetrics } from './reflector.ts';

export interface KubeSourceMetrics extends ReflectorMetrics {
  eventRecorded(result: 'created' | 'patched' | 'failed'): void;
  statusWritten(result: 'set' | 'cleared' | 'gone' | 'conflict' | 'forbidden' | 'failed'): void;
}

export function kubeSourceMetrics(registry: Registry): KubeSourceMetrics {
  const registers = [registry];
  const events = new Counter({
    name: 'meshgate_controller_k8s_events_total',
    help: 'Watch events applied to the object store, by kind and event (add, update, delete).',
    labelNames: ['kind', 'event'] as const,
    registers,
  });
  const relists = new Counter({
    name: 'meshgate_controller_k8s_relists_total',
    help: 'Relists after a resourceVersion expired (410 Gone).',
    labelNames: ['kind', 'reason'] as const,
    registers,
  });
  const restarts = new Counter({
    name: 'meshgate_controller_k8s_watch_restarts_total',
    help: 'Watches (or lists) restarted, by kind and reason: closed (normal end), idle (watchdog), an HTTP status, or a connection error code.',
    labelNames: ['kind', 'reason'] as const,
    registers,
  });
  const watching = new Gauge({
    name: 'meshgate_controller_k8s_watches_open',
    help: 'Watch requests currently open on the API server, by kind (0 while the API server is unreachable).',
    labelNames: ['kind'] as const,
    registers,
  });
  const recorded = new Counter({
    name: 'meshgate_controller_k8s_config_events_total',
    help: 'Kubernetes Events written for invalid configuration, by result.',
    labelNames: ['result'] as const,
    registers,
  });
  const statusWrites = new Counter({
    name: 'meshgate_controller_k8s_status_writes_total',
    help: 'Status condition writes on Istio objects, by result: set, cleared, gone (404), conflict (409, retried), forbidden (403), failed.',
    labelNames: ['result'] as const,
    registers,
  });
  return {
    event: (kind: Kind, event) => events.inc({ kind, event }),
    relist: (kind: Kind, reason) => relists.inc({ kind, reason }),
    watchRestart: (kind: Kind, reason) => restarts.inc({ kind, reason }),
    watching: (kind: Kind, delta) => watching.inc({ kind }, delta),
    eventRecorded: (result) => recorded.inc({ result }),
    statusWritten: (result) => statusWrites.inc({ result }),
  };
}
