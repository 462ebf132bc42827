// The fast HTTP/1.1 downstream: one plaintext client connection read straight from its net.Socket, without
// node:http's IncomingMessage / ServerResponse per request. Heads are parsed by request-head.ts; each
// request goes through the same ActiveStream (router, upstream, local replies, header rewriting) as the
// general path, with this object as its Downstream: the response head is written as one latin1 string
// corked together with the first body bytes, bodies are framed as the head says (Content-Length or
// chunked; none for HEAD / 1xx / 204 / 304). Requests are served one at a time in arrival order
// (pipelined ones wait in the buffer, bounded). Whatever request-head.ts does not accept is handed, with
// every byte from that request on, to the general path (node:http) for the rest of the connection.
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { ActiveStream, type RequestInfo } from '../http/active-stream.ts';
import type { HttpConnectionManager } from '../http/connection-manager.ts';
import type { Downstream } from '../http/downstream.ts';
import { codecErrorReply } from '../http/local-reply.ts';
import { reasonPhrase } from '../http/codes.ts';
import { admitRequest } from '../http/request-admission.ts';
import { ChunkedDecoder, HEAD_HANDOFF, HEAD_INCOMPLETE, TrailerLineError, newRequestHead, parseRequestHead, type RequestHead } from './request-head.ts';

/** What the listener lends a fast connection. */
export interface FastConnState {
  hcm: HttpConnectionManager;
  inflight: number;
}

export interface FastListenerHooks {
  /** The listener is draining: close the connection once idle. */
  draining(): boolean;
  /** Serve the rest of the connection on the general path; `data` are the bytes already read. */
  handOff(sock: Socket, data: Buffer): void;
}

/** Pipelined bytes buffered beyond the request being served before reading pauses. */
const MAX_PENDING = 64 * 1024;
const CONTINUE_LINE = 'HTTP/1.1 100 Continue\r\n';
const EMPTY = Buffer.alloc(0);
const LF = 10;
/** Envoy's default delayed_close_timeout. */
const DELAYED_CLOSE_MS = 1000;
const destroySocket = (s: Socket): void => {
  s.destroy();
};

/**
 * The request body as the router reads it (RequestBody uses data/end/error, pause and resume only). Until the
 * router attaches its 'data' listener (a fault delay, CORS, anything that runs first) what arrives is queued,
 * and reading pauses once the queue holds MAX_PENDING bytes, as Envoy's buffer watermarks do.
 */
class FastBody extends EventEmitter {
  private readonly conn: FastConnection;
  private queue: Buffer[] | undefined = [];
  private queued = 0;
  private queuePaused = false;
  private ended = false;
  private failure: Error | undefined;
  constructor(conn: FastConnection) {
    super();
    this.conn = conn;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter#on's own listener type
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    // After the consumer's synchronous setup (it attaches 'end' and 'error' next), in arrival order.
    if (event === 'data' && this.queue !== undefined) process.nextTick(this.flush);
    return this;
  }

  push(b: Buffer): void {
    const q = this.queue;
    if (q === undefined) {
      this.emit('data', b);
      return;
    }
    q.push(b);
    this.queued += b.length;
    if (this.queued > MAX_PENDING && !this.queuePaused) {
      this.queuePaused = true;
      this.conn.sock.pause();
    }
  }

  finish(): void {
    if (this.queue === undefined) this.emit('end');
    else this.ended = true;
  }

