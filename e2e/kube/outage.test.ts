// The controller when the API server goes away: xDS held until the first sync, the last good config kept
// through an API server restart, and changes made while the controller's watches are broken applied once
// they are back (replayed from the watch cache, or relisted after 410 Gone).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import { ApiForwarder } from './api-forwarder.ts';
import { kubeconfigWithServer } from './cluster.ts';
import { metric, startGatewayPod, waitReady, type GatewayPod } from './gateway-pod.ts';
import { HOST, RELEASES, gateway, setupSuite, virtualService, type Suite } from './suite.ts';

const GW = '127.0.0.1';
// The chart's listener port (Service 80 -> 8080). The test files run one at a time (e2e/kube/run.sh): each
// gateway pod binds the chart's fixed ports.
const PORT = 8080;

describe('kubernetes: the controller through API server outages', () => {
  let s: Suite;
  let gw: GatewayPod;
  let fwd: ApiForwarder;

  const status = async (path: string, host = HOST): Promise<number | string> => {
    try {
      return (await get(GW, PORT, path, host)).status;
    } catch (err) {
      return (err as Error).message;
    }
  };
  const waitStatus = (path: string, status: number, timeoutMs: number, host = HOST) =>
    eventually(`${host}${path} to answer ${status}`, async () => ((await get(GW, PORT, path, host)).status === status ? true : undefined), timeoutMs, 100);
  const KINDS = ['Gateway', 'VirtualService', 'DestinationRule', 'ServiceEntry', 'Service', 'EndpointSlice', 'Pod', 'Secret'];
  /** Every kind's watch is open again (each retries on its own backoff schedule, up to 30 s apart). */
  const allWatchesOpen = async (timeoutMs: number): Promise<void> => {
    await eventually(
      'every kind to be watched again',
      async () => {
        const text = await gw.mergedMetrics();
        return KINDS.every((kind) => (metric(text, 'meshgate_controller_k8s_watches_open', { kind }) ?? 0) >= 1) ? true : undefined;
      },
      timeoutMs,
      250,
    );
  };
  const controllerMetric = async (name: string, labels: Record<string, string>): Promise<number> => metric(await gw.mergedMetrics(), name, labels) ?? 0;

  /** GETs /status/200 every 100 ms until stopped; returns every answer that was not a 200. */
  const trafficLoop = () => {
    let running = true;
    const failures: string[] = [];
    let count = 0;
    const done = (async () => {
      while (running) {
        const st = await status('/status/200');
        count++;
        if (st !== 200) failures.push(`${new Date().toISOString()} ${st}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await done;
        return { failures, count };
      },
    };
  };

  before(
    async () => {
      s = await setupSuite();
      fwd = new ApiForwarder(s.cluster.server);
      await fwd.listen();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(
        virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/status', '/delay'], host: 'httpbin' }),
      );
    },
    { timeout: 60 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await fwd?.cut();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('xDS is held until the first sync: a gateway started while the API server is unreachable stays 503, and becomes ready once it is reachable', async () => {
    await fwd.cut();
    gw = await startGatewayPod({
      // The controller reaches the API server through the forwarder, which the tests can cut.
      kubeconfig: kubeconfigWithServer(s.controllerKubeconfig, fwd.url, s.dir),
      kube: s.kube,
      deployment: RELEASES.ingress.name,
      namespace: s.ns.gw,
      podIP: s.gatewayPodIP,
      dir: s.dir,
    });
    await eventually('the proxy status port', async () => (await gw.ready()) || undefined, 20_000);
    await gw.controller?.waitForOutput(/list failed/, 20_000);
    for (let i = 0; i < 10; i++) {
      assert.equal(await gw.ready(), 503, 'no config before the caches are synced');
      await new Promise((r) => setTimeout(r, 300));
    }
    await fwd.listen();
    // Lists are retried with backoff (1 s doubling): the next attempt comes within ~8 s.
    await waitReady(gw, 45_000);
    await waitStatus('/status/200', 200, 10_000);
  });

  test('API server restart mid-test: the proxy keeps serving the last config throughout, and changes made after the restart are applied', async () => {
    const pids = [gw.proxy.pid, gw.controller?.pid];
    const relistsBefore = await controllerMetric('meshgate_controller_k8s_relists_total', { kind: 'VirtualService', reason: 'expired' });
    const loop = trafficLoop();
    if (s.external) {
      // An external API server cannot be restarted by the suite: make it unreachable for as long instead.
      await fwd.cut();
      await new Promise((r) => setTimeout(r, 15_000));
      await fwd.listen();
    } else {
      await s.cluster.stopApiserver();
      await eventually(
        'the controller to notice',
        async () => ((await controllerMetric('meshgate_controller_k8s_watches_open', { kind: 'VirtualService' })) === 0 ? true : undefined),
        30_000,
        200,
      );
      assert.equal(await status('/status/200'), 200, 'serving while the API server is down');
      // A restarted API server alone does not always expire the controller's resourceVersion (when no write
      // came between the controller's last event or bookmark and the new watch cache, it resumes): dropping
      // etcd's history makes the 410 certain, so the relist path is what this test exercises.
      await s.cluster.compactEtcd();
      await s.cluster.startApiserver();
    }
    await s.kube.apply(
      virtualService('httpbin-anything', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/anything'], host: 'httpbin' }),
    );
    // Backoff is capped at 30 s: the change arrives within that after the API server is back.
    await waitStatus('/anything', 200, 45_000);
    const { failures, count } = await loop.stop();
    assert.deepEqual(failures, [], `every request during the outage was served (${count} requests)`);
    assert.ok(count > 50, `traffic ran throughout (${count} requests)`);
    assert.deepEqual([gw.proxy.pid, gw.controller?.pid], pids, 'no restart');
    await allWatchesOpen(45_000);
    assert.equal(gw.controller?.child.exitCode, null);
    if (!s.external) {
      // etcd's history before the restart is gone: resuming from the old resourceVersion answered 410.
      assert.ok(
        (await controllerMetric('meshgate_controller_k8s_relists_total', { kind: 'VirtualService', reason: 'expired' })) > relistsBefore,
        'relisted after 410 Gone',
      );
    }
  });

  test('resources changed while the watch is broken (created, deleted, relabelled) are applied once it is back; meanwhile the last config keeps serving', async () => {
    await waitStatus('/anything', 200, 10_000);
    const relistsBefore = await controllerMetric('meshgate_controller_k8s_relists_total', { kind: 'VirtualService', reason: 'expired' });
    await s.kube.apply({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'httpbin', namespace: s.ns.app },
      spec: { host: 'httpbin', subsets: [{ name: 'v2', labels: { version: 'v2' } }] },
    });
    await s.kube.apply(
      virtualService('httpbin-v2', s.ns.app, {
        hosts: ['v2.example.com'],
        gateways: ['httpbin-gateway'],
        prefixes: ['/status'],
        host: 'httpbin',
        subset: 'v2',
      }),
    );
    await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST, 'v2.example.com', 'headers.example.com']));
    await waitStatus('/status/200', 503, 15_000, 'v2.example.com');

    await fwd.cut();
    await eventually(
      'the controller to notice the broken watches',
      async () => ((await controllerMetric('meshgate_controller_k8s_watches_open', { kind: 'VirtualService' })) === 0 ? true : undefined),
      15_000,
      100,
    );
    // While the controller cannot see the API server: delete a route, add one, relabel the pod into the subset.
    await s.kube.remove('VirtualService', s.ns.app, 'httpbin-anything');
    await s.kube.apply(
      virtualService('httpbin-headers', s.ns.app, { hosts: ['headers.example.com'], gateways: ['httpbin-gateway'], prefixes: ['/headers'], host: 'httpbin' }),
    );
    await s.kube.mergePatch('Pod', s.ns.app, 'httpbin-v1', { metadata: { labels: { version: 'v2' } } });
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(
      await controllerMetric('meshgate_controller_k8s_watches_open', { kind: 'VirtualService' }),
      0,
      'the changes were made while the watch was broken',
    );
    assert.equal(await status('/anything'), 200, 'the last config keeps serving');
    assert.equal(await status('/headers', 'headers.example.com'), 404);
    assert.equal(await status('/status/200', 'v2.example.com'), 503);

    await fwd.listen();
    await waitStatus('/headers', 200, 45_000, 'headers.example.com');
    await allWatchesOpen(45_000);
    await waitStatus('/anything', 404, 10_000);
    await waitStatus('/status/200', 200, 10_000, 'v2.example.com');
    // The API server still had the history: the watch resumed from its resourceVersion and replayed the
    // changes, deletion included, without a relist.
    assert.equal(await controllerMetric('meshgate_controller_k8s_relists_total', { kind: 'VirtualService', reason: 'expired' }), relistsBefore);
  });
});
