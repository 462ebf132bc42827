// Tracing through the installed chart against a real kube-apiserver, after Istio's "Distributed Tracing" task with
// OpenTelemetry: a real OpenTelemetry Collector as a pod behind a Service, named by an `opentelemetry` extension
// provider and `defaultProviders.tracing` in the chart's mesh ConfigMap (what `--set meshConfig...` renders). A client
// request carrying a W3C context gets a gateway span that is its child, an upstream span that is the gateway span's
// child, and httpbin receives the upstream span as its parent; the spans carry the gateway pod's Istio tags.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import type { Collector, ReceivedSpan } from '../lib/otelcol.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, RELEASES, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;
const SERVER = 2;
const CLIENT = 3;
const OTLP = 4317;

describe('kubernetes: traces from the gateway pod into a real OpenTelemetry Collector', () => {
  let s: Suite;
  let gw: GatewayPod;
  let collector: Collector;
  const get = (path: string, headers: string[] = []): Promise<RawResponse> =>
    rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      const c = await s.collector('otel-collector-0', s.ns.app, { app: 'otel-collector' });
      collector = c.collector;
      await s.service('otel-collector', s.ns.app, [c.pod], { app: 'otel-collector' }, [{ name: 'grpc-otlp', port: OTLP, targetPort: collector.grpcPort }]);
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' }));
      await s.kube.apply({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${RELEASES.ingress.name}-mesh`, namespace: s.ns.gw },
        data: {
          mesh: [
            'defaultConfig:',
            '  tracing: {sampling: 100}',
            'defaultProviders:',
            '  metrics: [prometheus]',
            '  tracing: [otel]',
            'extensionProviders:',
            '- name: otel',
            `  opentelemetry: {service: otel-collector.${s.ns.app}.svc.cluster.local, port: ${OTLP}}`,
            '',
          ].join('\n'),
        },
      });
      gw = await startIngressPod(s);
      await eventually('the route', async () => ((await get('/status/200')).status === 200 ? true : undefined), 30_000, 200);
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test("a client's W3C context: gateway span its child, the upstream span the gateway span's, httpbin's parent the upstream span", async () => {
    const hex = (bytes: number): string =>
      Array.from({ length: bytes }, () =>
        Math.floor(Math.random() * 256)
          .toString(16)
          .padStart(2, '0'),
      ).join('');
    const traceId = hex(16);
    const clientSpan = hex(8);
    const r = await eventually(
      'a traced request',
      async () => {
        const res = await get('/headers', [`traceparent: 00-${traceId}-${clientSpan}-01`]);
        return res.status === 200 ? res : undefined;
      },
      30_000,
      500,
    );
    const echoed = (JSON.parse(r.body.toString()) as { headers: Record<string, string> }).headers;
    const traceparent = Object.entries(echoed).find(([k]) => k.toLowerCase() === 'traceparent')?.[1] ?? '';
    assert.match(traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const spans: ReceivedSpan[] = await collector.waitFor('the gateway and upstream spans', (sp) => sp.traceId === traceId, 2, 30_000);
    const gwSpan = spans.find((sp) => sp.kind === SERVER);
    const upSpan = spans.find((sp) => sp.kind === CLIENT);
    assert.ok(
      gwSpan && upSpan,
      JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    );
    assert.equal(gwSpan.parentSpanId, clientSpan);
    assert.equal(upSpan.parentSpanId, gwSpan.spanId);
    assert.equal(traceparent.split('-')[2], upSpan.spanId, 'httpbin got the upstream span as its parent');
    assert.equal(gwSpan.attributes['http.status_code'], '200');
    assert.equal(gwSpan.attributes['istio.namespace'], s.ns.gw);
    assert.equal(upSpan.attributes.upstream_cluster ?? gwSpan.attributes.upstream_cluster, `outbound|8000||httpbin.${s.ns.app}.svc.cluster.local`);
  });
});
