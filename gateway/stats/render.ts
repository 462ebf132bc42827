// Renders the stats store as Envoy's admin does: `/stats` text (`name: value`, sorted), `?format=json`,
// and Prometheus exposition (`envoy_` prefix, Istio's bootstrap tag extraction rules).
import type { Re2 } from '../../xds/re2.ts';
import { COUNTER, type StatSample } from './store.ts';

export interface StatsQuery {
  /** Admin's `filter=`: an RE2 pattern, partially matched against the stat name (RE2::PartialMatch). */
  filter?: Pick<Re2, 'partialMatch'>;
  usedOnly?: boolean;
}

export function selectStats(samples: StatSample[], q: StatsQuery): StatSample[] {
  return samples.filter((s) => (!q.usedOnly || s.used) && (!q.filter || q.filter.partialMatch(s.name)));
}

/** `name: value` lines, as Envoy's /stats prints counters and gauges. */
export function renderText(samples: StatSample[]): string {
  let out = '';
  for (const s of samples) out += `${s.name}: ${s.value}\n`;
  return out;
}

export function renderJson(samples: StatSample[]): string {
  return JSON.stringify({ stats: samples.map((s) => ({ name: s.name, value: s.value })) }, null, 2) + '\n';
}

/**
 * Istio's bootstrap `stats_tags` (tools/packaging/common/envoy_bootstrap.json) in JS syntax, applied the way
 * Envoy's tag extractors are: match the full stat name; the tag value is the second capture group (or the
 * first when there is only one) and the first capture group is cut out of the name.
 */
const DIGITS_OR_HEX = '(?:[_.0-9]*|[_\\[\\]aAbBcCdDeEfF0-9]*)';
interface TagRule {
  tag: string;
  re: RegExp;
  /** Tags extracted from the end of the name are listed first, as Envoy emits them. */
  suffix: boolean;
}
const TAG_RULES: TagRule[] = [
  { tag: 'response_code', re: /_rq(_(\d{3}))$/, suffix: true },
  { tag: 'response_code_class', re: /_rq(_(\dxx))$/, suffix: true },
  { tag: 'cluster_name', re: /^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)/, suffix: false },
  { tag: 'tcp_prefix', re: /^tcp\.((.*?)\.)\w+?$/, suffix: false },
  { tag: 'http_conn_manager_listener_prefix', re: new RegExp(`^listener(?=\\.).*?\\.http\\.((${DIGITS_OR_HEX})\\.)`), suffix: false },
  { tag: 'http_conn_manager_prefix', re: new RegExp(`^http\\.((${DIGITS_OR_HEX})\\.)`), suffix: false },
  { tag: 'listener_address', re: new RegExp(`^listener\\.((${DIGITS_OR_HEX})\\.)`), suffix: false },
];

export interface TaggedName {
  name: string;
  tags: [string, string][];
}

/** Splits an Envoy stat name into its tag-extracted name and tags (Istio's rules). */
export function extractTags(statName: string): TaggedName {
  const cuts: [number, number][] = [];
  const tags: [string, string][] = [];
  for (const rule of TAG_RULES) {
    // Istio 1.23+ names clusters with alt_stat_name `<name>;` and HCMs with stat prefix `<prefix>;`: the
    // `;` delimits the value unambiguously (cluster names contain dots), and is not part of the tag value.
    if (rule.tag === 'cluster_name' && statName.startsWith('cluster.')) {
      const semi = statName.indexOf(';.', 8);
      if (semi > 0) {
        tags.push(['cluster_name', statName.slice(8, semi)]);
        cuts.push([8, semi + 2]);
        continue;
      }
    }
    const m = rule.re.exec(statName);
    if (!m || m[1] === undefined) continue;
    const value = m[2] ?? m[1];
    const start = m.index + m[0].indexOf(m[1]);
    cuts.push([start, start + m[1].length]);
    tags.push([rule.tag, value]);
  }
  if (cuts.length === 0) return { name: statName, tags };
  cuts.sort((a, b) => a[0] - b[0]);
  let name = '';
  let at = 0;
  for (const [s, e] of cuts) {
    if (s > at) name += statName.slice(at, s);
    at = Math.max(at, e);
  }
  name += statName.slice(at);
  // Order: tags found at the end of the name (response codes) first, then prefix tags.
  const suffixTags = new Set(TAG_RULES.filter((r) => r.suffix).map((r) => r.tag));
  tags.sort((a, b) => Number(suffixTags.has(b[0])) - Number(suffixTags.has(a[0])));
  return { name, tags };
}

function prometheusName(name: string): string {
  let out = 'envoy_' + name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (/^[0-9]/.test(out)) out = '_' + out;
  return out;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Prometheus text exposition 0.0.4: counters then gauges, each grouped by metric name and sorted. */
export function renderPrometheus(samples: StatSample[]): string {
  const groups = [new Map<string, string[]>(), new Map<string, string[]>()];
  for (const s of samples) {
    const t = extractTags(s.name);
    const metric = prometheusName(t.name);
    const labels = t.tags.length ? `{${t.tags.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
    const g = groups[s.kind === COUNTER ? 0 : 1] as Map<string, string[]>;
    let lines = g.get(metric);
    if (!lines) g.set(metric, (lines = []));
    lines.push(`${metric}${labels} ${s.value}`);
  }
  let out = '';
  for (const [i, g] of groups.entries()) {
    const type = i === 0 ? 'counter' : 'gauge';
    for (const metric of [...g.keys()].sort()) {
      const lines = (g.get(metric) ?? []).sort();
      out += `# TYPE ${metric} ${type}\n${lines.join('\n')}\n`;
    }
  }
  return out;
}
