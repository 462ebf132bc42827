// One bound listener: a net.Server accepting connections and handing them to a node:http server (never
// listening itself) whose requests go to the HTTP connection manager the connection was accepted with.
// An update swaps the HCM for new connections; connections of the previous config finish their current
// request and close. Draining stops accepting, closes idle connections and, after the drain time,
// everything else.
import { createServer as createHttpServer, ServerResponse, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { StatScope, type StatsStore } from '../stats/store.ts';
import { ActiveStream } from '../http/active-stream.ts';
import type { HttpConnectionManager } from '../http/connection-manager.ts';
import { NodeDownstream } from '../http/downstream.ts';
import { buildLocalReply } from '../http/local-reply.ts';
import { reasonPhrase } from '../http/codes.ts';
import type { Json } from '../xds/json.ts';
import type { ListenerSpec } from './listener-config.ts';
import { fastPathEnabled, serveFast, type FastListenerHooks } from '../fast/connection.ts';
import { applyXfcc } from '../tls/xfcc.ts';
import { h2cAsPlainRequest, holdUpgradePayload, releaseUpgradePayload } from '../http/websocket.ts';

interface ConnState {
  hcm: HttpConnectionManager;
  inflight: number;
  /** Runs once no request is in flight any more (a pipelined upgrade waits for the responses before it). */
  onIdle?: (() => void) | undefined;
}

const STATE = Symbol('meshgate.conn');
type TrackedSocket = Socket & { [STATE]?: ConnState };

export class ActiveListener {
  spec: ListenerSpec;
  json: Json;
  versionInfo: string;
  lastUpdated: string;
  hcm: HttpConnectionManager;
  /** Bound address (may differ from spec with listenHost / port 0). */
  boundAddress = '';
  boundPort = 0;
  draining = false;
  private readonly net: NetServer;
  private readonly http: HttpServer;
  private readonly sockets = new Set<TrackedSocket>();
  private readonly scope: StatScope;
  private readonly cxTotal: number;
  private readonly cxActive: number;
  /** Envoy's per-handler stats: `listener.<address>.worker_<n>.downstream_cx_*`. */
  private readonly workerCxTotal: number;
  private readonly workerCxActive: number;
  private readonly store: StatsStore;
  private readonly log: Logger;
  /** Connections accepted while the listener is warming wait here (Envoy keeps them in the backlog). */
  private pending: Socket[] | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** Plaintext HTTP/1.1 connections are served by gateway/fast/ (MESHGATE_FAST_PATH=0: node:http only). */
  private readonly fast = fastPathEnabled();
  private readonly fastHooks: FastListenerHooks = {
    draining: () => this.draining,
    handOff: (s, data) => {
      this.http.emit('connection', s);
      if (data.length > 0) s.emit('data', data);
      s.resume();
    },
  };

  constructor(spec: ListenerSpec, json: Json, hcm: HttpConnectionManager, o: { versionInfo: string; store: StatsStore; log: Logger; warm: boolean; worker: number }) {
    this.spec = spec;
    this.json = json;
    this.hcm = hcm;
    this.versionInfo = o.versionInfo;
    this.lastUpdated = new Date().toISOString();
    this.store = o.store;
    this.log = o.log;
    this.pending = o.warm ? undefined : [];
    this.scope = new StatScope(o.store, `listener.${spec.address}_${spec.port}.`);
    this.cxTotal = this.scope.counter('downstream_cx_total');
    this.cxActive = this.scope.gauge('downstream_cx_active');
    this.workerCxTotal = this.scope.counter(`worker_${o.worker}.downstream_cx_total`);
    this.workerCxActive = this.scope.gauge(`worker_${o.worker}.downstream_cx_active`);
    this.scope.counter('downstream_cx_destroy');
    this.scope.counter('no_filter_chain_match');
    this.scope.counter('downstream_global_cx_overflow');
    this.http = createHttpServer({
      requireHostHeader: false,
      keepAliveTimeout: spec.hcm.idleTimeoutMs,
      headersTimeout: 0,
      requestTimeout: 0,
      maxHeaderSize: spec.hcm.maxRequestHeadersKb * 1024,
      noDelay: true,
    });
    this.http.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (err: Error & { code?: string }, socket: Socket) => this.onClientError(err, socket));
    this.net = createNetServer({ noDelay: true }, (sock) => this.onConnection(sock));
  }

  get warm(): boolean {
    return this.pending === undefined;
  }

  listen(host: string, port: number, reusePort = false): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.net.once('error', onError);
      this.net.listen({ host, port, backlog: 511, reusePort }, () => {
        this.net.off('error', onError);
        this.net.on('error', (e) => this.log.error({ listener: this.spec.name, err: e.message }, 'listener socket error'));
        const a = this.net.address();
        if (a && typeof a === 'object') {
          this.boundAddress = a.address;
          this.boundPort = a.port;
        }
        resolve();
      });
    });
  }

  /** The route configuration arrived: connections waiting in the backlog are served. */
  setWarm(): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) for (const s of p) if (!s.destroyed) this.accept(s);
  }

  private onConnection(sock: Socket): void {
    if (this.draining) {
      sock.destroy();
      return;
    }
    if (this.pending) {
      sock.pause();
      this.pending.push(sock);
      return;
    }
    this.accept(sock);
  }

  /** TLS / SNI / tcp_proxy listeners dispatch to a filter chain first (gateway/listener/chain-dispatcher.ts). */
  private accept(sock: Socket): void {
    const d = this.hcm.chains;
    if (d) d.dispatch(sock, (s, hcm) => this.serve(s, hcm));
    else this.serve(sock);
  }

  private serve(sock: TrackedSocket, hcm: HttpConnectionManager = this.hcm): void {
    sock[STATE] = { hcm, inflight: 0 };
    this.sockets.add(sock);
    const st = this.store;
    st.inc(this.cxTotal);
    st.inc(this.cxActive);
    st.inc(this.workerCxTotal);
    st.inc(this.workerCxActive);
    st.inc(hcm.stats.downstream_cx_total);
    st.inc(hcm.stats.downstream_cx_active);
    st.inc(hcm.stats.downstream_cx_http1_total);
    st.inc(hcm.stats.downstream_cx_http1_active);
    sock.once('close', () => {
      this.sockets.delete(sock);
      st.dec(this.cxActive);
      st.dec(this.workerCxActive);
      st.dec(hcm.stats.downstream_cx_active);
      st.dec(hcm.stats.downstream_cx_http1_active);
      st.inc(hcm.stats.downstream_cx_destroy);
    });
    const cs = sock[STATE];
    if (this.fast && cs && (sock as { encrypted?: boolean }).encrypted !== true) serveFast(sock, cs, this.fastHooks);
    else this.http.emit('connection', sock);
    sock.resume();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const sock = req.socket as TrackedSocket;
    const cs = sock[STATE];
    const hcm = cs?.hcm ?? this.hcm;
    if (cs) cs.inflight++;
    const down = new NodeDownstream(req, res);
    const stream = new ActiveStream(
      hcm,
      {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        httpMinor: req.httpVersionMinor,
        // x-forwarded-client-cert: dropped (SANITIZE), or set from a mutual-TLS client certificate (SANITIZE_SET).
        rawHeaders: applyXfcc(req.rawHeaders, sock, hcm.spec.xfcc),
        remoteAddress: sock.remoteAddress ?? '',
        remotePort: sock.remotePort ?? 0,
        tls: (sock as { encrypted?: boolean }).encrypted === true,
        localAddress: sock.localAddress ?? '',
        localPort: sock.localPort ?? 0,
        body: req,
        complete: () => req.complete,
      },
      down,
    );
    res.on('close', () => {
      if (cs) cs.inflight--;
      if (cs?.onIdle && cs.inflight === 0) {
        const next = cs.onIdle;
        cs.onIdle = undefined;
        next();
      }
      if (!res.writableFinished) stream.onDownstreamClose();
      if (this.draining && cs && cs.inflight === 0) sock.destroySoon();
    });
    // More than max_headers_count headers: 431 (Envoy http1.too_many_headers).
    if (req.rawHeaders.length / 2 > hcm.spec.maxHeadersCount) {
      this.writeRaw(sock, 431, 'Request Header Fields Too Large', hcm);
      return;
    }
    stream.start();
  }

  /**
   * node:http stops parsing at a request with `Connection: upgrade` and an Upgrade header and hands the rest of
   * the connection over. Envoy's HTTP/1 codec serves one request at a time: a pipelined upgrade waits until
   * the responses before it are written, and is dropped if one of them closed the connection. Every byte
   * after the upgrade head is held (websocket.ts) until the upstream switches protocols. `Upgrade: h2c` is no
   * upgrade for Envoy: that request goes back to node:http without it, on the same keep-alive connection.
   */
  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const sock = socket as TrackedSocket;
    holdUpgradePayload(sock, head);
    const serve = (): void => {
      if (sock.destroyed || !sock.writable) {
        sock.destroy();
        return;
      }
      const plain = h2cAsPlainRequest(req);
      if (plain !== undefined) {
        const held = releaseUpgradePayload(sock);
        this.http.emit('connection', sock);
        sock.emit('data', Buffer.concat([Buffer.from(plain, 'latin1'), ...held.data]));
        if (held.ended) sock.end();
        sock.resume();
        return;
      }
      const res = new ServerResponse(req);
      res.assignSocket(sock);
      // A reply to an upgrade request closes the connection (what follows its head is never a request).
      res.on('finish', () => sock.destroySoon());
      this.onRequest(req, res);
    };
    const cs = sock[STATE];
    if (cs && cs.inflight > 0) cs.onIdle = serve;
    else serve();
  }

  /** Codec errors: Envoy answers 400 `Bad Request` (431 for oversized headers) and closes. */
  private onClientError(err: Error & { code?: string }, socket: Socket): void {
    const cs = (socket as TrackedSocket)[STATE];
    const hcm = cs?.hcm ?? this.hcm;
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    this.store.inc(hcm.stats.downstream_cx_protocol_error);
    if (err.code === 'HPE_HEADER_OVERFLOW') this.writeRaw(socket, 431, 'Request Header Fields Too Large', hcm);
    else this.writeRaw(socket, 400, 'Bad Request', hcm);
  }

  private writeRaw(socket: Socket, status: number, body: string, hcm: HttpConnectionManager): void {
    const r = buildLocalReply(status, body, { serverName: hcm.spec.serverName, close: true });
    let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    for (let i = 0; i < r.headers.length; i += 2) head += `${r.headers[i]}: ${r.headers[i + 1]}\r\n`;
    socket.end(head + '\r\n' + r.body);
  }

  /** New config for new connections; connections on the old config close after their current request. */
  update(spec: ListenerSpec, json: Json, hcm: HttpConnectionManager, versionInfo: string): void {
    const old = this.hcm;
    this.spec = spec;
    this.json = json;
    this.versionInfo = versionInfo;
    this.lastUpdated = new Date().toISOString();
    this.hcm = hcm;
    if (old !== hcm) {
      old.draining = true;
      for (const s of this.sockets) {
        const cs = s[STATE];
        if (cs && cs.hcm === old && cs.inflight === 0) s.destroySoon();
      }
      // The old HCM's stats go once its connections are gone.
      const check = setInterval(() => {
        for (const s of this.sockets) if (s[STATE]?.hcm === old) return;
        clearInterval(check);
        old.release();
      }, 1000);
      check.unref();
    }
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  /** Stops accepting; idle connections close now, busy ones after their response; all after drainMs. */
  drain(drainMs: number): Promise<void> {
    this.draining = true;
    this.hcm.draining = true;
    for (const s of this.pending ?? []) s.destroy();
    this.pending = undefined;
    return new Promise((resolve) => {
      this.net.close(() => undefined);
      for (const s of this.sockets) if ((s[STATE]?.inflight ?? 0) === 0) s.destroySoon();
      const done = (): void => {
        if (this.drainTimer) clearTimeout(this.drainTimer);
        for (const s of this.sockets) s.destroy();
        resolve();
      };
      if (this.sockets.size === 0) return done();
      this.drainTimer = setTimeout(done, drainMs);
      this.drainTimer.unref();
      const poll = setInterval(() => {
        if (this.sockets.size === 0) {
          clearInterval(poll);
          done();
        }
      }, 50);
      poll.unref();
    });
  }

  /** Drains connections without closing the listen socket: responses close connections, idle ones close now. */
  startDrainSequence(): void {
    this.hcm.draining = true;
    for (const s of this.sockets) {
      const cs = s[STATE];
      if (cs) cs.hcm.draining = true;
      if ((cs?.inflight ?? 0) === 0) s.destroySoon();
    }
  }

  release(): void {
    this.hcm.release();
    this.scope.releaseAll();
  }

  close(): void {
    this.net.close(() => undefined);
    for (const s of this.pending ?? []) s.destroy();
    for (const s of this.sockets) s.destroy();
  }
}
