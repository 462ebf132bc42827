// The admin interface (Envoy's :15000, 127.0.0.1 only): /listeners, /clusters, /config_dump, /stats,
// /stats/prometheus, /ready, /server_info, /healthcheck/fail|ok, /drain_listeners, /quitquitquit,
// /reset_counters, /help. Response headers as Envoy's admin (populateFallbackResponseHeaders): content-type,
// cache-control, x-content-type-options, then date and `server: envoy`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Json } from '../xds/json.ts';
import { httpDate } from '../http/date.ts';
import { reasonPhrase } from '../http/codes.ts';
import { compileRe2, isRe2Error, type Re2 } from '../../xds/re2.ts';
import { renderJson, renderPrometheus, renderText, selectStats, type HistogramBucketsMode, type StatsQuery } from '../stats/render.ts';
import type { StatSample } from '../stats/store.ts';
import type { Cluster } from '../upstream/cluster.ts';
import { renderClustersJson, renderClustersText, type HostStatTotals } from './clusters.ts';
import { renderConfigDump } from './config-dump.ts';
import { routeMapReply } from './routemap-page.ts';

export interface ListenerStatus {
  name: string;
  address: string;
  port: number;
}

export interface AdminContext {
  /** Every stat, process-wide (all workers), sorted by name. */
  stats(): Promise<StatSample[]>;
  resetCounters(): void;
  clusters(): Cluster[];
  /** Host stats of the workers other than the main thread's (added to the clusters' own). */
  hostStats(): Promise<HostStatTotals>;
  listeners(): ListenerStatus[];
  configDump(includeEds: boolean): Json[];
  /** LIVE, DRAINING, PRE_INITIALIZING, INITIALIZING */
  state(): string;
  serverInfo(): Json;
  healthcheckFail(): void;
  healthcheckOk(): void;
  drainListeners(graceful: boolean): void;
  quit(): void;
}

export const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';

interface Endpoint {
  help: string;
  mutates: boolean;
  params?: [string, string][];
  handle(ctx: AdminContext, q: URLSearchParams): AdminReply | Promise<AdminReply>;
}

interface AdminReply {
  status: number;
  type: string;
  body: string;
  /** More response headers (name, value, ...). */
  headers?: string[];
}

/** Admin's stats parameters; an invalid `filter=` is Envoy's 400 `Invalid re2 regex` (StatsParams::parse). */
export function statsQuery(q: URLSearchParams): StatsQuery | string {
  const f = q.get('filter');
  let filter: Re2 | undefined;
  if (f !== null && f !== '') {
    const re = compileRe2(f);
    if (isRe2Error(re)) return 'Invalid re2 regex';
    filter = re;
  }
  // Utility::histogramBucketsParam ("none" is the older name of "summary"); unset is its own mode.
  const hb = q.get('histogram_buckets');
  let histogramBuckets: HistogramBucketsMode | undefined;
  if (hb === 'cumulative' || hb === 'disjoint' || hb === 'summary') histogramBuckets = hb;
  else if (hb === 'none') histogramBuckets = 'summary';
  else if (hb !== null && hb !== '') return 'usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n';
  return { filter, usedOnly: q.has('usedonly'), ...(histogramBuckets ? { histogramBuckets } : {}) };
}

/** statsQuery for the Prometheus form (PrometheusStatsFormatter::validateParams): no disjoint buckets. */
export function prometheusQuery(q: URLSearchParams): StatsQuery | string {
  const sq = statsQuery(q);
  return typeof sq !== 'string' && sq.histogramBuckets === 'disjoint' ? 'unsupported prometheus histogram bucket mode' : sq;
}

const ok = (body = 'OK\n') => ({ status: 200, type: TEXT, body });

