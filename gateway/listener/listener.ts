// One bound listener: a net.Server accepting connections and handing them to a node:http server (never
// listening itself) whose requests go to the HTTP connection manager the connection was accepted with.
// An update swaps the HCM for new connections; connections of the previous config finish their current
// request and close. Draining stops accepting, closes idle connections and, after the drain time,
// everything else.
import { createServer as createHttpServer, ServerResponse, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { StatScope, type StatsStore } from '../stats/store.ts';
import { ActiveStream, admittedRequest } from '../http/active-stream.ts';
import type { HttpConnectionManager } from '../http/connection-manager.ts';
import type { ChainDispatcher } from './chain-dispatcher.ts';
import { NodeDownstream } from '../http/downstream.ts';
import { codecErrorReply } from '../http/local-reply.ts';
import type { envoy } from '../../xds/envoy.ts';
import type { ListenerSpec } from './listener-config.ts';
import { fastPathEnabled, serveFast, type FastListenerHooks } from '../fast/connection.ts';
import { admitRequest } from '../http/request-admission.ts';
import { H2Connections, isH2Preface } from '../http/h2-connections.ts';
import { h2cAsPlainRequest, holdUpgradePayload, releaseUpgradePayload } from '../http/websocket.ts';

interface ConnState {
  hcm: HttpConnectionManager;
  inflight: number;
  /** Runs once no request is in flight any more (a pipelined upgrade waits for the responses before it). */
  onIdle?: (() => void) | undefined;
  /** Pipelined requests node:http parsed ahead, served one at a time in order. */
  waiting?: (() => void)[] | undefined;
  /** A response closed (or will close) the connection: nothing after it is served. */
  closing?: boolean;
  /** Served as HTTP/2 (h2-connections.ts): drains by GOAWAY, not by closing the socket. */
  h2?: boolean;
  /** Reading stopped because too many pipelined requests wait (node:http would parse ahead without bound). */
  readPaused?: boolean;
}

/**
 * Pipelined requests node:http may have parsed ahead of the one being served before the connection stops
 * being read (Envoy reads nothing while a request is active; its kernel buffers hold the rest).
 */
const MAX_WAITING = 16;
/**
 * node:http resumes a paused socket on its own (when its writes drain), and one read can carry thousands of
 * small heads, so a client that pipelines without reading its responses could still make us hold requests
 * without bound. Past this many waiting requests the connection is closed (about 2 KiB each at most).
 */
const MAX_WAITING_HARD = 4096;
type PausableSocket = Socket & { _paused?: boolean };

const STATE = Symbol('meshgate.conn');
type TrackedSocket = Socket & { [STATE]?: ConnState };

export class ActiveListener {
  spec: ListenerSpec;
  json: envoy.config.listener.v3.Listener;
  versionInfo: string;
  lastUpdated: string;
  hcm: HttpConnectionManager;
  /** TLS / SNI / tcp_proxy listeners: the filter-chain dispatcher that goes with `hcm` (released with it). */
  chains: ChainDispatcher | undefined;
  /** Bound address (may differ from spec with listenHost / port 0). */
  boundAddress = '';
  boundPort = 0;
  draining = false;
  private readonly net: NetServer;
  private readonly http: HttpServer;
  private readonly h2: H2Connections;
  private readonly sockets = new Set<TrackedSocket>();
  private readonly scope: StatScope;
  private readonly cxTotal: number;
  /** listener.<address>.downstream_cx_length_ms */
  private readonly cxLength: number;
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
      const cs = (s as TrackedSocket)[STATE];
      if (cs && cs.hcm.spec.codec === 'AUTO' && isH2Preface(data)) return this.switchToH2(s, cs, data);
      this.http.emit('connection', s);
      if (data.length > 0) s.emit('data', data);
      s.resume();
    },
  };

  constructor(
    spec: ListenerSpec,
    json: envoy.config.listener.v3.Listener,
    hcm: HttpConnectionManager,
    chains: ChainDispatcher | undefined,
    o: { versionInfo: string; store: StatsStore; log: Logger; warm: boolean; worker: number },
  ) {
    this.spec = spec;
    this.json = json;
    this.hcm = hcm;
    this.chains = chains;
    this.versionInfo = o.versionInfo;
    this.lastUpdated = new Date().toISOString();
    this.store = o.store;
    this.log = o.log;
    this.pending = o.warm ? undefined : [];
    this.scope = new StatScope(o.store, `listener.${spec.address}_${spec.port}.`);
    this.cxTotal = this.scope.counter('downstream_cx_total');
    this.cxActive = this.scope.gauge('downstream_cx_active');
    // The main thread of a proxy whose worker threads serve (worker -1) accepts nothing: no per-worker stats.
    this.workerCxTotal = o.worker < 0 ? -1 : this.scope.counter(`worker_${o.worker}.downstream_cx_total`);
    this.workerCxActive = o.worker < 0 ? -1 : this.scope.gauge(`worker_${o.worker}.downstream_cx_active`);
    this.scope.counter('downstream_cx_destroy');
    this.cxLength = this.scope.histogram('downstream_cx_length_ms');
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
    // `Expect` other than 100-continue is an ordinary header to Envoy (node:http would answer 417 itself).
    this.http.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    // 100-continue is the connection manager's to answer or relay (request-admission.ts, proxy_100_continue),
    // not node's: node would write `100 Continue` before the request is even admitted. Its own note that a 100
    // is owed is cleared too (it would close a kept-alive connection whose response came without one); the
    // stream's writeContinue() tells node when a 100 went out.
    this.http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      (res as { _expect_continue?: boolean })._expect_continue = false;
      this.onRequest(req, res);
    });
    // CONNECT is an upgrade to Envoy's HCM (held and answered like one: 403 upgrade_failed, as Istio enables none).
    this.http.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (err: Error & { code?: string }, socket: Socket) => this.onClientError(err, socket));
    this.h2 = new H2Connections(o.log, o.store, spec.hcm.maxRequestHeadersKb * 1024);
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
    const d = this.chains;
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
    // TLS that chose h2 by ALPN, or codec HTTP2; with AUTO plaintext starts as HTTP/1 and switches when the
    // client preface arrives.
    const h2 = (sock as { alpnProtocol?: string | false }).alpnProtocol === 'h2' || hcm.spec.codec === 'HTTP2';
    if (!h2) {
      st.inc(hcm.stats.downstream_cx_http1_total);
      st.inc(hcm.stats.downstream_cx_http1_active);
    }
    const openedAt = performance.now();
    sock.once('close', () => {
      // Envoy's connection timespans: the listener's ActiveTcpConnection and the HCM's, both from accept.
      const lengthMs = performance.now() - openedAt;
      st.record(this.cxLength, lengthMs);
      st.record(hcm.stats.downstream_cx_length_ms, lengthMs);
      this.sockets.delete(sock);
      st.dec(this.cxActive);
      st.dec(this.workerCxActive);
      st.dec(hcm.stats.downstream_cx_active);
      if (sock[STATE]?.h2 !== true) st.dec(hcm.stats.downstream_cx_http1_active);
      st.inc(hcm.stats.downstream_cx_destroy);
    });
    const cs = sock[STATE];
    // node:http2 reads the connection itself once it has it: never resumed here.
    if (h2 && cs) return this.serveH2(sock, cs);
    if (this.fast && cs && (sock as { encrypted?: boolean }).encrypted !== true) serveFast(sock, cs, this.fastHooks);
    else if (cs) this.serveGeneral(sock, cs);
    else this.http.emit('connection', sock);
    sock.resume();
  }

  /**
   * The general (node:http) path, after the first bytes: the HTTP/2 client preface goes to HTTP/2 (codec AUTO,
   * as on the fast path), anything else to node:http with those bytes. Until they arrive the connection is
   * held to the idle timeout.
   */
  private serveGeneral(sock: Socket, cs: ConnState): void {
    sock.setTimeout(cs.hcm.spec.idleTimeoutMs, () => sock.destroy());
    sock.once('data', (first: Buffer) => {
      sock.setTimeout(0);
      if (cs.hcm.spec.codec === 'AUTO' && isH2Preface(first)) return this.switchToH2(sock, cs, first);
      this.http.emit('connection', sock);
      sock.emit('data', first);
    });
  }

  /** h2c with prior knowledge: the connection was counted as HTTP/1 before its first bytes. */
  private switchToH2(sock: Socket, cs: ConnState, data: Buffer): void {
    this.store.dec(cs.hcm.stats.downstream_cx_http1_total);
    this.store.dec(cs.hcm.stats.downstream_cx_http1_active);
    this.serveH2(sock, cs, data);
  }

  /** An HTTP/2 connection (ALPN h2, or h2c after the preface): `data` are the bytes already read from it. */
  private serveH2(sock: Socket, cs: ConnState, data?: Buffer): void {
    cs.h2 = true;
    this.h2.serve(sock, cs.hcm, data);
  }

  /** Closes a connection with no request in flight: HTTP/1 at once, HTTP/2 by GOAWAY (its streams finish). */
  private closeIdle(s: TrackedSocket): void {
    if (s[STATE]?.h2 !== true) s.destroySoon();
  }

  /**
   * node:http parses pipelined requests ahead and would serve them side by side; Envoy's HTTP/1 codec serves one
   * request at a time and reads nothing after a response that closes the connection. So a request that arrives
   * while another is in flight waits its turn, and is dropped unserved if a response before it closed.
   */
  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const cs = (req.socket as TrackedSocket)[STATE];
    if (cs?.closing) return;
    if (cs && cs.inflight > 0) {
      const waiting = (cs.waiting ??= []);
      waiting.push(() => this.serveRequest(req, res));
      if (waiting.length > MAX_WAITING_HARD) {
        this.log.warn(
          { listener: this.spec.name, downstream: `${req.socket.remoteAddress}:${req.socket.remotePort}`, waiting: waiting.length },
          'a client pipelined too many requests without reading the responses; its connection is closed',
        );
        cs.closing = true;
        cs.waiting = undefined;
        req.socket.destroy();
        return;
      }
      if (waiting.length >= MAX_WAITING && !cs.readPaused) {
        // node:http's own flag too, so its body reads do not resume the socket behind our back.
        const sock = req.socket as PausableSocket;
        cs.readPaused = true;
        sock._paused = true;
        sock.pause();
      }
      return;
    }
    this.serveRequest(req, res);
  }

  private serveRequest(req: IncomingMessage, res: ServerResponse): void {
    const sock = req.socket as TrackedSocket;
    const cs = sock[STATE];
    const hcm = cs?.hcm ?? this.hcm;
    if (cs) cs.inflight++;
    const down = new NodeDownstream(req, res);
    const method = req.method ?? 'GET';
    const a = admitRequest(hcm, method, req.url ?? '/', req.rawHeaders, sock);
    const stream = new ActiveStream(
      hcm,
      admittedRequest(a, method, sock, {
        // Envoy's codec handles anything but HTTP/1.1 (HTTP/0.9 `GET /path`, 1.0) as HTTP/1.0: 426 unless accepted.
        httpMinor: req.httpVersionMajor === 1 && req.httpVersionMinor === 1 ? 1 : 0,
        body: req,
        complete: () => req.complete,
      }),
      down,
    );
    res.on('close', () => {
      if (cs) {
        cs.inflight--;
        if (down.closesConnection || !res.writableFinished) cs.closing = true;
        if (cs.inflight === 0) this.serveNext(cs, sock);
      }
      if (!res.writableFinished) stream.onDownstreamClose();
      if (this.draining && cs && cs.inflight === 0) sock.destroySoon();
    });
    try {
      stream.start();
    } catch (e) {
      // A bug met while starting this request ends its connection (reset) with a log line, never the thread.
      const err = e instanceof Error ? e : new Error(String(e));
      this.log.error(
        { listener: this.spec.name, err: err.message, stack: err.stack, downstream: `${sock.remoteAddress}:${sock.remotePort}` },
        'internal error while serving a request; the connection is reset',
      );
      sock.destroy();
    }
  }

  /** The next pipelined request (or upgrade) of a connection, unless a response closed it. */
  private serveNext(cs: ConnState, sock: PausableSocket): void {
    const next = cs.closing ? undefined : (cs.waiting?.shift() ?? cs.onIdle);
    if (cs.closing) cs.waiting = undefined;
    if (next === cs.onIdle) cs.onIdle = undefined;
    if (cs.readPaused && !cs.closing && (cs.waiting?.length ?? 0) < MAX_WAITING / 2) {
      cs.readPaused = false;
      sock._paused = false;
      sock.resume();
    }
    next?.();
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

  /**
   * Codec errors from node:http (llhttp, strict): Envoy answers 400 `Bad Request` (431 for oversized headers)
   * and closes. A pipelined request that fails while an earlier response is still being written is answered
   * after that response, never in the middle of it (Envoy's codec reads one request at a time).
   */
  private onClientError(err: Error & { code?: string }, socket: Socket): void {
    const cs = (socket as TrackedSocket)[STATE];
    const hcm = cs?.hcm ?? this.hcm;
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    this.store.inc(hcm.stats.downstream_cx_protocol_error);
    const reply = codecErrorReply(err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400, hcm.spec.serverName);
    const busy = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (busy && !busy.writableFinished && !busy.req.complete) {
      // The error is in this request's own body: a 400 while its response has not started, else a reset.
      if (busy.headersSent) socket.destroy();
      else socket.end(reply);
      return;
    }
    const answer = (): void => {
      if (socket.writable) socket.end(reply);
      else socket.destroy();
    };
    // After the requests before it (in flight or waiting), unless one of them closes the connection.
    if (cs && cs.closing) return;
    if (cs && (cs.inflight > 0 || (cs.waiting?.length ?? 0) > 0)) {
      (cs.waiting ??= []).push(() => {
        cs.closing = true;
        answer();
      });
      return;
    }
    answer();
  }

  /** New config for new connections; connections on the old config close after their current request. */
  update(
    spec: ListenerSpec,
    json: envoy.config.listener.v3.Listener,
    hcm: HttpConnectionManager,
    chains: ChainDispatcher | undefined,
    versionInfo: string,
  ): void {
    const old = this.hcm;
    const oldChains = this.chains;
    this.spec = spec;
    this.json = json;
    this.versionInfo = versionInfo;
    this.lastUpdated = new Date().toISOString();
    this.hcm = hcm;
    this.chains = chains;
    if (old !== hcm) {
      old.draining = true;
      this.h2.drain(old);
      for (const s of this.sockets) {
        const cs = s[STATE];
        if (cs && cs.hcm === old && cs.inflight === 0) this.closeIdle(s);
      }
      // The old HCM's stats go once its connections are gone.
      const check = setInterval(() => {
        for (const s of this.sockets) if (s[STATE]?.hcm === old) return;
        clearInterval(check);
        old.release();
        oldChains?.release();
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
      this.h2.drain();
      for (const s of this.sockets) if ((s[STATE]?.inflight ?? 0) === 0) this.closeIdle(s);
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
    this.h2.drain();
    for (const s of this.sockets) {
      const cs = s[STATE];
      if (cs) cs.hcm.draining = true;
      if ((cs?.inflight ?? 0) === 0) this.closeIdle(s);
    }
  }

  release(): void {
    this.hcm.release();
    this.chains?.release();
    this.h2.release();
    this.scope.releaseAll();
  }

  close(): void {
    this.net.close(() => undefined);
    for (const s of this.pending ?? []) s.destroy();
    for (const s of this.sockets) s.destroy();
  }
}