  fail(e: Error): void {
    if (this.queue !== undefined) this.failure = e;
    else if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private readonly flush = (): void => {
    const q = this.queue;
    if (q === undefined) return;
    this.queue = undefined;
    for (const b of q) this.emit('data', b);
    if (this.failure !== undefined) this.fail(this.failure);
    else if (this.ended) this.emit('end');
    if (this.queuePaused) {
      this.queuePaused = false;
      if (!this.conn.bodyPaused && !this.conn.closed) this.conn.sock.resume();
    }
  };

  pause(): this {
    this.conn.bodyPaused = true;
    this.conn.sock.pause();
    return this;
  }

  resume(): this {
    this.conn.bodyPaused = false;
    if (!this.conn.closed && !this.queuePaused) this.conn.sock.resume();
    return this;
  }
}

const BODY_NONE = 0;
const BODY_LENGTH = 1;
const BODY_CHUNKED = 2;

export class FastConnection implements Downstream {
  readonly sock: Socket;
  private readonly cs: FastConnState;
  private readonly hooks: FastListenerHooks;
  private readonly remoteAddress: string;
  private readonly remotePort: number;
  private readonly localAddress: string;
  private readonly localPort: number;
  private readonly maxHeadBytes: number;
  private pending: Buffer = EMPTY;
  private readonly head: RequestHead = newRequestHead();
  private stream: ActiveStream | undefined;
  closed = false;
  private handedOff = false;
  private parsing = false;
  // Request body.
  private bodyMode = BODY_NONE;
  private bodyRemaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private body: FastBody | undefined;
  bodyPaused = false;
  private requestDone = true;
  // Response.
  headersSent = false;
  private responseDone = true;
  private headString = '';
  private chunkedOut = false;
  private noBody = false;
  private closeAfter = false;
  private drainCb: (() => void) | undefined;
  private readonly emitBodyData: (b: Buffer) => void;
  private readonly completeFn: () => boolean;

  constructor(sock: Socket, cs: FastConnState, hooks: FastListenerHooks) {
    this.sock = sock;
    this.cs = cs;
    this.hooks = hooks;
    this.remoteAddress = sock.remoteAddress ?? '';
    this.remotePort = sock.remotePort ?? 0;
    this.localAddress = sock.localAddress ?? '';
    this.localPort = sock.localPort ?? 0;
    this.maxHeadBytes = cs.hcm.spec.maxRequestHeadersKb * 1024;
    this.emitBodyData = (b) => this.body?.push(b);
    this.completeFn = () => this.requestDone;
    sock.on('data', this.onData);
    sock.on('drain', this.onSockDrain);
    sock.on('close', this.onClose);
    sock.on('error', this.onError);
    sock.setTimeout(cs.hcm.spec.idleTimeoutMs, this.onTimeout);
  }

