// One list/watch loop ("reflector", as client-go calls it) for one kind in one namespace (or all): LIST into
// the store, WATCH from the list's resourceVersion, and keep watching whatever happens to the API server.
//
//   - watch ends cleanly (the API server closes every watch after timeoutSeconds): re-watch from the last
//     resourceVersion, no relist;
//   - ERROR event or HTTP answer 410 Gone (resourceVersion expired, e.g. after an API server restart or etcd
//     compaction): relist and `store.replace` the kind, so objects deleted in the meantime disappear;
//   - HTTP 5xx, 429, connection refused or reset, auth plugin failure: retry with exponential backoff
//     (1 s doubling to 30 s, with jitter), re-watching from the last resourceVersion;
//   - a watch that carries nothing (not even a bookmark) for `idleMs`: abort and re-watch (a dead peer, or
//     the client-node informers' silent hangs, kubernetes-client/javascript#596).
// The store keeps every object while the API server is unreachable, so the proxy keeps its last config.
import type { Logger } from 'pino';
import type { Kind, KubeObject } from '../../model/objects.ts';
import type { ObjectStore } from '../../model/store.ts';
import { KubeApiError, type KubeClient, type KubeList, type KubeStatus, type WatchEvent } from './client.ts';

export interface ReflectorTiming {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Re-watch when a watch carried no event and no bookmark for this long. */
  idleMs: number;
  /** Server-side watch timeout; each watch asks for a random value in [this, 2 × this), as client-go does. */
  watchTimeoutSeconds: number;
  listPageSize: number;
  requestTimeoutMs: number;
}

const DEFAULT_TIMING: ReflectorTiming = {
  backoffInitialMs: 1_000,
  backoffMaxMs: 30_000,
  idleMs: 3 * 60_000,
  watchTimeoutSeconds: 5 * 60,
  listPageSize: 500,
  requestTimeoutMs: 60_000,
};

export interface ReflectorSpec {
  kind: Kind;
  /** Collection path, e.g. `/api/v1/namespaces/ns/pods`; resolved before every list and watch. */
  path: () => Promise<string>;
  /** The namespace this reflector covers; undefined: all namespaces. */
  namespace?: string;
  /** A single object by name (fieldSelector metadata.name=...). */
  name?: string;
  fieldSelector?: string;
  /** Called when the path answers 404 (a CRD removed or its version no longer served): rediscover. */
  onNotFound?: () => void;
  /** Observes every object the reflector puts in or removes from the store. */
  observe?: (change: { listed: readonly KubeObject[] } | { upserted: KubeObject } | { deleted: KubeObject }) => void;
}

export interface ReflectorMetrics {
  event(kind: Kind, event: 'add' | 'update' | 'delete'): void;
  relist(kind: Kind, reason: string): void;
  watchRestart(kind: Kind, reason: string): void;
  watching(kind: Kind, delta: 1 | -1): void;
}

/** Thrown into an aborted watch by the idle watchdog. */
class IdleWatch extends Error {
  constructor(ms: number) {
    super(`no event or bookmark for ${ms} ms`);
    this.name = 'IdleWatch';
  }
}

export class Reflector {
  readonly synced: Promise<void>;
  private markSynced!: () => void;
  private stopped = false;
  private readonly stopper = new AbortController();
  private readonly spec: ReflectorSpec;
  private readonly client: KubeClient;
  private readonly store: ObjectStore;
  private readonly log: Logger;
  private readonly metrics: ReflectorMetrics | undefined;
  private readonly timing: ReflectorTiming;
  private failures = 0;
  private failingSince = 0;
  private loop: Promise<void> | undefined;

  constructor(o: { spec: ReflectorSpec; client: KubeClient; store: ObjectStore; log: Logger; metrics?: ReflectorMetrics; timing?: Partial<ReflectorTiming> }) {
    this.spec = o.spec;
    this.client = o.client;
    this.store = o.store;
    this.metrics = o.metrics;
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.log = o.log.child({ kind: o.spec.kind, ...(o.spec.namespace ? { namespace: o.spec.namespace } : {}), ...(o.spec.name ? { name: o.spec.name } : {}) });
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopper.abort(new DOMException('reflector stopped', 'AbortError'));
    await this.loop;
  }

  private owns(o: { kind: Kind; obj: KubeObject }): boolean {
    const { kind, namespace, name } = this.spec;
    return o.kind === kind && (namespace === undefined || o.obj.metadata.namespace === namespace) && (name === undefined || o.obj.metadata.name === name);
  }

  private fieldSelector(): string | undefined {
    const parts = [this.spec.fieldSelector, this.spec.name ? `metadata.name=${this.spec.name}` : undefined].filter(Boolean);
    return parts.length ? parts.join(',') : undefined;
  }

