// HTTP/2 upstream connections for clusters with http2_protocol_options (Istio sets them for http2 / grpc service
// ports): h2c with prior knowledge, or over the cluster's upstream TLS (ALPN h2; the session speaks HTTP/2
// whatever the server picked, as Envoy's explicit http2 config does). One multiplexed session per host, exposing the same dispatch
// contract as undici's Pool so the router does not care which protocol a cluster speaks. A session older
// than max_connection_duration (from connect) drains: new requests go to a new session, the old one closes
// gracefully (node's session.close(): its open streams finish first).
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { DispatchOptions, PoolEvents, UpstreamHandler } from './connection-pool.ts';
import { releaseClosedStream } from './h2-release.ts';
import type { Http2Settings } from '../xds/http2-options.ts';

// Connection-specific headers are not allowed in HTTP/2 (RFC 9113 8.2.2).
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

class H2Controller implements Dispatcher.DispatchController {
  rawHeaders: string[] | null = null;
  private _aborted = false;
  private _paused = false;
  private _reason: Error | null = null;
  private readonly stream: ClientHttp2Stream;

  constructor(stream: ClientHttp2Stream) {
    this.stream = stream;
  }

  get aborted(): boolean {
    return this._aborted;
  }

  get paused(): boolean {
    return this._paused;
  }

  get reason(): Error | null {
    return this._reason;
  }

  abort(reason: Error): void {
    if (this._aborted) return;
    this._aborted = true;
    this._reason = reason;
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  pause(): void {
    this._paused = true;
    this.stream.pause();
  }

  resume(): void {
    this._paused = false;
    this.stream.resume();
  }
}

function h2Error(message: string, code: string): Error & { code: string } {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

/** Opens the transport of a new session (upstream TLS), before its handshake; throws when it cannot be opened at all. */
export type H2Connector = () => Duplex;

/** Adds one field to node's header object: a repeated name becomes an array, in arrival order. */
function appendHeader(into: OutgoingHttpHeaders, name: string, value: string): void {
  const prev = into[name];
  into[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
}

/**
 * Ends a request stream with its trailers as a trailing HEADERS frame (Envoy's encodeTrailers), or with an empty
 * DATA frame when it has none.
 */
function sendTrailers(stream: ClientHttp2Stream, flat: readonly string[] | undefined): void {
  if (stream.destroyed) return;
  const t: OutgoingHttpHeaders = {};
  if (flat !== undefined) for (let i = 0; i < flat.length; i += 2) appendHeader(t, flat[i] as string, flat[i + 1] as string);
  try {
    stream.sendTrailers(t);
  } catch (e) {
    // A trailer node refuses to encode: the upstream request cannot be completed, so it is reset.
    stream.destroy(e as Error);
  }
}

export class H2Pool {
  private session: ClientHttp2Session | undefined;
  private connected = false;
  private readonly origin: string;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxConnectionDurationMs: number;
  private readonly events: PoolEvents;
  private readonly connector: H2Connector | undefined;
  private readonly settings: Http2Settings | undefined;
  private closing = false;
  private active = 0;

  constructor(
    origin: string,
    o: {
      connectTimeoutMs: number;
      idleTimeoutMs: number;
      maxConnectionDurationMs?: number;
      events: PoolEvents;
      connector?: H2Connector;
      /** The cluster's http2_protocol_options. */
      settings?: Http2Settings;
    },
  ) {
    this.origin = origin;
    this.connector = o.connector;
    this.settings = o.settings;
    this.connectTimeoutMs = o.connectTimeoutMs;
    this.idleTimeoutMs = o.idleTimeoutMs;
    this.maxConnectionDurationMs = o.maxConnectionDurationMs ?? 0;
    this.events = o.events;
  }

  /** The live session, or a new one; an Error when the connector could not open a transport (counted as a connect failure). */
  private getSession(): ClientHttp2Session | Error {
    const existing = this.session;
    if (existing && !existing.closed && !existing.destroyed) return existing;
    let s: ClientHttp2Session;
    if (this.connector) {
      let transport: Duplex;
      try {
        transport = this.connector();
      } catch (e) {
        const err = e as Error & { code?: string };
        this.events.onConnectError(err);
        return err;
      }
      s = connect(this.origin, { settings: this.settings?.settings ?? {}, createConnection: () => transport });
    } else {
      // Our own TCP connection, for TCP_NODELAY: node's default socket waits on Nagle's algorithm, which with
      // delayed ACKs held small HTTP/2 frames (a gRPC call) back by tens of milliseconds.
      const u = new URL(this.origin);
      const host = u.hostname.replace(/^\[|\]$/g, '');
      const port = Number(u.port || 80);
      s = connect(this.origin, { settings: this.settings?.settings ?? {}, createConnection: () => netConnect({ host, port, noDelay: true }) });
    }
    const windowSize = this.settings?.connectionWindowSize;
    if (windowSize !== undefined) s.once('connect', () => s.setLocalWindowSize(windowSize));
    this.session = s;
    this.connected = false;
    const startedAt = performance.now();
    // Per session: a draining session (goaway, max_connection_duration) may close after the next one opened.
    let up = false;
    const timer = setTimeout(() => {
      if (!up) s.destroy(h2Error('connect timeout', 'UND_ERR_CONNECT_TIMEOUT'));
    }, this.connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      up = true;
      if (this.session === s) this.connected = true;
      this.events.onConnect(startedAt);
      s.setTimeout(this.idleTimeoutMs, () => {
        if (this.active === 0) s.close();
      });
      if (this.maxConnectionDurationMs > 0) {
        const drain = setTimeout(() => {
          if (s.closed || s.destroyed) return;
          if (this.session === s) this.session = undefined;
          this.events.onMaxDurationReached?.();
          s.close();
        }, this.maxConnectionDurationMs);
        drain.unref();
        s.once('close', () => clearTimeout(drain));
      }
    });
    s.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      if (!up) this.events.onConnectError(err, startedAt);
    });
    s.once('close', () => {
      clearTimeout(timer);
      if (up) this.events.onDisconnect(startedAt);
      if (this.session === s) this.session = undefined;
    });
    s.on('goaway', () => {
      if (this.session === s) this.session = undefined;
    });
    return s;
  }

