// The ADS client (state of the world, one gRPC stream): wildcard LDS and CDS, named RDS and EDS
// subscriptions that follow the listeners' and clusters' needs, ACK / NACK with version and nonce, and
// reconnection with jittered exponential back-off while the last good config keeps serving.
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { AdsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse, type XdsNode } from '../../xds/ads-service.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../xds/type-urls.ts';
import type { TypeUrls } from '../../xds/envoy.ts';
import type { StatsStore } from '../stats/store.ts';
import { decodeResource } from './decode.ts';

/** The resource types this client subscribes to. */
export type XdsTypeUrl = typeof CLUSTER_TYPE | typeof ENDPOINT_TYPE | typeof LISTENER_TYPE | typeof ROUTE_TYPE | typeof SECRET_TYPE;

const XDS_TYPES: readonly XdsTypeUrl[] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE];

/** An xDS response as the handler gets it: its type URL, its resources as that type's message, its version. */
export type XdsUpdateArgs = { [U in XdsTypeUrl]: [typeUrl: U, resources: TypeUrls[U][], version: string] }[XdsTypeUrl];

export interface XdsHandler {
  /**
   * Applies a decoded response; returns error messages (empty: ACK). Never throws. Comparing `typeUrl`
   * narrows `resources` to that type's message.
   *
   * LDS and CDS calls carry every resource (state of the world: one left out is removed). EDS, RDS and SDS
   * calls may carry only the resources that changed (meshgate's controller sends just those, as the xDS
   * spec allows): a resource left out keeps its last accepted value, as in Envoy. A resource whose bytes
   * equal the previous LDS/CDS response's is passed as the same object as before (decoded once).
   */
  apply(...update: XdsUpdateArgs): Promise<string[]>;
}

/** Types whose responses are complete (a resource missing from one is deleted). */
const COMPLETE_TYPES = new Set<string>([LISTENER_TYPE, CLUSTER_TYPE]);

const isXdsType = (typeUrl: string): typeUrl is XdsTypeUrl => (XDS_TYPES as readonly string[]).includes(typeUrl);

export interface TypeState {
  typeUrl: XdsTypeUrl;
  /** Last accepted version_info. */
  version: string;
  nonce: string;
  /** Subscribed names (wildcard types: empty). */
  names: string[];
  wildcard: boolean;
  /** Sent at least one request on the current stream. */
  requested: boolean;
  lastUpdated: string;
  stats: { attempt: number; success: number; rejected: number; failure: number; updateTime: number; updateDuration: number };
  lastError: string;
}

const PREFIX: Record<string, string> = {
  [LISTENER_TYPE]: 'listener_manager.lds.',
  [CLUSTER_TYPE]: 'cluster_manager.cds.',
  [ROUTE_TYPE]: 'http.rds.',
  [ENDPOINT_TYPE]: 'cluster_manager.eds.',
  [SECRET_TYPE]: 'sds.',
};

type AdsStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export class AdsClient {
  readonly types = new Map<XdsTypeUrl, TypeState>();
  private readonly address: string;
  private readonly node: XdsNode;
  private readonly log: Logger;
  private readonly store: StatsStore;
  private readonly handler: XdsHandler;
  private client: grpc.Client | undefined;
  private stream: AdsStream | undefined;
  private queue: Promise<void> = Promise.resolve();
  private backoffMs = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private nodeSent = false;
  private readonly connectedGauge: number;
  /** LDS/CDS: the last response's resources by hash of their bytes, so unchanged ones are not decoded again. */
  private readonly decoded = new Map<XdsTypeUrl, Map<string, TypeUrls[XdsTypeUrl]>>();

  constructor(o: { address: string; node: XdsNode; log: Logger; store: StatsStore; handler: XdsHandler }) {
    this.address = o.address;
    this.node = o.node;
    this.log = o.log;
    this.store = o.store;
    this.handler = o.handler;
    this.connectedGauge = o.store.gauge('control_plane.connected_state');
    o.store.gauge('control_plane.pending_requests');
    o.store.counter('control_plane.rate_limit_enforced');
    for (const t of XDS_TYPES) {
      const p = PREFIX[t] ?? '';
      const st = o.store;
      this.types.set(t, {
        typeUrl: t,
        version: '',
        nonce: '',
        names: [],
        wildcard: t === LISTENER_TYPE || t === CLUSTER_TYPE,
        requested: false,
        lastUpdated: '',
        stats: {
          attempt: st.counter(p + 'update_attempt'),
          success: st.counter(p + 'update_success'),
          rejected: st.counter(p + 'update_rejected'),
          failure: st.counter(p + 'update_failure'),
          updateTime: st.gauge(p + 'update_time'),
          // The subscription's update_duration histogram, where the prefix is Envoy's own (CDS, LDS).
          updateDuration: t === CLUSTER_TYPE || t === LISTENER_TYPE ? st.histogram(p + 'update_duration') : -1,
        },
        lastError: '',
      });
      if (t === CLUSTER_TYPE || t === LISTENER_TYPE) {
        st.counter(p + 'init_fetch_timeout');
        st.gauge(p + 'version');
      }
    }
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const Client = grpc.makeGenericClientConstructor(AdsServiceDefinition, 'AggregatedDiscoveryService');
    this.client ??= new Client(this.address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.keepalive_time_ms': 300_000,
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 30_000,
    });
    const call = (this.client as unknown as { StreamAggregatedResources(): AdsStream }).StreamAggregatedResources();
    this.stream = call;
    this.nodeSent = false;
    for (const t of this.types.values()) {
      t.nonce = '';
      t.requested = false;
    }
    let gotData = false;
    call.on('data', (resp: DiscoveryResponse) => {
      if (!gotData) {
        gotData = true;
        this.backoffMs = 0;
        this.store.set(this.connectedGauge, 1);
        this.log.info({ address: this.address }, 'xDS stream established');
      }
      this.queue = this.queue
        .then(() => this.onResponse(call, resp))
        .catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'xDS response handling failed'));
    });
    const onDown = (err?: Error): void => {
      if (this.stream !== call) return;
      this.stream = undefined;
      this.store.set(this.connectedGauge, 0);
      if (this.closed) return;
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 500), 30_000);
      const wait = Math.floor(this.backoffMs / 2 + Math.random() * (this.backoffMs / 2));
      this.log.warn({ address: this.address, err: err?.message, retryInMs: wait }, 'xDS stream closed; keeping the last good config and reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), wait);
      this.reconnectTimer.unref();
    };
    call.on('error', (e: Error) => onDown(e));
    call.on('end', () => onDown());
    call.on('status', () => undefined);
    // Envoy subscribes CDS first, then LDS (the init manager warms clusters before listeners). Types
    // already known are re-requested with their current names and last accepted version.
    this.send(CLUSTER_TYPE);
    this.send(LISTENER_TYPE);
    for (const t of [ENDPOINT_TYPE, ROUTE_TYPE, SECRET_TYPE] as const) {
      const s = this.types.get(t);
      if (s && s.names.length > 0) this.send(t);
    }
  }

  private send(typeUrl: XdsTypeUrl, errorDetail?: string): void {
    const call = this.stream;
    const t = this.types.get(typeUrl);
    if (!call || !t) return;
    const req: DiscoveryRequest = {
      version_info: t.version,
      resource_names: t.wildcard ? [] : t.names,
      type_url: typeUrl,
      response_nonce: t.nonce,
    };
    // set_node_on_first_message_only, as Istio's bootstrap configures Envoy.
    if (!this.nodeSent) {
      req.node = this.node;
      this.nodeSent = true;
    }
    if (errorDetail !== undefined) req.error_detail = { code: 3 /* INVALID_ARGUMENT */, message: errorDetail };
    t.requested = true;
    call.write(req);
  }

  /** Updates the names of a named subscription (EDS, RDS); sends a request only if they changed. */
  setNames(typeUrl: XdsTypeUrl, names: string[]): void {
    const t = this.types.get(typeUrl);
    if (!t || t.wildcard) return;
    const same = names.length === t.names.length && names.every((n, i) => n === t.names[i]);
    if (same && t.requested) return;
    if (same && names.length === 0) return;
    t.names = names;
    this.send(typeUrl);
  }

  private async onResponse(call: AdsStream, resp: DiscoveryResponse): Promise<void> {
    if (this.stream !== call) return;
    const t = isXdsType(resp.type_url) ? this.types.get(resp.type_url) : undefined;
    if (!t) {
      this.log.warn({ typeUrl: resp.type_url }, 'xDS response for a type this proxy did not subscribe to; ignored');
      return;
    }
    const typeUrl = t.typeUrl;
    const st = this.store;
    st.inc(t.stats.attempt);
    t.nonce = resp.nonce;
    const errors: string[] = [];
    const resources: TypeUrls[XdsTypeUrl][] = [];
    const complete = COMPLETE_TYPES.has(typeUrl);
    const previous = this.decoded.get(typeUrl);
    const current = new Map<string, TypeUrls[XdsTypeUrl]>();
    for (const [i, any] of resp.resources.entries()) {
      if (any.type_url !== typeUrl) {
        errors.push(`resource ${i}: type ${any.type_url} in a ${typeUrl} response`);
        continue;
      }
      const key = complete ? createHash('sha1').update(any.value).digest('base64') : '';
      const known = previous?.get(key);
      if (known) {
        resources.push(known);
        current.set(key, known);
        continue;
      }
      try {
        const json = decodeResource(typeUrl, any);
        resources.push(json);
        if (complete) current.set(key, json);
      } catch (e) {
        errors.push(`resource ${i}: cannot decode ${any.type_url}: ${(e as Error).message}`);
      }
    }
    if (complete) this.decoded.set(typeUrl, current);
    let applyErrors: string[];
    const applyStart = performance.now();
    try {
      // Every resource was decoded as `typeUrl`'s message (decodeResource checked each one's type URL).
      applyErrors = await this.handler.apply(...([typeUrl, resources, resp.version_info] as XdsUpdateArgs));
    } catch (e) {
      applyErrors = [`internal error applying the update: ${(e as Error).message}`];
    }
    errors.push(...applyErrors);
    if (this.stream !== call) return;
    if (errors.length === 0) {
      t.version = resp.version_info;
      t.lastUpdated = new Date().toISOString();
      t.lastError = '';
      st.inc(t.stats.success);
      st.set(t.stats.updateTime, Date.now());
      // GrpcSubscriptionImpl::onConfigUpdate: the time spent applying an accepted update.
      st.record(t.stats.updateDuration, performance.now() - applyStart);
      this.send(typeUrl);
    } else {
      st.inc(t.stats.rejected);
      const message = errors.join('\n');
      t.lastError = message;
      this.log.warn({ typeUrl, version: resp.version_info, errors }, 'xDS update rejected (NACK); keeping the last good config');
      this.send(typeUrl, message);
    }
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    this.client?.close();
  }
}
