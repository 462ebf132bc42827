// WebSocket upgrades (Istio enables `upgrade_configs: websocket` on every HCM). Envoy forwards the upgrade
// request with Connection/Upgrade intact and holds every client byte that follows the request head (its
// HTTP/1 codec treats them as the stream's body; the router pauses it, `paused_for_websocket_`) until the
// upstream answers:
//   - 101: the answer goes back through the HCM's header rewrite (date, server, x-envoy-upstream-service-time),
//     then the held bytes go upstream in order and bytes flow both ways until either side closes;
//   - 4xx/5xx: relayed as the response (Envoy >= 1.36 websocket_allow_4xx_5xx_through_filter_chain), body
//     included, then the connection closes (the request never completed);
//   - anything else: a local reply with that status and the upstream's headers, no body
//     (`websocket_handshake_unsuccessful`), then close.
// The held bytes never reach the upstream unless it switched protocols: a declined upgrade cannot smuggle a
// request past routing.
import { connect, type Socket } from 'node:net';
import { reasonPhrase } from './codes.ts';
import { ChunkedDecoder } from '../../xds/chunked.ts';
import { MAX_RESPONSE_HEAD, RESPONSE_CHUNKED, parseResponseHead, UpstreamProtocolError, type ResponseHead } from '../upstream/response-head.ts';

/** Client bytes held beyond this pause reading from the client (Envoy's connection buffer watermark). */
const HOLD_HIGH_WATER = 64 * 1024;

/**
 * The client's bytes after an upgrade request head, held from the moment the request arrives (node:http's
 * `head` plus whatever follows) until the tunnel takes them over, or the connection closes with a reply.
 */
class HeldPayload {
  private readonly sock: Socket;
  private chunks: Buffer[] = [];
  private size = 0;
  ended = false;

  constructor(sock: Socket, head: Buffer) {
    this.sock = sock;
    if (head.length > 0) this.push(head);
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
  }

  private push(c: Buffer): void {
    this.chunks.push(c);
    this.size += c.length;
    if (this.size > HOLD_HIGH_WATER) this.sock.pause();
  }

  private readonly onData = (c: Buffer): void => this.push(c);
  private readonly onEnd = (): void => {
    this.ended = true;
  };

  /** Stops holding (the socket is left paused); returns the held bytes in arrival order. */
  release(): Buffer[] {
    const s = this.sock;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.pause();
    // Bytes the paused socket had already buffered belong after the ones seen so far.
    for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) this.chunks.push(c);
    const out = this.chunks;
    this.chunks = [];
    this.size = 0;
    return out;
  }
}

const HELD = new WeakMap<Socket, HeldPayload>();

/** Starts holding the client's bytes after an upgrade request head (node:http's `head` first). */
export function holdUpgradePayload(sock: Socket, head: Buffer): void {
  HELD.set(sock, new HeldPayload(sock, head));
}

/** Takes the held bytes over (for a request that turns out not to be an upgrade, or for the tunnel). */
export function releaseUpgradePayload(sock: Socket): { data: Buffer[]; ended: boolean } {
  const h = HELD.get(sock);
  if (!h) return { data: [], ended: false };
  HELD.delete(sock);
  const data = h.release();
  return { data, ended: h.ended };
}

/** What the stream decides for an upstream answer. */
type UpgradeAnswer =
  /** 101 or a relayed 4xx/5xx: write this head (flat, lowercase) and go on. */
  | { headers: string[] }
  /** The stream answered the client itself (local reply): drop the upstream. */
  | undefined;

export interface UpgradeHandlers {
  /** Upstream answered (101, or a final status): the downstream header list, or undefined after a local reply. */
  onResponse(status: number, head: ResponseHead): UpgradeAnswer;
  /** Failure before any response (connect error, upstream closed early, malformed response head). */
  onError(err: Error & { code?: string }): void;
  /** The tunnel (or relayed response) ended. */
  onClose(bytesSent: number, bytesReceived: number): void;
}

export interface UpgradeTunnel {
  cancel(): void;
}

