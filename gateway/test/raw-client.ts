// A persistent raw HTTP/1.1 connection for tests: several requests on one socket (keep-alive), exact
// bytes in and out, and whether the server closed the connection.
import { connect, type Socket } from 'node:net';
import { parseResponse, type RawResponse } from '../../e2e/lib/http.ts';

export { freePort } from '../../e2e/lib/process.ts';

export class RawConnection {
  private readonly sock: Socket;
  private buf = Buffer.alloc(0);
  closed = false;
  private waiter: (() => void) | undefined;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    sock.on('error', () => undefined);
  }

  static open(host: string, port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port }, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  /** Sends raw bytes and reads exactly one response (content-length / chunked / close framed). */
  async request(raw: string, timeoutMs = 5000, head = false): Promise<RawResponse> {
    this.sock.write(raw);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const n = responseLength(this.buf, head);
      if (n !== undefined || (this.closed && this.buf.length > 0)) {
        const len = n ?? this.buf.length;
        const out = this.buf.subarray(0, len);
        this.buf = this.buf.subarray(len);
        return parseResponse(Buffer.from(out));
      }
      if (this.closed) throw new Error('connection closed without a response');
      if (Date.now() > end) throw new Error(`no response within ${timeoutMs} ms: ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50);
      });
    }
  }

  /** Resolves true if the server closes the connection within timeoutMs. */
  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.sock.destroy();
  }
}

function responseLength(buf: Buffer, head: boolean): number | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const h = buf.subarray(0, end).toString('latin1').toLowerCase();
  const status = Number(h.split(' ')[1]);
  const bodyStart = end + 4;
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) return bodyStart;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(h);
  if (cl) return buf.length - bodyStart >= Number(cl[1]) ? bodyStart + Number(cl[1]) : undefined;
  if (/\r\ntransfer-encoding:\s*chunked/.test(h)) {
    const term = buf.indexOf('\r\n0\r\n\r\n', end);
    return term < 0 ? undefined : term + 7;
  }
  return undefined;
}

/**
 * One connection: writes `parts` (one write each, `gapMs` apart) and collects everything that comes back until
 * the server closes (closed: true) or stays silent for `idleMs` after the last write or byte, or `maxMs` pass.
 * Bytes are returned as latin1, one char per byte.
 */
export function exchange(
  port: number,
  parts: readonly (string | Buffer)[],
  o: { idleMs: number; maxMs?: number; gapMs?: number },
): Promise<{ bytes: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let idle: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      clearTimeout(hard);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const hard = setTimeout(() => finish(false), o.maxMs ?? 8000);
    // Silence counts only once every part is written: answers to early parts may come well before later ones.
    let written = false;
    const arm = (ms: number): void => {
      clearTimeout(idle);
      idle = setTimeout(() => finish(false), ms);
    };
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (written) arm(o.idleMs);
    });
    s.on('close', () => finish(true));
    s.on('error', () => undefined);
    s.on('connect', () => {
      void (async () => {
        for (let i = 0; i < parts.length; i++) {
          if (i > 0 && o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
          if (!s.destroyed) s.write(parts[i] as string | Buffer);
        }
        written = true;
        // A first answer may take longer than the silence between bytes of one answer.
        arm(chunks.length === 0 ? Math.max(o.idleMs, 600) : o.idleMs);
      })();
    });
  });
}