  dispatch(opts: DispatchOptions, handler: UpstreamHandler): boolean {
    if (this.closing) throw h2Error('pool closed', 'UND_ERR_CLOSED');
    const session = this.getSession();
    if (session instanceof Error) {
      queueMicrotask(() => handler.onResponseError?.(new H2Controller(undefined as unknown as ClientHttp2Stream), session));
      return false;
    }
    // :scheme as Envoy's connection manager sets it for an HTTP/1.1 request: x-forwarded-proto (which it has just
    // set from the downstream connection) when that is http or https, else http.
    const headers: OutgoingHttpHeaders = { ':method': opts.method, ':path': opts.path, ':scheme': 'http' };
    const h = opts.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i] as string;
      const value = h[i + 1] as string;
      if (name === 'host') headers[':authority'] = value;
      else if (H2_FORBIDDEN.has(name)) continue;
      else if (name === 'te' && value !== 'trailers') continue;
      else appendHeader(headers, name, value);
    }
    if (headers['x-forwarded-proto'] === 'https') headers[':scheme'] = 'https';
    const wasConnected = this.connected;
    let stream: ClientHttp2Stream;
    try {
      // A body that may end in trailers keeps the stream open after its last DATA frame ('wantTrailers').
      stream = session.request(headers, { endStream: opts.body === null, waitForTrailers: opts.body !== null && opts.trailers !== undefined });
    } catch (e) {
      queueMicrotask(() => handler.onResponseError?.(new H2Controller(undefined as unknown as ClientHttp2Stream), e as Error));
      return false;
    }
    this.active++;
    const controller = new H2Controller(stream);
    handler.onRequestStart?.(controller, undefined);
    let done = false;
    const fail = (e: Error): void => {
      if (done) return;
      done = true;
      // A session that fails (connect or TLS handshake error) cancels its streams; the session's error says why.
      const err = (e as Error & { code?: string }).code === 'ERR_HTTP2_STREAM_CANCEL' && e.cause instanceof Error ? e.cause : e;
      this.active--;
      handler.onResponseError?.(controller, err);
    };
    // A session that never connected fails its streams with the connect error (e.g. ECONNREFUSED).
    const onSessionError = (err: Error): void => fail(err);
    if (!wasConnected) session.once('error', onSessionError);
    stream.on('response', (rh: IncomingHttpHeaders) => {
      session.off('error', onSessionError);
      const raw: string[] = [];
      for (const [k, v] of Object.entries(rh)) {
        if (k.startsWith(':') || v === undefined) continue;
        if (Array.isArray(v)) for (const x of v) raw.push(k, x);
        else raw.push(k, String(v));
      }
      controller.rawHeaders = raw;
      handler.onResponseStart?.(controller, Number(rh[':status']), {}, '');
    });
    let trailers: IncomingHttpHeaders = {};
    stream.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
    stream.on('continue', () => handler.onResponseContinue?.(controller, []));
    stream.on('data', (c: Buffer) => handler.onResponseData?.(controller, c));
    stream.on('end', () => {
      if (done) return;
      // A session that closes before the response (e.g. a TLS-only server answering the h2c preface with an
      // alert) ends its streams without headers: a reset before the response, not an empty answer.
      if (controller.rawHeaders === null) {
        fail(h2Error('connection termination', 'UND_ERR_SOCKET'));
        return;
      }
      // node also ends the readable side of a stream the server reset (RST_STREAM after some DATA): that is a
      // reset, not the end of the response, and the client's stream must be reset too, as Envoy does.
      const code = stream.rstCode;
      if (code !== undefined && code !== constants.NGHTTP2_NO_ERROR) {
        fail(h2Error('remote reset', 'MESHGATE_H2_RESET'));
        return;
      }
      done = true;
      this.active--;
      handler.onResponseEnd?.(controller, trailers);
    });
    stream.on('error', (err: Error & { code?: string }) => fail(err));
    stream.on('close', () => {
      releaseClosedStream(stream);
      if (done) return;
      const code = stream.rstCode;
      if (code === constants.NGHTTP2_REFUSED_STREAM) fail(h2Error('remote refused stream reset', 'MESHGATE_H2_REFUSED_STREAM'));
      else if (code !== undefined && code !== constants.NGHTTP2_NO_ERROR) fail(h2Error('remote reset', 'MESHGATE_H2_RESET'));
      else fail(h2Error('connection termination', 'UND_ERR_SOCKET'));
    });
    if (opts.body) {
      const trailers = opts.trailers;
      if (trailers !== undefined) stream.once('wantTrailers', () => sendTrailers(stream, trailers()));
      void this.writeBody(stream, opts.body);
    }
    return true;
  }

  private async writeBody(stream: ClientHttp2Stream, body: AsyncIterable<Buffer>): Promise<void> {
    try {
      for await (const c of body) {
        if (stream.destroyed) return;
        if (!stream.write(c)) await new Promise<void>((r) => stream.once('drain', () => r()));
      }
      if (!stream.destroyed) stream.end();
    } catch (e) {
      stream.destroy(e as Error);
    }
  }

  close(): Promise<void> {
    this.closing = true;
    const s = this.session;
    if (!s || s.closed) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }

  destroy(): Promise<void> {
    this.closing = true;
    this.session?.destroy();
    return Promise.resolve();
  }
}