const NO_BODY = 0;
const BODY_LENGTH = 1;
const BODY_CHUNKED = 2;
const BODY_TO_CLOSE = 3;

/** Opens a connection to host:port, sends the upgrade request and, once the upstream switched, splices the two sockets. */
export function tunnelUpgrade(
  o: { host: string; port: number; connectTimeoutMs: number; method: string; path: string; headers: string[]; downstream: Socket },
  h: UpgradeHandlers,
): UpgradeTunnel {
  const up = connect({ host: o.host, port: o.port, noDelay: true });
  const down = o.downstream;
  let head: Buffer = Buffer.alloc(0);
  let responded = false;
  let finished = false;
  let sent = 0;
  let received = 0;
  // A refused upgrade's body, relayed with the framing its head announced.
  let bodyMode = NO_BODY;
  let bodyLeft = 0;
  let chunked: ChunkedDecoder | undefined;
  const timer = setTimeout(() => {
    const e = new Error('connect timeout') as Error & { code: string };
    e.code = 'UND_ERR_CONNECT_TIMEOUT';
    fail(e);
  }, o.connectTimeoutMs);
  const fail = (err: Error & { code?: string }): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    up.destroy();
    if (responded) {
      down.destroy();
      h.onClose(sent, received);
    } else h.onError(err);
  };
  const done = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    up.destroy();
    down.destroy();
    h.onClose(sent, received);
  };
  /** The relayed refusal is complete: the client's connection closes after it (the upgrade never completed). */
  const endRefusal = (): void => {
    if (finished) return;
    finished = true;
    up.destroy();
    down.end();
    h.onClose(sent, received);
  };
  up.once('connect', () => {
    clearTimeout(timer);
    let req = `${o.method} ${o.path} HTTP/1.1\r\n`;
    for (let i = 0; i < o.headers.length; i += 2) req += `${o.headers[i]}: ${o.headers[i + 1]}\r\n`;
    up.write(req + '\r\n', 'latin1');
  });
  const toDown = (d: Buffer): void => {
    sent += d.length;
    if (!down.write(d)) up.pause();
  };
  const relayChunk = (d: Buffer): void => {
    if (d.length === 0) return;
    down.write(d.length.toString(16) + '\r\n', 'latin1');
    toDown(d);
    down.write('\r\n', 'latin1');
  };
  /** Body bytes of a refused upgrade's response, as its head framed them. */
  const onRefusalBody = (d: Buffer): void => {
    if (bodyMode === BODY_LENGTH) {
      const n = Math.min(bodyLeft, d.length);
      if (n > 0) toDown(n === d.length ? d : d.subarray(0, n));
      bodyLeft -= n;
      if (bodyLeft === 0) endRefusal();
    } else if (bodyMode === BODY_CHUNKED) {
      const dec = chunked as ChunkedDecoder;
      if (dec.feed(d, 0, d.length, relayChunk) < 0) {
        // Broken framing after the head was sent: the response cannot be completed, reset the client.
        fail(new UpstreamProtocolError('invalid chunked body', 'HPE_INVALID_CHUNK_SIZE'));
        return;
      }
      if (dec.done) {
        down.write('0\r\n\r\n', 'latin1');
        endRefusal();
      }
    } else if (bodyMode === BODY_TO_CLOSE) relayChunk(d);
  };
  const onHead = (c: Buffer): void => {
    head = head.length === 0 ? c : Buffer.concat([head, c]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_RESPONSE_HEAD) fail(new UpstreamProtocolError('headers too large', 'HPE_HEADER_OVERFLOW'));
      return;
    }
    let r: ResponseHead;
    try {
      r = parseResponseHead(head.subarray(0, end).toString('latin1'));
    } catch (e) {
      return fail(e as UpstreamProtocolError);
    }
    const rest = head.subarray(end + 4);
    head = Buffer.alloc(0);
    // Informational answers (100 Continue) are not the upgrade's answer (Envoy's upstream request drops them).
    if (r.status < 200 && r.status !== 101) {
      if (rest.length > 0) onHead(rest);
      return;
    }
    up.off('data', onHead);
    responded = true;
    const answer = h.onResponse(r.status, r);
    if (answer === undefined) {
      // The stream wrote a local reply on the client connection and closes it.
      finished = true;
      up.destroy();
      return;
    }
    const headers = answer.headers;
    if (r.status === 101) {
      writeHead(down, 101, headers);
      if (rest.length) toDown(rest);
      // Now, and only now, the client's held bytes go upstream, in the order they arrived.
      const held = releaseUpgradePayload(down);
      for (const d of held.data) {
        received += d.length;
        up.write(d);
      }
      if (held.ended) up.end();
      down.on('data', (d: Buffer) => {
        received += d.length;
        if (!up.write(d)) down.pause();
      });
      down.on('end', () => up.end());
      up.on('drain', () => down.resume());
      up.on('data', toDown);
      down.on('drain', () => up.resume());
      down.resume();
      return;
    }
    // A refused upgrade: relay the response with its own framing; the held bytes are never sent.
    if (r.chunked || (r.contentLength < 0 && r.status !== 204 && r.status !== 304)) {
      // Envoy re-frames a body without content-length as chunked (its HTTP/1 encoder).
      bodyMode = r.chunked ? BODY_CHUNKED : BODY_TO_CLOSE;
      // An upstream response: framed by the rules the upstream pool applies to every response body.
      if (r.chunked) chunked = new ChunkedDecoder(RESPONSE_CHUNKED);
      headers.push('transfer-encoding', 'chunked');
    } else if (r.contentLength > 0 && r.status !== 204 && r.status !== 304) {
      bodyMode = BODY_LENGTH;
      bodyLeft = r.contentLength;
    }
    writeHead(down, r.status, headers);
    if (bodyMode === NO_BODY) return endRefusal();
    up.on('data', onRefusalBody);
    down.on('drain', () => up.resume());
    if (rest.length) onRefusalBody(rest);
  };
  up.on('data', onHead);
  up.on('end', () => {
    if (!responded) fail(new UpstreamProtocolError('upstream closed before the response', 'UND_ERR_SOCKET'));
    else if (bodyMode === BODY_TO_CLOSE) {
      down.write('0\r\n\r\n', 'latin1');
      endRefusal();
    } else if (bodyMode !== NO_BODY) done();
    else down.end();
  });
  up.on('error', (e: Error & { code?: string }) => fail(e));
  up.on('close', () => (responded ? done() : fail(Object.assign(new Error('upstream closed'), { code: 'UND_ERR_SOCKET' }))));
  down.on('close', () => done());
  down.on('error', () => done());
  return { cancel: () => done() };
}

