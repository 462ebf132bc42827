// Status conditions on the Istio objects the controller rejects or cannot honour, next to the log line and the
// Warning Event (events.ts): `kubectl get authorizationpolicy x -o yaml` shows why it is not enforced as written.
//
// Shape: one entry of Istio's `status.conditions` (istio.meta.v1alpha1.IstioCondition: type, status, reason,
// message, lastTransitionTime, observedGeneration), the way istiod's ambient status controller writes
// `WaypointAccepted` on an AuthorizationPolicy (status False, reason Invalid, pruned when the policy is fine again):
//
//   type: istio-ingressgateway.istio-system.meshgate.io/Accepted   (<gateway app label>.<namespace>.meshgate.io)
//   status: "False", reason: Invalid, message: "<field>: <what is wrong; what the gateway does instead>" (one a line)
//
// There is no True condition: an object this gateway serves as written carries none, so a cluster of valid
// objects costs no writes. Objects of the Istio kinds meshgate does not implement (EnvoyFilter, Sidecar,
// WorkloadEntry, WorkloadGroup, ProxyConfig, WasmPlugin, TrafficExtension) get the same type with status False,
// reason Unsupported: the gateway ignores them. Their content depends only on the kind and the generation, so an
// object is written once per generation. The type names the gateway deployment, because each deployment judges by its own pod
// labels, namespace and Secrets (an ingress and an egress gateway can disagree about one Gateway); every replica of
// one deployment computes the same content, so they agree, and the type is its own, so istiod's conditions
// (`Reconciled`, `WaypointAccepted`, ...) and `validationMessages` are left alone.
//
// Writes: a JSON merge patch of `status.conditions` on the /status subresource, carrying the object's
// resourceVersion as a precondition. Conditions is an atomic list in Istio's CRDs (no list-map keys), so a
// server-side apply would take the whole list from istiod; read-modify-write keeps the other writers' entries,
// and a 409 (someone wrote in between) is answered by reading the object again. A condition is written only when
// its status, reason, message or observedGeneration differ (lastTransitionTime is kept while the status stays), so
// replicas racing to write one result write it once. Level-triggered: every push compares every object, so a
// condition dropped by another writer, or left behind by a controller that was down, is put right.
import type { Logger } from 'pino';
import { NOT_HONOURED_KINDS, type Kind, type KubeObject } from '../../model/objects.ts';
import type { StoreSnapshot } from '../../model/store.ts';
import type { ValidationError } from '../../model/validation.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import type { KubeSourceMetrics } from './metrics.ts';

export const STATUS_REASON = 'Invalid';
/** The reason on objects of a kind meshgate does not implement. */
export const UNSUPPORTED_REASON = 'Unsupported';
const TYPE_SUFFIX = 'meshgate.io/Accepted';
/** metav1.Condition allows 32 KiB; a condition is read in a terminal. */
const MAX_MESSAGE = 4096;
/** A kind the controller may not patch is tried again after this long (the RBAC may be fixed meanwhile). */
const FORBIDDEN_RETRY_MS = 5 * 60_000;
const MAX_CONFLICT_RETRIES = 5;

const PLURALS: Partial<Record<Kind, string>> = {
  Gateway: 'gateways',
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  ServiceEntry: 'serviceentries',
  AuthorizationPolicy: 'authorizationpolicies',
  RequestAuthentication: 'requestauthentications',
  Telemetry: 'telemetries',
  EnvoyFilter: 'envoyfilters',
  Sidecar: 'sidecars',
  WorkloadEntry: 'workloadentries',
  WorkloadGroup: 'workloadgroups',
  ProxyConfig: 'proxyconfigs',
  WasmPlugin: 'wasmplugins',
  TrafficExtension: 'trafficextensions',
};
const STATUS_KINDS = Object.keys(PLURALS) as Kind[];

/** One entry of `status.conditions` as Istio's CRDs declare it (IstioCondition). */
export interface IstioCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number | string;
  [field: string]: unknown;
}

const dnsLabel = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');

