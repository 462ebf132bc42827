// Renders the stats store as Envoy's admin does (source/server/admin/stats_render.cc, prometheus_stats.cc):
// `/stats` text (`name: value` sorted, then histograms), `?format=json`, and Prometheus exposition (`envoy_`
// prefix, Istio's bootstrap tag extraction rules, histograms as `_bucket`/`_sum`/`_count`).
import type { Re2 } from '../../xds/re2.ts';
import { DEFAULT_BUCKETS, SUPPORTED_QUANTILES, fmtG, fmtShortest, type HistogramStatistics } from './histogram.ts';
import { COUNTER, HISTOGRAM, type HistogramSample, type StatSample } from './store.ts';

/** The admin's `histogram_buckets=`: quantiles (summary, the default) or bucket counts. */
export type HistogramBucketsMode = 'summary' | 'cumulative' | 'disjoint';

export interface StatsQuery {
  /** Admin's `filter=`: an RE2 pattern, partially matched against the stat name (RE2::PartialMatch). */
  filter?: Pick<Re2, 'partialMatch'>;
  usedOnly?: boolean;
  histogramBuckets?: HistogramBucketsMode;
}

export function selectStats(samples: StatSample[], q: StatsQuery): StatSample[] {
  return samples.filter((s) => (!q.usedOnly || s.used) && (!q.filter || q.filter.partialMatch(s.name)));
}

const PERCENT_LABELS = SUPPORTED_QUANTILES.map((q) => fmtG(100 * q, 6));
const BUCKET_LABELS = DEFAULT_BUCKETS.map((b) => fmtG(b, 6));
const NO_VALUES = 'No recorded values';

function disjoint(buckets: number[]): number[] {
  return buckets.map((n, i) => n - (i > 0 ? (buckets[i - 1] ?? 0) : 0));
}

/** ParentHistogramImpl::quantileSummary / bucketSummary and StatsTextRender's disjoint form: `(interval,cumulative)`. */
function histogramText(s: StatSample, mode: HistogramBucketsMode): string {
  const h = s.histogram;
  if (!s.used || !h) return NO_VALUES;
  if (mode === 'summary')
    return PERCENT_LABELS.map((p, i) => `P${p}(${fmtShortest(h.interval.quantiles[i] ?? NaN)},${fmtShortest(h.cumulative.quantiles[i] ?? NaN)})`).join(' ');
  const iv = mode === 'disjoint' ? disjoint(h.interval.buckets) : h.interval.buckets;
  const cu = mode === 'disjoint' ? disjoint(h.cumulative.buckets) : h.cumulative.buckets;
  return BUCKET_LABELS.map((b, i) => `B${b}(${iv[i] ?? 0},${cu[i] ?? 0})`).join(' ');
}

/** `name: value` lines, as Envoy's /stats prints counters and gauges, then the histograms. */
export function renderText(samples: StatSample[], mode: HistogramBucketsMode = 'summary'): string {
  let out = '';
  for (const s of samples) if (s.kind !== HISTOGRAM) out += `${s.name}: ${s.value}\n`;
  for (const s of samples) if (s.kind === HISTOGRAM) out += `${s.name}: ${histogramText(s, mode)}\n`;
  return out;
}

/** StatsJsonRender: one compact document, counters and gauges, then one entry holding every histogram. */
export function renderJson(samples: StatSample[], mode: HistogramBucketsMode = 'summary'): string {
  const stats: unknown[] = [];
  const histograms: StatSample[] = [];
  for (const s of samples) {
    if (s.kind === HISTOGRAM) histograms.push(s);
    else stats.push({ name: s.name, value: s.value });
  }
  if (histograms.length > 0) {
    const sample = (s: StatSample): HistogramSample => s.histogram ?? { interval: EMPTY, cumulative: EMPTY };
    if (mode === 'summary') {
      const computed = histograms.map((s) => {
        const h = sample(s);
        return { name: s.name, values: SUPPORTED_QUANTILES.map((_, i) => ({ cumulative: h.cumulative.quantiles[i], interval: h.interval.quantiles[i] })) };
      });
      stats.push({ histograms: { supported_quantiles: SUPPORTED_QUANTILES.map((q) => Number(fmtG(100 * q, 6))), computed_quantiles: computed } });
    } else {
      const list = histograms.map((s) => {
        const h = sample(s);
        const iv = mode === 'disjoint' ? disjoint(h.interval.buckets) : h.interval.buckets;
        const cu = mode === 'disjoint' ? disjoint(h.cumulative.buckets) : h.cumulative.buckets;
        return { name: s.name, buckets: DEFAULT_BUCKETS.map((b, i) => ({ upper_bound: b, interval: iv[i], cumulative: cu[i] })) };
      });
      stats.push({ histograms: list });
    }
  }
  // NaN (an empty interval) is JSON's null, as Envoy's Json::Streamer writes it.
  return JSON.stringify({ stats });
}

