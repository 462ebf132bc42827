// The hostile client: writes exact bytes on one connection (possibly in several writes with pauses, from a
// chosen loopback source address), reads back every response the gateway sends in order, and notes whether
// the gateway closed the connection. Responses are read leniently (the gateway is under test, not the
// client): status line, header lines, then a body by content-length, chunked, or up to the close.
import { connect, type Socket } from 'node:net';

interface ClientResponse {
  status: number;
  statusLine: string;
  headers: [string, string][];
  body: Buffer;
  header(name: string): string | undefined;
}

export interface Exchange {
  responses: ClientResponse[];
  /** The gateway closed (FIN or reset) before the exchange ended. */
  closed: boolean;
  /** Bytes after the last complete response (a partial response, or tunnel bytes after a 101). */
  rest: Buffer;
  /** Every byte received. */
  raw: Buffer;
}

export interface SendOptions {
  host: string;
  port: number;
  /** Bytes to write, one write each (latin1 strings are bytes). */
  writes: (string | Buffer)[];
  /** Pause between writes. */
  gapMs?: number;
  /** Local address to connect from (so a backend can tell connections apart by x-forwarded-for). */
  localAddress?: string;
  /** Stop once this many responses arrived (then wait `settleMs` to see whether the gateway closes). */
  expectResponses?: number;
  settleMs?: number;
  /** Stop when nothing arrived for this long after the last write. */
  idleMs?: number;
  timeoutMs?: number;
}

const bytes = (w: string | Buffer): Buffer => (typeof w === 'string' ? Buffer.from(w, 'latin1') : w);

/** Splits the raw response stream into complete responses; stops at a 101 (what follows is tunnel data). */
function parseResponses(raw: Buffer, closed: boolean): { responses: ClientResponse[]; rest: Buffer } {
  const responses: ClientResponse[] = [];
  let i = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', i, 'latin1');
    if (end < 0) break;
    const lines = raw.subarray(i, end).toString('latin1').split('\r\n');
    const statusLine = lines[0] ?? '';
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    const headers = lines.slice(1).map((l): [string, string] => {
      const c = l.indexOf(':');
      return c < 0 ? [l, ''] : [l.slice(0, c), l.slice(c + 1).trim()];
    });
    const header = (n: string): string | undefined => headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1];
    let bodyEnd: number;
    let body: Buffer;
    const start = end + 4;
    if (Number.isNaN(status)) break;
    if ((status >= 100 && status < 200) || status === 204 || status === 304) {
      body = Buffer.alloc(0);
      bodyEnd = start;
    } else if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      let j = start;
      let done = false;
      for (;;) {
        const nl = raw.indexOf('\r\n', j, 'latin1');
        if (nl < 0) break;
        const size = parseInt(raw.subarray(j, nl).toString('latin1'), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const t = raw.indexOf('\r\n\r\n', nl, 'latin1');
          if (t < 0) break;
          j = t + 4;
          done = true;
          break;
        }
        if (raw.length < nl + 2 + size + 2) break;
        parts.push(raw.subarray(nl + 2, nl + 2 + size));
        j = nl + 4 + size;
      }
      if (!done) break;
      body = Buffer.concat(parts);
      bodyEnd = j;
    } else if (header('content-length') !== undefined) {
      const n = Number(header('content-length'));
      if (raw.length < start + n) break;
      body = raw.subarray(start, start + n);
      bodyEnd = start + n;
    } else {
      if (!closed) break;
      body = raw.subarray(start);
      bodyEnd = raw.length;
    }
    responses.push({ status, statusLine, headers, body, header });
    i = bodyEnd;
    if (status === 101) break;
  }
  return { responses, rest: raw.subarray(i) };
}

/** Runs one exchange on a fresh connection. Never rejects: connection errors count as a close. */
export function exchange(o: SendOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock: Socket = connect({ host: o.host, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const chunks: Buffer[] = [];
    let closed = false;
    let done = false;
    let writesDone = false;
    let idleTimer: NodeJS.Timeout | undefined;
    let settleTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(overall);
      clearTimeout(idleTimer);
      clearTimeout(settleTimer);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      const { responses, rest } = parseResponses(raw, closed);
      resolve({ responses, closed, rest, raw });
    };
    const overall = setTimeout(finish, o.timeoutMs ?? 10_000);
    const armIdle = (): void => {
      if (o.idleMs === undefined || !writesDone) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(finish, o.idleMs);
    };
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      armIdle();
      if (o.expectResponses !== undefined && settleTimer === undefined) {
        const { responses } = parseResponses(Buffer.concat(chunks), false);
        if (responses.length >= o.expectResponses) settleTimer = setTimeout(finish, o.settleMs ?? 200);
      }
    });
    sock.on('end', () => {
      closed = true;
      finish();
    });
    sock.on('error', () => {
      closed = true;
      finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.once('connect', () => {
      void (async () => {
        for (let k = 0; k < o.writes.length; k++) {
          if (done) return;
          if (k > 0 && o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
          if (done) return;
          sock.write(bytes(o.writes[k] as string | Buffer));
        }
        writesDone = true;
        armIdle();
      })();
    });
  });
}
