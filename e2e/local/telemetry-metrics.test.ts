// Telemetry API metrics overrides changing what a real `meshgate local` reports: Istio's standard metrics are on by
// default (an Istio install's mesh); a mesh-wide Telemetry then adds a label from a request header (a CEL
// expression), removes one, and turns a metric off; rewritten to disable ALL_METRICS, requests stop being counted
// (the istio.stats filter leaves the listener, as istiod leaves it out). Read from the metrics port (15090's
// /stats/prometheus), which Istio's default stats inclusion list lets istio_* through.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { rawRequest } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'metrics.example.com';
const BACKEND_IP = '127.0.43.1';

describe('local mode: Telemetry metrics overrides on Istio standard metrics, changed live', () => {
  let gw: Gateway;
  let backend: Backend;

  const request = async (tenant: string): Promise<number> =>
    (await rawRequest('127.0.0.1', gw.port, [`GET /t HTTP/1.1`, `Host: ${HOST}`, `X-Tenant: ${tenant}`, '', ''].join('\r\n'))).status;
  const series = async (metric: string): Promise<string[]> => {
    const text = await (await fetch(`http://127.0.0.1:${gw.metrics}/stats/prometheus`)).text();
    return text.split('\n').filter((l) => l.startsWith(`${metric}{`));
  };
  const total = async (pred: (l: string) => boolean): Promise<number> =>
    (await series('istio_requests_total')).filter(pred).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'app');
    gw = await startGateway({ concurrency: 1 });
    gw.write('10-gateway.yaml', gatewayYaml('metrics-gateway', [HOST]));
    gw.write('20-app.yaml', serviceYaml('app', backend.port, [{ ip: BACKEND_IP }]));
    gw.write('30-vs.yaml', virtualServiceYaml('app', HOST, 'metrics-gateway', 'app'));
    await eventually('the route', async () => ((await request('warm-up')) === 200 ? true : undefined), 20_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  test('without a Telemetry: the standard labels, request_protocol among them, and the size histograms', async () => {
    assert.ok((await total((l) => l.includes('request_protocol="http"') && l.includes('destination_service="app.default.svc.cluster.local"'))) >= 1);
    // Histograms show what the last stats flush merged (every 5 s).
    await new Promise((r) => setTimeout(r, 5500));
    assert.ok((await series('istio_request_bytes_count')).length >= 1);
  });

  test('a Telemetry adds tenant from the X-Tenant header, removes request_protocol and turns REQUEST_SIZE off', async () => {
    gw.write(
      '40-telemetry.yaml',
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        tenant: {value: "request.headers['x-tenant']"}
        request_protocol: {operation: REMOVE}
    - match: {metric: REQUEST_SIZE}
      disabled: true
`,
    );
    await eventually(
      'the override to apply',
      async () => {
        await request('probe');
        return (await total((l) => l.includes('tenant="probe"'))) > 0 ? true : undefined;
      },
      20_000,
      200,
    );
    // The size histogram once the requests before the override are flushed: it gets no new observation.
    await new Promise((r) => setTimeout(r, 5500));
    const sizesBefore = (await series('istio_request_bytes_count')).join('\n');
    for (let i = 0; i < 3; i++) assert.equal(await request('blue'), 200);
    assert.equal(await request('green'), 200);
    assert.equal(await total((l) => l.includes('tenant="blue"')), 3);
    assert.equal(await total((l) => l.includes('tenant="green"')), 1);
    const [blue] = (await series('istio_requests_total')).filter((l) => l.includes('tenant="blue"'));
    assert.doesNotMatch(blue ?? '', /request_protocol=/);
    assert.match(blue ?? '', /response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="unknown",tenant="blue"\} 3$/);
    await new Promise((r) => setTimeout(r, 5500));
    assert.equal((await series('istio_request_bytes_count')).join('\n'), sizesBefore);
  });

  test('rewritten to disable ALL_METRICS: the filter is gone and requests are not counted', async () => {
    gw.write(
      '40-telemetry.yaml',
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: ALL_METRICS}
      disabled: true
`,
    );
    await eventually(
      'the filter to leave the listener',
      async () => (!(await gw.adminGet('/config_dump')).includes('istio.stats') ? true : undefined),
      20_000,
      200,
    );
    const before = await total(() => true);
    for (let i = 0; i < 3; i++) assert.equal(await request('blue'), 200);
    assert.equal(await total(() => true), before);
  });
});
