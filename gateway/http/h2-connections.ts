// The HTTP/2 connections of one listener: h2c with prior knowledge (the HTTP/1 parser saw the client preface
// and handed the connection over, codec AUTO as Istio configures it) and TLS connections that chose h2 by ALPN.
// A node:http2 server that never listens takes each connection; every stream becomes one ActiveStream behind
// an H2Downstream, the same router, retries, faults, mirroring, CORS, header rewrites, access log and stats as
// HTTP/1.1. Sessions close gracefully (GOAWAY, open streams finish) on idle timeout, drain and config change.
import {
  createServer as createH2Server,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ActiveStream, admittedRequest } from './active-stream.ts';
import type { HttpConnectionManager } from './connection-manager.ts';
import { H2Downstream } from './h2-downstream.ts';
import { admitRequest } from './request-admission.ts';
import { StatScope, type StatsStore } from '../stats/store.ts';
import { ignoreError, releaseClosedStream } from '../upstream/h2-release.ts';

/** Envoy's downstream HTTP/2 codec stats (`http2.*`, in the root scope) that this codec can observe. */
interface CodecStats {
  rx_reset: number;
  tx_reset: number;
  goaway_sent: number;
  trailers: number;
  streams_active: number;
}

/** The connection preface an h2c client with prior knowledge sends first (RFC 9113 3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The bytes an HTTP/1 parser refused are (the start of) the HTTP/2 client preface. */
export function isH2Preface(data: Buffer): boolean {
  const n = Math.min(data.length, PREFACE.length);
  return n >= 4 && data.subarray(0, n).equals(PREFACE.subarray(0, n));
}

/** The HTTP/2 request's headers as the HTTP/1 path has them: `host` from :authority first, pseudo-headers dropped. */
function requestHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  let authority: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name === ':authority') authority = value;
    else if (name.charCodeAt(0) !== 58 /* : */ && !(name === 'host' && authority !== undefined)) out.push(name, value);
  }
  // :authority is the Host of an HTTP/2 request (a `host` header beside it is dropped, as Envoy's codec keeps one).
  if (authority !== undefined) {
    const at = out.indexOf('host');
    if (at >= 0 && at % 2 === 0) out.splice(at, 2);
    out.unshift('host', authority);
  }
  return out;
}

export class H2Connections {
  private readonly server: Http2Server;
  private readonly sessions = new Map<Http2Session, { hcm: HttpConnectionManager; sock: Socket }>();
  private readonly log: Logger;
  private readonly scope: StatScope;
  private readonly stats: CodecStats;
  /** The connection being handed to the server: node creates its session synchronously inside emit(). */
  private handing: { hcm: HttpConnectionManager; sock: Socket } | undefined;

  constructor(log: Logger, store: StatsStore, maxHeaderListSize: number) {
    this.log = log;
    this.scope = new StatScope(store, 'http2.');
    const sc = this.scope;
    this.stats = {
      rx_reset: sc.counter('rx_reset'),
      tx_reset: sc.counter('tx_reset'),
      goaway_sent: sc.counter('goaway_sent'),
      trailers: sc.counter('trailers'),
      streams_active: sc.gauge('streams_active'),
    };
    this.server = createH2Server({
      settings: { enablePush: false, maxHeaderListSize },
      // The count limit is the connection manager's (max_headers_count, answered 431 as on HTTP/1.1); the
      // size limit above bounds the memory a header block can take.
      maxHeaderListPairs: 65535,
    });
    this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.server.on('stream', (stream: ServerHttp2Stream, _h: IncomingHttpHeaders, _f: number, raw: string[]) => this.onStream(stream, raw));
    // A session that fails (protocol error, a flood node's limits stop) is destroyed with its streams; nothing more to do.
    this.server.on('sessionError', () => undefined);
  }

  /** Serves `sock` as HTTP/2 with `hcm`; `data`: bytes already read from it (the preface the HTTP/1 parser saw). */
  serve(sock: Socket, hcm: HttpConnectionManager, data?: Buffer): void {
    const st = hcm.store;
    st.inc(hcm.stats.downstream_cx_http2_total);
    st.inc(hcm.stats.downstream_cx_http2_active);
    sock.once('close', () => st.dec(hcm.stats.downstream_cx_http2_active));
    if (data !== undefined && data.length > 0) {
      sock.pause();
      sock.unshift(data);
    }
    // A TLSSocket made from an accepted socket (tls/server-context.ts, not a tls.Server) keeps secureConnecting
    // true after its handshake, and node:http2 would wait for a 'secureConnect' a server socket never emits.
    const tls = sock as { encrypted?: boolean; secureConnecting?: boolean };
    if (tls.encrypted === true) tls.secureConnecting = false;
    this.handing = { hcm, sock };
    try {
      this.server.emit('connection', sock);
    } finally {
      this.handing = undefined;
    }
  }

