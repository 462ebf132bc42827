// A real OpenTelemetry Collector for black-box tests (binary from e2e/otelcol/build.sh, or $OTELCOL): its OTLP
// receiver (gRPC and HTTP) and Zipkin receiver on free ports of a loopback address the test picks, the file
// exporter writing every received span as OTLP JSON lines into a private directory, a bounded lifetime (coreutils
// `timeout` ends it even if the test runner dies); stopped by PID. spans() reads what it received.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPO, eventually, freePort, start, type Proc } from './process.ts';

/** One received span, flattened: ids in hex, its resource's service.name, attributes as strings. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  kind: number;
  service: string;
  attributes: Record<string, string>;
  /** OTLP status code: 0 unset, 2 error. */
  status: number;
  startNs: bigint;
  endNs: bigint;
}

export interface Collector {
  host: string;
  grpcPort: number;
  httpPort: number;
  zipkinPort: number;
  proc: Proc;
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  /** Waits until spans matching `pred` are there (the exporter writes within a second), returns them. */
  waitFor(what: string, pred: (s: ReceivedSpan) => boolean, count?: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  stop(): Promise<void>;
}

/** The collector binary: $OTELCOL, else built (or found in the cache) by e2e/otelcol/build.sh. */
function collectorBinary(): string {
  if (process.env.OTELCOL) return process.env.OTELCOL;
  const out = execFileSync('bash', [join(REPO, 'e2e/otelcol/build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = out.trim().split('\n').at(-1);
  if (!bin) throw new Error('e2e/otelcol/build.sh printed no binary path');
  return bin;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpValue;
}
interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  attributes?: OtlpKeyValue[];
  status?: { code?: number };
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
}
interface OtlpLine {
  resourceSpans?: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

const valueString = (v: OtlpValue | undefined): string =>
  v === undefined ? '' : v.stringValue !== undefined ? v.stringValue : String(v.intValue ?? v.boolValue ?? v.doubleValue ?? '');

function flatten(line: OtlpLine): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of line.resourceSpans ?? []) {
    const service = valueString(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value);
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? []) {
        const attributes: Record<string, string> = {};
        for (const a of s.attributes ?? []) attributes[a.key] = valueString(a.value);
        out.push({
          traceId: s.traceId ?? '',
          spanId: s.spanId ?? '',
          parentSpanId: s.parentSpanId ?? '',
          name: s.name ?? '',
          kind: s.kind ?? 0,
          service,
          attributes,
          status: s.status?.code ?? 0,
          startNs: BigInt(s.startTimeUnixNano ?? 0),
          endNs: BigInt(s.endTimeUnixNano ?? 0),
        });
      }
  }
  return out;
}

/** Starts a collector on `host` (a loopback address); `lifetimeSeconds` bounds it (default 10 minutes). */
/** `prefix`: a command the collector runs under (a pod's network namespace: `ip netns exec NAME`). */
export async function startCollector(host: string, o: { lifetimeSeconds?: number; prefix?: readonly string[] } = {}): Promise<Collector> {
  const bin = collectorBinary();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-otelcol-'));
  const [grpcPort, httpPort, zipkinPort] = [await freePort(), await freePort(), await freePort()];
  const file = join(dir, 'spans.jsonl');
  const config = {
    receivers: {
      otlp: { protocols: { grpc: { endpoint: `${host}:${grpcPort}` }, http: { endpoint: `${host}:${httpPort}` } } },
      zipkin: { endpoint: `${host}:${zipkinPort}` },
    },
    exporters: { file: { path: file, flush_interval: '100ms' } },
    service: {
      pipelines: { traces: { receivers: ['otlp', 'zipkin'], exporters: ['file'] } },
      // No internal metrics server (it would bind a fixed port) and only warnings in the log.
      telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } },
    },
  };
  writeFileSync(join(dir, 'config.yaml'), stringify(config));
  const command = ['timeout', '--signal=TERM', '--kill-after=5', String(o.lifetimeSeconds ?? 600), bin, `--config=${join(dir, 'config.yaml')}`];
  const [exe, ...args] = [...(o.prefix ?? []), ...command] as [string, ...string[]];
  const proc = start(exe, args, { cwd: dir });
  const stop = async (): Promise<void> => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const listening = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
  try {
    await eventually(
      'the collector to listen',
      async () => ((await listening(grpcPort)) && (await listening(httpPort)) && (await listening(zipkinPort)) ? true : undefined),
      30_000,
      100,
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${proc.output()}`, { cause: e });
  }
  const spans = (): ReceivedSpan[] =>
    (existsSync(file) ? readFileSync(file, 'utf8') : '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => flatten(JSON.parse(l) as OtlpLine));
  return {
    host,
    grpcPort,
    httpPort,
    zipkinPort,
    proc,
    spans,
    waitFor: (what, pred, count = 1, timeoutMs = 20_000) =>
      eventually(
        what,
        async () => {
          const found = spans().filter(pred);
          return Promise.resolve(found.length >= count ? found : undefined);
        },
        timeoutMs,
        100,
      ),
    stop,
  };
}