  /** A bug met while serving this connection ends the connection (reset) with a log line, never the thread. */
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.read(chunk);
    } catch (e) {
      this.failed(e);
    }
  };

  private failed(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.cs.hcm.runtime.log.error(
      { err: err.message, stack: err.stack, downstream: `${this.remoteAddress}:${this.remotePort}` },
      'internal error while serving a downstream connection; the connection is reset',
    );
    this.closed = true;
    this.sock.destroy();
  }

  private read(chunk: Buffer): void {
    // After a closing response nothing more is read from this connection (the rest of a body is dropped).
    if (this.handedOff || this.closed) return;
    if (!this.requestDone) {
      const used = this.feedBody(chunk, 0);
      if (used < 0) return;
      if (used === chunk.length) return;
      chunk = chunk.subarray(used);
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.stream !== undefined) {
      if (this.pending.length > MAX_PENDING) this.sock.pause();
      return;
    }
    // A head ends with a LF: a read without one cannot complete it, so a head trickled in small reads is not
    // parsed again from its start on each of them (only the size limit is checked).
    if (chunk.indexOf(LF) >= 0 || this.pending.length > this.maxHeadBytes) this.parse();
  }

  private readonly onSockDrain = (): void => {
    const cb = this.drainCb;
    this.drainCb = undefined;
    cb?.();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    const s = this.stream;
    if (s && !this.responseDone) {
      this.responseDone = true;
      this.stream = undefined;
      this.cs.inflight--;
      if (!this.requestDone) this.bodyError('downstream closed');
      s.onDownstreamClose();
    }
  };

  private readonly onError = (): void => {
    // 'close' follows; ECONNRESET and the like need no answer.
  };

  private readonly onTimeout = (): void => {
    if (this.stream === undefined) this.sock.destroy();
  };

  /** Serves complete heads from `pending` while no request is in flight. */
  private parse(): void {
    if (this.parsing) return;
    this.parsing = true;
    try {
      while (this.stream === undefined && !this.closed && !this.handedOff && this.pending.length > 0) {
        const buf = this.pending;
        const n = parseRequestHead(buf, 0, buf.length, this.maxHeadBytes, this.head);
        if (n === HEAD_INCOMPLETE) return;
        if (n === HEAD_HANDOFF) return this.handOff();
        this.pending = n === buf.length ? EMPTY : buf.subarray(n);
        this.startRequest();
      }
    } finally {
      this.parsing = false;
    }
    if (this.stream === undefined && this.sock.isPaused() && !this.bodyPaused && !this.closed && !this.handedOff) this.sock.resume();
  }

  private handOff(): void {
    this.handedOff = true;
    const s = this.sock;
    s.off('data', this.onData);
    s.off('drain', this.onSockDrain);
    s.off('close', this.onClose);
    s.off('error', this.onError);
    s.setTimeout(0);
    const data = this.pending;
    this.pending = EMPTY;
    this.hooks.handOff(s, data);
  }

  private startRequest(): void {
    const h = this.head;
    const hcm = this.cs.hcm;
    this.cs.inflight++;
    const a = admitRequest(hcm, h.method, h.url, h.rawHeaders, this.sock);
    this.requestDone = true;
    this.bodyMode = BODY_NONE;
    this.body = undefined;
    // A refused head is answered and the connection closes: its body (if any) is never read.
    if (a.reject === undefined) {
      if (h.chunked) {
        this.bodyMode = BODY_CHUNKED;
        this.chunked = new ChunkedDecoder(this.maxHeadBytes);
        this.requestDone = false;
      } else if (h.contentLength > 0) {
        this.bodyMode = BODY_LENGTH;
        this.bodyRemaining = h.contentLength;
        this.requestDone = false;
      }
    }
    if (!this.requestDone) this.body = new FastBody(this);
    this.headersSent = false;
    this.responseDone = false;
    this.chunkedOut = false;
    this.closeAfter = false;
    this.noBody = h.method === 'HEAD';
    const info: RequestInfo = {
      method: h.method,
      url: a.path,
      authority: a.authority,
      reject: a.reject,
      sendContinue: a.sendContinue,
      httpMinor: 1,
      rawHeaders: a.rawHeaders,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      tls: false,
      localAddress: this.localAddress,
      localPort: this.localPort,
      body: this.body as unknown as Readable,
      complete: this.completeFn,
    };
    const stream = new ActiveStream(hcm, info, this);
    this.stream = stream;
    stream.start();
    // Body bytes that arrived with the head.
    if (!this.requestDone && this.pending.length > 0 && !this.closed) {
      const buf = this.pending;
      const used = this.feedBody(buf, 0);
      if (used >= 0) this.pending = used === buf.length ? EMPTY : buf.subarray(used);
    }
  }

  /** Feeds request-body bytes; returns how many were part of the body, or -1 after a framing error. */
  private feedBody(buf: Buffer, start: number): number {
    let used: number;
    if (this.bodyMode === BODY_LENGTH) {
      used = Math.min(this.bodyRemaining, buf.length - start);
      if (used > 0) this.emitBodyData(start === 0 && used === buf.length ? buf : buf.subarray(start, start + used));
      this.bodyRemaining -= used;
      if (this.bodyRemaining === 0) this.bodyEnded();
      return used;
    }
    const dec = this.chunked as ChunkedDecoder;
    try {
      used = dec.feed(buf, start, buf.length, this.emitBodyData);
    } catch (e) {
      if (!(e instanceof TrailerLineError)) throw e;
      used = -1;
    }
    if (used < 0) {
      // Malformed chunked framing: a codec error, answered as the general path answers it (400 and close)
      // while no response has started; otherwise the connection is reset.
      this.bodyError('invalid chunked request body');
      const s = this.stream;
      if (s && !this.headersSent) {
        this.responseDone = true;
        this.stream = undefined;
        this.cs.inflight--;
        this.cs.hcm.store.inc(this.cs.hcm.stats.downstream_cx_protocol_error);
        // Trailers over max_request_headers_kb are 431, as Envoy's codec answers Balsa's "trailers size exceeds limit".
        this.writeCodecErrorAndClose(dec.error?.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
        s.onDownstreamClose();
      } else this.sock.destroy();
      return -1;
    }
    if (dec.done) this.bodyEnded();
    return used;
  }

  private bodyError(message: string): void {
    this.body?.fail(new Error(message));
  }

  private bodyEnded(): void {
    this.requestDone = true;
    this.body?.finish();
    if (this.responseDone) this.nextRequest();
  }

  // ---- Downstream ----

  writeHead(status: number, headers: string[]): void {
    let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    let chunked = false;
    let close = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      head += `${name}: ${value}\r\n`;
      if (name === 'transfer-encoding') chunked = value.toLowerCase().endsWith('chunked');
      else if (name === 'connection') close = value.toLowerCase().includes('close');
    }
    this.headString = head + '\r\n';
    if (status < 200 || status === 204 || status === 304) this.noBody = true;
    this.chunkedOut = chunked && !this.noBody;
    this.closeAfter = close;
    this.headersSent = true;
  }

  writeContinue(headers: string[]): void {
    if (this.closed || this.headersSent) return;
    let head = CONTINUE_LINE;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
    this.sock.write(head + '\r\n', 'latin1');
  }

  write(chunk: Buffer | string): boolean {
    const s = this.sock;
    if (this.closed) return true;
    const hasHead = this.headString !== '';
    if (this.noBody || chunk.length === 0) {
      if (hasHead) this.flushHead();
      return !s.writableNeedDrain;
    }
    if (hasHead) s.cork();
    if (hasHead) this.flushHead();
    let ok: boolean;
    if (this.chunkedOut) {
      const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      if (!hasHead) s.cork();
      s.write(len.toString(16) + '\r\n', 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
      if (!hasHead) s.uncork();
    } else ok = s.write(chunk);
    if (hasHead) s.uncork();
    return ok;
  }

  private flushHead(): void {
    const h = this.headString;
    this.headString = '';
    this.sock.write(h, 'latin1');
  }

  end(chunk?: Buffer | string): void {
    if (this.responseDone) return;
    const s = this.sock;
    if (!this.closed) {
      s.cork();
      if (chunk !== undefined && chunk.length > 0) this.write(chunk);
      else if (this.headString !== '') this.flushHead();
      if (this.chunkedOut) s.write('0\r\n\r\n', 'latin1');
      s.uncork();
    }
    this.responseDone = true;
    this.stream = undefined;
    this.cs.inflight--;
    if (this.closeAfter || this.hooks.draining()) {
      this.closed = true;
      s.end();
      // The client may still be sending the body the response came before: what it sends is read and
      // dropped, and the connection is destroyed after Envoy's delayed_close_timeout (1 s) if the client does
      // not close first.
      if (!this.requestDone) {
        this.body = undefined;
        setTimeout(destroySocket, DELAYED_CLOSE_MS, s).unref();
      }
      return;
    }
    // The rest of an unread body is read and dropped before the next request, as node:http does: nobody
    // reads it any more, so it must neither be buffered nor hold the socket paused.
    if (this.requestDone) this.nextRequest();
    else {
      this.body = undefined;
      this.bodyPaused = false;
      if (s.isPaused()) s.resume();
    }
  }

  private nextRequest(): void {
    if (this.closed || this.handedOff) return;
    if (this.pending.length > 0) {
      // Not synchronously inside end(): the router finishes its bookkeeping first.
      if (!this.parsing) process.nextTick(this.parseTick);
    } else if (this.sock.isPaused() && !this.bodyPaused) this.sock.resume();
  }

  private readonly parseTick = (): void => {
    try {
      this.parse();
    } catch (e) {
      this.failed(e);
    }
  };

  reset(): void {
    this.responseDone = true;
    if (this.stream) {
      this.stream = undefined;
      this.cs.inflight--;
    }
    this.closed = true;
    this.sock.destroy();
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  takeSocket(): Socket {
    // Upgrades never reach the fast path (request-head.ts hands them off); kept for the contract.
    this.handedOff = true;
    this.sock.off('data', this.onData);
    return this.sock;
  }

  /** A codec error with no stream to answer it (a broken chunked body): the reply, and the connection closes. */
  private writeCodecErrorAndClose(status: number): void {
    this.closed = true;
    this.pending = EMPTY;
    this.sock.end(codecErrorReply(status, this.cs.hcm.spec.serverName));
  }
}

/** Serves a plaintext HTTP/1.1 connection on the fast path. */
export function serveFast(sock: Socket, cs: FastConnState, hooks: FastListenerHooks): FastConnection {
  return new FastConnection(sock, cs, hooks);
}

/** MESHGATE_FAST_PATH=0 keeps every connection on the general (node:http) path; the fast path is the default. */
export function fastPathEnabled(): boolean {
  return process.env.MESHGATE_FAST_PATH !== '0';
}
