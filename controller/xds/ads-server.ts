// State-of-the-world Aggregated Discovery Service, as istiod serves gateways (pilot/pkg/xds/ads.go,
// pkg/xds/server.go ShouldRespond): wildcard LDS/CDS, named RDS/EDS/SDS (and named LDS/CDS for gRPC
// xDS clients), versions `<RFC3339>/<n>`, nonces, ACK/NACK, stale-nonce ignore, push order CDS, EDS,
// LDS, RDS, SDS, only changed types pushed, per-stream coalescing that respects write backpressure.
//
// Incremental within state of the world: each resource is encoded once and kept, with a hash of its
// content, until its content changes (an unchanged resource is neither re-encoded nor, by itself, a reason
// to push). A type is pushed only when something its subscription covers changed. LDS and CDS responses
// carry every subscribed resource (a resource missing from them is a deletion); EDS, RDS and SDS responses
// carry only the resources that changed since the last response on that stream (a client keeps the ones a
// response leaves out, as Envoy does), so an endpoint change sends the changed ClusterLoadAssignments only.
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { AdsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse, type XdsNode } from '../../xds/ads-service.ts';
import { packJson, type Any } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE, SECRET_TYPE, SHORT_NAMES } from '../../xds/type-urls.ts';
import type { XdsResources } from './snapshot.ts';
import { prepareSocketPath, removeSocket, restrictSocket, XdsSocketError } from './unix-socket.ts';

/**
 * Where ADS is served: a Unix domain socket only the proxy can open (the default everywhere: SDS carries
 * private keys), or TCP when asked for (any local process can then connect under any node id).
 */
export type XdsListenAddress = { socket: string } | { host: string; /** 0 picks a free port (tests). */ port: number };

export type AdsServerOptions = XdsListenAddress & {
  log: Logger;
  /** Where the pilot_xds* metrics go; none when absent. */
  registry?: Registry;
  /** Clock for versions and status timestamps (tests). */
  now?: () => Date;
};

/** Whether host:port can be bound now (the TCP port is checked first: grpc-js reports a busy one only as text). */
function tcpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

function bind(server: grpc.Server, target: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

interface NackRecord {
  version: string;
  nonce: string;
  message: string;
  at: string;
}

/** Per-type sync state of one proxy, as `istioctl proxy-status` derives SYNCED / STALE / NOT SENT / ERROR. */
interface TypeStatus {
  wildcard: boolean;
  names: string[];
  versionSent?: string;
  nonceSent?: string;
  versionAcked?: string;
  nonceAcked?: string;
  lastNack?: NackRecord;
  status: 'SYNCED' | 'STALE' | 'NOT SENT' | 'ERROR';
}

export interface ProxyStatus {
  /** Connection id: `<node id>-<n>`, as istiod names connections. */
  connectionId: string;
  nodeId: string;
  peer: string;
  connectedAt: string;
  node?: XdsNode;
  /** By short type name: cds, eds, lds, rds, sds. */
  types: Record<string, TypeStatus>;
}

const TYPES = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE] as const;
/** Envoy subscribes to these without names (all of them); everything else is requested by name. */
const WILDCARD_TYPES = new Set<string>([LISTENER_TYPE, CLUSTER_TYPE]);
/**
 * Types whose responses may carry only some of the subscribed resources: the xDS spec lets a SotW client
 * treat a missing EDS or RDS resource as unchanged (only LDS and CDS responses must be complete), and SDS
 * secrets are not deleted by absence either. Responses of these types carry the changed resources only.
 */
const PARTIAL_TYPES = new Set<string>([ENDPOINT_TYPE, ROUTE_TYPE, SECRET_TYPE]);

const RESOURCE_KEY: Readonly<Record<string, keyof XdsResources>> = {
  [LISTENER_TYPE]: 'listeners',
  [ROUTE_TYPE]: 'routes',
  [CLUSTER_TYPE]: 'clusters',
  [ENDPOINT_TYPE]: 'endpoints',
  [SECRET_TYPE]: 'secrets',
};

/** One served resource: a Listener, RouteConfiguration, Cluster, ClusterLoadAssignment or Secret. */
type Resource = XdsResources[keyof XdsResources][number];

/** The name a resource is subscribed by (ClusterLoadAssignment uses cluster_name). */
function resourceName(r: { name?: string; cluster_name?: string }): string {
  return r.name ?? r.cluster_name ?? '';
}

interface Encoded {
  name: string;
  any: Any;
  /** Hash of the resource's JSON: equal hashes, same content (and the same encoding). */
  hash: string;
}

/**
 * Content hashes by resource object. Resources handed to setResources are never modified afterwards, so a
 * resource the translator reuses as the same object (listeners and routes after an endpoints-only change)
 * is not serialized again.
 */
