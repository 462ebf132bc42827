// A controllable backend "pod" for black-box tests, in the test process: a node:http server on its own
// loopback address that records every request (method, path, headers, body) and answers as `behave` says
// (status, delay, body, or dropping the connection), so retries, timeouts, outlier ejection and mirroring
// can be driven on purpose. Always closed in `after`.
import { createServer, type IncomingMessage, type Server } from 'node:http';

interface SeenRequest {
  method: string;
  path: string;
  /** Lowercase names; repeated headers joined with ','. */
  headers: Record<string, string>;
  body: string;
  at: number;
}

interface Answer {
  status?: number;
  delayMs?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Destroy the socket instead of answering (a reset before response headers). */
  reset?: boolean;
}

export interface Backend {
  host: string;
  port: number;
  name: string;
  seen: SeenRequest[];
  /** Decides the answer for each request (default: 200 with a small JSON body). */
  behave: (req: SeenRequest, n: number) => Answer;
  /** Requests in flight right now, and the most seen at once. */
  active: number;
  maxActive: number;
  close(): Promise<void>;
}

export async function startBackend(host: string, port: number, name: string): Promise<Backend> {
  const b: Backend = {
    host,
    port,
    name,
    seen: [],
    behave: () => ({}),
    active: 0,
    maxActive: 0,
    close: () => Promise.resolve(),
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = (req.rawHeaders[i] ?? '').toLowerCase();
        const v = req.rawHeaders[i + 1] ?? '';
        headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
      }
      const seen: SeenRequest = { method: req.method ?? '', path: req.url ?? '', headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      b.seen.push(seen);
      b.active++;
      b.maxActive = Math.max(b.maxActive, b.active);
      const a = b.behave(seen, b.seen.length);
      const respond = (): void => {
        b.active--;
        if (a.reset) {
          req.socket.destroy();
          return;
        }
        const body = a.body ?? JSON.stringify({ backend: name, path: seen.path, headers }) + '\n';
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': name, ...a.headers });
        res.end(body);
      };
      if (a.delayMs) setTimeout(respond, a.delayMs);
      else respond();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  b.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return b;
}
