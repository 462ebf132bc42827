// A raw recording backend "pod" for hostile-input tests: a net.Server on a loopback address that keeps every
// byte it receives per connection and parses them as HTTP/1.1 requests with a strict parser (CRLF line ends
// only, token header names, no obs-fold, no control bytes, one Content-Length or `Transfer-Encoding:
// chunked`, never both), so a test can say exactly which requests, paths and header bytes reached it.
// Bytes that do not parse are recorded as a parse error and the connection is closed: a gateway that
// forwards something a strict parser would not read the same way is a finding in itself.
// Each request is answered by `answer` (default: 200 with body `rec:<target>`, a `x-rec-id` header
// naming the request, and 101 for websocket upgrades) or by scripted raw bytes (hostile upstream responses).
import { createServer, type Server, type Socket } from 'node:net';

export interface RecordedRequest {
  /** Index over the backend's lifetime (also sent back as `x-rec-id`). */
  id: number;
  /** The connection it arrived on. */
  conn: number;
  method: string;
  /** The request-target exactly as received. */
  target: string;
  version: string;
  /** Header lines as received: names and values as raw bytes (latin1 strings), in order. */
  headers: [string, string][];
  body: Buffer;
  /** The whole request as received (head and body). */
  raw: Buffer;
}

interface RecordedConnection {
  id: number;
  /** Every byte received on it. */
  bytes: Buffer;
  /** Set when the strict parser could not read what arrived (the connection is then closed). */
  parseError?: string;
  /** Bytes received after a 101: tunnel payload, not parsed. */
  tunnel: Buffer;
  closed: boolean;
}

/** What the backend sends for one request: raw bytes, and whether it closes the connection after them. */
export interface Answer {
  raw: Buffer | string;
  close?: boolean;
  /** The answer is a 101: later bytes on the connection are tunnel payload. */
  upgrade?: boolean;
}

export interface RecordingBackend {
  host: string;
  port: number;
  connections: RecordedConnection[];
  requests: RecordedRequest[];
  /** Every strict-parse failure so far, as `connection N: reason`. */
  parseErrors: string[];
  answer: (req: RecordedRequest) => Answer;
  /** A point in the record: what arrived after it is `since(mark)`. */
  mark(): Mark;
  since(mark: Mark): { requests: RecordedRequest[]; parseErrors: string[] };
  close(): Promise<void>;
}

interface Mark {
  requests: number;
  parseErrors: number;
}

/** The first header value named `name` (case-insensitive), as raw bytes (latin1), or undefined. */
export function headerValue(req: { headers: [string, string][] }, name: string): string | undefined {
  const n = name.toLowerCase();
  return req.headers.find(([k]) => k.toLowerCase() === n)?.[1];
}