  private onSession(session: ServerHttp2Session): void {
    const h = this.handing;
    if (!h) {
      session.destroy();
      return;
    }
    this.sessions.set(session, h);
    session.on('error', () => undefined);
    // The HCM's http2_protocol_options (istiod sets none on gateways: node's defaults then).
    const o = h.hcm.spec.http2;
    if (Object.keys(o.settings).length > 0) session.settings(o.settings);
    if (o.connectionWindowSize !== undefined) session.setLocalWindowSize(o.connectionWindowSize);
    session.once('close', () => this.sessions.delete(session));
    // idle_timeout: a session with no frames for that long closes (GOAWAY; open streams finish first).
    session.setTimeout(h.hcm.spec.idleTimeoutMs, () => this.goaway(session, h.hcm));
    if (h.hcm.draining) this.goaway(session, h.hcm);
  }

  private onStream(stream: ServerHttp2Stream, raw: string[]): void {
    // First of all: node emits 'stream' a tick after the HEADERS, so a protocol error later in the same read
    // may already have destroyed the session and be about to fail this stream. A stream the client resets
    // errors too; its 'close' ends the request (onDownstreamClose).
    stream.on('error', ignoreError);
    const session = stream.session;
    const h = session ? this.sessions.get(session) : undefined;
    if (!h) {
      if (!stream.destroyed) stream.close();
      return;
    }
    const { hcm, sock } = h;
    const st = hcm.store;
    const cs = this.stats;
    st.inc(cs.streams_active);
    const method = headerValue(raw, ':method') ?? 'GET';
    const a = admitRequest(hcm, method, headerValue(raw, ':path') ?? '', requestHeaders(raw), sock);
    let complete = stream.endAfterHeaders;
    stream.once('end', () => (complete = true));
    const down = new H2Downstream(stream, () => st.inc(cs.tx_reset));
    // Request trailers go upstream with the body (and again with each retry and mirror). node's HTTP/2 stack has
    // already refused, with a stream reset, the blocks Envoy's codec refuses: pseudo-headers, connection-specific
    // or uppercase names, trailers without END_STREAM, more than max_request_headers_kb. The count limit is the
    // connection manager's: more than max_headers_count resets the stream, as Envoy's codec does (INTERNAL_ERROR).
    let trailers: string[] | undefined;
    stream.once('trailers', (_t: IncomingHttpHeaders, _f: number, rawTrailers: string[]) => {
      st.inc(cs.trailers);
      if (rawTrailers.length / 2 > hcm.spec.maxHeadersCount) {
        down.reset();
        // The END_STREAM that came with these trailers must not end the body normally (node would still emit
        // 'end'): the body fails instead, so the upstream request is reset, never completed.
        stream.destroy(new Error('request trailers over max_headers_count'));
      } else if (rawTrailers.length > 0) trailers = rawTrailers;
    });
    const active = new ActiveStream(
      hcm,
      admittedRequest(a, method, sock, { httpMinor: 1, h2: true, body: stream, complete: () => complete, trailers: () => trailers }),
      down,
    );
    stream.once('close', () => {
      st.dec(cs.streams_active);
      // A stream reset by either side: ours (H2Downstream.reset) is tx_reset, any other rx_reset.
      if (stream.rstCode !== undefined && stream.rstCode !== 0 && !down.resetSent) st.inc(cs.rx_reset);
      active.onDownstreamClose();
      releaseClosedStream(stream);
    });
    try {
      active.start();
    } catch (e) {
      // A bug met while starting this request resets its stream with a log line, never the session or the thread.
      const err = e instanceof Error ? e : new Error(String(e));
      this.log.error(
        { err: err.message, stack: err.stack, downstream: `${sock.remoteAddress}:${sock.remotePort}` },
        'internal error while serving an HTTP/2 stream; it is reset',
      );
      down.reset();
    }
  }

  /** Graceful close of the sessions served with `hcm` (all when undefined): GOAWAY, open streams finish. */
  drain(hcm?: HttpConnectionManager): void {
    for (const [session, h] of this.sessions) if (hcm === undefined || h.hcm === hcm) this.goaway(session, h.hcm);
  }

  private goaway(session: Http2Session, hcm: HttpConnectionManager): void {
    if (session.closed || session.destroyed) return;
    hcm.store.inc(this.stats.goaway_sent);
    session.close();
  }

  release(): void {
    this.scope.releaseAll();
  }
}

function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return undefined;
}
