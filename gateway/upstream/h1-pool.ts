// HTTP/1.1 upstream connections, written for Envoy-exact requests: the head goes out exactly as the router
// built it (host first, lowercase names, no `connection: keep-alive` added, framing headers where Envoy's
// encoder puts them), one request per connection at a time, idle connections reused LIFO and closed after
// the cluster's idle_timeout. A connection older than max_connection_duration (counted from connect, as
// Envoy's ActiveClient arms its timer on Connected) drains: an idle one closes at once, a busy one carries no
// further request and closes when its response ends. Same dispatch contract as undici's Pool and H2Pool.
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { DispatchOptions, PoolEvents, UpstreamHandler } from './connection-pool.ts';
import { ChunkedDecoder, type ChunkedError } from '../../xds/chunked.ts';
import { MAX_RESPONSE_HEAD, RESPONSE_CHUNKED, UpstreamProtocolError, parseResponseHead } from './response-head.ts';

/** Receives a request body pushed chunk by chunk (gateway/http/request-body.ts). */
export interface BodySink {
  /** false: the upstream socket is congested; no more until the sink calls resumeFlow. */
  onBodyData(chunk: Buffer): boolean;
  onBodyEnd(): void;
  onBodyError(err: Error): void;
}

/** A body that can push itself into a sink instead of being iterated (no promise per chunk). */
export interface PushBody {
  attachSink(s: BodySink): void;
  detachSink(s: BodySink): void;
  resumeFlow(s: BodySink): void;
}

function isPushBody(b: object): b is PushBody {
  return typeof (b as Partial<PushBody>).attachSink === 'function';
}

const uncork = (s: Socket): void => s.uncork();

/**
 * Bytes queued on an upstream socket before a body write reports backpressure. Above the 64 KiB a downstream
 * read delivers, so a chunk the kernel takes at once does not pause and resume the client for nothing.
 */
const WRITE_HIGH_WATER = 256 * 1024;