const hashes = new WeakMap<Resource, string>();

function contentHash(json: Resource): string {
  let h = hashes.get(json);
  if (h === undefined) {
    h = createHash('sha1').update(JSON.stringify(json)).digest('base64');
    hashes.set(json, h);
  }
  return h;
}

interface TypeState {
  version: string;
  resources: Encoded[];
  byName: Map<string, Encoded>;
}

interface StreamType {
  wildcard: boolean;
  names: Set<string>;
  versionSent?: string;
  nonceSent?: string;
  versionAcked?: string;
  nonceAcked?: string;
  lastNack?: NackRecord;
  /** LDS/CDS: signature of what was last sent (names + content hashes): unchanged content is not re-sent. */
  sentSignature?: string;
  /** EDS/RDS/SDS: content hash of each resource as last sent on this stream; only differing ones are sent. */
  sent: Map<string, string>;
  /** Answer the next flush even if nothing changed (initial request, reconnect, new names). */
  force: boolean;
}

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/** RFC 3339 without fractional seconds, as Go's time.RFC3339 prints it. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

class Connection {
  readonly types = new Map<string, StreamType>();
  readonly dirty = new Set<string>();
  node?: XdsNode;
  nodeId = '';
  connectionId = '';
  flushing = false;
  closed = false;
  readonly connectedAt: string;
  readonly call: Call;
  readonly peer: string;
  readonly seq: number;
  constructor(call: Call, peer: string, seq: number, now: Date) {
    this.call = call;
    this.peer = peer;
    this.seq = seq;
    this.connectedAt = now.toISOString();
  }
}

function statusOf(t: StreamType): TypeStatus['status'] {
  if (t.lastNack) return 'ERROR';
  if (!t.nonceSent) return 'NOT SENT';
  return t.nonceAcked === t.nonceSent ? 'SYNCED' : 'STALE';
}

export class AdsServer {
  private readonly server = new grpc.Server({
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly state = new Map<string, TypeState>();
  private readonly connections = new Set<Connection>();
  private synced = false;
  private counter = 0;
  private seq = 0;
  private closing = false;
  private readonly metrics: {
    pushes?: Counter<'type'>;
    rejects?: Counter<'type'>;
    connected?: Gauge;
  } = {};
  /** Rejected responses per type since start (also exported as pilot_total_xds_rejects). */
  readonly rejects: Record<string, number> = { cds: 0, eds: 0, lds: 0, rds: 0, sds: 0 };
  /** The TCP port served (0 on a Unix socket). */
  port = 0;
  /** The Unix socket served, if any. */
  socket: string | undefined;
  private socketIno = 0;

  private constructor(o: AdsServerOptions) {
    this.log = o.log.child({ component: 'ads' });
    this.now = o.now ?? (() => new Date());
    const v = this.nextVersion();
    for (const t of TYPES) this.state.set(t, { version: v, resources: [], byName: new Map() });
    if (o.registry) {
      const registers = [o.registry];
      this.metrics.pushes = new Counter({
        name: 'pilot_xds_pushes',
        help: 'xDS responses sent, by type (cds, eds, lds, rds, sds).',
        labelNames: ['type'] as const,
        registers,
      });
      this.metrics.rejects = new Counter({
        name: 'pilot_total_xds_rejects',
        help: 'xDS responses rejected (NACKed) by proxies, by type.',
        labelNames: ['type'] as const,
        registers,
      });
      this.metrics.connected = new Gauge({ name: 'pilot_xds', help: 'Proxies connected over ADS.', registers });
    }
  }

  static async start(o: AdsServerOptions): Promise<AdsServer> {
    const s = new AdsServer(o);
    s.server.addService(AdsServiceDefinition, { StreamAggregatedResources: (call: Call) => s.onStream(call) });
    if ('socket' in o) {
      await prepareSocketPath(o.socket);
      await bind(s.server, `unix:${o.socket}`);
      s.socket = o.socket;
      s.socketIno = restrictSocket(o.socket);
      s.log.info({ socket: o.socket, mode: '0600' }, 'ADS server listening on a Unix socket');
      return s;
    }
    if (o.port !== 0 && !(await tcpPortFree(o.host, o.port))) throw new XdsSocketError(`${o.host}:${o.port} is in use by another process`, 'EADDRINUSE');
    s.port = await bind(s.server, `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`);
    // Plain TCP: every local process can fetch every certificate's private key over SDS.
    s.log.warn(
      { address: `${o.host}:${s.port}` },
      'ADS server listening on TCP: any process that can reach this address receives every TLS private key over SDS; prefer the Unix socket',
    );
    return s;
  }

  private nextVersion(): string {
    return `${rfc3339(this.now())}/${++this.counter}`;
  }

  /**
   * Replaces the served resources (which must not be modified afterwards: they are hashed by identity
   * once). A resource whose content (JSON) is unchanged keeps its encoding; the
   * others are encoded once here (a translator bug shows up as an encoding error: that resource is logged
   * and left out). Types whose content changed get a new version and are pushed to every subscribed proxy;
   * unchanged types are not.
   */
  setResources(r: XdsResources): void {
    let version: string | undefined;
    for (const type of TYPES) {
      const list = r[RESOURCE_KEY[type] ?? 'listeners'];
      const prev = this.state.get(type);
      const encoded: Encoded[] = [];
      for (const json of list) {
        const name = resourceName(json);
        const hash = contentHash(json);
        const old = prev?.byName.get(name);
        if (old && old.hash === hash) {
          encoded.push(old);
          continue;
        }
        try {
          encoded.push({ name, any: packJson(type, json), hash });
        } catch (err) {
          this.log.error(
            { type: SHORT_NAMES[type], resource: name, err: (err as Error).message },
            'cannot encode resource: it is left out (this is a meshgate bug, please report it)',
          );
        }
      }
      // Unchanged resources are the same Encoded objects, in the same order: compare by identity.
      if (prev && prev.resources.length === encoded.length && encoded.every((e, i) => e === prev.resources[i])) continue;
      version ??= this.nextVersion();
      this.state.set(type, { version, resources: encoded, byName: new Map(encoded.map((e) => [e.name, e])) });
      for (const c of this.connections) if (c.types.has(type)) c.dirty.add(type);
    }
    if (version) {
      this.log.debug({ version }, 'resources changed');
      for (const c of this.connections) this.flush(c);
    }
  }

  /** Sources have synced: start answering (until then requests are held, so proxies never see a partial config). */
  markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const c of this.connections) this.flush(c);
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /** Current version per short type name. */
  versions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [t, s] of this.state) out[SHORT_NAMES[t] ?? t] = s.version;
    return out;
  }

  proxies(): ProxyStatus[] {
    return [...this.connections].map((c) => {
      const types: Record<string, TypeStatus> = {};
      for (const [t, st] of c.types) {
        const ts: TypeStatus = { wildcard: st.wildcard, names: [...st.names], status: statusOf(st) };
        if (st.versionSent) ts.versionSent = st.versionSent;
        if (st.nonceSent) ts.nonceSent = st.nonceSent;
        if (st.versionAcked) ts.versionAcked = st.versionAcked;
        if (st.nonceAcked) ts.nonceAcked = st.nonceAcked;
        if (st.lastNack) ts.lastNack = st.lastNack;
        types[SHORT_NAMES[t] ?? t] = ts;
      }
      const p: ProxyStatus = { connectionId: c.connectionId, nodeId: c.nodeId, peer: c.peer, connectedAt: c.connectedAt, types };
      if (c.node) p.node = c.node;
      return p;
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const c of this.connections) {
      c.closed = true;
      c.call.end();
    }
    this.connections.clear();
    this.metrics.connected?.set(0);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.socket) removeSocket(this.socket, this.socketIno);
  }

  private onStream(call: Call): void {
    const c = new Connection(call, call.getPeer(), ++this.seq, this.now());
    this.connections.add(c);
    this.metrics.connected?.inc();
    const done = (why: string): void => {
      if (c.closed) return;
      c.closed = true;
      this.connections.delete(c);
      this.metrics.connected?.dec();
      this.log.info({ proxy: c.connectionId || c.peer, reason: why }, 'ADS stream closed');
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        this.onRequest(c, req);
      } catch (err) {
        this.log.error({ proxy: c.connectionId, err: (err as Error).message }, 'failed to handle a discovery request');
      }
    });
    call.on('end', () => {
      done('client closed the stream');
      call.end();
    });
    call.on('cancelled', () => done('cancelled'));
    call.on('error', (err: Error) => done(`error: ${err.message}`));
    call.on('close', () => done('closed'));
  }

  private onRequest(c: Connection, req: DiscoveryRequest): void {
    if (req.node && !c.node) {
      c.node = req.node;
      c.nodeId = req.node.id;
      c.connectionId = `${req.node.id}-${c.seq}`;
      this.log.info({ proxy: c.connectionId, peer: c.peer }, 'ADS stream opened');
    }
    const type = req.type_url;
    const short = SHORT_NAMES[type];
    if (!short) {
      this.log.debug({ proxy: c.connectionId, type }, 'ignoring a request for a resource type meshgate does not serve');
      return;
    }
    let st = c.types.get(type);
    const requested = req.resource_names;
    const wildcard = WILDCARD_TYPES.has(type) && (requested.length === 0 || requested.includes('*'));
    const names = new Set(requested.filter((n) => n !== '*'));

    if (req.error_detail) {
      // NACK: the proxy keeps its last good config. Record it, count it, and do not answer.
      const nack: NackRecord = { version: req.version_info, nonce: req.response_nonce, message: req.error_detail.message, at: this.now().toISOString() };
      if (st) st.lastNack = nack;
      this.rejects[short] = (this.rejects[short] ?? 0) + 1;
      this.metrics.rejects?.inc({ type: short });
      this.log.warn(
        { proxy: c.connectionId, type: short, version: req.version_info, error: req.error_detail.message },
        'proxy rejected (NACKed) configuration',
      );
      return;
    }
    if (!st || req.response_nonce === '') {
      // First request for this type on this stream (or a reconnecting proxy): always answer.
      st = { wildcard, names, force: true, sent: new Map() };
      c.types.set(type, st);
      c.dirty.add(type);
      this.flush(c);
      return;
    }
    if (req.response_nonce !== st.nonceSent) {
      // An ACK/NACK of a response we have since superseded: the newer one is on its way.
      this.log.debug({ proxy: c.connectionId, type: short, nonce: req.response_nonce }, 'ignoring stale nonce');
      return;
    }
    st.nonceAcked = req.response_nonce;
    st.versionAcked = req.version_info;
    delete st.lastNack;
    // Respond to an ACK only when new names were added (a removal needs no answer in SotW).
    const added = [...names].some((n) => !st.names.has(n)) || (wildcard && !st.wildcard);
    for (const n of st.sent.keys()) if (!names.has(n)) st.sent.delete(n);
    st.wildcard = wildcard;
    st.names = names;
    if (added) {
      // Partial types answer with what the stream has not been sent yet (the added names); the others
      // answer with everything.
      if (!PARTIAL_TYPES.has(type)) st.force = true;
      c.dirty.add(type);
      this.flush(c);
    }
  }

  /**
   * The response a stream needs for a type now, or undefined when it needs none: LDS/CDS carry every
   * subscribed resource and go out when that set or any content changed; EDS/RDS/SDS carry the resources
   * whose content differs from what this stream was last sent. A forced response (first request, reconnect,
   * new names of LDS/CDS) carries everything subscribed, even if empty.
   */
  private response(type: string, st: StreamType): { resp: DiscoveryResponse; commit: () => void } | undefined {
    const s = this.state.get(type);
    const subscribed = !s ? [] : st.wildcard ? s.resources : [...st.names].flatMap((n) => (s.byName.get(n) ? [s.byName.get(n) as Encoded] : []));
    const version = s?.version ?? '';
    let chosen = subscribed;
    let commit: () => void;
    if (PARTIAL_TYPES.has(type)) {
      if (!st.force) chosen = subscribed.filter((e) => st.sent.get(e.name) !== e.hash);
      if (!st.force && chosen.length === 0) return undefined;
      commit = () => {
        if (st.force) st.sent.clear();
        for (const e of chosen) st.sent.set(e.name, e.hash);
      };
    } else {
      const signature = subscribed.map((e) => `${e.name}\0${e.hash}`).join('\n');
      if (!st.force && signature === st.sentSignature) return undefined;
      commit = () => {
        st.sentSignature = signature;
      };
    }
    return { resp: { version_info: version, type_url: type, nonce: `${version}/${randomUUID()}`, resources: chosen.map((e) => e.any) }, commit };
  }

  /**
   * Writes the dirty types in push order with the resources current at write time (so bursts of
   * updates coalesce), waiting for 'drain' when the stream's buffer is full.
   */
  private flush(c: Connection): void {
    if (!this.synced || c.flushing || c.closed) return;
    c.flushing = true;
    const step = (): void => {
      while (!c.closed) {
        const type = PUSH_ORDER.find((t) => c.dirty.has(t));
        if (!type) break;
        c.dirty.delete(type);
        const st = c.types.get(type);
        if (!st) continue;
        const next = this.response(type, st);
        // Nothing this stream subscribes to changed since its last response: nothing to push.
        if (!next) continue;
        const { resp, commit } = next;
        commit();
        st.force = false;
        st.nonceSent = resp.nonce;
        st.versionSent = resp.version_info;
        const short = SHORT_NAMES[type] ?? type;
        this.metrics.pushes?.inc({ type: short });
        this.log.debug({ proxy: c.connectionId, type: short, version: resp.version_info, resources: resp.resources.length }, 'push');
        if (!c.call.write(resp)) {
          c.call.once('drain', step);
          return;
        }
      }
      c.flushing = false;
    };
    step();
  }
}