const ENDPOINTS: Record<string, Endpoint> = {
  '/': { help: 'Admin home page', mutates: false, handle: () => ({ status: 200, type: TEXT, body: helpText() }) },
  '/certs': { help: 'print certs on machine', mutates: false, handle: () => ({ status: 200, type: JSON_TYPE, body: '{\n "certificates": []\n}\n' }) },
  '/clusters': {
    help: 'upstream cluster status',
    mutates: false,
    params: [['format', 'File format to use; One of (text, json)']],
    handle: async (ctx, q) => {
      const others = await ctx.hostStats();
      return q.get('format') === 'json'
        ? { status: 200, type: JSON_TYPE, body: renderClustersJson(ctx.clusters(), others) }
        : { status: 200, type: TEXT, body: renderClustersText(ctx.clusters(), others) };
    },
  },
  '/config_dump': {
    help: 'dump current Envoy configs (experimental)',
    mutates: false,
    params: [
      ['resource', 'The resource to dump'],
      [
        'mask',
        'The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a ProtobufWkt::FieldMask',
      ],
      [
        'name_regex',
        'Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters.',
      ],
      ['include_eds', 'Dump currently loaded configuration including EDS. See the response definition for more information'],
    ],
    handle: (ctx, q) => {
      let nameRegex: Re2 | undefined;
      const nr = q.get('name_regex');
      if (nr) {
        const re = compileRe2(nr);
        // ConfigDumpHandler: the absl::Status printed whole, RE2's own error text last.
        if (isRe2Error(re)) return { status: 400, type: TEXT, body: `INVALID_ARGUMENT: Error while parsing name_regex from ${nr}: ${re.message}` };
        nameRegex = re;
      }
      const r = renderConfigDump(ctx.configDump(q.has('include_eds')), {
        resource: q.get('resource') ?? undefined,
        mask: q.get('mask') ?? undefined,
        nameRegex,
      });
      return { status: r.status, type: r.status === 200 ? JSON_TYPE : TEXT, body: r.body };
    },
  },
  '/drain_listeners': {
    help: 'drain listeners',
    mutates: true,
    params: [
      [
        'graceful',
        'When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI',
      ],
      ['skip_exit', 'When draining listeners, do not exit after the drain period. This must be used with graceful'],
      [
        'inboundonly',
        'Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound.',
      ],
    ],
    handle: (ctx, q) => {
      ctx.drainListeners(q.has('graceful'));
      return ok();
    },
  },
  '/healthcheck/fail': { help: 'cause the server to fail health checks', mutates: true, handle: (ctx) => (ctx.healthcheckFail(), ok()) },
  '/healthcheck/ok': { help: 'cause the server to pass health checks', mutates: true, handle: (ctx) => (ctx.healthcheckOk(), ok()) },
  '/help': { help: 'print out list of admin commands', mutates: false, handle: () => ({ status: 200, type: TEXT, body: helpText() }) },
  '/listeners': {
    help: 'print listener info',
    mutates: false,
    params: [['format', 'File format to use; One of (text, json)']],
    handle: (ctx, q) => {
      const ls = ctx.listeners();
      if (q.get('format') === 'json') {
        const body =
          JSON.stringify(
            { listener_statuses: ls.map((l) => ({ name: l.name, local_address: { socket_address: { address: l.address, port_value: l.port } } })) },
            null,
            1,
          ) + '\n';
        return { status: 200, type: JSON_TYPE, body };
      }
      return { status: 200, type: TEXT, body: ls.map((l) => `${l.name}::${l.address}:${l.port}\n`).join('') };
    },
  },
  '/memory': {
    help: 'print current allocation/heap usage',
    mutates: false,
    handle: () => {
      const m = process.memoryUsage();
      const body =
        JSON.stringify(
          {
            allocated: String(m.heapUsed),
            heap_size: String(m.heapTotal),
            pageheap_unmapped: '0',
            pageheap_free: '0',
            total_thread_cache: '0',
            total_physical_bytes: String(m.rss),
          },
          null,
          1,
        ) + '\n';
      return { status: 200, type: JSON_TYPE, body };
    },
  },
  '/quitquitquit': { help: 'exit the server', mutates: true, handle: (ctx) => (setImmediate(() => ctx.quit()), ok()) },
  '/ready': {
    help: 'print server state, return 200 if LIVE, otherwise return 503',
    mutates: false,
    handle: (ctx) => {
      const s = ctx.state();
      return { status: s === 'LIVE' ? 200 : 503, type: TEXT, body: `${s}\n` };
    },
  },
  '/reset_counters': { help: 'reset all counters to zero', mutates: true, handle: (ctx) => (ctx.resetCounters(), ok()) },
  '/routemap': {
    help: 'route map: listeners, filter chains, virtual hosts, routes, clusters and endpoints with live counts and health (meshgate; not in Envoy)',
    mutates: false,
    params: [['format', 'File format to use; One of (html, json)']],
    handle: routeMapReply,
  },
  '/runtime': {
    help: 'print runtime values',
    mutates: false,
    handle: () => ({ status: 200, type: JSON_TYPE, body: '{\n "entries": {},\n "layers": [\n  "global config",\n  "admin"\n ]\n}\n' }),
  },
  '/server_info': {
    help: 'print server version/status information',
    mutates: false,
    handle: (ctx) => ({ status: 200, type: JSON_TYPE, body: JSON.stringify(ctx.serverInfo(), null, 1) + '\n' }),
  },
  '/stats': {
    help: 'print server stats',
    mutates: false,
    params: [
      ['usedonly', 'Only include stats that have been written by system since restart'],
      ['filter', 'Regular expression (Google re2) for filtering stats'],
      ['format', 'Format to use; One of (html, active-html, text, json)'],
      ['histogram_buckets', 'Histogram bucket display mode; One of (cumulative, disjoint, summary)'],
    ],
    handle: async (ctx, q) => {
      const format = q.get('format');
      const sq = format === 'prometheus' ? prometheusQuery(q) : statsQuery(q);
      if (typeof sq === 'string') return { status: 400, type: TEXT, body: sq };
      const samples = selectStats(await ctx.stats(), sq);
      if (format === 'json') return { status: 200, type: JSON_TYPE, body: renderJson(samples, sq.histogramBuckets) };
      if (format === 'prometheus') return { status: 200, type: TEXT, body: renderPrometheus(samples, sq.histogramBuckets) };
      return { status: 200, type: TEXT, body: renderText(samples, sq.histogramBuckets) };
    },
  },
  '/stats/prometheus': {
    help: 'print server stats in prometheus format',
    mutates: false,
    params: [
      ['usedonly', 'Only include stats that have been written by system since restart'],
      ['filter', 'Regular expression (Google re2) for filtering stats'],
    ],
    handle: async (ctx, q) => {
      const sq = prometheusQuery(q);
      if (typeof sq === 'string') return { status: 400, type: TEXT, body: sq };
      return { status: 200, type: TEXT, body: renderPrometheus(selectStats(await ctx.stats(), sq), sq.histogramBuckets) };
    },
  },
};

