// DestinationRule loadBalancer PASSTHROUGH on a `meshgate local` gateway (issue 6), black box.
//
// istiod turns PASSTHROUGH into an ORIGINAL_DST cluster (lb_policy CLUSTER_PROVIDED, no EDS, no endpoints).
// Envoy's ORIGINAL_DST load balancer takes its destination from, in order: x-envoy-original-dst-host (only
// when original_dst_lb_config.use_http_header is set, which Istio never sets), or the downstream connection's
// local address *only if the listener restored it* from SO_ORIGINAL_DST (use_original_dst / the original_dst
// listener filter; gateway listeners have neither). So on an Istio gateway a route to a PASSTHROUGH cluster
// has no host and Envoy answers 503 `no healthy upstream` (UH), however many ready pods the service has, and
// there is no request loop back into the listener (the plain local address is never used). That is what this
// test shows, together with the translated cluster in /config_dump and /clusters; the same route answers 200
// again once the DestinationRule is removed. Forwarding by the header and by a restored address is covered by
// the unit and proxy tests in gateway/upstream/original-dst.test.ts, where the cluster is hand-written.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const GW = '127.0.0.1';
const HOST = 'direct.pt.example.com';
const BACKEND_IP = '127.0.12.1';

/** The first object anywhere in `v` whose `name` is `name`. */
function findNamed(v: unknown, name: string): Record<string, unknown> | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const f = findNamed(x, name);
      if (f) return f;
    }
  } else if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.name === name) return o;
    for (const x of Object.values(o)) {
      const f = findNamed(x, name);
      if (f) return f;
    }
  }
  return undefined;
}

describe('traffic management: DestinationRule loadBalancer PASSTHROUGH', () => {
  let gw: Gateway;
  let bport: number;
  let backend: Backend;
  let cluster: string;

  before(async () => {
    bport = await freePort();
    cluster = `outbound|${bport}||direct.default.svc.cluster.local`;
    backend = await startBackend(BACKEND_IP, bport, 'direct');
    gw = await startGateway({ accessLog: true });
    gw.write('10-gateway.yaml', gatewayYaml('pt-gateway', ['*.pt.example.com']));
    gw.write('20-direct.yaml', serviceYaml('direct', bport, [{ ip: BACKEND_IP }]));
    gw.write('21-direct-vs.yaml', virtualServiceYaml('direct', HOST, 'pt-gateway', 'direct'));
    await eventually('direct routed', async () => ((await get(GW, gw.port, '/warmup', HOST)).status === 200 ? true : undefined), 15_000, 100);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  test('PASSTHROUGH: an ORIGINAL_DST / CLUSTER_PROVIDED cluster without EDS in /config_dump, listed by /clusters', async () => {
    gw.write(
      '22-direct-dr.yaml',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: direct, namespace: default}
spec:
  host: direct
  trafficPolicy:
    loadBalancer: {simple: PASSTHROUGH}
`,
    );
    const c = await eventually(
      'the ORIGINAL_DST cluster',
      async () => {
        const found = findNamed(JSON.parse(await gw.adminGet('/config_dump')), cluster);
        return found?.type === 'ORIGINAL_DST' ? found : undefined;
      },
      15_000,
      100,
    );
    assert.equal(c.lb_policy, 'CLUSTER_PROVIDED');
    assert.equal(c.eds_cluster_config, undefined);
    assert.equal(c.load_assignment, undefined);
    const clusters = await gw.adminGet('/clusters');
    assert.match(clusters, new RegExp(`^${cluster.replace(/[.|]/g, '\\$&')}::added_via_api::true$`, 'm'));
    // No hosts: ORIGINAL_DST hosts only appear once a destination was chosen.
    assert.doesNotMatch(clusters, new RegExp(`^${cluster.replace(/[.|]/g, '\\$&')}::${BACKEND_IP.replace(/\./g, '\\.')}:`, 'm'));
  });

  test('a request routed to it: 503 no healthy upstream (UH), nothing reaches the pod, the header is ignored', async () => {
    const seen = backend.seen.length;
    const r = await get(GW, gw.port, '/passthrough', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.equal(r.body.toString(), 'no healthy upstream');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['content-length', 'content-type', 'date', 'server'],
    );
    assert.equal(r.header('content-type'), 'text/plain');
    // Istio has no knob for use_http_header: the override header does not pick a host either.
    const h = await get(GW, gw.port, '/passthrough', HOST, { 'x-envoy-original-dst-host': `${BACKEND_IP}:${bport}` });
    assert.equal(h.status, 503);
    assert.equal(h.body.toString(), 'no healthy upstream');
    assert.equal(backend.seen.length, seen);
    await eventually('UH in the access log', () => Promise.resolve(/"GET \/passthrough HTTP\/1\.1" 503 UH /.test(gw.accessLog()) ? true : undefined), 5000, 50);
  });

  test('without the DestinationRule the same route reaches the pod again', async () => {
    rmSync(join(gw.dir, '22-direct-dr.yaml'));
    await eventually('EDS cluster back', async () => ((await get(GW, gw.port, '/back', HOST)).status === 200 ? true : undefined), 15_000, 100);
    assert.ok(backend.seen.some((s) => s.path === '/back'));
  });
});