function writeHead(down: Socket, status: number, headers: string[]): void {
  let out = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  down.write(out + '\r\n', 'latin1');
}

/**
 * `Upgrade: h2c` is not an upgrade for Envoy: its HTTP/1 codec removes the Upgrade and HTTP2-Settings headers
 * and those tokens from Connection, and serves the request as plain HTTP/1.1 on the same connection. For a
 * request node:http took as an upgrade, returns that request's head rewritten so (latin1, node's header
 * encoding), or undefined when it is a real upgrade.
 */
export function h2cAsPlainRequest(req: {
  method?: string | undefined;
  url?: string | undefined;
  httpVersion: string;
  rawHeaders: readonly string[];
}): string | undefined {
  let upgrade: string | undefined;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if ((req.rawHeaders[i] as string).toLowerCase() === 'upgrade')
      upgrade = upgrade === undefined ? req.rawHeaders[i + 1] : `${upgrade},${req.rawHeaders[i + 1] as string}`;
  }
  if (upgrade === undefined || upgrade.trim().toLowerCase() !== 'h2c') return undefined;
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'http2-settings') continue;
    let value = req.rawHeaders[i + 1] as string;
    if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && t.toLowerCase() !== 'upgrade' && t.toLowerCase() !== 'http2-settings')
        .join(',');
      if (value === '') continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  return head + '\r\n';
}