const EMPTY: HistogramStatistics = { quantiles: SUPPORTED_QUANTILES.map(() => NaN), buckets: DEFAULT_BUCKETS.map(() => 0), count: 0, sum: 0 };

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
  // Istio 1.23+ (stat prefix `<prefix>;`): `^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)`.
  { tag: 'http_conn_manager_prefix', re: /^http\.(((?:[_.0-9\w]*|[_[\]a-fA-F0-9\w:]*));\.)/, suffix: false },
  // Older bootstraps' rule, for prefixes without the delimiter (an address-like prefix).
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
    if (tags.some(([t]) => t === rule.tag)) continue;
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

/**
 * Istio's stats filter registers its stats under this custom stat namespace: Prometheus shows them without it and
 * without the `envoy_` prefix (`istio_requests_total`).
 */
export const ISTIO_CUSTOM_NAMESPACE = 'istiocustom.';

function prometheusName(name: string): string {
  const custom = name.startsWith(ISTIO_CUSTOM_NAMESPACE);
  let out = (custom ? '' : 'envoy_') + (custom ? name.slice(ISTIO_CUSTOM_NAMESPACE.length) : name).replace(/[^a-zA-Z0-9_]/g, '_');
  if (/^[0-9]/.test(out)) out = '_' + out;
  return out;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * A histogram's series (PrometheusStatsFormatter's generateHistogram): cumulative bucket counts with `le` in
 * `%.32g`, `+Inf`, then `_sum` (`%.32g`) and `_count`, from the cumulative statistics.
 */
function histogramLines(metric: string, tags: string, h: HistogramStatistics): string {
  const le = tags ? `${tags},` : '';
  let out = '';
  for (const [i, b] of DEFAULT_BUCKETS.entries()) out += `${metric}_bucket{${le}le="${fmtG(b, 32)}"} ${h.buckets[i] ?? 0}\n`;
  out += `${metric}_bucket{${le}le="+Inf"} ${h.count}\n`;
  out += `${metric}_sum{${tags}} ${fmtG(h.sum, 32)}\n`;
  out += `${metric}_count{${tags}} ${h.count}`;
  return out;
}

/**
 * `histogram_buckets=summary`: a Prometheus summary from the last flush interval (generateSummary): each
 * quantile with `quantile="<q>"`, then `_sum` and `_count`, values in `%.32g` (`nan` for an empty interval).
 */
function summaryLines(metric: string, tags: string, h: HistogramStatistics): string {
  const q = tags ? `${tags},` : '';
  let out = '';
  for (const [i, quantile] of SUPPORTED_QUANTILES.entries()) out += `${metric}{${q}quantile="${String(quantile)}"} ${fmtG(h.quantiles[i] ?? NaN, 32)}\n`;
  out += `${metric}_sum{${tags}} ${fmtG(h.sum, 32)}\n`;
  out += `${metric}_count{${tags}} ${h.count}`;
  return out;
}

/**
 * Prometheus text exposition 0.0.4: counters, gauges, then histograms, each grouped by metric name and sorted.
 * Histograms are Prometheus histograms, or summaries with `histogram_buckets=summary`.
 */
export function renderPrometheus(samples: StatSample[], mode?: HistogramBucketsMode): string {
  const summary = mode === 'summary';
  const groups = [new Map<string, string[]>(), new Map<string, string[]>(), new Map<string, string[]>()];
  for (const s of samples) {
    const t = s.tags ?? extractTags(s.name);
    const metric = prometheusName(t.name);
    const tags = t.tags.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
    const g = groups[s.kind === COUNTER ? 0 : s.kind === HISTOGRAM ? 2 : 1] as Map<string, string[]>;
    let lines = g.get(metric);
    if (!lines) g.set(metric, (lines = []));
    if (s.kind === HISTOGRAM)
      lines.push(summary ? summaryLines(metric, tags, s.histogram?.interval ?? EMPTY) : histogramLines(metric, tags, s.histogram?.cumulative ?? EMPTY));
    // `{}` even without tags: Envoy's generateNumericOutput always writes the braces.
    else lines.push(`${metric}{${tags}} ${s.value}`);
  }
  let out = '';
  for (const [i, g] of groups.entries()) {
    const type = i === 0 ? 'counter' : i === 1 ? 'gauge' : summary ? 'summary' : 'histogram';
    for (const metric of [...g.keys()].sort()) {
      const lines = (g.get(metric) ?? []).sort();
      out += `# TYPE ${metric} ${type}\n${lines.join('\n')}\n`;
    }
  }
  return out;
}
