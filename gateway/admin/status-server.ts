// Istio's two static listeners, answered as Envoy + pilot-agent answer them (tools/packaging/common/
// envoy_bootstrap.json): 0.0.0.0_15021 (`/healthz/ready`, proxied to the agent: 200 or 503, empty body)
// and 0.0.0.0_15090 (`/stats/prometheus`, proxied to the admin). Anything else is Envoy's 404 NR. Both
// listeners have no server_name, so `server: envoy`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { httpDate } from '../http/date.ts';
import { reasonPhrase } from '../http/codes.ts';
import { buildLocalReply } from '../http/local-reply.ts';
import { renderPrometheus, selectStats } from '../stats/render.ts';
import { TEXT, prometheusQuery, writeAdminResponse } from './admin-server.ts';
import type { StatSample } from '../stats/store.ts';

function write(res: ServerResponse, status: number, headers: string[], body: string): void {
  res.sendDate = false;
  res.removeHeader('connection');
  res.writeHead(status, reasonPhrase(status), headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function notFound(res: ServerResponse): void {
  const r = buildLocalReply(404, '', { serverName: 'envoy', head: res.req.method === 'HEAD' });
  write(res, r.status, r.headers, r.body);
}

/** Route prefix match as Envoy's `prefix` matcher on the path (query excluded). */
function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

export function startStatusServer(host: string, port: number, isReady: () => boolean): Promise<Server> {
  const server = createServer({ requireHostHeader: false, keepAliveTimeout: 3_600_000 }, (req, res) => {
    req.resume();
    if (!pathOf(req.url).startsWith('/healthz/ready')) return notFound(res);
    // pilot-agent's Go answer (Date, Content-Length: 0), proxied by Envoy: lowercased, plus the
    // router's x-envoy-upstream-service-time and the HCM's server header.
    const status = isReady() ? 200 : 503;
    write(res, status, ['date', httpDate(), 'content-length', '0', 'x-envoy-upstream-service-time', '0', 'server', 'envoy'], '');
  });
  return listen(server, host, port);
}

export function startMetricsServer(host: string, port: number, stats: () => Promise<StatSample[]>): Promise<Server> {
  const server = createServer({ requireHostHeader: false, keepAliveTimeout: 3_600_000 }, (req, res) => void serveMetrics(req, res, stats));
  return listen(server, host, port);
}

async function serveMetrics(req: IncomingMessage, res: ServerResponse, stats: () => Promise<StatSample[]>): Promise<void> {
  req.resume();
  if (!pathOf(req.url).startsWith('/stats/prometheus')) return notFound(res);
  const url = req.url ?? '';
  const sq = prometheusQuery(new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : ''));
  // The listener proxies to the admin's /stats/prometheus, so an invalid filter is the admin's 400.
  const status = typeof sq === 'string' ? 400 : 200;
  const body = typeof sq === 'string' ? sq : renderPrometheus(selectStats(await stats(), sq), sq.histogramBuckets);
  writeAdminResponse(res, status, TEXT, body, ['x-envoy-upstream-service-time', '0']);
}

function listen(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
