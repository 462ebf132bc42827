#!/usr/bin/env node
// Turns a results directory of bench/run.sh (results.jsonl, machine.txt) into markdown: one table per
// scenario, memory, push latency and the goals of issue 7 with the measured ratios.
// usage: node bench/tools/summarize.ts RESULTS_DIR
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

interface Load {
  requests: number;
  duration_us: number;
  err_connect?: number;
  err_read?: number;
  err_write?: number;
  err_timeout?: number;
  err?: number;
  non2xx?: number;
  lat_p50_us: number;
  lat_p99_us: number;
}
interface Row {
  scenario: string;
  target: string;
  round?: number;
  dur_s?: number;
  conns?: number;
  procs?: number;
  server_cpu_ticks?: number;
  backend_cpu_ticks?: number;
  machine_busy_ticks?: number;
  machine_idle_ticks?: number;
  steal_ticks?: number;
  hz?: number;
  tcp_opens?: number;
  hwm_kb?: number;
  hwm_max_proc_kb?: number;
  load?: Load;
  skipped?: string;
  unsupported?: boolean;
  // memory
  phase?: string;
  rss_kb?: number;
  rss_max_proc_kb?: number;
  // startup / config / push
  ready_ms?: number;
  summary?: Record<string, unknown>;
  kind?: string;
  ok?: boolean;
  latency_ms?: number | null;
  last_status?: number;
  timeout_ms?: number;
}
interface Agg {
  n: number;
  rps: number;
  min: number;
  max: number;
  p50: number;
  p99: number;
  cpuPct: number;
  usPerReq: number;
  backendPct: number;
  hwm: number;
  hwmMaxProc: number;
  procs: number;
  opens: number;
  errors: number;
  requests: number;
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: summarize.ts RESULTS_DIR\n');
  process.exit(2);
}
const rows = readFileSync(join(dir, 'results.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Row);
const machine = existsSync(join(dir, 'machine.txt')) ? readFileSync(join(dir, 'machine.txt'), 'utf8').trim() : '';
const NCPU = Number(/(\d+) CPUs/.exec(machine)?.[1] ?? cpus().length);

const median = (xs: number[]): number => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  if (!a.length) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? (a[m] as number) : ((a[m - 1] as number) + (a[m] as number)) / 2;
};
const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–');
const ms = (us: number): string => fmt(us / 1000, us < 10_000 ? 2 : 1);
const mib = (kb: number): string => fmt(kb / 1024, 1);

function perRun(r: Row) {
  const w = r.load as Load;
  const secs = w.duration_us / 1e6;
  const hz = r.hz ?? 100;
  const errors = (w.err_connect ?? 0) + (w.err_read ?? 0) + (w.err_write ?? 0) + (w.err_timeout ?? 0) + (w.err ?? 0) + (w.non2xx ?? 0);
  const busy = r.machine_busy_ticks ?? 0;
  return {
    requests: w.requests,
    rps: w.requests / secs,
    p50: w.lat_p50_us,
    p99: w.lat_p99_us,
    cpuPct: (100 * (r.server_cpu_ticks ?? 0)) / hz / secs,
    usPerReq: w.requests ? (1e6 * (r.server_cpu_ticks ?? 0)) / hz / w.requests : NaN,
    backendPct: (100 * (r.backend_cpu_ticks ?? 0)) / hz / secs,
    stealPct: (100 * (r.steal_ticks ?? 0)) / hz / secs / NCPU,
    busyPct: (100 * busy) / (busy + (r.machine_idle_ticks ?? 0) + (r.steal_ticks ?? 0) || 1),
    hwmKb: r.hwm_kb ?? 0,
    hwmMaxProcKb: r.hwm_max_proc_kb ?? 0,
    opens: r.tcp_opens ?? 0,
    errors,
  };
}

const SCEN: Record<string, string> = {
  small: 'GET / (3-byte body), keep-alive, wrk -t1 -c64: the whole 2-core machine shared by wrk, target and backend',
  '16k': 'GET /16k (16 KiB body), keep-alive, wrk -t1 -c64',
  upload: 'POST /upload with a 1 MiB body, keep-alive, wrk -t1 -c16 (the backend reads the whole body, then answers)',
  close: 'GET / with `Connection: close`: one request per connection, wrk -t1 -c64',
  c1: 'GET /, wrk -t1 -c1: one request at a time, the latency a hop adds without queueing',
  h2: 'HTTP/2 cleartext (prior knowledge) to the target, h2load -t1 -c8 -m8 (64 streams in flight), HTTP/1.1 upstream',
  hosts: 'GET / to the last of 5,000 hosts whose VirtualService has 1,000 routes (only the last matches), vs the 1-host config; wrk -c64',
  pinned: 'GET /, wrk and the backend pinned to CPU 0, the target alone on CPU 1',
};
const SCEN_ORDER = ['small', '16k', 'upload', 'close', 'c1', 'h2', 'hosts', 'pinned'];
const isMeshgate = (t: string): boolean => t.startsWith('meshgate');
const out: string[] = ['```', machine, '```', ''];

const aggs = new Map<string, Map<string, Agg>>();
// Targets a scenario did not measure: `unsupported` when the target failed the scenario's probe request.
const skipped = new Map<string, Map<string, string>>();
for (const r of rows) {
  if (r.skipped) {
    if (!skipped.has(r.scenario)) skipped.set(r.scenario, new Map());
    skipped.get(r.scenario)?.set(r.target, r.unsupported ? `**not supported**: ${r.skipped}` : `not measured: ${r.skipped}`);
  }
}
const rank = (s: string): number => (SCEN_ORDER.includes(s) ? SCEN_ORDER.indexOf(s) : SCEN_ORDER.length);
const loadScenarios = [...new Set(rows.filter((r) => r.load).map((r) => r.scenario))].sort((a, b) => rank(a) - rank(b));

for (const sc of [...new Set([...loadScenarios, ...[...skipped.keys()].filter((s) => s !== 'push')])]) {
  const rs = rows.filter((r) => r.scenario === sc && r.load);
  const agg = new Map<string, Agg>();
  for (const t of [...new Set(rs.map((r) => r.target))]) {
    const runs = rs.filter((r) => r.target === t).map(perRun);
    agg.set(t, {
      n: runs.length,
      rps: median(runs.map((x) => x.rps)),
      min: Math.min(...runs.map((x) => x.rps)),
      max: Math.max(...runs.map((x) => x.rps)),
      p50: median(runs.map((x) => x.p50)),
      p99: median(runs.map((x) => x.p99)),
      cpuPct: median(runs.map((x) => x.cpuPct)),
      usPerReq: median(runs.map((x) => x.usPerReq)),
      backendPct: median(runs.map((x) => x.backendPct)),
      hwm: Math.max(...runs.map((x) => x.hwmKb)),
      hwmMaxProc: Math.max(...runs.map((x) => x.hwmMaxProcKb)),
      procs: Math.max(...rs.filter((r) => r.target === t).map((r) => r.procs ?? 0)),
      opens: Math.max(...runs.map((x) => x.opens)),
      errors: runs.reduce((s, x) => s + x.errors, 0),
      requests: runs.reduce((s, x) => s + x.requests, 0),
    });
  }
  aggs.set(sc, agg);
  const base = agg.get('direct');
  const ng = agg.get('nginx');
  const all = rs.map(perRun);
  out.push(`### ${sc}: ${SCEN[sc] ?? sc}`, '');
  if (rs.length) {
    const rounds = Math.max(...[...agg.values()].map((a) => a.n));
    out.push(
      `median of ${rounds} interleaved run(s) of ${rs[0]?.dur_s}s each; machine busy ${fmt(median(all.map((x) => x.busyPct)))}%, hypervisor steal ${fmt(median(all.map((x) => x.stealPct)), 1)}% of all CPUs (medians over the scenario's runs)`,
      '',
    );
  }
  if (sc === 'c1') {
    const added = (a: Agg | undefined): number => (a && base ? a.p50 - base.p50 : NaN);
    out.push("| target | req/s | p50 ms | p99 ms | p50 added vs direct (µs) | added × nginx's | target CPU µs/req | errors |");
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [t, a] of agg) {
      out.push(
        `| ${t} | ${fmt(a.rps)} | ${ms(a.p50)} | ${ms(a.p99)} | ${fmt(added(a))} | ${t === 'direct' ? '–' : fmt(added(a) / added(ng), 2)} | ${fmt(a.usPerReq, 1)} | ${a.errors} |`,
      );
    }
  } else {
    out.push(
      '| target | req/s (median) | min–max | p50 ms | p99 ms | × direct | × nginx | p99 × nginx | target CPU % | CPU µs/req | CPU/req × nginx | backend CPU % | peak RSS MiB (largest process) | procs | TCP opens/run | errors |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [t, a] of agg) {
      out.push(
        `| ${t} | ${fmt(a.rps)} | ${fmt(a.min)}–${fmt(a.max)} | ${ms(a.p50)} | ${ms(a.p99)} | ${base ? fmt(a.rps / base.rps, 2) : '–'} | ${ng ? fmt(a.rps / ng.rps, 2) : '–'} | ${ng ? fmt(a.p99 / ng.p99, 2) : '–'} | ${fmt(a.cpuPct)} | ${fmt(a.usPerReq, 1)} | ${ng ? fmt(a.usPerReq / ng.usPerReq, 2) : '–'} | ${fmt(a.backendPct)} | ${mib(a.hwm)} (${mib(a.hwmMaxProc)}) | ${a.procs} | ${a.opens} | ${a.errors} |`,
      );
    }
  }
  for (const [t, why] of skipped.get(sc) ?? []) out.push(`| ${t} | ${why} |${' |'.repeat(sc === 'c1' ? 6 : 14)}`);
  if (sc === 'hosts') {
    const big = agg.get('meshgate-5k');
    const one = [...agg.entries()].find(([t]) => isMeshgate(t) && t !== 'meshgate-5k');
    if (big && one)
      out.push(
        '',
        `meshgate at ${hostsLabel()} vs 1 host (${one[0]}): **${fmt(big.rps / one[1].rps, 2)}×** req/s, CPU µs/req ${fmt(big.usPerReq, 1)} vs ${fmt(one[1].usPerReq, 1)}`,
      );
  }
  out.push('');
}