export function defaultAnswer(req: RecordedRequest): Answer {
  if (headerValue(req, 'upgrade')?.toLowerCase() === 'websocket') {
    return { raw: `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nx-rec-id: ${req.id}\r\n\r\n`, upgrade: true };
  }
  const body = `rec:${req.target}`;
  const head = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-rec-id: ${req.id}\r\ncontent-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n`;
  return { raw: Buffer.from(head + body, 'latin1') };
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const METHOD = TCHAR;
const MAX_HEAD = 256 * 1024;

export type StrictParse =
  | { kind: 'request'; method: string; target: string; version: string; headers: [string, string][]; body: Buffer; length: number }
  | { kind: 'incomplete' }
  | { kind: 'error'; reason: string };

/**
 * Reads one request from `buf` at `start`, strictly (RFC 9112 with none of its MAYs): CRLF line ends,
 * `METHOD SP target SP HTTP/1.x`, token names immediately followed by `:`, values of visible ASCII,
 * SP/HTAB and obs-text only, at most one Content-Length of digits, Transfer-Encoding only exactly
 * `chunked` and never with Content-Length, chunk sizes of hex digits with CRLF after size and data.
 */
export function parseStrictRequest(buf: Buffer, start: number): StrictParse {
  const end = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (end < 0) return buf.length - start > MAX_HEAD ? { kind: 'error', reason: 'head larger than 256 KiB' } : { kind: 'incomplete' };
  const head = buf.subarray(start, end);
  for (let i = 0; i < head.length; i++) {
    const c = head[i] as number;
    if (c === 13 && head[i + 1] !== 10) return { kind: 'error', reason: `bare CR at head byte ${i}` };
    if (c === 10 && head[i - 1] !== 13) return { kind: 'error', reason: `bare LF at head byte ${i}` };
    if ((c < 32 && c !== 9 && c !== 13 && c !== 10) || c === 127) return { kind: 'error', reason: `control byte 0x${c.toString(16)} at head byte ${i}` };
  }
  const lines = head.toString('latin1').split('\r\n');
  const m = /^(\S+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? '');
  if (!m || !METHOD.test(m[1] ?? '')) return { kind: 'error', reason: `bad request line ${JSON.stringify(lines[0])}` };
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith(' ') || line.startsWith('\t')) return { kind: 'error', reason: `obs-fold line ${JSON.stringify(line)}` };
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TCHAR.test(name)) return { kind: 'error', reason: `bad header name in ${JSON.stringify(line)}` };
    headers.push([name, line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
  }
  const cls = headers.filter(([k]) => k.toLowerCase() === 'content-length').map(([, v]) => v);
  const tes = headers.filter(([k]) => k.toLowerCase() === 'transfer-encoding').map(([, v]) => v);
  if (cls.length > 1) return { kind: 'error', reason: `${cls.length} Content-Length headers` };
  if (tes.length > 1 || (tes.length === 1 && tes[0]?.toLowerCase() !== 'chunked')) return { kind: 'error', reason: `Transfer-Encoding ${JSON.stringify(tes)}` };
  if (cls.length && tes.length) return { kind: 'error', reason: 'Content-Length and Transfer-Encoding' };
  const bodyStart = end + 4;
  const request = (body: Buffer, next: number): StrictParse => ({
    kind: 'request',
    method: m[1] ?? '',
    target: m[2] ?? '',
    version: m[3] ?? '',
    headers,
    body,
    length: next - start,
  });
  if (tes.length) {
    const chunks: Buffer[] = [];
    let i = bodyStart;
    for (;;) {
      const nl = buf.indexOf('\r\n', i, 'latin1');
      if (nl < 0) return buf.length - i > 4096 ? { kind: 'error', reason: 'chunk size line too long' } : { kind: 'incomplete' };
      const sizeLine = buf.subarray(i, nl).toString('latin1');
      const sm = /^0*([0-9A-Fa-f]{1,15})(;[^\r\n]*)?$/.exec(sizeLine);
      if (!sm) return { kind: 'error', reason: `bad chunk size line ${JSON.stringify(sizeLine)}` };
      const size = parseInt(sm[1] ?? '', 16);
      if (size === 0) {
        // Trailers: header lines until an empty line.
        let t = nl + 2;
        for (;;) {
          const tn = buf.indexOf('\r\n', t, 'latin1');
          if (tn < 0) return { kind: 'incomplete' };
          if (tn === t) return request(Buffer.concat(chunks), tn + 2);
          t = tn + 2;
        }
      }
      if (buf.length < nl + 2 + size + 2) return { kind: 'incomplete' };
      if (buf[nl + 2 + size] !== 13 || buf[nl + 3 + size] !== 10) return { kind: 'error', reason: 'chunk data not followed by CRLF' };
      chunks.push(buf.subarray(nl + 2, nl + 2 + size));
      i = nl + 4 + size;
    }
  }
  let len = 0;
  if (cls.length) {
    if (!/^\d+$/.test(cls[0] ?? '')) return { kind: 'error', reason: `bad Content-Length ${JSON.stringify(cls[0])}` };
    len = Number(cls[0]);
  }
  if (buf.length < bodyStart + len) return { kind: 'incomplete' };
  return request(buf.subarray(bodyStart, bodyStart + len), bodyStart + len);
}

export async function startRecordingBackend(host: string, port = 0): Promise<RecordingBackend> {
  const connections: RecordedConnection[] = [];
  const requests: RecordedRequest[] = [];
  const parseErrors: string[] = [];
  const sockets = new Set<Socket>();
  const b: RecordingBackend = {
    host,
    port,
    connections,
    requests,
    parseErrors,
    answer: defaultAnswer,
    mark: () => ({ requests: requests.length, parseErrors: parseErrors.length }),
    since: (m) => ({ requests: requests.slice(m.requests), parseErrors: parseErrors.slice(m.parseErrors) }),
    close: () => Promise.resolve(),
  };
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    const conn: RecordedConnection = { id: connections.length, bytes: Buffer.alloc(0), tunnel: Buffer.alloc(0), closed: false };
    connections.push(conn);
    let offset = 0;
    let upgraded = false;
    let closing = false;
    sock.on('data', (d: Buffer) => {
      conn.bytes = Buffer.concat([conn.bytes, d]);
      if (upgraded) {
        conn.tunnel = Buffer.concat([conn.tunnel, d]);
        return;
      }
      while (!closing && !upgraded && offset < conn.bytes.length) {
        const p = parseStrictRequest(conn.bytes, offset);
        if (p.kind === 'incomplete') return;
        if (p.kind === 'error') {
          conn.parseError = p.reason;
          parseErrors.push(`connection ${conn.id}: ${p.reason}: ${JSON.stringify(conn.bytes.subarray(offset, offset + 300).toString('latin1'))}`);
          closing = true;
          sock.destroy();
          return;
        }
        const req: RecordedRequest = {
          id: requests.length,
          conn: conn.id,
          method: p.method,
          target: p.target,
          version: p.version,
          headers: p.headers,
          body: p.body,
          raw: conn.bytes.subarray(offset, offset + p.length),
        };
        offset += p.length;
        requests.push(req);
        const a = b.answer(req);
        sock.write(typeof a.raw === 'string' ? Buffer.from(a.raw, 'latin1') : a.raw);
        if (a.upgrade) {
          upgraded = true;
          conn.tunnel = conn.bytes.subarray(offset);
        }
        if (a.close) {
          closing = true;
          sock.end();
        }
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      conn.closed = true;
      sockets.delete(sock);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  b.port = typeof a === 'object' && a ? a.port : port;
  b.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return b;
}
