// Istio's stats inclusion list: the bootstrap's `stats_config.stats_matcher.inclusion_list` that pilot-agent writes
// (tools/packaging/common/envoy_bootstrap.json, filled by pkg/bootstrap/config.go getStatsOptions). Envoy creates
// only the stats it matches, so a default Istio gateway exports server.*, cluster_manager.*, listener_manager.*,
// cluster.xds-grpc.*, the RBAC decisions and Istio's own metrics, and no cluster.<name>.upstream_rq_* nor
// http.<prefix>.downstream_rq_*. meshgate applies it to the Prometheus exposition (15090, relayed on 15020); the admin
// API keeps every stat (docs/observability.md, "Which stats are exported").
//
// Each of the three kinds of pattern comes from the pod annotation sidecar.istio.io/statsInclusion{Prefixes,Suffixes,
// Regexps} when it is set (comma-separated), else from ProxyConfig.proxyStatsMatcher (mesh defaultConfig, or the
// pod's proxy.istio.io/config), then Istio's required ones are appended; `{pod_ip}` in any of them becomes one
// pattern per pod IP. The patterns are Envoy StringMatchers on the stat's full name: prefix, suffix, or safe_regex (an
// RE2 full match). Envoy refuses a bootstrap with an empty prefix or suffix (min_len 1) or an invalid regex, and
// then does not start: compileStatsMatcher reports them.
import type { envoy } from '../../xds/envoy.ts';
import { compileRe2, isRe2Error, type Re2 } from '../../xds/re2.ts';

/** ProxyConfig.ProxyStatsMatcher (istio.io/api mesh/v1alpha1 proxy.proto). */
interface ProxyStatsMatcher {
  inclusionPrefixes?: readonly string[];
  inclusionSuffixes?: readonly string[];
  inclusionRegexps?: readonly string[];
}

const STATS_INCLUSION_PREFIXES_ANNOTATION = 'sidecar.istio.io/statsInclusionPrefixes';
const STATS_INCLUSION_SUFFIXES_ANNOTATION = 'sidecar.istio.io/statsInclusionSuffixes';
const STATS_INCLUSION_REGEXPS_ANNOTATION = 'sidecar.istio.io/statsInclusionRegexps';

// pkg/bootstrap/config.go: "required stats are used by readiness checks", the RBAC filter's decisions, and the
// stats of VirtualService routes with a stat_prefix. downstream_cx_active joins the suffixes only with
// EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true (off by default), which meshgate does not implement.
const REQUIRED_PREFIXES = ['cluster_manager', 'listener_manager', 'server', 'cluster.xds-grpc', 'wasm'];
const REQUIRED_SUFFIXES = ['rbac.allowed', 'rbac.denied', 'shadow_allowed', 'shadow_denied'];
const REQUIRED_REGEXPS = ['vhost\\..*\\.route\\..*'];

/** One StringMatcher of Envoy's inclusion_list. */
export type StatsPattern = { prefix: string } | { suffix: string } | { safeRegex: string };

export interface IstioStatsInclusionInput {
  /** The gateway's ProxyConfig.proxyStatsMatcher (mesh defaultConfig with proxy.istio.io/config applied). */
  proxyStatsMatcher?: ProxyStatsMatcher | undefined;
  /** The pod's annotations (the sidecar.istio.io/statsInclusion* ones are read). */
  annotations?: Readonly<Record<string, string>> | undefined;
  /** The pod's IPs (INSTANCE_IPS), for `{pod_ip}`. */
  podIps?: readonly string[] | undefined;
}

/** parseOption: the annotation if set, else the proxy config's list; then the required ones; `{pod_ip}` expanded. */
function option(
  annotation: string | undefined,
  fromProxyConfig: readonly string[] | undefined,
  required: readonly string[],
  podIps: readonly string[],
): string[] {
  const given = annotation ? annotation.split(',') : (fromProxyConfig ?? []);
  const out: string[] = [];
  for (const p of [...given, ...required]) {
    // substituteValues: without pod IPs a pattern naming {pod_ip} is dropped.
    if (!p.includes('{pod_ip}')) out.push(p);
    else for (const ip of podIps) out.push(p.replaceAll('{pod_ip}', ip));
  }
  return out;
}