function hostsLabel(): string {
  const s = rows.find((r) => r.scenario === 'config' && r.target === 'meshgate-5k')?.summary;
  return s ? `${String(s.hosts)} hosts / ${String(s.virtualServices)} VirtualServices / ${String(s.routes)} routes` : '5,000 hosts';
}

// ---------------------------------------------------------------- push latency
const pushes = rows.filter((r) => r.scenario === 'push' && r.kind);
const pushSkip = skipped.get('push');
if (pushes.length || pushSkip) {
  const cfg = rows.find((r) => r.scenario === 'config' && r.target === 'meshgate-push')?.summary;
  out.push(
    `### push: time from a file change in the config dir to the change being served${cfg ? ` (${String(cfg.virtualServices)} VirtualServices, ${String(cfg.endpoints)} endpoints)` : ''}`,
    '',
    'route: a VirtualService route moves to a new prefix (new RDS); eds-remove / eds-add: an EndpointSlice flips its only endpoint to not ready / ready (EDS only). Polled every 5 ms on new connections.',
    '',
    '| change | pushes | served | median ms | min ms | max ms | timed out (last status) |',
    '|---|---:|---:|---:|---:|---:|---|',
  );
  for (const kind of [...new Set(pushes.map((r) => r.kind as string))]) {
    const ps = pushes.filter((r) => r.kind === kind);
    const lat = ps.filter((r) => r.ok).map((r) => r.latency_ms as number);
    const bad = ps.filter((r) => !r.ok);
    out.push(
      `| ${kind} | ${ps.length} | ${lat.length} | ${fmt(median(lat), 1)} | ${fmt(Math.min(...lat), 1)} | ${fmt(Math.max(...lat), 1)} | ${bad.length ? `${bad.length} after ${bad[0]?.timeout_ms} ms (${bad.map((r) => r.last_status).join(', ')})` : '0'} |`,
    );
  }
  for (const [t, why] of pushSkip ?? []) out.push(`| (${t}) | ${why} | | | | | |`);
  out.push('');
}

