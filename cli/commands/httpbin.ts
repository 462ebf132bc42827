// `meshgate httpbin`: a small look-alike of httpbin.org (the backend of Istio's ingress tasks) for the quick
// start, the examples and the tests. JSON shapes follow httpbin's: title-cased header names, 2-space indent.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { parsePort } from '../usage-error.ts';

export const summary = 'run a small httpbin look-alike (status/N, delay/N, anything, headers, get, ip)';
export const usage = `usage: meshgate httpbin [--port 8000] [--host 127.0.0.1] [--name NAME]

Serves /status/<code>, /delay/<seconds> (max 10), /anything[/...], /headers, /get, /ip, /user-agent.
--name adds a response header x-httpbin-instance: NAME, so tests can tell instances apart.
`;

const MAX_DELAY_S = 10;

function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = titleCase((req.rawHeaders[i] ?? '').toLowerCase());
    const v = req.rawHeaders[i + 1] ?? '';
    out[k] = out[k] === undefined ? v : `${out[k]},${v}`;
  }
  return out;
}

function argsOf(url: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(k);
    out[k] = all.length === 1 ? (all[0] ?? '') : all;
  }
  return out;
}

function origin(req: IncomingMessage): string {
  const xff = req.headers['x-forwarded-for'];
  const first = typeof xff === 'string' ? xff.split(',')[0]?.trim() : undefined;
  return first || (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'access-control-allow-origin': '*',
    'access-control-allow-credentials': 'true',
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function httpbinHandler(name?: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (name) res.setHeader('x-httpbin-instance', name);
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const path = url.pathname;
    const body = await readBody(req);
    const common = { args: argsOf(url), headers: headersOf(req), origin: origin(req), url: `http://${req.headers.host ?? ''}${req.url ?? ''}` };
    const withBody = () => {
      const data = body.toString('utf8');
      let json: unknown;
      try {
        json = data ? (JSON.parse(data) as unknown) : null;
      } catch {
        json = null;
      }
      return { ...common, data, files: {}, form: {}, json, method: req.method };
    };
    let m: RegExpMatchArray | null;
    if ((m = path.match(/^\/status\/(\d{3})$/))) {
      const code = Number(m[1]);
      res.writeHead(code, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': 0,
        'access-control-allow-origin': '*',
        'access-control-allow-credentials': 'true',
      });
      res.end();
    } else if ((m = path.match(/^\/delay\/(\d+(?:\.\d+)?)$/))) {
      const s = Math.min(Number(m[1]), MAX_DELAY_S);
      await new Promise((r) => setTimeout(r, s * 1000));
      sendJson(res, 200, withBody());
    } else if (path === '/anything' || path.startsWith('/anything/')) {
      sendJson(res, 200, withBody());
    } else if (path === '/headers') {
      sendJson(res, 200, { headers: common.headers });
    } else if (path === '/get') {
      sendJson(res, 200, common);
    } else if (path === '/ip') {
      sendJson(res, 200, { origin: common.origin });
    } else if (path === '/user-agent') {
      sendJson(res, 200, { 'user-agent': req.headers['user-agent'] ?? null });
    } else if (path === '/' || path === '') {
      const text = 'meshgate httpbin: try /status/200, /delay/1, /anything, /headers, /get, /ip\n';
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } else {
      const text =
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n';
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, host: { type: 'string' }, name: { type: 'string' } }, strict: true });
  const log = createLogger({ name: 'httpbin' });
  const port = parsePort('port', values.port, 8000);
  const host = values.host ?? '127.0.0.1';
  const handler = httpbinHandler(values.name);
  const server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      log.warn({ err }, 'request failed');
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  log.info({ host, port, name: values.name }, 'httpbin listening');
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
