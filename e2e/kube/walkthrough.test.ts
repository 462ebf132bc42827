// The gateway against a real kube-apiserver: Istio's ingress walkthrough (as e2e/local), then gateway
// selection, cross-namespace binding and invalid config, with `meshgate controller` and `meshgate proxy` as
// real processes, backend pods on their own addresses, and raw HTTP assertions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import type { KubeObject } from '../../controller/model/objects.ts';
import { KubeApiError } from '../../controller/sources/kube/client.ts';
import { get } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import { startGatewayPod, waitReady, type GatewayPod } from './gateway-pod.ts';
import { HOST, RELEASES, gateway, releaseManifest, setupSuite, virtualService, type Suite } from './suite.ts';

const GW = '127.0.0.1';
// The chart's Service maps 80 -> targetPort 8080, so the Gateway's port 80 is the listener 0.0.0.0_8080.
const PORT = 8080;

describe('kubernetes: the httpbin ingress walkthrough against a real API server', () => {
  let s: Suite;
  let gw: GatewayPod;
  let pids: number[];
  let sentinels = 0;

  const waitStatus = async (path: string, host: string, status: number, timeoutMs = 20_000) =>
    eventually(
      `${host}${path} to answer ${status}`,
      async () => {
        const r = await get(GW, PORT, path, host);
        return r.status === status ? r : undefined;
      },
      timeoutMs,
      100,
    );

  /**
   * Waits until the controller has applied every change made so far: a new VirtualService route for a fresh
   * host is served only after the snapshot that holds it was pushed, and snapshots are taken in order.
   */
  const barrier = async (): Promise<void> => {
    const host = `sentinel-${++sentinels}.example.com`;
    await s.kube.apply(
      virtualService(`sentinel-${sentinels}`, s.ns.app, { hosts: [host], gateways: ['httpbin-gateway'], prefixes: ['/status'], host: 'httpbin' }),
    );
    await waitStatus('/status/200', host, 200);
  };

  before(
    async () => {
      s = await setupSuite();
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST, '*.example.com']));
      // The installed istio-ingressgateway Deployment, its containers started as the kubelet would.
      gw = await startGatewayPod({
        kube: s.kube,
        deployment: RELEASES.ingress.name,
        namespace: s.ns.gw,
        podIP: s.gatewayPodIP,
        kubeconfig: s.controllerKubeconfig,
        dir: s.dir,
        proxyOnly: true,
      });
    },
    { timeout: 60 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('helm install: istio-base, istio-ingressgateway and istio-egressgateway are deployed, and the API server holds every object as rendered', async () => {
    const labels = (o: KubeObject | undefined): Record<string, string> | undefined => o?.metadata.labels;
    for (const [release, istio] of [
      [RELEASES.ingress.name, 'ingressgateway'],
      [RELEASES.egress.name, 'egressgateway'],
    ] as const) {
      const rendered = await releaseManifest(s, release);
      assert.deepEqual(
        rendered.map((o) => o.kind).sort(),
        ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'],
        `${release}: the objects helm rendered`,
      );
      for (const o of rendered) {
        const live = await s.kube.get(
          o.kind,
          o.metadata.namespace ?? (['ClusterRole', 'ClusterRoleBinding'].includes(o.kind) ? undefined : s.ns.gw),
          o.metadata.name,
        );
        assert.ok(live, `${release}: ${o.kind} ${o.metadata.name} exists`);
        assert.deepEqual(labels(live), labels(o), `${release}: ${o.kind} ${o.metadata.name} has the rendered labels`);
        assert.equal(labels(live)?.app, release);
        assert.equal(labels(live)?.istio, istio);
        const pick = (x: KubeObject, ...keys: string[]): unknown[] => keys.map((k) => (x as unknown as Record<string, unknown>)[k]);
        if (['ClusterRole', 'Role'].includes(o.kind)) assert.deepEqual(pick(live, 'rules'), pick(o, 'rules'), `${o.kind} ${o.metadata.name}: rules`);
        if (['ClusterRoleBinding', 'RoleBinding'].includes(o.kind))
          assert.deepEqual(pick(live, 'roleRef', 'subjects'), pick(o, 'roleRef', 'subjects'), `${o.kind} ${o.metadata.name}: roleRef, subjects`);
        if (o.kind === 'Deployment') {
          type Tpl = {
            spec: {
              template: {
                metadata: { labels: Record<string, string> };
                spec: { serviceAccountName: string; containers: { name: string; command: string[]; args: string[]; env: unknown[] }[] };
              };
            };
          };
          const [a, b] = [(live as unknown as Tpl).spec.template, (o as unknown as Tpl).spec.template];
          assert.deepEqual(a.metadata.labels, b.metadata.labels);
          assert.equal(a.spec.serviceAccountName, b.spec.serviceAccountName);
          // The API server defaults a fieldRef's apiVersion to v1; otherwise the containers are as rendered.
          const defaulted = (env: unknown[]): unknown =>
            JSON.parse(JSON.stringify(env), (k, v: unknown) => (k === 'fieldRef' ? { apiVersion: 'v1', ...(v as object) } : v));
          assert.deepEqual(
            a.spec.containers.map((c) => [c.name, c.command, c.args, defaulted(c.env)]),
            b.spec.containers.map((c) => [c.name, c.command, c.args, defaulted(c.env)]),
          );
        }
      }
      type Svc = { spec: { type: string; selector: Record<string, string>; ports: { name: string; port: number; targetPort: number; protocol: string }[] } };
      const svc = (await s.kube.get('Service', s.ns.gw, release)) as unknown as Svc;
      assert.deepEqual(svc.spec.selector, { app: release, istio });
      const ports = svc.spec.ports.map((p) => `${p.name} ${p.port}->${p.targetPort}/${p.protocol}`);
      if (istio === 'ingressgateway') {
        assert.equal(svc.spec.type, 'LoadBalancer');
        assert.deepEqual(ports, ['status-port 15021->15021/TCP', 'http2 80->8080/TCP', 'https 443->8443/TCP']);
      } else {
        assert.equal(svc.spec.type, 'ClusterIP');
        assert.deepEqual(ports, ['http2 80->8080/TCP', 'https 443->8443/TCP']);
      }
    }
  });

  test('readiness: :15021/healthz/ready answers 503 while the proxy has no config, and 200 once the controller has synced and pushed', async () => {
    await eventually('the proxy status port', async () => (await gw.ready()) || undefined, 20_000);
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline) {
      assert.equal(await gw.ready(), 503, 'not ready without a controller');
      await new Promise((r) => setTimeout(r, 200));
    }
    const controller = gw.startController();
    pids = [gw.proxy.pid, controller.pid];
    await controller.waitForOutput(/Kubernetes caches synced/, 30_000);
    await waitReady(gw, 20_000);
    const merged = await gw.mergedMetrics();
    assert.match(merged, /^meshgate_controller_k8s_watches_open\{kind="Gateway"\} [1-9]/m, 'controller metrics are merged');
    assert.match(merged, /^process_cpu_user_seconds_total /m);
  });

  test("the gateway's processes run the installed Deployment's containers: its command, args and env as the kubelet resolves them", async () => {
    const dep = (await s.kube.get('Deployment', s.ns.gw, RELEASES.ingress.name)) as unknown as {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    // The Pod carries the pod template's labels (plus the ReplicaSet's pod-template-hash), so the controller
    // finds its own Pod and takes its labels from there.
    const podLabels = gw.pod.metadata.labels ?? {};
    assert.deepEqual({ ...podLabels, 'pod-template-hash': undefined }, { ...dep.spec.template.metadata.labels, 'pod-template-hash': undefined });
    const name = gw.pod.metadata.name;
    const proxy = gw.started['istio-proxy'];
    assert.deepEqual(proxy?.args, [
      'proxy',
      `--xds-socket=${gw.xdsSocket}`,
      '--admin-port=15000',
      '--status-port=15021',
      '--metrics-port=15090',
      '--concurrency=2',
      '--drain-seconds=5',
      `--labels-file=${gw.xdsSocket.replace(/istio-envoy\/XDS$/, 'istio-podinfo/labels')}`,
      `--annotations-file=${gw.xdsSocket.replace(/istio-envoy\/XDS$/, 'istio-podinfo/annotations')}`,
      `--mesh-config=${gw.xdsSocket.replace(/istio-envoy\/XDS$/, 'config-volume/mesh')}`,
    ]);
    assert.match(gw.xdsSocket, new RegExp(`^/.+/${name}/istio-envoy/XDS$`), 'the istio-envoy emptyDir, moved to a temporary directory');
    assert.equal(proxy.env.POD_NAME, name);
    assert.equal(proxy.env.POD_NAMESPACE, s.ns.gw);
    assert.equal(proxy.env.INSTANCE_IP, s.gatewayPodIP);
    assert.equal(proxy.env.ISTIO_CPU_LIMIT, '2', 'limits.cpu 2000m with divisor 1');
    // /proc: what the running process really got (bin/meshgate execs node with the same args and environment).
    const procArgs = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    // bin/meshgate (the image's `meshgate` too: /app/bin/meshgate) is a bash script: bash adds PWD and SHLVL.
    const procEnv = (pid: number): Record<string, string> =>
      Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter((kv) => kv && !/^(PWD|SHLVL|_)=/.test(kv))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
    assert.deepEqual(procArgs(gw.proxy.pid).slice(-proxy.args.length), proxy.args);
    assert.deepEqual(procEnv(gw.proxy.pid), proxy.env);
    const controller = gw.started.controller;
    assert.ok(controller && gw.controller);
    assert.deepEqual(controller.args.slice(0, 3), ['controller', `--xds-socket=${gw.xdsSocket}`, '--merged-metrics-port=15020']);
    // The controller made the socket owner-only: the proxy (same uid, as in the pod) is served over it.
    assert.equal(statSync(gw.xdsSocket).mode & 0o777, 0o600);
    assert.match(controller.args[3] ?? '', new RegExp(`^--labels-file=/.+/${name}/istio-podinfo/labels$`), 'the labels volume, moved to a temporary directory');
    assert.match(controller.args.at(-1) ?? '', /^--kubeconfig=/, 'the ServiceAccount token in a kubeconfig instead of the in-cluster token files');
    assert.deepEqual(procArgs(gw.controller.pid).slice(-controller.args.length), controller.args);
    assert.deepEqual(procEnv(gw.controller.pid), controller.env);
    assert.equal(controller.env.POD_NAME, name);
    assert.equal(
      readFileSync((controller.args[3] ?? '').slice('--labels-file='.length), 'utf8')
        .split('\n')
        .find((l) => l.startsWith('istio=')),
      'istio="ingressgateway"',
    );
  });

  test('step 1: /listeners shows 0.0.0.0_8080 and a Host with no VirtualService gets 404', async () => {
    const listeners = await eventually('listener 0.0.0.0_8080', async () => {
      const l = await gw.adminGet('/listeners');
      return /^0\.0\.0\.0_8080::0\.0\.0\.0:8080$/m.test(l) ? l : undefined;
    });
    assert.match(listeners, /^0\.0\.0\.0_8080::0\.0\.0\.0:8080$/m);
    // --concurrency=2 from the CPU limit: two workers serve the listener.
    const stats = await gw.adminGet(
      `/stats?filter=${encodeURIComponent('^(server\\.concurrency|listener\\.0\\.0\\.0\\.0_8080\\.worker_[0-9]+\\.downstream_cx_total)$')}`,
    );
    assert.match(stats, /^server\.concurrency: 2$/m);
    assert.match(stats, /^listener\.0\.0\.0\.0_8080\.worker_0\.downstream_cx_total: \d+$/m);
    assert.match(stats, /^listener\.0\.0\.0\.0_8080\.worker_1\.downstream_cx_total: \d+$/m);
    const r = await get(GW, PORT, '/status/200', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.header('content-length'), '0');
  });

  test('step 2: a VirtualService routes /status and /delay to the httpbin pod; /anything is 404', async () => {
    const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
    await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
    await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/status', '/delay'], host: 'httpbin' }));
    const r = await eventually(
      '/delay/1 to be routed',
      async () => {
        const res = await get(GW, PORT, '/delay/1', HOST);
        return res.status === 200 ? res : undefined;
      },
      20_000,
      200,
    );
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.header('content-type'), 'application/json');
    assert.ok(Number(r.header('x-envoy-upstream-service-time')) >= 900, 'the delay happened upstream');
    const seen = JSON.parse(r.body.toString()) as { headers: Record<string, string>; origin: string };
    assert.equal(seen.headers.Host, HOST);
    assert.equal(seen.headers['X-Envoy-Decorator-Operation'], `httpbin.${s.ns.app}.svc.cluster.local:8000/delay*`);
    assert.equal(r.header('x-httpbin-instance'), 'httpbin-v1', 'served by the pod at its EndpointSlice address');
    assert.equal((await get(GW, PORT, '/status/418', HOST)).statusLine, 'HTTP/1.1 418 Unknown');
    assert.equal((await get(GW, PORT, '/anything', HOST)).status, 404);
  });

  test('step 3: a subset without matching pods answers 503 no healthy upstream; relabelling the Pod fixes it within seconds, without a restart', async () => {
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
    const r = await waitStatus('/anything', HOST, 503);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.equal(r.header('content-length'), '19');
    assert.equal(r.header('content-type'), 'text/plain');
    assert.equal(r.body.toString(), 'no healthy upstream');
    assert.match(await gw.adminGet('/clusters'), new RegExp(`^outbound\\|8000\\|test-version\\|httpbin\\.${s.ns.app}\\.svc\\.cluster\\.local::`, 'm'));

    const changedAt = Date.now();
    await s.kube.mergePatch('Pod', s.ns.app, 'httpbin-v1', { metadata: { labels: { version: 'v3' } } });
    const ok = await waitStatus('/anything', HOST, 200, 10_000);
    const took = Date.now() - changedAt;
    assert.ok(took < 5_000, `applied ${took} ms after the relabel`);
    assert.equal(ok.header('x-httpbin-instance'), 'httpbin-v1');
    assert.deepEqual([gw.proxy.pid, gw.controller?.pid], pids);
    assert.equal(gw.proxy.child.exitCode, null, 'the proxy was not restarted');
    assert.equal(gw.controller?.child.exitCode, null, 'the controller was not restarted');
  });

  test('a Gateway whose selector does not match the pod is ignored, and applies once its selector matches', async () => {
    await s.kube.apply(gateway('egress-only', s.ns.app, { istio: 'egressgateway' }, ['other.example.com']));
    await s.kube.apply(virtualService('other', s.ns.app, { hosts: ['other.example.com'], gateways: ['egress-only'], prefixes: ['/status'], host: 'httpbin' }));
    await barrier();
    assert.equal((await get(GW, PORT, '/status/200', 'other.example.com')).status, 404, 'not selected: its VirtualService is not served');
    assert.doesNotMatch(await gw.adminGet('/config_dump'), /other\.example\.com/);
    // Control: the same Gateway, now selecting this pod, is served (so the 404 above meant "not selected").
    await s.kube.apply(gateway('egress-only', s.ns.app, { istio: 'ingressgateway' }, ['other.example.com']));
    await waitStatus('/status/200', 'other.example.com', 200);
  });

  test('a Gateway in another namespace than the pod selects it (PILOT_SCOPE_GATEWAY_TO_NAMESPACE=false)', async () => {
    await s.kube.apply(gateway('team-gateway', s.ns.team, { istio: 'ingressgateway' }, ['team.example.com']));
    await s.kube.apply(
      virtualService('team', s.ns.team, {
        hosts: ['team.example.com'],
        gateways: ['team-gateway'],
        prefixes: ['/status'],
        host: `httpbin.${s.ns.app}.svc.cluster.local`,
      }),
    );
    await waitStatus('/status/200', 'team.example.com', 200);
  });

  test('a VirtualService in another namespace binds to a Gateway as ns/name; the Gateway host namespace restricts who may bind', async () => {
    const pod = await s.backend('team-b-app', s.ns.team, { app: 'app', version: 'v1' });
    await s.service('app', s.ns.team, [pod], { app: 'app' });
    await s.kube.apply(gateway('shared-gateway', s.ns.gw, { istio: 'ingressgateway' }, [`${s.ns.team}/*.team-b.example.com`]));
    // Bound with ns/name from the team namespace: served by the team's pod.
    await s.kube.apply(
      virtualService('app', s.ns.team, { hosts: ['app.team-b.example.com'], gateways: [`${s.ns.gw}/shared-gateway`], prefixes: ['/'], host: 'app' }),
    );
    // A short name resolves in the VirtualService's own namespace, where no such Gateway exists.
    await s.kube.apply(
      virtualService('short-name', s.ns.team, { hosts: ['short.team-b.example.com'], gateways: ['shared-gateway'], prefixes: ['/'], host: 'app' }),
    );
    // Another namespace may not bind hosts the Gateway reserves for the team namespace.
    await s.kube.apply(
      virtualService('intruder', s.ns.app, {
        hosts: ['intruder.team-b.example.com'],
        gateways: [`${s.ns.gw}/shared-gateway`],
        prefixes: ['/'],
        host: 'httpbin',
      }),
    );
    const r = await waitStatus('/status/200', 'app.team-b.example.com', 200);
    assert.equal(r.header('x-httpbin-instance'), 'team-b-app');
    await barrier();
    assert.equal((await get(GW, PORT, '/status/200', 'short.team-b.example.com')).status, 404);
    assert.equal((await get(GW, PORT, '/status/200', 'intruder.team-b.example.com')).status, 404);
  });

  test('invalid VirtualServices: the CRD schema rejects a malformed one; one the schema accepts but Istio would reject is reported as an Event while the rest keeps serving', async () => {
    const malformed: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'malformed', namespace: s.ns.app },
      spec: { hosts: 'not-a-list', http: 'nope' },
    };
    const rejected = await s.kube.create(malformed).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(rejected instanceof KubeApiError, 'the API server rejected it');
    assert.equal(rejected.status, 422);
    assert.match(rejected.message, /spec\.hosts/);

    await s.kube.apply({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'bad-regex', namespace: s.ns.app },
      spec: {
        hosts: ['regex.example.com'],
        gateways: ['httpbin-gateway'],
        http: [{ match: [{ uri: { regex: '/(unclosed' } }], route: [{ destination: { host: 'httpbin' } }] }],
      },
    });
    const events = await eventually(
      'an InvalidConfig Event on VirtualService bad-regex',
      async () => {
        const evs = await s.kube.eventsFor('VirtualService', s.ns.app, 'bad-regex');
        return evs.length > 0 ? evs : undefined;
      },
      20_000,
      250,
    );
    const ev = events[0] as KubeObject & { type: string; reason: string; message: string; count: number; involvedObject: { uid?: string } };
    assert.equal(ev.type, 'Warning');
    assert.equal(ev.reason, 'InvalidConfig');
    assert.match(ev.message, /regex/);
    assert.equal(ev.involvedObject.uid, (await s.kube.get('VirtualService', s.ns.app, 'bad-regex'))?.metadata.uid);
    assert.match(gw.controller?.output() ?? '', /bad-regex/);
    // The rest keeps serving, and more pushes do not add Events for the same error.
    await barrier();
    assert.equal((await get(GW, PORT, '/status/200', HOST)).status, 200);
    assert.equal((await get(GW, PORT, '/anything', HOST)).status, 200);
    const again = await s.kube.eventsFor('VirtualService', s.ns.app, 'bad-regex');
    assert.equal(again.length, 1, 'one Event');
    assert.equal((again[0] as unknown as { count: number }).count, 1, 'recorded once for this resourceVersion');
  });

  test("the controller needed nothing beyond the chart's RBAC: no request was forbidden", () => {
    assert.equal(s.controllerKubeconfig === s.cluster.kubeconfig, s.external, 'on the local cluster the controller runs as the chart ServiceAccount');
    // The API server's 403 message says "... is forbidden: User ... cannot ..."; the reflector adds its RBAC hint. (A bare
    // \b403\b also matched a log line's `"ms":403`.)
    assert.doesNotMatch(gw.controller?.output() ?? '', /forbidden|check the credentials and RBAC/i);
  });
});
