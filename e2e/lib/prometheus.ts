// A real Prometheus for black-box tests (binary from e2e/prometheus/build.sh, or $PROMETHEUS): started on a
// free loopback port with a scrape config the test writes (static targets, or Istio's kubernetes_sd pod
// job), a one-second scrape interval, a private TSDB directory, and a bounded lifetime (coreutils `timeout`
// ends it even if the test runner dies); stopped by PID. Queries go through its HTTP API (/api/v1/query),
// so an assertion reads what a Grafana panel would.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPO, eventually, freePort, start, type Proc } from './process.ts';

/** One element of an instant vector: the series' labels (with __name__) and its value. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface Prometheus {
  /** Its HTTP API and web port on 127.0.0.1. */
  port: number;
  proc: Proc;
  /** An instant query at the current time. */
  query(promql: string): Promise<Sample[]>;
  /** The one value of a query answering one series (0 when it answers none: a counter never incremented is absent). */
  value(promql: string): Promise<number>;
  /**
   * Waits until every target of `job` has been scraped successfully (up == 1) at least once after `sinceMs`
   * (a Date.now() taken after the traffic under test ended), so the counters read next include all of it.
   */
  scrapedSince(job: string, sinceMs: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A scrape job for the `scrape_configs` list, as Prometheus' YAML has it. */
export type ScrapeConfig = Record<string, unknown>;

/** A job scraping fixed `host:port` targets at `path` (Istio's envoy-stats job reads /stats/prometheus). */
export function staticJob(job: string, targets: string[], path = '/stats/prometheus', labels: Record<string, string> = {}): ScrapeConfig {
  return { job_name: job, metrics_path: path, static_configs: [{ targets, labels }] };
}

/**
 * Istio's annotation-driven pod job (the `kubernetes-pods` job of Istio's samples/addons/prometheus.yaml, from
 * the Prometheus community chart): pods annotated prometheus.io/scrape=true are scraped on
 * podIP:<prometheus.io/port> at <prometheus.io/path>, with the pod's labels, namespace and name as labels.
 * Pods are discovered through the API server named by `kubeconfig`, in `namespaces`.
 */
export function kubernetesPodsJob(job: string, kubeconfig: string, namespaces: string[]): ScrapeConfig {
  return {
    job_name: job,
    honor_labels: true,
    kubernetes_sd_configs: [{ role: 'pod', kubeconfig_file: kubeconfig, namespaces: { names: namespaces } }],
    relabel_configs: [
      { action: 'keep', regex: 'true', source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'] },
      { action: 'drop', regex: 'true', source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape_slow'] },
      { action: 'replace', regex: '(https?)', source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scheme'], target_label: '__scheme__' },
      { action: 'replace', regex: '(.+)', source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_path'], target_label: '__metrics_path__' },
      {
        action: 'replace',
        regex: '(\\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})',
        replacement: '[$2]:$1',
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_port', '__meta_kubernetes_pod_ip'],
        target_label: '__address__',
      },
      {
        action: 'replace',
        regex: '(\\d+);((([0-9]+?)(\\.|$)){4})',
        replacement: '$2:$1',
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_port', '__meta_kubernetes_pod_ip'],
        target_label: '__address__',
      },
      { action: 'labelmap', regex: '__meta_kubernetes_pod_annotation_prometheus_io_param_(.+)', replacement: '__param_$1' },
      { action: 'labelmap', regex: '__meta_kubernetes_pod_label_(.+)' },
      { action: 'replace', source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { action: 'replace', source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { action: 'drop', regex: 'Pending|Succeeded|Failed|Completed', source_labels: ['__meta_kubernetes_pod_phase'] },
      { action: 'replace', source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'node' },
    ],
  };
}

/** The Prometheus binary: $PROMETHEUS, else built (or found in the cache) by e2e/prometheus/build.sh. */
function prometheusBinary(): string {
  if (process.env.PROMETHEUS) return process.env.PROMETHEUS;
  const out = execFileSync('bash', [join(REPO, 'e2e/prometheus/build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = out.trim().split('\n').at(-1);
  if (!bin) throw new Error('e2e/prometheus/build.sh printed no binary path');
  return bin;
}

const SCRAPE_INTERVAL = '1s';

/**
 * Starts Prometheus scraping `scrapeConfigs` every second. `lifetimeSeconds` bounds the process whatever
 * happens to the test (default 10 minutes); `files` are written into its working directory first (a
 * kubeconfig or CA for kubernetes_sd), and `{dir}` in the scrape configs' strings is replaced by that directory.
 */
export async function startPrometheus(o: { scrapeConfigs: ScrapeConfig[]; lifetimeSeconds?: number; files?: Record<string, string> }): Promise<Prometheus> {
  const bin = prometheusBinary();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-prometheus-'));
  for (const [name, text] of Object.entries(o.files ?? {})) writeFileSync(join(dir, name), text);
  const config = {
    global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL },
    scrape_configs: o.scrapeConfigs,
  };
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config).replaceAll('{dir}', dir));
  const port = await freePort();
  const proc = start(
    'timeout',
    [
      '--signal=TERM',
      '--kill-after=5',
      String(o.lifetimeSeconds ?? 600),
      bin,
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { cwd: dir },
  );
  const api = async (path: string): Promise<unknown> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { status: string; data?: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${res.status} ${body.error ?? JSON.stringify(body)}`);
    return body.data;
  };
  const query = async (promql: string): Promise<Sample[]> => {
    const data = (await api(`/api/v1/query?query=${encodeURIComponent(promql)}`)) as {
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    };
    if (data.resultType !== 'vector') throw new Error(`${promql}: a ${data.resultType}, not an instant vector`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };
  const stop = async (): Promise<void> => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(
      'Prometheus to be ready',
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        return res.ok ? true : undefined;
      },
      30_000,
      100,
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${proc.output()}`, { cause: e });
  }
  return {
    port,
    proc,
    query,
    async value(promql) {
      const r = await query(promql);
      if (r.length > 1) throw new Error(`${promql}: ${r.length} series, expected one:\n${JSON.stringify(r)}`);
      return r[0]?.value ?? 0;
    },
    async scrapedSince(job, sinceMs, timeoutMs = 30_000) {
      // The sample timestamp of `up` is the scrape's start, so a scrape that began after sinceMs saw all of it.
      await eventually(
        `every target of job ${job} scraped after ${new Date(sinceMs).toISOString()}`,
        async () => {
          const ups = await query(`up{job=${JSON.stringify(job)}}`);
          const times = await query(`timestamp(up{job=${JSON.stringify(job)}})`);
          if (ups.length === 0 || ups.some((u) => u.value !== 1)) {
            // The targets API says why: each target's health and last scrape error.
            const targets = (await api('/api/v1/targets?state=active')) as {
              activeTargets: { scrapePool: string; scrapeUrl: string; health: string; lastError: string }[];
            };
            const mine = targets.activeTargets.filter((t) => t.scrapePool === job).map((t) => `${t.scrapeUrl} ${t.health} ${t.lastError}`);
            throw new Error(`targets of ${job}: ${mine.length ? mine.join('; ') : 'none discovered'}`);
          }
          return times.every((t) => t.value * 1000 > sinceMs) ? true : undefined;
        },
        timeoutMs,
        200,
      );
    },
    stop,
  };
}

/** Samples as `{label="value",...} value` lines, sorted, for assertion messages. */
export function formatSamples(samples: Sample[]): string {
  return samples
    .map(
      (s) =>
        `${s.metric.__name__ ?? ''}{${Object.entries(s.metric)
          .filter(([k]) => k !== '__name__')
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(',')}} ${s.value}`,
    )
    .sort()
    .join('\n');
}
