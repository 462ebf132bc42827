// Reports invalid configuration the way a Kubernetes controller does: a log line with the object and the
// reason, and a Warning Event on the object (`kubectl describe virtualservice x` shows it).
// status.ts also writes a status condition on the object, for as long as the problem lasts.
//
// The controller re-validates everything on every push, so the same error arrives many times. Each
// (object, resourceVersion, field, message) is logged at warn and recorded once; when the object changes but
// the same error remains, the existing Event's count is patched, as client-go's event correlator does.
import type { Logger } from 'pino';
import type { KubeObject } from '../../model/objects.ts';
import type { ErrorReporter, ValidationError } from '../../model/validation.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import type { KubeSourceMetrics } from './metrics.ts';

export const EVENT_REASON = 'InvalidConfig';
const EVENT_COMPONENT = 'meshgate-controller';
const MAX_MESSAGE = 1024; // the API server rejects longer Event messages
const MAX_REMEMBERED = 10_000;

const DEFAULT_API_VERSION: Record<string, string> = {
  Gateway: 'networking.istio.io/v1',
  VirtualService: 'networking.istio.io/v1',
  DestinationRule: 'networking.istio.io/v1',
  ServiceEntry: 'networking.istio.io/v1',
  AuthorizationPolicy: 'security.istio.io/v1',
  RequestAuthentication: 'security.istio.io/v1',
  Telemetry: 'telemetry.istio.io/v1',
  Service: 'v1',
  Pod: 'v1',
  Secret: 'v1',
  Endpoints: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
};

export interface EventReporterOptions {
  client: KubeClient;
  log: Logger;
  /**
   * Called once per report: returns a lookup of the objects the errors are about (for their uid, apiVersion
   * and resourceVersion), typically over one store snapshot.
   */
  index: () => (kind: string, namespace: string, name: string) => KubeObject | undefined;
  /** reportingInstance / source.host of the Events: the gateway pod's name. */
  instance: string;
  metrics?: KubeSourceMetrics;
  now?: () => Date;
}

export interface EventReporter extends ErrorReporter {
  /** Resolves when every Event queued so far has been written (or has failed). */
  flush(): Promise<void>;
}

interface Recorded {
  eventName: string;
  namespace: string;
  count: number;
}

const timestamp = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

export function createEventReporter(o: EventReporterOptions): EventReporter {
  const log = o.log.child({ component: 'config-events' });
  const now = o.now ?? ((): Date => new Date());
  /** (object, resourceVersion, field, message) already reported. */
  const seen = new Set<string>();
  /** (object, field, message) -> the Event that records it. */
  const events = new Map<string, Recorded>();
  let queue: Promise<void> = Promise.resolve();

  const remember = <K, V>(m: Map<K, V> | Set<K>, k: K, v?: V): void => {
    if (m.size >= MAX_REMEMBERED) {
      const oldest = m.keys().next().value as K;
      m.delete(oldest);
    }
    if (m instanceof Map) m.set(k, v as V);
    else m.add(k);
  };

  const record = async (e: ValidationError, obj: KubeObject | undefined, message: string, correlation: string): Promise<void> => {
    const at = timestamp(now());
    const prev = events.get(correlation);
    try {
      if (prev) {
        try {
          await o.client.json('PATCH', `/api/v1/namespaces/${encodeURIComponent(prev.namespace)}/events/${encodeURIComponent(prev.eventName)}`, {
            body: { count: prev.count + 1, lastTimestamp: at, message },
            contentType: 'application/merge-patch+json',
            timeoutMs: 10_000,
          });
          prev.count++;
          o.metrics?.eventRecorded('patched');
          return;
        } catch (err) {
          if (!(err instanceof KubeApiError && err.status === 404)) throw err;
          events.delete(correlation); // the Event expired (default TTL 1 h): create a new one
        }
      }
      const eventName = `${e.name}.${(BigInt(now().getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000))).toString(16)}`;
      await o.client.json('POST', `/api/v1/namespaces/${encodeURIComponent(e.namespace)}/events`, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: eventName, namespace: e.namespace },
          involvedObject: {
            apiVersion: obj?.apiVersion ?? DEFAULT_API_VERSION[e.kind] ?? 'v1',
            // The object's own kind: a Gateway API Gateway is stored (and reported) as KubernetesGateway.
            kind: obj?.kind ?? e.kind,
            name: e.name,
            namespace: e.namespace,
            ...(obj?.metadata.uid ? { uid: obj.metadata.uid } : {}),
            ...(obj?.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
          },
          reason: EVENT_REASON,
          message,
          type: 'Warning',
          count: 1,
          firstTimestamp: at,
          lastTimestamp: at,
          source: { component: EVENT_COMPONENT, host: o.instance },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: o.instance,
        },
        timeoutMs: 10_000,
      });
      remember(events, correlation, { eventName, namespace: e.namespace, count: 1 });
      o.metrics?.eventRecorded('created');
    } catch (err) {
      o.metrics?.eventRecorded('failed');
      log.warn(
        { kind: e.kind, namespace: e.namespace, name: e.name, err: (err as Error).message },
        'could not record an Event for invalid configuration (the controller needs create/patch on events)',
      );
    }
  };

  return {
    report(errors) {
      if (errors.length === 0) return;
      const lookup = o.index();
      for (const e of errors) {
        const obj = lookup(e.kind, e.namespace, e.name);
        const rv = obj?.metadata.resourceVersion ?? '';
        const what = `${e.kind}/${e.namespace}/${e.name}`;
        const key = `${what}\u0000${rv}\u0000${e.field ?? ''}\u0000${e.message}`;
        const fields = {
          kind: e.kind,
          namespace: e.namespace,
          name: e.name,
          field: e.field,
          reason: e.message,
          ...(e.origin.file ? { file: e.origin.file } : {}),
        };
        if (seen.has(key)) {
          log.debug(fields, 'invalid configuration skipped (already reported)');
          continue;
        }
        remember(seen, key);
        log.warn(fields, `invalid configuration skipped: ${e.kind} ${e.namespace}/${e.name}${e.field ? ` at ${e.field}` : ''}: ${e.message}`);
        const text = e.field ? `${e.field}: ${e.message}` : e.message;
        const message = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 3)}...` : text;
        const correlation = `${what}\u0000${e.field ?? ''}\u0000${e.message}`;
        queue = queue.then(() => record(e, obj, message, correlation));
      }
    },
    flush: () => queue,
  };
}