function err(message: string, code: string): Error & { code: string } {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

const S_IDLE = 0;
const S_HEAD = 1;
const S_BODY_LENGTH = 2;
const S_CHUNKED = 3;
const S_BODY_CLOSE = 4;

class H1Controller implements Dispatcher.DispatchController {
  rawHeaders: string[] | null = null;
  aborted = false;
  paused = false;
  reason: Error | null = null;
  private readonly conn: H1Connection;

  constructor(conn: H1Connection) {
    this.conn = conn;
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.conn.abort(this);
  }

  pause(): void {
    this.paused = true;
    this.conn.socket.pause();
  }

  resume(): void {
    // Only while this request still owns the connection (complete() already resumed it otherwise).
    if (!this.paused) return;
    this.paused = false;
    this.conn.socket.resume();
  }
}

class H1Connection implements BodySink {
  readonly socket: Socket;
  private readonly pool: H1Pool;
  connected = false;
  private state = S_IDLE;
  private buf: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private handler: UpstreamHandler | undefined;
  private controller: H1Controller | undefined;
  private headRequest = false;
  /** How much of a pending response head was already searched (a trickled head is not rescanned per read). */
  private headScanned = 0;
  /** The current request's head went out: aborting it now leaves the connection unusable. */
  private written = false;
  private keepAlive = true;
  /** The request body is still being written: a response that completes now leaves the connection unusable. */
  private writingBody = false;
  /** The pushed body being written, its framing, and whether it waits for the socket's 'drain'. */
  private pushBody: PushBody | undefined;
  private pushChunked = false;
  private pushBlocked = false;
  private requests = 0;
  /** The chunked response body being decoded. */
  private chunked: ChunkedDecoder | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private durationTimer: NodeJS.Timeout | undefined;
  /** max_connection_duration reached: no further request; closed once the current one ends. */
  private draining = false;
  closed = false;

  /** performance.now() when the connection was begun (the cluster's upstream_cx_connect_ms and _length_ms). */
  private readonly startedAt: number;

  constructor(pool: H1Pool, socket: Socket, connectTimeoutMs: number, alreadyConnected: boolean, startedAt = performance.now()) {
    this.pool = pool;
    this.socket = socket;
    this.startedAt = startedAt;
    const onConnected = (): void => {
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connected = true;
      pool.events.onConnect(this.startedAt);
      if (pool.maxConnectionDurationMs > 0) {
        this.durationTimer = setTimeout(this.onMaxDuration, pool.maxConnectionDurationMs);
        this.durationTimer.unref();
      }
    };
    if (alreadyConnected) onConnected();
    else {
      this.connectTimer = setTimeout(() => this.fail(err('connect timeout', 'UND_ERR_CONNECT_TIMEOUT')), connectTimeoutMs);
      this.socket.once('connect', onConnected);
    }
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (e: Error & { code?: string }) => this.fail(e));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onClose());
    this.socket.on('drain', () => this.onDrain());
  }

  get busy(): boolean {
    return this.handler !== undefined;
  }

  /**
   * Writes the request. Returns false when its handler aborted it in onRequestStart (a queued request whose
   * client left meanwhile): nothing was written and the connection is free for the next request.
   */
  send(o: DispatchOptions, handler: UpstreamHandler): boolean {
    // The idle timer is left running (it ignores a busy connection) and re-armed at the next release: no
    // timer is created or cancelled per request.
    const c = new H1Controller(this);
    this.handler = handler;
    this.controller = c;
    this.headRequest = o.method === 'HEAD';
    this.state = S_HEAD;
    this.headScanned = 0;
    this.written = false;
    try {
      handler.onRequestStart?.(c, undefined);
    } catch (e) {
      this.pool.callbackError(e, 'onRequestStart');
      if (this.controller === c) this.detach();
      this.notifyError(handler, c, e);
      return false;
    }
    // abort() already detached it (and told the handler).
    if (c.aborted) return false;
    this.written = true;
    this.requests++;
    let head = `${o.method} ${o.path} HTTP/1.1\r\n`;
    const h = o.headers;
    let hasLength = false;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === 'content-length') hasLength = true;
      head += `${h[i]}: ${h[i + 1]}\r\n`;
    }
    // A body without content-length goes chunked (Envoy's HTTP/1 encoder appends transfer-encoding).
    const body = o.body;
    const chunked = body !== null && !hasLength;
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    // Header strings hold one char per byte received (latin1): written back byte for byte, never re-encoded.
    if (body === null) {
      this.socket.write(head + '\r\n', 'latin1');
      return true;
    }
    this.writingBody = true;
    if (!isPushBody(body)) {
      this.socket.write(head + '\r\n', 'latin1');
      void this.writeBody(body, chunked, c);
      return true;
    }
    // The head and the body bytes that are already here (or arrive in this tick, as the fast path feeds the
    // bytes read with the head right after the request starts) leave in one writev.
    const s = this.socket;
    s.cork();
    s.write(head + '\r\n', 'latin1');
    this.pushBody = body;
    this.pushChunked = chunked;
    this.pushBlocked = false;
    process.nextTick(uncork, s);
    body.attachSink(this);
    return true;
  }

  /** The current request no longer owns the connection. */
  private detach(): void {
    this.handler = undefined;
    this.controller = undefined;
    this.state = S_IDLE;
  }

  /** Tells a handler its request failed; an exception from it is logged, never thrown into the event loop. */
  private notifyError(handler: UpstreamHandler, c: H1Controller, e: unknown): void {
    try {
      handler.onResponseError?.(c, e instanceof Error ? e : new Error(String(e)));
    } catch (e2) {
      this.pool.callbackError(e2, 'onResponseError');
    }
  }

  onBodyData(chunk: Buffer): boolean {
    if (this.closed) return true;
    if (chunk.length === 0) return !this.pushBlocked;
    const s = this.socket;
    let ok: boolean;
    if (this.pushChunked) {
      s.cork();
      s.write(chunk.length.toString(16) + '\r\n', 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
      s.uncork();
    } else ok = s.write(chunk);
    if (!ok) this.pushBlocked = true;
    return ok;
  }

  onBodyEnd(): void {
    const b = this.pushBody;
    if (b === undefined) return;
    this.pushBody = undefined;
    this.writingBody = false;
    b.detachSink(this);
    if (this.pushChunked && !this.closed) this.socket.write('0\r\n\r\n', 'latin1');
  }

  onBodyError(e: Error): void {
    if (this.pushBody === undefined) return;
    // The body is cut short (client gone, bad chunked framing): part of it went out, so this connection
    // cannot carry another request (writingBody stays set). The downstream side answers or resets first, as
    // it did when the body was read through an async iterator; the attempt fails on the next tick if still on.
    this.pushBody = undefined;
    const c = this.controller;
    process.nextTick(() => {
      if (c && this.controller === c && !c.aborted) this.fail(e);
    });
  }

  private onDrain(): void {
    if (!this.pushBlocked) return;
    this.pushBlocked = false;
    this.pushBody?.resumeFlow(this);
  }

  private async writeBody(body: AsyncIterable<Buffer>, chunked: boolean, c: H1Controller): Promise<void> {
    try {
      await this.writeBodyChunks(body, chunked, c);
    } finally {
      if (this.controller === c || this.controller === undefined) this.writingBody = false;
    }
  }

  private async writeBodyChunks(body: AsyncIterable<Buffer>, chunked: boolean, c: H1Controller): Promise<void> {
    try {
      for await (const chunk of body) {
        if (c.aborted || this.closed) return;
        if (chunk.length === 0) continue;
        const ok = chunked
          ? this.socket.write(`${chunk.length.toString(16)}\r\n`) && this.socket.write(chunk) && this.socket.write('\r\n')
          : this.socket.write(chunk);
        if (!ok) await new Promise<void>((r) => this.socket.once('drain', () => r()));
      }
      if (chunked && !c.aborted && !this.closed) this.socket.write('0\r\n\r\n');
    } catch (e) {
      if (!c.aborted) this.fail(e as Error);
    }
  }

  private onData(d: Buffer): void {
    if (this.state === S_IDLE) {
      // Bytes with no request outstanding: the connection is unusable.
      this.socket.destroy();
      return;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    try {
      this.parse();
    } catch (e) {
      // A framing error ends the request with Envoy's protocol error (502, or a reset once the response
      // started) and closes the connection. Anything else was thrown by the request's own callbacks: a bug
      // that must cost this request only (connection termination: 503 or reset), never the process.
      if (!(e instanceof UpstreamProtocolError)) this.pool.callbackError(e, 'response callback');
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private parse(): void {
    for (;;) {
      const handler = this.handler;
      const c = this.controller;
      if (!handler || !c) return;
      switch (this.state) {
        case S_HEAD: {
          const buf = this.buf;
          const end = buf.indexOf('\r\n\r\n', this.headScanned > 3 ? this.headScanned - 3 : 0);
          // A bare LF ends no line for a strict parser (llhttp without lenient flags): reject it at once
          // instead of guessing where a line ended.
          const limit = end < 0 ? buf.length : end + 4;
          for (let lf = buf.indexOf(0x0a, this.headScanned); lf >= 0 && lf < limit; lf = buf.indexOf(0x0a, lf + 1)) {
            if (lf === 0 || buf[lf - 1] !== 0x0d) throw new UpstreamProtocolError('bare LF in the response head', 'HPE_LF_EXPECTED');
          }
          if (end < 0 || end > MAX_RESPONSE_HEAD) {
            if (buf.length > MAX_RESPONSE_HEAD) throw new UpstreamProtocolError('headers size exceeds limit', 'HPE_HEADER_OVERFLOW');
            this.headScanned = buf.length;
            return;
          }
          this.headScanned = 0;
          const head = parseResponseHead(buf.subarray(0, end).toString('latin1'));
          this.buf = buf.subarray(end + 4);
          const status = head.status;
          // Upgrades go through their own tunnel (gateway/http/websocket.ts), never through the pool.
          if (status === 101) throw new UpstreamProtocolError('101 Switching Protocols to a request without an upgrade', 'HPE_INVALID_CONSTANT');
          if (status < 200) {
            // 1xx: the final response follows. A 100 is handed to the router (relayed with proxy_100_continue).
            if (status === 100) {
              handler.onResponseContinue?.(c, head.headers);
              if (c.aborted) return;
            }
            continue;
          }
          this.keepAlive = head.keepAlive;
          c.rawHeaders = head.headers;
          handler.onResponseStart?.(c, status, {}, head.reason);
          if (c.aborted) return;
          // No body after a HEAD, 204 or 304 whatever the framing headers say; bytes that follow are
          // extraneous and close the connection (complete()).
          if (this.headRequest || status === 204 || status === 304) this.complete();
          else if (head.chunked) {
            this.chunked = new ChunkedDecoder(RESPONSE_CHUNKED);
            this.state = S_CHUNKED;
          } else if (head.contentLength >= 0) {
            this.remaining = head.contentLength;
            this.state = S_BODY_LENGTH;
            if (head.contentLength === 0) this.complete();
          } else {
            // No framing: the body runs to the end of the connection, which is then never reused.
            this.keepAlive = false;
            this.state = S_BODY_CLOSE;
          }
          continue;
        }
        case S_BODY_LENGTH: {
          if (this.buf.length === 0) return;
          const n = Math.min(this.remaining, this.buf.length);
          const chunk = this.buf.subarray(0, n);
          this.buf = this.buf.subarray(n);
          this.remaining -= n;
          handler.onResponseData?.(c, chunk);
          if (c.aborted) return;
          if (this.remaining === 0) this.complete();
          continue;
        }
        case S_CHUNKED: {
          if (this.buf.length === 0) return;
          const dec = this.chunked as ChunkedDecoder;
          const used = dec.feed(this.buf, 0, this.buf.length, this.onChunkData);
          if (used < 0) {
            const e = dec.error as ChunkedError;
            throw new UpstreamProtocolError(e.message, e.code);
          }
          this.buf = this.buf.subarray(used);
          if (c.aborted) return;
          if (dec.done) {
            this.chunked = undefined;
            this.complete();
          }
          continue;
        }
        case S_BODY_CLOSE: {
          if (this.buf.length === 0) return;
          const chunk = this.buf;
          this.buf = Buffer.alloc(0);
          handler.onResponseData?.(c, chunk);
          return;
        }
        default:
          return;
      }
    }
  }

  /** Chunk data for the current response's handler; once it aborted the request, no more is read. */
  private readonly onChunkData = (b: Buffer): void => {
    const c = this.controller;
    if (c && !c.aborted) this.handler?.onResponseData?.(c, b);
    if (!c || c.aborted) this.chunked?.stop();
  };

  /** The response is complete: hand the connection back or close it. */
  private complete(): void {
    const handler = this.handler;
    const c = this.controller;
    this.handler = undefined;
    this.controller = undefined;
    this.state = S_IDLE;
    // A response that ended while the router had paused it (downstream backpressure) must not leave the
    // socket paused in the pool: the drain that would resume it may never come (client gone), and the next
    // request on this connection would then never see its response.
    if (c?.paused) {
      c.paused = false;
      this.socket.resume();
    }
    // Envoy closes an upstream connection whose response ended before the request body was sent: the rest
    // of that body must never reach the next request on it.
    if (this.draining || this.writingBody || this.buf.length > 0 || !this.keepAlive || (this.pool.maxRequests > 0 && this.requests >= this.pool.maxRequests)) {
      this.close();
    } else this.pool.release(this);
    if (handler && c) {
      try {
        handler.onResponseEnd?.(c, {});
      } catch (e) {
        this.pool.callbackError(e, 'onResponseEnd');
      }
    }
  }

  private onEnd(): void {
    if (this.state === S_BODY_CLOSE && this.handler) {
      // Close-delimited body: the end of the connection is the end of the response.
      this.keepAlive = false;
      this.complete();
      return;
    }
    if (this.handler) this.fail(err('upstream closed the connection before the response completed', 'UND_ERR_SOCKET'));
    else this.close();
  }

  private onClose(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    if (this.handler) this.fail(err('upstream connection closed', 'UND_ERR_SOCKET'));
    if (!this.closed) {
      this.closed = true;
      this.pool.forget(this);
    }
  }

  private fail(e: Error & { code?: string }): void {
    const handler = this.handler;
    const c = this.controller;
    this.handler = undefined;
    this.controller = undefined;
    if (!this.connected && !this.closed) this.pool.events.onConnectError(e, this.startedAt);
    this.close();
    if (handler && c && !c.aborted) this.notifyError(handler, c, e);
  }

  abort(c: H1Controller): void {
    if (this.controller !== c) return;
    const handler = this.handler;
    this.detach();
    // Aborted before its head was written (in onRequestStart): the connection stays clean and reusable.
    if (this.written) this.close();
    if (handler) this.notifyError(handler, c, c.reason ?? err('aborted', 'UND_ERR_ABORTED'));
  }

  private readonly onIdleTimeout = (): void => {
    if (!this.busy) this.close();
  };

  /** Envoy ActiveClient::onConnectionDurationTimeout: drain, and close now if no request is on the connection. */
  private readonly onMaxDuration = (): void => {
    this.durationTimer = undefined;
    if (this.closed || this.draining) return;
    this.draining = true;
    this.pool.events.onMaxDurationReached?.();
    if (!this.busy) this.close();
  };

  idle(ms: number): void {
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(this.onIdleTimeout, ms);
      this.idleTimer.unref();
    }
  }

  close(): void {
    const b = this.pushBody;
    if (b !== undefined) {
      this.pushBody = undefined;
      b.detachSink(this);
    }
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    const wasConnected = this.connected;
    if (!this.closed) {
      this.closed = true;
      this.pool.forget(this);
      if (wasConnected) this.pool.events.onDisconnect(this.startedAt);
    }
    this.socket.destroy();
  }
}

/** A custom connector (upstream TLS): calls back with a connected socket or the connect error. */
export type Connector = (cb: (err: Error | null, socket?: Socket) => void) => void;

interface Queued {
  o: DispatchOptions;
  handler: UpstreamHandler;
}

export class H1Pool {
  readonly events: PoolEvents;
  readonly maxRequests: number;
  /** max_connection_duration in ms; 0: none. */
  readonly maxConnectionDurationMs: number;
  private readonly maxConnections: number;
  /** Cluster-wide max_connections: may another connection be opened? (A pool with none always may.) */
  private readonly canCreateConnection: (() => boolean) | undefined;
  private readonly connector: Connector | undefined;
  private readonly queue: Queued[] = [];
  private readonly tcpKeepaliveMs: number | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly idle: H1Connection[] = [];
  private readonly all = new Set<H1Connection>();
  private closing = false;
  private readonly log: Logger | undefined;

  constructor(
    host: string,
    port: number,
    o: {
      connectTimeoutMs: number;
      idleTimeoutMs: number;
      maxRequestsPerConnection: number;
      maxConnectionDurationMs?: number;
      maxConnections?: number;
      canCreateConnection?: () => boolean;
      connector?: Connector;
      tcpKeepaliveMs?: number;
      events: PoolEvents;
      log?: Logger;
    },
  ) {
    this.log = o.log;
    this.host = host;
    this.port = port;
    this.connectTimeoutMs = o.connectTimeoutMs;
    this.idleTimeoutMs = o.idleTimeoutMs;
    this.maxRequests = o.maxRequestsPerConnection;
    this.maxConnectionDurationMs = o.maxConnectionDurationMs ?? 0;
    this.maxConnections = o.maxConnections ?? Infinity;
    this.canCreateConnection = o.canCreateConnection;
    this.connector = o.connector;
    this.tcpKeepaliveMs = o.tcpKeepaliveMs;
    this.events = o.events;
  }

  /** Idle connections (circuit-breaker admission reads `free`, as for undici's Pool). */
  get stats(): { free: number } {
    return { free: this.idle.length };
  }

  /** Connections open or opening. */
  get size(): number {
    return this.all.size;
  }

  /**
   * Envoy's rule (ConnPoolImplBase::tryCreateNewConnection): a new connection needs room under the limits,
   * except that a pool with no connection at all always opens one, so its requests cannot starve.
   */
  private mayOpen(): boolean {
    if (this.all.size === 0) return true;
    return this.all.size < this.maxConnections && (this.canCreateConnection === undefined || this.canCreateConnection());
  }

  /** Requests waiting for a connection (max connections reached). */
  get pending(): number {
    return this.queue.length;
  }

  dispatch(o: DispatchOptions, handler: UpstreamHandler): boolean {
    if (this.closing) throw err('pool closed', 'UND_ERR_CLOSED');
    let conn = this.idle.pop();
    while (conn && (conn.closed || conn.socket.destroyed)) conn = this.idle.pop();
    if (conn) {
      if (!conn.send(o, handler)) this.release(conn);
      return true;
    }
    if (!this.mayOpen()) {
      this.queue.push({ o, handler });
      return true;
    }
    this.open(o, handler);
    return true;
  }

  private open(o: DispatchOptions, handler: UpstreamHandler): void {
    if (!this.connector) {
      // (node's Socket takes the stream options; @types/node does not list them for connect.)
      const opts: NetConnectOpts & { writableHighWaterMark: number } = {
        host: this.host,
        port: this.port,
        noDelay: true,
        writableHighWaterMark: WRITE_HIGH_WATER,
        ...(this.tcpKeepaliveMs !== undefined ? { keepAlive: true, keepAliveInitialDelay: this.tcpKeepaliveMs } : {}),
      };
      const sock = connect(opts);
      const conn = new H1Connection(this, sock, this.connectTimeoutMs, false);
      this.all.add(conn);
      if (!conn.send(o, handler)) this.release(conn);
      return;
    }
    // Custom connector: the request is written once the (TLS) connection is up.
    const startedAt = performance.now();
    const placeholder = {} as H1Connection;
    this.all.add(placeholder);
    this.connector((e, socket) => {
      this.all.delete(placeholder);
      if (e || !socket) {
        const error = (e ?? err('connect failed', 'ECONNREFUSED')) as Error & { code?: string };
        this.events.onConnectError(error, startedAt);
        try {
          handler.onResponseError?.(new H1Controller(undefined as unknown as H1Connection), error);
        } catch (e2) {
          this.callbackError(e2, 'onResponseError');
        }
        this.drainQueue();
        return;
      }
      const conn = new H1Connection(this, socket, this.connectTimeoutMs, true, startedAt);
      this.all.add(conn);
      if (!conn.send(o, handler)) this.release(conn);
    });
  }

  /**
   * An exception thrown by a request's own callbacks (handler code, not the pool): the pool has already ended
   * that request; this leaves the log line Envoy's error boundary would, and nothing reaches the event loop.
   */
  callbackError(e: unknown, where: string): void {
    const error = e instanceof Error ? e : new Error(String(e));
    if (this.log)
      this.log.error({ err: error, where, upstream: `${this.host}:${this.port}` }, 'exception in an upstream request callback: that request was reset');
    else process.emitWarning(`exception in an upstream request callback (${where}) for ${this.host}:${this.port}: ${error.stack ?? error.message}`);
  }

  release(c: H1Connection): void {
    if (this.closing) {
      c.close();
      return;
    }
    // Queued requests whose handler aborts them as they start (client gone while waiting) are skipped: the
    // connection goes to the next one, as Envoy cancels a pending request without touching any connection.
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      if (c.send(next.o, next.handler)) return;
    }
    c.idle(this.idleTimeoutMs);
    this.idle.push(c);
  }

  forget(c: H1Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.drainQueue();
  }

  private drainQueue(): void {
    while (this.queue.length > 0 && this.mayOpen() && !this.closing) {
      const q = this.queue.shift() as Queued;
      this.open(q.o, q.handler);
    }
  }

  /** Stops new requests; idle connections close now, busy ones after their response. */
  close(): Promise<void> {
    this.closing = true;
    for (const c of [...this.idle]) c.close();
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    this.closing = true;
    for (const c of [...this.all]) c.close();
    return Promise.resolve();
  }
}
