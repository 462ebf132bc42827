// The downstream side of one HTTP/2 stream (h2c with prior knowledge, or TLS with ALPN h2): the Downstream
// contract over a node:http2 ServerHttp2Stream, so the one ActiveStream serves both protocols. Response headers
// are sent on the next turn of the event loop unless the response ends first: a reply with no body (a gRPC
// local reply, an upstream's trailers-only answer) is then one HEADERS frame with END_STREAM, as Envoy's codec
// sends it. Connection-specific headers the HTTP/1 encoder adds are not valid in HTTP/2 (RFC 9113 8.2.2).
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Downstream } from './downstream.ts';

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Flat [name, value, ...] to node's header object, repeated names as arrays, connection-specific ones dropped. */
function headerObject(flat: readonly string[], into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    if (CONNECTION_SPECIFIC.has(name)) continue;
    const value = flat[i + 1] as string;
    const prev = into[name];
    into[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  return into;
}

export class H2Downstream implements Downstream {
  private readonly stream: ServerHttp2Stream;
  private head: OutgoingHttpHeaders | undefined;
  private responded = false;
  private flushScheduled = false;
  private trailers: OutgoingHttpHeaders | undefined;
  private drainCb: (() => void) | undefined;

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream;
    // respond() asks for trailers: the stream stays open after the last DATA until they (or none) are sent.
    stream.on('wantTrailers', () => {
      if (!stream.destroyed) stream.sendTrailers(this.trailers ?? {});
    });
  }

  get headersSent(): boolean {
    return this.head !== undefined || this.responded;
  }

  writeHead(status: number, headers: string[]): void {
    this.head = headerObject(headers, { ':status': status });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.respond(false));
    }
  }

  writeContinue(): void {
    if (!this.stream.destroyed && !this.headersSent) this.stream.additionalHeaders({ ':status': 100 });
  }

  write(chunk: Buffer | string): boolean {
    this.respond(false);
    if (this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  /** `trailers`: the upstream's (flat); sent as a trailing HEADERS frame. */
  end(chunk?: Buffer | string, trailers?: string[]): void {
    const empty = chunk === undefined || chunk.length === 0;
    if (trailers !== undefined && trailers.length > 0) this.trailers = headerObject(trailers, {});
    if (empty && this.trailers === undefined && !this.responded) {
      this.respond(true);
      return;
    }
    this.respond(false);
    if (this.stream.destroyed) return;
    if (empty) this.stream.end();
    else this.stream.end(chunk);
  }

  private respond(endStream: boolean): void {
    if (this.responded || this.head === undefined) return;
    this.responded = true;
    if (this.stream.destroyed || this.stream.headersSent) return;
    this.stream.respond(this.head, endStream ? { endStream: true } : { waitForTrailers: true });
  }

  reset(): void {
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  onDrain(cb: () => void): void {
    if (!this.drainCb) this.stream.on('drain', () => this.drainCb?.());
    this.drainCb = cb;
  }

  takeSocket(): Socket {
    // Istio enables no upgrade over HTTP/2 (no extended CONNECT): ActiveStream never asks for it on this path.
    throw new Error('an HTTP/2 stream has no connection of its own to hand over');
  }
}