/** The inclusion_list patterns in the bootstrap template's order (a gateway: no workload_discovery prefix). */
export function istioStatsInclusion(i: IstioStatsInclusionInput): StatsPattern[] {
  const a = i.annotations ?? {};
  const m = i.proxyStatsMatcher;
  const ips = i.podIps ?? [];
  return [
    { prefix: 'reporter=' },
    ...option(a[STATS_INCLUSION_PREFIXES_ANNOTATION], m?.inclusionPrefixes, REQUIRED_PREFIXES, ips).map((prefix) => ({ prefix })),
    ...option(a[STATS_INCLUSION_SUFFIXES_ANNOTATION], m?.inclusionSuffixes, REQUIRED_SUFFIXES, ips).map((suffix) => ({ suffix })),
    ...option(a[STATS_INCLUSION_REGEXPS_ANNOTATION], m?.inclusionRegexps, REQUIRED_REGEXPS, ips).map((safeRegex) => ({ safeRegex })),
    { prefix: 'component' },
    { prefix: 'istio' },
  ];
}

/** Whether a stat (its full Envoy name) is created, i.e. exported. */
export type StatsMatcher = (statName: string) => boolean;

/** A compiled inclusion list: its patterns (the bootstrap's, for /config_dump) and the predicate. */
export interface StatsInclusion {
  patterns: readonly StatsPattern[];
  matches: StatsMatcher;
}

/** The bootstrap's stats_config.stats_matcher, in Envoy's proto JSON. */
export function envoyStatsMatcher(patterns: readonly StatsPattern[]): envoy.config.metrics.v3.StatsMatcher {
  return {
    inclusion_list: {
      patterns: patterns.map((p) => ('prefix' in p ? { prefix: p.prefix } : 'suffix' in p ? { suffix: p.suffix } : { safe_regex: { regex: p.safeRegex } })),
    },
  };
}

type CompiledStatsMatcher = { ok: true; matches: StatsMatcher } | { ok: false; error: string };

/** Envoy's StatsMatcherImpl for an inclusion_list: a stat is kept when any pattern matches its name. */
export function compileStatsMatcher(patterns: readonly StatsPattern[]): CompiledStatsMatcher {
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  const regexps: Re2[] = [];
  for (const p of patterns) {
    if ('prefix' in p) {
      if (p.prefix === '') return { ok: false, error: 'an inclusion prefix is empty (Envoy requires at least one character)' };
      prefixes.push(p.prefix);
    } else if ('suffix' in p) {
      if (p.suffix === '') return { ok: false, error: 'an inclusion suffix is empty (Envoy requires at least one character)' };
      suffixes.push(p.suffix);
    } else {
      const re = compileRe2(p.safeRegex);
      if (isRe2Error(re)) return { ok: false, error: `inclusion regexp ${JSON.stringify(p.safeRegex)} is not RE2: ${re.message}` };
      regexps.push(re);
    }
  }
  return {
    ok: true,
    matches: (name) => prefixes.some((p) => name.startsWith(p)) || suffixes.some((s) => name.endsWith(s)) || regexps.some((r) => r.fullMatch(name)),
  };
}

/**
 * Filters stat lists by `matches`, remembering each name's answer until a list no longer holds it, so a scrape runs
 * the regexes only for stats that are new since the previous one.
 */
export function statsFilter(matches: StatsMatcher): <T extends { name: string }>(stats: readonly T[]) => T[] {
  let known = new Map<string, boolean>();
  return (stats) => {
    const next = new Map<string, boolean>();
    const out = stats.filter((s) => {
      const keep = known.get(s.name) ?? matches(s.name);
      next.set(s.name, keep);
      return keep;
    });
    known = next;
    return out;
  };
}