function helpText(): string {
  let out = 'admin commands are:\n';
  for (const [path, e] of Object.entries(ENDPOINTS).sort(([a], [b]) => (a < b ? -1 : 1))) {
    out += `  ${path}${e.mutates ? ' (POST)' : ''}: ${e.help}\n`;
    for (const [name, help] of e.params ?? []) out += `      ${name}: ${help}\n`;
  }
  return out;
}

/** Writes an admin-style response (Envoy admin headers, chunked body as Envoy's admin streams it). */
export function writeAdminResponse(res: ServerResponse, status: number, type: string, body: string, extra: string[] = []): void {
  res.sendDate = false;
  res.removeHeader('connection');
  const headers = [
    'content-type',
    type,
    'cache-control',
    'no-cache, max-age=0',
    'x-content-type-options',
    'nosniff',
    'date',
    httpDate(),
    'server',
    'envoy',
    ...extra,
  ];
  if (res.req.method !== 'HEAD') headers.push('transfer-encoding', 'chunked');
  res.writeHead(status, reasonPhrase(status), headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function handleAdmin(ctx: AdminContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const qi = url.indexOf('?');
  const path = qi < 0 ? url : url.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1));
  const e = ENDPOINTS[path];
  if (!e) return writeAdminResponse(res, 404, TEXT, `invalid path. ${helpText()}`);
  if (e.mutates && req.method !== 'POST') return writeAdminResponse(res, 405, TEXT, `Method ${req.method ?? 'GET'} not allowed, POST required.`);
  let r: AdminReply;
  try {
    r = await e.handle(ctx, q);
  } catch (err) {
    r = { status: 500, type: TEXT, body: `${(err as Error).message}\n` };
  }
  writeAdminResponse(res, r.status, r.type, r.body, r.headers);
}

export function startAdminServer(ctx: AdminContext, host: string, port: number): Promise<Server> {
  const server = createServer({ requireHostHeader: false, keepAliveTimeout: 60_000 }, (req, res) => {
    // Drain the request body (admin requests carry none worth reading) before answering.
    req.resume();
    void handleAdmin(ctx, req, res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