  private async run(): Promise<void> {
    let rv: string | undefined;
    while (!this.stopped) {
      try {
        if (rv === undefined) {
          rv = await this.list();
          this.recovered('list');
          this.markSynced();
        }
        const started = Date.now();
        const { resourceVersion, events } = await this.watch(rv);
        rv = resourceVersion;
        this.metrics?.watchRestart(this.spec.kind, 'closed');
        if (events > 0 || Date.now() - started > 10_000) this.recovered('watch');
        else await this.sleep(this.backoff()); // closed at once and empty: do not spin
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof IdleWatch) {
          this.log.info({ idleMs: this.timing.idleMs }, 'watch idle for too long: re-watching from the last resourceVersion');
          this.metrics?.watchRestart(this.spec.kind, 'idle');
          continue;
        }
        const e = err instanceof KubeApiError ? err : undefined;
        if (e?.status === 410) {
          // Expired resourceVersion: the only way to catch up, deletions included, is a fresh list.
          this.log.info({ resourceVersion: rv }, 'resourceVersion expired (410 Gone): relisting');
          this.metrics?.relist(this.spec.kind, 'expired');
          rv = undefined;
          continue;
        }
        if (e?.status === 404) {
          this.spec.onNotFound?.();
          rv = undefined;
        }
        this.failed(err, rv === undefined ? 'list' : 'watch');
        await this.sleep(this.backoff());
      }
    }
  }

  private failed(err: unknown, phase: 'list' | 'watch'): void {
    const e = err instanceof KubeApiError ? err : undefined;
    const reason = e ? (e.status ? String(e.status) : e.reason) : (err as Error).name;
    this.metrics?.watchRestart(this.spec.kind, reason);
    if (this.failures === 0) this.failingSince = Date.now();
    this.failures++;
    const hint =
      e?.status === 401 || e?.status === 403
        ? 'check the credentials and RBAC: the controller needs get/list/watch on this resource (docs/kubernetes.md)'
        : 'keeping the last known objects and retrying with backoff';
    const fields = { err: (err as Error).message, phase, failures: this.failures, hint };
    // The first failure of an outage is a warning; the retries that follow are debug, until it recovers.
    if (this.failures === 1 || e?.status === 401 || e?.status === 403) this.log.warn(fields, `${phase} failed`);
    else this.log.debug(fields, `${phase} failed again`);
  }

  private recovered(phase: string): void {
    if (this.failures > 0) this.log.info({ phase, failures: this.failures, downMs: Date.now() - this.failingSince }, 'API server reachable again');
    this.failures = 0;
  }

  private backoff(): number {
    const { backoffInitialMs: base, backoffMaxMs: max } = this.timing;
    const exp = Math.min(max, base * 2 ** Math.max(0, this.failures - 1));
    return Math.min(max, Math.round(exp * (0.9 + Math.random() * 0.2)));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const t = setTimeout(done, ms);
      const signal = this.stopper.signal;
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** LISTs every page, replaces this reflector's objects in the store in one change, returns the list RV. */
  private async list(): Promise<string> {
    const path = await this.spec.path();
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.client.json<KubeList>('GET', path, {
        query: { limit: this.timing.listPageSize, continue: cont, fieldSelector: this.fieldSelector() },
        signal: this.stopper.signal,
        timeoutMs: this.timing.requestTimeoutMs,
      });
      const apiVersion = page.apiVersion ?? '';
      for (const obj of page.items ?? []) items.push(this.normalize(obj, apiVersion));
      rv = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
    } while (cont);
    this.store.replace(
      (o) => this.owns(o),
      items.map((obj) => ({ kind: this.spec.kind, obj, origin: {} })),
    );
    this.spec.observe?.({ listed: items });
    this.log.debug({ objects: items.length, resourceVersion: rv }, 'listed');
    return rv;
  }

  private async watch(rv: string): Promise<{ resourceVersion: string; events: number }> {
    const path = await this.spec.path();
    const ac = new AbortController();
    const signal = AbortSignal.any([ac.signal, this.stopper.signal]);
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => ac.abort(new IdleWatch(this.timing.idleMs)), this.timing.idleMs);
    };
    let resourceVersion = rv;
    let events = 0;
    const timeoutSeconds = this.timing.watchTimeoutSeconds + Math.floor(Math.random() * this.timing.watchTimeoutSeconds);
    this.metrics?.watching(this.spec.kind, 1);
    arm();
    try {
      await this.client.watch(
        path,
        { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds, fieldSelector: this.fieldSelector() },
        (ev: WatchEvent) => {
          arm();
          resourceVersion = this.apply(ev, path) ?? resourceVersion;
          if (ev.type !== 'BOOKMARK') events++;
        },
        signal,
      );
    } finally {
      clearTimeout(idle);
      this.metrics?.watching(this.spec.kind, -1);
    }
    return { resourceVersion, events };
  }

  /** Applies one watch event to the store; returns the new resourceVersion. Throws on ERROR events. */
  private apply(ev: WatchEvent, path: string): string | undefined {
    if (ev.type === 'ERROR') {
      const st = ev.object as KubeStatus;
      throw new KubeApiError(st.code ?? 500, st.reason ?? 'WatchError', `WATCH ${path}: ERROR event ${st.code ?? ''} ${st.reason ?? ''}: ${st.message ?? ''}`);
    }
    const obj = ev.object as KubeObject;
    const rv = obj.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') return rv;
    const o = this.normalize(obj, obj.apiVersion);
    if (!this.owns({ kind: this.spec.kind, obj: o })) return rv;
    if (ev.type === 'DELETED') {
      this.store.delete(this.spec.kind, o.metadata.namespace, o.metadata.name);
      this.metrics?.event(this.spec.kind, 'delete');
      this.spec.observe?.({ deleted: o });
    } else {
      this.store.upsert(this.spec.kind, o);
      this.metrics?.event(this.spec.kind, ev.type === 'ADDED' ? 'add' : 'update');
      this.spec.observe?.({ upserted: o });
    }
    return rv;
  }

  /** List items carry no apiVersion/kind for built-in types; managedFields is server bookkeeping we never read. */
  private normalize(obj: KubeObject, apiVersion: string): KubeObject {
    const metadata = { ...obj.metadata };
    delete (metadata as { managedFields?: unknown }).managedFields;
    return { ...obj, apiVersion: obj.apiVersion || apiVersion, kind: obj.kind || this.spec.kind, metadata };
  }
}
