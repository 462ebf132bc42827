// A raw HTTP/1.1 client: sends exact bytes and returns the exact status line, header lines (in order, as
// sent) and body, so tests can assert what a user's curl would see byte for byte.
import { connect } from 'node:net';

export interface RawResponse {
  statusLine: string;
  status: number;
  /** Header lines in wire order, names as sent. */
  headers: [string, string][];
  body: Buffer;
  raw: Buffer;
  header(name: string): string | undefined;
}

export function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`incomplete response head: ${JSON.stringify(raw.toString('latin1'))}`);
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = lines[0] ?? '';
  const headers = lines.slice(1).map((l): [string, string] => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()];
  });
  let body = raw.subarray(end + 4);
  const te = headers.find(([k]) => k.toLowerCase() === 'transfer-encoding')?.[1];
  if (te?.toLowerCase() === 'chunked') body = dechunk(body);
  return {
    statusLine,
    status: Number(statusLine.split(' ')[1]),
    headers,
    body,
    raw,
    header: (name) => headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
  };
}

function dechunk(b: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) break;
    const size = parseInt(b.subarray(i, nl).toString('latin1'), 16);
    if (!size) break;
    parts.push(b.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function complete(buf: Buffer, method: string): boolean {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = buf.subarray(0, end).toString('latin1').toLowerCase();
  const status = Number(head.split(' ')[1]);
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return true;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) return buf.length - end - 4 >= Number(cl[1]);
  if (/\r\ntransfer-encoding:\s*chunked/.test(head)) return buf.subarray(end).includes('\r\n0\r\n\r\n');
  return false; // close-delimited: wait for end
}

/** Sends one request (or any raw bytes) on a fresh connection and reads one response. */
export async function rawRequest(
  host: string,
  port: number,
  request: string | Buffer,
  opts: { timeoutMs?: number; method?: string; localAddress?: string } = {},
): Promise<RawResponse> {
  const method = opts.method ?? (typeof request === 'string' ? (request.split(' ')[0] ?? 'GET') : 'GET');
  return new Promise((resolve, reject) => {
    // localAddress: the client's own loopback address (127.0.0.0/8), for tests of source-address rules.
    const sock = connect({ host, port, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `no complete response from ${host}:${port} within ${opts.timeoutMs ?? 10_000} ms: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`,
          ),
        ),
      opts.timeoutMs ?? 10_000,
    );
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (complete(Buffer.concat(chunks), method)) finish();
    });
    sock.on('end', () => finish());
    sock.on('error', (e) => finish(e));
    sock.write(request);
  });
}

/** GET path with a Host header, as `curl -H "Host: h" http://addr:port/path` sends it. */
export function get(host: string, port: number, path: string, hostHeader: string, extra: Record<string, string> = {}): Promise<RawResponse> {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${hostHeader}`, 'User-Agent: curl/8.5.0', 'Accept: */*'];
  for (const [k, v] of Object.entries(extra)) lines.push(`${k}: ${v}`);
  return rawRequest(host, port, lines.join('\r\n') + '\r\n\r\n');
}
