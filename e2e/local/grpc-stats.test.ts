// gRPC message metrics through `meshgate local`: a real @grpc/grpc-js client makes client-streaming,
// server-streaming, unary and failing calls to a real grpc-js server behind the gateway, and the gateway's
// Prometheus endpoint (/stats/prometheus on its metrics port) must show what Envoy's grpc_stats filter and
// Istio's stats filter report for them: the cluster's `grpc.*` counters (envoy_cluster_grpc_*), and
// istio_request_messages_total / istio_response_messages_total with the reporter and peer labels only. A
// Telemetry sets reportingInterval 1s (tcp_reporting_duration); a stream held open past it shows Istio's
// messages only once it ends (the periodic reports wait for peer metadata a gateway in front of pods without
// sidecars never gets), while the cluster counters grow per message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, echoServer, type Echo } from '../lib/grpc-echo.ts';
import { eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'greeter.example.com';
const BACKEND_IP = '127.0.21.1';
// The Envoy cluster counters are outside Istio's default stats inclusion list: ask for them as a user would.
const PROXY_STATS_MATCHER = '{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound"]}}';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (label values without escapes, as these are). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1] as string] = l[2] as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

describe('local mode: gRPC message metrics (grpc_stats and Istio messages metrics)', () => {
  let gw: Gateway;
  let server: grpc.Server;
  let client: Echo;
  let cluster: string;

  const scrape = async (): Promise<Sample[]> => {
    const r = await get('127.0.0.1', gw.metrics, '/stats/prometheus', 'localhost');
    assert.equal(r.status, 200);
    return parse(r.body.toString());
  };
  /** The value of one series (0 when absent); several matches are an error. */
  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number => {
    const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    assert.ok(hits.length <= 1, `${name}: ${hits.length} series`);
    return hits[0]?.value ?? 0;
  };
  const envoy = (samples: Sample[], stat: string): number => value(samples, `envoy_cluster_grpc_${stat}`, { cluster_name: cluster });
  const istio = (samples: Sample[], metric: 'request' | 'response'): number =>
    value(samples, `istio_${metric}_messages_total`, { destination_service: 'grpc-echo.default.svc.cluster.local' });

  const unary = (body: string) =>
    new Promise<grpc.ServiceError | null>((resolve) => client.unary(Buffer.from(body), new grpc.Metadata(), {}, (err) => resolve(err)));
  const clientStream = (parts: string[]) =>
    new Promise<string>((resolve, reject) => {
      const w = client.sum((e, r) => (e ? reject(e) : resolve(String(r))));
      for (const p of parts) w.write(Buffer.from(p));
      w.end();
    });
  const serverStream = (n: number) =>
    new Promise<number>((resolve, reject) => {
      let got = 0;
      const s = client.count(Buffer.from(String(n)));
      s.on('data', () => got++);
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });

  before(async () => {
    const port = await freePort();
    server = echoServer();
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`${BACKEND_IP}:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
    );
    cluster = `outbound|${port}||grpc-echo.default.svc.cluster.local`;
    gw = await startGateway({ args: ['--proxy-config', PROXY_STATS_MATCHER] });
    gw.write('10-gateway.yaml', gatewayYaml('grpc-gateway', [HOST]));
    // A Service port named grpc: the cluster speaks HTTP/2 upstream.
    gw.write('20-grpc.yaml', serviceYaml('grpc-echo', port, [{ ip: BACKEND_IP }]).replaceAll('{name: http, port:', '{name: grpc, port:'));
    gw.write('30-vs.yaml', virtualServiceYaml('greeter', HOST, 'grpc-gateway', 'grpc-echo'));
    gw.write(
      '40-telemetry.yaml',
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - providers: [{name: prometheus}]
    reportingInterval: 1s
`,
    );
    client = new EchoClient(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': HOST }) as Echo;
    await eventually('the gRPC route', async () => ((await unary('ping')) === null ? true : undefined), 20_000, 200);
    // The Telemetry (reportingInterval) reaches the HCM with its own push: wait for a config that names it.
    await eventually(
      'the Telemetry in the istio.stats config',
      async () => {
        const r = await get('127.0.0.1', gw.admin, '/config_dump', 'localhost');
        return r.body.toString().includes('"tcp_reporting_duration": "1s"') ? true : undefined;
      },
      20_000,
      200,
    );
  });

  after(async () => {
    client?.close();
    await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
    await gw?.stop();
  });

  test('client-streaming, server-streaming, unary and a failing call: the exact message and status counts', async () => {
    const base = await scrape();
    assert.equal(await clientStream(['a', 'b', 'c', 'd']), 'a+b+c+d');
    assert.equal(await serverStream(5), 5);
    assert.equal(await unary('ping'), null);
    // NOT_FOUND before any message: a trailers-only answer (grpc-status in the response headers).
    assert.equal((await unary('fail'))?.code, grpc.status.NOT_FOUND);
    const want = { request: 4 + 1 + 1 + 1, response: 1 + 5 + 1 + 0 };
    const now = await eventually(
      'the messages of the finished calls in Istio metrics',
      async () => {
        const s = await scrape();
        return istio(s, 'request') - istio(base, 'request') === want.request && istio(s, 'response') - istio(base, 'response') === want.response
          ? s
          : undefined;
      },
      10_000,
      100,
    ).catch(async (e: Error) => {
      const s = await scrape();
      throw new Error(`${e.message}: request +${istio(s, 'request') - istio(base, 'request')}, response +${istio(s, 'response') - istio(base, 'response')}`);
    });
    const delta = (stat: string): number => envoy(now, stat) - envoy(base, stat);
    assert.deepEqual(
      {
        request_message_count: delta('request_message_count'),
        response_message_count: delta('response_message_count'),
        '0': delta('0'),
        '5': delta('5'),
        success: delta('success'),
        failure: delta('failure'),
        total: delta('total'),
      },
      { request_message_count: want.request, response_message_count: want.response, '0': 3, '5': 1, success: 3, failure: 1, total: 4 },
    );
    // Istio's labels for the messages metrics: the reporter and the peers, no protocol, code or flags.
    const series = now.find((x) => x.name === 'istio_request_messages_total' && x.labels.destination_service === 'grpc-echo.default.svc.cluster.local');
    assert.ok(series);
    assert.deepEqual(Object.keys(series.labels), [
      'reporter',
      'source_workload',
      'source_canonical_service',
      'source_canonical_revision',
      'source_workload_namespace',
      'source_principal',
      'source_app',
      'source_version',
      'source_cluster',
      'destination_workload',
      'destination_workload_namespace',
      'destination_principal',
      'destination_app',
      'destination_version',
      'destination_service',
      'destination_canonical_service',
      'destination_canonical_revision',
      'destination_service_name',
      'destination_service_namespace',
      'destination_cluster',
    ]);
    assert.equal(series.labels.reporter, 'source');
    assert.equal(series.labels.destination_service_name, 'grpc-echo');
    // The calls themselves are istio_requests_total with request_protocol grpc and their gRPC statuses.
    const requests = (status: string): number =>
      now
        .filter((x) => x.name === 'istio_requests_total' && x.labels.request_protocol === 'grpc' && x.labels.grpc_response_status === status)
        .reduce((n, x) => n + x.value, 0);
    assert.ok(requests('0') >= 3 && requests('5') >= 1);
  });

  test("a stream open past reportingInterval: the cluster counters grow per message, Istio's messages come when it ends", async () => {
    const base = await scrape();
    const s = client.count(Buffer.from('forever'));
    let got = 0;
    s.on('data', () => got++);
    s.on('error', () => undefined);
    // One message every 50 ms: past 1.5 s (more than the 1 s reporting interval), the gateway has passed ~30.
    await new Promise((r) => setTimeout(r, 1500));
    const open = await scrape();
    assert.ok(envoy(open, 'response_message_count') - envoy(base, 'response_message_count') >= 10, 'the cluster counter grows per message');
    assert.equal(envoy(open, 'request_message_count') - envoy(base, 'request_message_count'), 1);
    assert.equal(istio(open, 'response') - istio(base, 'response'), 0, 'no periodic report without peer metadata');
    assert.equal(istio(open, 'request') - istio(base, 'request'), 0);
    s.cancel();
    // Once the stream ends, its messages are reported: as many as grpc_stats counted for the cluster.
    const end = await eventually(
      'the cancelled stream in Istio metrics',
      async () => {
        const x = await scrape();
        return istio(x, 'request') - istio(base, 'request') === 1 ? x : undefined;
      },
      10_000,
      100,
    );
    const counted = envoy(end, 'response_message_count') - envoy(base, 'response_message_count');
    assert.equal(istio(end, 'response') - istio(base, 'response'), counted);
    assert.ok(counted >= got && got >= 10, `gateway ${counted}, client ${got}`);
  });
});