// ---------------------------------------------------------------- memory and start-up
const mem = rows.filter((r) => r.scenario === 'memory');
if (mem.length) {
  out.push(
    "### memory: RSS of each target's process tree (MiB; in parentheses its largest process)",
    '',
    'idle: after start-up, before any load; peak under load: the largest VmHWM over the measured runs (reset before each run); start-up: from launch to the first `ok` through the proxy.',
    '',
    '| target | idle | peak under load | processes | start-up ms |',
    '|---|---:|---:|---:|---:|',
  );
  for (const t of [...new Set(mem.map((r) => r.target))]) {
    const idle = mem.find((r) => r.target === t && r.phase === 'idle');
    let peak = 0;
    let peakProc = 0;
    for (const a of aggs.values()) {
      const x = a.get(t);
      if (x && x.hwm > peak) {
        peak = x.hwm;
        peakProc = x.hwmMaxProc;
      }
    }
    const ready = rows.find((r) => r.scenario === 'startup' && r.target === t)?.ready_ms;
    out.push(
      `| ${t} | ${idle ? `${mib(idle.rss_kb ?? NaN)} (${mib(idle.rss_max_proc_kb ?? NaN)})` : '–'} | ${peak ? `${mib(peak)} (${mib(peakProc)})` : '–'} | ${idle?.procs ?? '–'} | ${ready ?? '–'} |`,
    );
  }
  out.push('');
}

