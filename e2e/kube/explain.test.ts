// `meshgate explain` in Kubernetes: through the admin port of the installed gateway pod (what `kubectl port-forward
// <pod> 15000` gives a user), explain names the route, cluster and endpoint that real requests to the pod reach
// (the cluster's upstream_rq_total in the pod's /stats moves with them), and says why the walkthrough's 404 and 503
// happen: a host no virtual host takes, and a subset no pod has. The admin route map (/routemap) of the same pod draws
// the same listener, route, clusters and pod, with the subset cluster empty.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rawRequest } from '../lib/http.ts';
import { MESHGATE, eventually } from '../lib/process.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;

interface Explained {
  outcome: string;
  status?: number;
  served: boolean;
  why?: string;
  listener?: { name: string; gatewayPort?: number };
  route?: { index: number; source?: { kind: string; namespace: string; name: string } };
  clusters: { name: string; subset?: string; source?: { kind: string; namespace: string; name: string }; endpoints: { address: string; usable: boolean }[] }[];
}

describe('kubernetes: meshgate explain through the gateway pod’s admin port', () => {
  let s: Suite;
  let gw: GatewayPod;
  let podAddress: string;
  const get = (host: string, path: string): Promise<number> =>
    rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`).then((r) => r.status);
  const explain = (host: string, path: string): Promise<{ code: number; x: Explained }> =>
    new Promise((resolveRun, reject) => {
      execFile(
        MESHGATE,
        ['explain', '--admin', `http://127.0.0.1:${gw.ports.admin}`, '--host', host, '--path', path, '-o', 'json'],
        { timeout: 60_000 },
        (err, stdout, stderr) => {
          const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
          try {
            resolveRun({ code, x: JSON.parse(stdout) as Explained });
          } catch {
            reject(new Error(`meshgate explain exited ${code}: ${stderr}`));
          }
        },
      );
    });
  /** The cluster's upstream_rq_total (its stats prefix is istiod's alt_stat_name, the cluster name and a ';'). */
  const upstreamRq = async (cluster: string): Promise<number> => {
    const text = await gw.adminGet('/stats?filter=upstream_rq_total');
    const line = text.split('\n').find((l) => l.startsWith(`cluster.${cluster}`) && /\.upstream_rq_total: \d+$/.test(l));
    return Number(/: (\d+)$/.exec(line ?? '')?.[1] ?? -1);
  };

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      podAddress = `${pod.ip}:8000`;
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(
        virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/status', '/delay'], host: 'httpbin' }),
      );
      // The walkthrough's step 3: a subset no pod has.
      await s.kube.apply({
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'httpbin', namespace: s.ns.app },
        spec: { host: 'httpbin', subsets: [{ name: 'test-version', labels: { version: 'v3' } }] },
      });
      await s.kube.apply(
        virtualService('httpbin-anything', s.ns.app, {
          hosts: [HOST],
          gateways: ['httpbin-gateway'],
          prefixes: ['/anything'],
          host: 'httpbin',
          subset: 'test-version',
        }),
      );
      gw = await startIngressPod(s);
      await eventually(
        'the routes',
        async () => ((await get(HOST, '/anything')) === 503 && (await get(HOST, '/status/200')) === 200 ? true : undefined),
        30_000,
        200,
      );
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

  test('a routed request: the listener from Gateway port 80, the VirtualService, the cluster and the pod that real requests reach', async () => {
    const { code, x } = await explain(HOST, '/status/200');
    assert.equal(code, 0);
    assert.deepEqual(x.listener, { name: `0.0.0.0_${PORT}`, address: '0.0.0.0', port: PORT, gatewayPort: 80 });
    assert.deepEqual(x.route?.source, { kind: 'VirtualService', namespace: s.ns.app, name: 'httpbin' });
    const cluster = x.clusters[0];
    assert.equal(cluster?.name, `outbound|8000||httpbin.${s.ns.app}.svc.cluster.local`);
    assert.deepEqual(
      cluster?.endpoints.map((e) => [e.address, e.usable]),
      [[podAddress, true]],
    );
    const before = await upstreamRq(cluster.name);
    assert.ok(before > 0, 'the requests of the setup were counted');
    assert.equal(await get(HOST, '/status/200'), 200);
    // Workers' counters reach the admin's /stats at their next flush.
    await eventually('the request to be counted on the cluster', async () => ((await upstreamRq(cluster.name)) === before + 1 ? true : undefined), 15_000, 200);
  });

  test('the walkthrough’s 503: the subset cluster has no endpoint, as the real request finds', async () => {
    const { code, x } = await explain(HOST, '/anything');
    assert.equal(code, 1);
    const cluster = `outbound|8000|test-version|httpbin.${s.ns.app}.svc.cluster.local`;
    assert.equal(x.clusters[0]?.name, cluster);
    assert.deepEqual(x.clusters[0]?.source, { kind: 'DestinationRule', namespace: s.ns.app, name: 'httpbin' });
    assert.equal(x.status, 503);
    assert.equal(x.why, `cluster ${cluster} has no endpoints`);
    assert.equal(await get(HOST, '/anything'), 503);
  });

  test('the walkthrough’s 404s: a path no route takes, a host no virtual host takes', async () => {
    const path = await explain(HOST, '/nothing');
    assert.equal(path.code, 1);
    assert.equal(path.x.status, 404);
    assert.match(
      path.x.why ?? '',
      /^no route of virtual host httpbin\.example\.com:80 matches GET \/nothing: its routes match path prefix \/status; path prefix \/delay; path prefix \/anything/,
    );
    assert.equal(await get(HOST, '/nothing'), 404);
    const host = await explain('unknown.example.com', '/status/200');
    assert.equal(host.x.status, 404);
    assert.equal(host.x.why, `no virtual host of route configuration http.${PORT} takes host unknown.example.com (its domains: httpbin.example.com)`);
    assert.equal(await get('unknown.example.com', '/status/200'), 404);
  });
  test('the route map of the pod’s admin port: the listener, the routes, the clusters with the pod and the empty subset', async () => {
    const page = await gw.adminGet('/routemap');
    assert.match(page, /<title>[^<]*route map/i);
    interface MapNode {
      id: string;
      kind: string;
      name: string;
      health?: string;
      configDump: string;
      explain: string;
    }
    const map = JSON.parse(await gw.adminGet('/routemap?format=json')) as { nodes: MapNode[]; edges: { from: string; to: string }[] };
    const named = (kind: string, name: string): MapNode | undefined => map.nodes.find((n) => n.kind === kind && n.name === name);
    const listener = named('listener', `0.0.0.0_${PORT}`);
    assert.ok(listener, `listener 0.0.0.0_${PORT} in ${JSON.stringify(map.nodes.map((n) => `${n.kind}:${n.name}`))}`);
    const main = `outbound|8000||httpbin.${s.ns.app}.svc.cluster.local`;
    const subset = `outbound|8000|test-version|httpbin.${s.ns.app}.svc.cluster.local`;
    assert.equal(named('cluster', main)?.health, 'healthy');
    assert.equal(named('cluster', subset)?.health, 'empty');
    const endpoint = map.nodes.find((n) => n.kind === 'endpoint' && n.name === podAddress);
    assert.ok(endpoint, `endpoint ${podAddress}`);
    const mainId = named('cluster', main)?.id;
    assert.ok(
      map.edges.some((e) => e.from === mainId && e.to === endpoint.id),
      'the cluster is drawn to the pod',
    );
    // A route node's config_dump link opens its route configuration on the pod's admin port.
    const routes = map.nodes.filter((n) => n.kind === 'route' && map.edges.some((e) => e.from === n.id && e.to === mainId));
    assert.ok(routes.length > 0, 'a route leads to the httpbin cluster');
    const fragment = await gw.adminGet(routes[0]?.configDump ?? '');
    assert.match(fragment, /RoutesConfigDump/);
  });
});
