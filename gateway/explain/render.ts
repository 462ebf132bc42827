// explain's human output: one short line per step of the request's way through the gateway.
import type { IstioRef } from './describe.ts';
import type { ClusterExplanation, Explanation, RouteActionExplanation } from './explain.ts';

function ref(r: IstioRef | undefined): string {
  if (!r) return '';
  return ` (from ${r.kind} ${r.namespace}/${r.name}${r.file ? `, ${r.file}` : ''})`;
}

const UNLIMITED = 4294967295;

const pct = (n: number): string => `${Math.round(n * 100) / 100}%`;

function actionLines(a: RouteActionExplanation): string[] {
  if (a.kind === 'redirect') return [`  action:        redirect ${a.status ?? 301} to ${a.location ?? ''}`];
  if (a.kind === 'direct_response') return [`  action:        direct response ${a.status ?? 0}${a.body ? ` '${a.body}'` : ''}`];
  const out: string[] = [];
  const extra: string[] = [];
  if (a.prefixRewrite !== undefined) extra.push(`prefix rewritten to ${a.prefixRewrite}`);
  if (a.regexRewrite !== undefined) extra.push(`path rewritten by ${a.regexRewrite}`);
  if (a.hostRewrite !== undefined) extra.push(`host rewritten to ${a.hostRewrite}`);
  out.push(`  action:        route${extra.length ? `, ${extra.join(', ')}` : ''}`);
  const policy = [`timeout ${a.timeoutMs === 0 ? 'none' : `${(a.timeoutMs ?? 0) / 1000}s`}`];
  if (a.retries)
    policy.push(
      `${a.retries.numRetries} retries on ${a.retries.retryOn || '(no condition)'}${a.retries.perTryTimeoutMs ? `, ${a.retries.perTryTimeoutMs / 1000}s per try` : ''}`,
    );
  else policy.push('no retries');
  out.push(`  policy:        ${policy.join('; ')}`);
  if (a.fault) {
    const f: string[] = [];
    if (a.fault.delayMs > 0) f.push(`delay ${a.fault.delayMs / 1000}s for ${pct(a.fault.delayPercent)}`);
    if (a.fault.abortStatus > 0) f.push(`abort ${a.fault.abortStatus} for ${pct(a.fault.abortPercent)}`);
    if (f.length) out.push(`  fault:         ${f.join(', ')}`);
  }
  for (const m of a.mirrors ?? []) out.push(`  mirror:        ${pct(m.percent)} to ${m.cluster}`);
  if (a.cors) out.push('  cors:          a CORS policy applies');
  if (a.clusterHeader !== undefined) out.push(`  cluster from:  header ${a.clusterHeader}`);
  return out;
}

function clusterLines(c: ClusterExplanation): string[] {
  const out = [`cluster         ${c.name}${c.percent < 100 ? ` (${pct(c.percent)} of requests)` : ''}${c.found ? ref(c.source) : ' - not found'}`];
  if (!c.found) return out;
  if (c.services.length)
    out.push(
      `  service:       ${c.services.map((s) => `${s.namespace}/${s.name}${s.file ? ` (${s.file})` : ''}`).join(', ')}${c.subset ? `, subset ${c.subset}` : ''}`,
    );
  if (c.endpoints.length === 0) out.push('  endpoints:     none');
  for (const e of c.endpoints) {
    const state = [e.health, ...(e.outlierEjected ? ['ejected by outlier detection'] : []), e.usable ? 'used' : 'not used'];
    out.push(`  endpoint:      ${e.address} ${state.join(', ')}${e.activeRequests ? `, ${e.activeRequests} active requests` : ''}`);
  }
  if (c.panic) out.push('  panic:         no endpoint is healthy, so all are used (healthy_panic_threshold)');
  const cb = c.circuitBreakers;
  if (cb) {
    // istiod's default thresholds are the largest uint32: no limit in practice.
    const n = (v: number | undefined): string => (v === UNLIMITED ? 'unlimited' : String(v));
    const active = cb.activeRequests !== undefined ? ` (${cb.activeRequests} active)` : '';
    out.push(
      `  limits:        max_connections ${n(cb.maxConnections)}, max_pending_requests ${n(cb.maxPendingRequests)}, max_requests ${n(cb.maxRequests)}${active}, max_retries ${n(cb.maxRetries)}`,
    );
  }
  const od = c.outlierDetection;
  if (od) {
    const parts = [
      od.consecutive5xx !== undefined ? `${od.consecutive5xx} consecutive 5xx` : 'on',
      ...(od.baseEjectionTime ? [`eject ${od.baseEjectionTime}`] : []),
    ];
    out.push(`  outlier:       ${parts.join(', ')}${od.ejected !== undefined ? `; ${od.ejected} ejected now` : ''}`);
  }
  return out;
}

export function renderExplanation(x: Explanation): string {
  const r = x.request;
  const lines = [
    `request         ${r.method} ${r.tls ? 'https' : 'http'}://${r.host}${r.path} on port ${r.port}${r.sni !== undefined ? `, SNI ${r.sni}` : ''}`,
  ];
  if (x.listener) lines.push(`listener        ${x.listener.name}${x.listener.gatewayPort !== undefined ? ` (Gateway port ${x.listener.gatewayPort})` : ''}`);
  if (x.filterChain) {
    const f = x.filterChain;
    const names = f.serverNames.length ? `SNI ${f.serverNames.join(', ')}` : 'any SNI';
    lines.push(
      `filter chain    #${f.index} (${names}, ${f.tls ? 'TLS terminated' : f.transportProtocol === 'tls' ? 'TLS passed through' : 'plaintext'}) -> ${f.filter}`,
    );
  }
  if (x.routeConfiguration !== undefined && x.filterChain?.filter === 'http_connection_manager') lines.push(`routes          ${x.routeConfiguration}`);
  for (const p of x.policies ?? []) {
    const by = p.source
      ? ` by ${p.source.kind} ${p.source.namespace}/${p.source.name}${p.source.file ? ` (${p.source.file})` : ''}`
      : p.policy
        ? ` by ${p.policy}`
        : '';
    lines.push(
      `filter          ${p.filter}${p.filter === 'rbac' ? ` (${p.note ?? ''})` : ''}: ${p.result}${p.result === 'not evaluated' ? ` (${p.note ?? ''})` : by}`,
    );
  }
  if (x.virtualHost) lines.push(`virtual host    ${x.virtualHost.name} (domain ${x.virtualHost.matchedDomain})`);
  for (const s of x.skippedRoutes) lines.push(`  route #${s.index}${s.name ? ` ${s.name}` : ''}: no match${ref(s.source)}: ${s.reason}`);
  if (x.route) {
    lines.push(`route           #${x.route.index}${x.route.name ? ` ${x.route.name}` : ''}: ${x.route.match}${ref(x.route.source)}`);
    lines.push(...actionLines(x.route.action));
  }
  for (const c of x.clusters) lines.push(...clusterLines(c));
  const answer =
    x.outcome === 'forwarded'
      ? 'forwarded upstream'
      : x.status !== undefined
        ? `${x.status}${x.details && x.details !== 'direct_response' ? ` ${x.details}` : ''}`
        : 'connection not served';
  lines.push(`result          ${answer}${x.why ? `: ${x.why}` : ''}`);
  return lines.join('\n') + '\n';
}