/**
 * The condition type of one gateway deployment: `<app>.<namespace>.meshgate.io/Accepted`, from the pod's `app`
 * label (Istio's gateway chart sets it to the gateway's name; `istio` label otherwise), a valid metav1.Condition type
 * (DNS subdomain prefix).
 */
export function statusConditionType(namespace: string, labels: Readonly<Record<string, string>>): string {
  const name = dnsLabel(labels.app ?? labels.istio ?? '') || 'gateway';
  return `${name}.${dnsLabel(namespace) || 'default'}.${TYPE_SUFFIX}`;
}

/** The condition for these errors of one object (sorted, so that every replica writes the same text). */
export function conditionFor(type: string, errors: readonly ValidationError[], generation: number | undefined): IstioCondition {
  const lines = [...new Set(errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)))].sort();
  let message = '';
  let shown = 0;
  for (const l of lines) {
    const next = message ? `${message}\n${l}` : l;
    if (next.length > MAX_MESSAGE - 80) break;
    message = next;
    shown++;
  }
  if (shown === 0) message = `${(lines[0] ?? '').slice(0, MAX_MESSAGE - 80)}...`;
  if (shown < lines.length) message += `\n(${lines.length - Math.max(shown, 1)} more: see the controller log or the object's Events)`;
  return {
    type,
    status: 'False',
    reason: STATUS_REASON,
    message,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

const notHonoured: ReadonlySet<string> = new Set(NOT_HONOURED_KINDS);

/** The condition on an object of a kind meshgate does not implement. */
function unsupportedCondition(type: string, kind: string, generation: number | undefined): IstioCondition {
  return {
    type,
    status: 'False',
    reason: UNSUPPORTED_REASON,
    message: `${kind} is not implemented by meshgate: this gateway ignores it (docs/install.md#crds)`,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

const sameCondition = (a: IstioCondition, b: IstioCondition): boolean =>
  a.status === b.status && a.reason === b.reason && a.message === b.message && String(a.observedGeneration ?? '') === String(b.observedGeneration ?? '');

function conditionsOf(obj: KubeObject): IstioCondition[] {
  const status = obj.status as { conditions?: unknown } | undefined;
  const c = status?.conditions;
  return Array.isArray(c) ? c.filter((x): x is IstioCondition => typeof x === 'object' && x !== null && typeof (x as IstioCondition).type === 'string') : [];
}

/**
 * The conditions to write, or undefined when the object already carries exactly what it should (ignoring
 * lastTransitionTime). Other types are kept in place.
 */
export function nextConditions(obj: KubeObject, desired: IstioCondition | undefined, type: string, now: string): IstioCondition[] | undefined {
  const current = conditionsOf(obj);
  const existing = current.find((c) => c.type === type);
  if (!desired) return existing ? current.filter((c) => c.type !== type) : undefined;
  if (existing && sameCondition(existing, desired)) return undefined;
  const lastTransitionTime = existing?.status === desired.status && typeof existing.lastTransitionTime === 'string' ? existing.lastTransitionTime : now;
  const cond = { ...desired, lastTransitionTime };
  return existing ? current.map((c) => (c.type === type ? cond : c)) : [...current, cond];
}

export interface StatusWriterOptions {
  client: KubeClient;
  log: Logger;
  /** The store: the objects' current status and resourceVersion. */
  snapshot: () => StoreSnapshot;
  /** The condition type (statusConditionType), read when the writer is enabled. */
  conditionType: () => string;
  metrics?: KubeSourceMetrics;
  now?: () => Date;
  /** Least time between two writes (10 a second). */
  minIntervalMs?: number;
  /** First retry delay after a failed write (doubles up to 30 s). */
  retryMs?: number;
}

export interface StatusWriter {
  /** Every push: all the errors of the current configuration (not only the new ones). */
  update(errors: readonly ValidationError[]): void;
  /** Starts writing (once the store holds the complete state: a partial one would report missing objects). */
  enable(): void;
  /** Resolves when nothing is queued or being written (writes put off by a retry delay are not waited for). */
  idle(): Promise<void>;
  close(): void;
}

const keyOf = (kind: string, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;
const timestamp = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export function createStatusWriter(o: StatusWriterOptions): StatusWriter {
  const log = o.log.child({ component: 'config-status' });
  const now = o.now ?? ((): Date => new Date());
  const minInterval = o.minIntervalMs ?? 100;
  const retryBase = o.retryMs ?? 1000;
  let type = '';
  let enabled = false;
  let closed = false;
  /** Errors of the last push, by object key (undefined before the first: nothing is known to be valid yet). */
  let errorsByKey: Map<string, ValidationError[]> | undefined;
  const queue = new Set<string>();
  /** Backoff per key after a failed write. */
  const backoff = new Map<string, { delay: number; until: number }>();
  /** The object a write returned, while the store still has the copy it was written over. */
  const written = new Map<string, { fromRv: string; obj: KubeObject }>();
  const forbiddenUntil = new Map<string, number>();
  const forbiddenLogged = new Set<string>();
  let running: Promise<void> | undefined;
  let wakeTimer: NodeJS.Timeout | undefined;
  let nextWake = Infinity;
  let lastWrite = 0;

  const find = (snap: StoreSnapshot, kind: Kind, namespace: string, name: string): KubeObject | undefined => {
    for (const s of snap.byKind(kind)) if (s.obj.metadata.name === name && (s.obj.metadata.namespace ?? '') === namespace) return s.obj;
    return undefined;
  };

  const desiredFor = (key: string, obj: KubeObject): IstioCondition | undefined => {
    if (notHonoured.has(obj.kind)) return unsupportedCondition(type, obj.kind, obj.metadata.generation);
    const errs = errorsByKey?.get(key);
    return errs ? conditionFor(type, errs, obj.metadata.generation) : undefined;
  };

  /** Compares every Istio object with what it should carry; queues those that differ. */
  const reconcileAll = (): void => {
    if (!enabled || closed || !errorsByKey) return;
    const snap = o.snapshot();
    const at = timestamp(now());
    let wakeAt = Infinity;
    const present = new Set<string>();
    for (const kind of STATUS_KINDS) {
      if ((forbiddenUntil.get(kind) ?? 0) > Date.now()) continue;
      for (const s of snap.byKind(kind)) {
        const key = keyOf(kind, s.obj.metadata.namespace ?? '', s.obj.metadata.name);
        present.add(key);
        const until = backoff.get(key)?.until ?? 0;
        if (until > Date.now()) {
          wakeAt = Math.min(wakeAt, until);
          continue;
        }
        const w = written.get(key);
        let obj = s.obj;
        if (w && w.fromRv === obj.metadata.resourceVersion) obj = w.obj;
        else written.delete(key);
        if (nextConditions(obj, desiredFor(key, obj), type, at)) queue.add(key);
      }
    }
    // Deleted objects: nothing more to remember about them.
    for (const m of [written, backoff]) for (const k of m.keys()) if (!present.has(k)) m.delete(k);
    if (queue.size > 0) running ??= drain().finally(() => (running = undefined));
    // A key waiting out its retry delay is looked at again then, push or no push.
    if (wakeAt < Infinity && wakeAt < nextWake) {
      clearTimeout(wakeTimer);
      nextWake = wakeAt;
      wakeTimer = setTimeout(
        () => {
          nextWake = Infinity;
          reconcileAll();
        },
        wakeAt - Date.now() + 1,
      ).unref();
    }
  };

  const drain = async (): Promise<void> => {
    while (queue.size > 0 && !closed) {
      const key = queue.values().next().value as string;
      queue.delete(key);
      const wait = lastWrite + minInterval - Date.now();
      if (wait > 0) await sleep(wait);
      if (closed) return;
      await writeOne(key);
    }
  };

  const pathOf = (obj: KubeObject, kind: Kind): string =>
    `/apis/${obj.apiVersion}/namespaces/${encodeURIComponent(obj.metadata.namespace ?? '')}/${PLURALS[kind] ?? ''}/${encodeURIComponent(obj.metadata.name)}`;

  const writeOne = async (key: string): Promise<void> => {
    const [kind, namespace = '', name = ''] = key.split('/') as [Kind, string?, string?];
    const snap = o.snapshot();
    let obj = find(snap, kind, namespace, name);
    if (!obj) return; // deleted: its status went with it
    const w = written.get(key);
    if (w && w.fromRv === obj.metadata.resourceVersion) obj = w.obj;
    const fields = { kind, namespace, name };
    for (let attempt = 0; ; attempt++) {
      const desired = desiredFor(key, obj);
      const next = nextConditions(obj, desired, type, timestamp(now()));
      if (!next) return;
      const path = pathOf(obj, kind);
      lastWrite = Date.now();
      try {
        const fromRv = obj.metadata.resourceVersion ?? '';
        const result = await o.client.json<KubeObject>('PATCH', `${path}/status`, {
          body: { metadata: { resourceVersion: fromRv }, status: { conditions: next.length > 0 ? next : null } },
          contentType: 'application/merge-patch+json',
          timeoutMs: 10_000,
        });
        written.set(key, { fromRv, obj: result });
        backoff.delete(key);
        o.metrics?.statusWritten(desired ? 'set' : 'cleared');
        if (forbiddenLogged.delete(kind)) log.info({ kind }, 'status conditions are written again');
        if (desired) log.info({ ...fields, type, reason: desired.reason }, 'status condition written: the object is not served as written');
        else log.info({ ...fields, type }, 'status condition cleared: the object is served as written');
        return;
      } catch (caught) {
        let err = caught;
        const status = err instanceof KubeApiError ? err.status : 0;
        if (status === 404) {
          o.metrics?.statusWritten('gone');
          return; // deleted meanwhile (or its version is no longer served: the next list brings the new one)
        }
        if (status === 409 && attempt < MAX_CONFLICT_RETRIES) {
          o.metrics?.statusWritten('conflict');
          try {
            obj = await o.client.json<KubeObject>('GET', path, { timeoutMs: 10_000 });
            written.set(key, { fromRv: find(o.snapshot(), kind, namespace, name)?.metadata.resourceVersion ?? '', obj });
            continue;
          } catch (e) {
            if (e instanceof KubeApiError && e.status === 404) return;
            err = e;
          }
        }
        if (status === 403) {
          o.metrics?.statusWritten('forbidden');
          forbiddenUntil.set(kind, Date.now() + FORBIDDEN_RETRY_MS);
          for (const k of queue) if (k.startsWith(`${kind}/`)) queue.delete(k);
          if (!forbiddenLogged.has(kind)) {
            forbiddenLogged.add(kind);
            log.warn(
              { kind, err: (err as Error).message },
              `cannot write status conditions on ${PLURALS[kind] ?? kind}: the controller needs patch on ${PLURALS[kind] ?? kind}/status (charts/gateway RBAC); the errors are still logged and recorded as Events`,
            );
          }
          return;
        }
        o.metrics?.statusWritten('failed');
        const delay = Math.min((backoff.get(key)?.delay ?? retryBase / 2) * 2, 30_000);
        log.warn({ ...fields, err: (err as Error).message, retryInMs: delay }, 'could not write a status condition: retrying');
        backoff.set(key, { delay, until: Date.now() + delay });
        queueMicrotask(reconcileAll);
        return;
      }
    }
  };

  return {
    update(errors) {
      const next = new Map<string, ValidationError[]>();
      for (const e of errors) {
        if (!PLURALS[e.kind as Kind]) continue;
        const k = keyOf(e.kind, e.namespace, e.name);
        const l = next.get(k);
        if (l) l.push(e);
        else next.set(k, [e]);
      }
      errorsByKey = next;
      reconcileAll();
    },
    enable() {
      if (enabled) return;
      type = o.conditionType();
      enabled = true;
      log.info({ type }, 'writing status conditions on the Istio objects this gateway cannot serve as written');
      reconcileAll();
    },
    async idle() {
      while (running) await running;
    },
    close() {
      closed = true;
      queue.clear();
      clearTimeout(wakeTimer);
    },
  };
}
