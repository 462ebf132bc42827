// The downstream side of one HTTP/2 stream (h2c with prior knowledge, or TLS with ALPN h2): the Downstream
// contract over a node:http2 ServerHttp2Stream, so the one ActiveStream serves both protocols. Response headers
// (and body written with them) are sent on the next turn of the event loop unless the response ends first: a
// reply with no body (a gRPC local reply, an upstream's trailers-only answer) is then one HEADERS frame with
// END_STREAM, as Envoy's codec sends it, and a whole response goes out without waiting for trailers.
// Connection-specific headers the HTTP/1 encoder adds are not valid in HTTP/2 (RFC 9113 8.2.2).
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

/** Body bytes held while the response head waits for the end of the tick; past this they go out at once. */
const HOLD_LIMIT = 64 * 1024;

export class H2Downstream implements Downstream {
  private readonly stream: ServerHttp2Stream;
  private head: OutgoingHttpHeaders | undefined;
  private responded = false;
  private flushScheduled = false;
  /** Body written before the head went out (same tick): sent with it. */
  private held: (Buffer | string)[] = [];
  private heldBytes = 0;
  private trailers: OutgoingHttpHeaders | undefined;
  private drainCb: (() => void) | undefined;
  private readonly onReset: () => void;
  /** This side reset the stream (reset()). */
  resetSent = false;

  /** `onReset`: counts a reset this side sends (http2.tx_reset). */
  constructor(stream: ServerHttp2Stream, onReset: () => void) {
    this.stream = stream;
    this.onReset = onReset;
  }

  get headersSent(): boolean {
    return this.head !== undefined || this.responded;
  }

  writeHead(status: number, headers: string[]): void {
    this.head = headerObject(headers, { ':status': status });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.open());
    }
  }

  writeContinue(): void {
    if (!this.stream.destroyed && !this.headersSent) this.stream.additionalHeaders({ ':status': 100 });
  }

  write(chunk: Buffer | string): boolean {
    if (this.stream.destroyed) return true;
    if (!this.responded) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes < HOLD_LIMIT) return true;
      this.open();
      return !this.stream.writableNeedDrain;
    }
    return this.stream.write(chunk);
  }

  /**
   * `trailers`: the upstream's (flat), sent as a trailing HEADERS frame. A response that ends in the tick its head
   * was written goes out whole: HEADERS (with END_STREAM when it has no body and no trailers), its DATA, no more.
   */
  end(chunk?: Buffer | string, trailers?: string[]): void {
    if (trailers !== undefined && trailers.length > 0) this.trailers = headerObject(trailers, {});
    if (chunk !== undefined && chunk.length > 0) this.held.push(chunk);
    if (this.stream.destroyed) return;
    if (!this.responded) {
      if (this.head === undefined) return;
      this.responded = true;
      const body = this.held;
      this.held = [];
      if (body.length === 0 && this.trailers === undefined) {
        this.stream.respond(this.head, { endStream: true });
        return;
      }
      this.stream.respond(this.head, this.trailers === undefined ? {} : { waitForTrailers: true });
      this.onWantTrailers();
      for (const c of body.slice(0, -1)) this.stream.write(c);
      this.stream.end(body.at(-1));
      return;
    }
    for (const c of this.held) this.stream.write(c);
    this.held = [];
    this.stream.end();
  }

  /** The head goes out before the response ends (a streamed body): trailers may still come, so it waits for them. */
  private open(): void {
    if (this.responded || this.head === undefined || this.stream.destroyed) return;
    this.responded = true;
    this.stream.respond(this.head, { waitForTrailers: true });
    this.onWantTrailers();
    for (const c of this.held) this.stream.write(c);
    this.held = [];
  }

  private onWantTrailers(): void {
    this.stream.once('wantTrailers', () => {
      if (!this.stream.destroyed) this.stream.sendTrailers(this.trailers ?? {});
    });
  }

  reset(): void {
    if (this.stream.destroyed || this.resetSent) return;
    this.resetSent = true;
    this.onReset();
    this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
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