// ---------------------------------------------------------------- goals (issue 7)
type Status = { measured: string; verdict: string; context?: string };
const verdict = (ok: boolean): string => (ok ? 'meets' : '**MISSES**');
const notMeasured: Status = { measured: '–', verdict: 'not measured' };
const meshgates = [
  ...new Set(
    rows
      .filter((r) => r.load && isMeshgate(r.target) && !['meshgate-5k', 'meshgate-push', 'meshgate-authz', 'meshgate-jwt', 'meshgate-notel'].includes(r.target))
      .map((r) => r.target),
  ),
];
const ratio = (sc: string, t: string, f: (a: Agg, ng: Agg) => number): number => {
  const a = aggs.get(sc)?.get(t);
  const ng = aggs.get(sc)?.get('nginx');
  return a && ng ? f(a, ng) : NaN;
};
const goal = (x: number, ok: (x: number) => boolean, d = 2, unit = '×'): Status =>
  Number.isFinite(x) ? { measured: `${fmt(x, d)}${unit}`, verdict: verdict(ok(x)) } : notMeasured;
const goals: [string, string, Status][] = [];
for (const t of meshgates.length ? meshgates : ['meshgate']) {
  const workers = /-c(\d+)$/.exec(t)?.[1];
  const w = workers ? Number(workers) : undefined;
  const min = w !== undefined && w >= 2 ? 0.6 : 0.45;
  const who = w !== undefined ? `${t} (${w} worker${w > 1 ? 's' : ''})` : `${t} (its default concurrency; judged by the 1-worker goal)`;
  // The CPU per request ratio is the steadier figure when the machine is shared: given beside the req/s ratios.
  const cpu = (sc: string): string => {
    const x = ratio(sc, t, (a, n) => a.usPerReq / n.usPerReq);
    return Number.isFinite(x) ? `CPU/req ${fmt(x, 2)}× nginx's` : '';
  };
  goals.push([
    `small GET keep-alive, 64 conns: req/s × nginx`,
    `≥ ${min} — ${who}`,
    {
      ...goal(
        ratio('small', t, (a, n) => a.rps / n.rps),
        (x) => x >= min,
      ),
      context: cpu('small'),
    },
  ]);
  goals.push([
    `small: p99 × nginx`,
    `≤ 3 — ${t}`,
    goal(
      ratio('small', t, (a, n) => a.p99 / n.p99),
      (x) => x <= 3,
    ),
  ]);
  const c1 = aggs.get('c1');
  const d = c1?.get('direct');
  goals.push([
    "one connection: added median latency × nginx's",
    `≤ 1.5 — ${t}`,
    goal(
      ratio('c1', t, (a, n) => (d ? (a.p50 - d.p50) / (n.p50 - d.p50) : NaN)),
      (x) => x <= 1.5,
    ),
  ]);
  goals.push([
    `16 KiB responses: req/s × nginx`,
    `≥ 0.5 — ${t}`,
    {
      ...goal(
        ratio('16k', t, (a, n) => a.rps / n.rps),
        (x) => x >= 0.5,
      ),
      context: cpu('16k'),
    },
  ]);
  goals.push([
    `1 MiB uploads: req/s × nginx`,
    `≥ 0.5 — ${t}`,
    {
      ...goal(
        ratio('upload', t, (a, n) => a.rps / n.rps),
        (x) => x >= 0.5,
      ),
      context: cpu('upload'),
    },
  ]);
}
{
  const h = aggs.get('hosts');
  const big = h?.get('meshgate-5k');
  const one = [...(h ?? new Map<string, Agg>()).entries()].find(([t]) => isMeshgate(t) && t !== 'meshgate-5k')?.[1];
  goals.push([
    'lookup at 5,000 hosts: req/s × 1 host',
    '≥ 0.9 (within 10%)',
    { ...goal(big && one ? big.rps / one.rps : NaN, (x) => x >= 0.9), context: big && one ? `CPU/req ${fmt(big.usPerReq / one.usPerReq, 2)}× 1 host's` : '' },
  ]);
  const route = pushes.filter((r) => r.kind === 'route');
  const worst = route.length ? (route.every((r) => r.ok) ? Math.max(...route.map((r) => r.latency_ms as number)) : Infinity) : NaN;
  goals.push([
    'push at 1,000 VirtualServices: change → served (slowest of the route pushes)',
    '< 1000 ms',
    Number.isNaN(worst) ? notMeasured : worst === Infinity ? { measured: 'timed out', verdict: verdict(false) } : goal(worst, (x) => x < 1000, 0, ' ms'),
  ]);
  goals.push(['RSS under load at 5,000 hosts, per worker (largest process)', '< 150 MiB', goal(big ? big.hwmMaxProc / 1024 : NaN, (x) => x < 150, 1, ' MiB')]);
}
{
  // Issue 13: the same config plus one DENY and one ALLOW AuthorizationPolicy, CPU per request against the first
  // meshgate's (the steadier figure on a shared machine), small GETs.
  const small = aggs.get('small');
  const plain = meshgates[0] !== undefined ? small?.get(meshgates[0]) : undefined;
  const costRow = (what: string, target: string, max: number): void => {
    const a = small?.get(target);
    goals.push([
      `${what}: CPU/req × without (small)`,
      `≤ ${fmt(max, 2)} — ${target}`,
      { ...goal(a && plain ? a.usPerReq / plain.usPerReq : NaN, (x) => x <= max), context: a && plain ? `req/s ${fmt(a.rps / plain.rps, 2)}× without` : '' },
    ]);
  };
  costRow('AuthorizationPolicy (1 DENY + 1 ALLOW)', 'meshgate-authz', 1.1);
  // Issue 13: "JWT verification of a cached key at most 2x the cost of a request without it".
  costRow('RequestAuthentication, a valid RS256 token on every request', 'meshgate-jwt', 2);
  // Issue 14: Istio's telemetry at its defaults (istio.stats, tracing at 1 % without a tracer) against the same
  // gateway with both off: the plain meshgate over meshgate-notel, at most 1.10.
  const notel = small?.get('meshgate-notel');
  goals.push([
    "Istio's telemetry at its defaults (istio_* metrics, tracing 1 %): CPU/req × without (small)",
    '≤ 1.10 — meshgate over meshgate-notel',
    {
      ...goal(plain && notel ? plain.usPerReq / notel.usPerReq : NaN, (x) => x <= 1.1),
      context: plain && notel ? `req/s ${fmt(plain.rps / notel.rps, 2)}× without` : '',
    },
  ]);
}
goals.push([
  '≥ 1.5× the undici anchor, ≥ 2.5× @fastify/http-proxy and http-proxy',
  'see bench/README.md',
  { measured: 'with ../shared/bench', verdict: 'not measured here' },
]);
const loadAtStart = Number(/load before start: ([\d.]+)/.exec(machine)?.[1] ?? 0);
out.push('### goals (issue 7): measured in this run', '');
if (loadAtStart > 0.5 * NCPU)
  out.push(
    `**The machine was busy before the run started (load ${loadAtStart} on ${NCPU} CPUs): the req/s ratios are unreliable; CPU/req is steadier. Re-run on a quiet machine.**`,
    '',
  );
out.push('| goal | target | measured | verdict | context |', '|---|---|---:|---|---|');
for (const [g, t, s] of goals) out.push(`| ${g} | ${t} | ${s.measured} | ${s.verdict} | ${s.context ?? ''} |`);
out.push(
  '',
  'Columns: "× direct" / "× nginx" = median req/s ÷ the direct-to-backend ceiling\'s / the nginx proxy\'s in the same scenario; "CPU µs/req" =',
  "utime+stime of the target's whole process tree during the run ÷ requests (for `direct`, the backend itself): the target's own cost per",
  'request, the number least disturbed by wrk sharing the cores and by steal; "peak RSS" = sum of VmHWM over the tree (reset before each run)',
  'and, in parentheses, its largest process; "TCP opens/run" = machine-wide rise of Tcp ActiveOpens (wrk\'s connections plus new upstream',
  'connections: far above the connection count means upstream keep-alive is broken, except in `close`); errors = socket errors, timeouts',
  'and non-2xx/3xx answers. Compare targets within one run only.',
);
process.stdout.write(`${out.join('\n')}\n`);
