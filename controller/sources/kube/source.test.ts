// The Kubernetes source against a fake list/watch API server: the informer edge cases that a real API
// server produces rarely or only after a long time (the e2e suite covers the real one).
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../cli/logger.ts';
import type { KubeObject } from '../../model/objects.ts';
import { ObjectStore } from '../../model/store.ts';
import { KubeClient } from './client.ts';
import { startKubeSource, SECRET_FIELD_SELECTOR, type KubeSource } from './source.ts';
import { CORE_RESOURCES, FakeApiServer, istioResources, securityResources, telemetryResources } from './testing/fake-apiserver.ts';
import type { ReflectorTiming } from './reflector.ts';

/** One watch per kind: 4 networking.istio.io, AuthorizationPolicy, RequestAuthentication, Telemetry, Service, EndpointSlice, Pod, Secret. */
const WATCHES = 11;

const FAST: Partial<ReflectorTiming> = { backoffInitialMs: 40, backoffMaxMs: 320, idleMs: 10_000, watchTimeoutSeconds: 300 };

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function clientFor(fake: FakeApiServer): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromString(fake.kubeconfig());
  return new KubeClient(kc);
}

const svc = (ns: string, name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, managedFields: [{ manager: 'kubectl' }] } as KubeObject['metadata'],
  spec: { ports: [{ port: 8000 }] },
  ...extra,
});
const pod = (ns: string, name: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  status: { podIP: '127.0.0.2' },
});
const gateway = (ns: string, name: string): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns },
  spec: { selector: { istio: 'ingressgateway' } },
});
const secret = (ns: string, name: string, type: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: ns },
  type,
  data: {},
});

const names = (store: ObjectStore, kind: Parameters<ReturnType<ObjectStore['snapshot']>['byKind']>[0]): string[] =>
  store
    .snapshot()
    .byKind(kind)
    .map((o) => `${o.obj.metadata.namespace}/${o.obj.metadata.name}`)
    .sort();

describe('kubernetes source', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(
    opts: { resources?: ConstructorParameters<typeof FakeApiServer>[0]; namespaces?: string[]; podName?: string; timing?: Partial<ReflectorTiming> } = {},
  ) {
    const fake = new FakeApiServer(opts.resources);
    await fake.start();
    cleanups.push(() => fake.stop());
    const store = new ObjectStore();
    const registry = new Registry();
    const begin = (): KubeSource => {
      const src = startKubeSource({
        client: clientFor(fake),
        store,
        log: silentLogger(),
        podNamespace: 'istio-system',
        registry,
        timing: opts.timing ?? FAST,
        ...(opts.podName ? { podName: opts.podName } : {}),
        ...(opts.namespaces ? { namespaces: opts.namespaces } : {}),
      });
      cleanups.push(() => src.close());
      return src;
    };
    return { fake, store, registry, begin };
  }

  test('the initial list of every kind fills the store; synced resolves after it; built-in items get apiVersion/kind and lose managedFields', async () => {
    const { fake, store, begin } = await setup();
    fake.apply(svc('default', 'httpbin'));
    fake.apply(pod('default', 'httpbin-1', { app: 'httpbin' }));
    fake.apply(gateway('default', 'gw'));
    const src = begin();
    await src.synced;
    assert.deepEqual(names(store, 'Service'), ['default/httpbin']);
    assert.deepEqual(names(store, 'Pod'), ['default/httpbin-1']);
    assert.deepEqual(names(store, 'Gateway'), ['default/gw']);
    const s = store.snapshot().byKind('Service')[0]?.obj;
    assert.equal(s?.apiVersion, 'v1');
    assert.equal(s?.kind, 'Service');
    assert.equal((s?.metadata as unknown as Record<string, unknown>).managedFields, undefined);
    // Every watched kind was listed before synced: 4 networking.istio.io kinds, AuthorizationPolicy,
    // RequestAuthentication, services, endpointslices, pods, secrets.
    assert.equal(new Set(fake.listRequests().map((r) => r.path)).size, WATCHES);
  });

  test('synced waits for a kind whose first list fails, and resolves once it succeeds', async () => {
    const { fake, begin } = await setup();
    fake.fail(500, (r) => r.path.endsWith('/endpointslices') && r.query.get('watch') !== 'true', 3);
    const src = begin();
    let done = false;
    void src.synced.then(() => (done = true));
    await waitFor('three failed lists of endpointslices', () => fake.listRequests('endpointslices').length >= 3);
    assert.equal(done, false, 'not synced while endpointslices could not be listed');
    await src.synced;
    assert.ok(fake.listRequests('endpointslices').length >= 4);
  });

  test('watch events add, update and delete objects', async () => {
    const { fake, store, begin } = await setup();
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    fake.apply(svc('default', 'a'));
    await waitFor('a added', () => names(store, 'Service').includes('default/a'));
    fake.apply(svc('default', 'a', { spec: { ports: [{ port: 9000 }] } }));
    await waitFor('a updated', () => JSON.stringify(store.snapshot().byKind('Service')[0]?.obj.spec).includes('9000'));
    fake.remove('Service', 'default', 'a');
    await waitFor('a deleted', () => names(store, 'Service').length === 0);
  });

  test('a watch the server ends cleanly is resumed from the last resourceVersion, without a relist', async () => {
    const { fake, store, begin } = await setup();
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    fake.apply(svc('default', 'a'));
    await waitFor('a added', () => names(store, 'Service').length === 1);
    const lists = fake.listRequests().length;
    const lastRv = store.snapshot().byKind('Service')[0]?.obj.metadata.resourceVersion;
    fake.endWatches();
    await waitFor('watches reopened', () => fake.watchRequests('services').length === 2 && fake.openWatches() === WATCHES);
    assert.equal(fake.watchRequests('services')[1]?.query.get('resourceVersion'), lastRv);
    assert.equal(fake.watchRequests('services')[1]?.query.get('allowWatchBookmarks'), 'true');
    assert.equal(fake.listRequests().length, lists, 'no relist');
    fake.apply(svc('default', 'b'));
    await waitFor('b added on the new watch', () => names(store, 'Service').length === 2);
  });

  test('bookmarks advance the resourceVersion the next watch resumes from', async () => {
    const { fake, begin } = await setup();
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    fake.apply(pod('default', 'p', {})); // rv moves on; the services watch sees nothing
    fake.bookmark();
    await sleep(50);
    fake.endWatches();
    await waitFor('services re-watched', () => fake.watchRequests('services').length === 2);
    const first = Number(fake.watchRequests('services')[0]?.query.get('resourceVersion'));
    const second = Number(fake.watchRequests('services')[1]?.query.get('resourceVersion'));
    assert.ok(second > first, `resumed from the bookmark (${second} > ${first})`);
  });

  test('an ERROR 410 event on an open watch triggers a relist', async () => {
    const { fake, store, registry, begin } = await setup();
    fake.apply(svc('default', 'a'));
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    const lists = fake.listRequests('services').length;
    fake.compact();
    await waitFor('services relisted', () => fake.listRequests('services').length === lists + 1);
    assert.deepEqual(names(store, 'Service'), ['default/a']);
    assert.match(await registry.metrics(), /meshgate_controller_k8s_relists_total\{kind="Service",reason="expired"\} 1/);
  });

  test('objects deleted while the API server was down disappear after it is back (410 -> relist -> replace)', async () => {
    const { fake, store, begin } = await setup();
    fake.apply(svc('default', 'a'));
    fake.apply(svc('default', 'b'));
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    const port = fake.port;
    await fake.stop();
    fake.remove('Service', 'default', 'a');
    fake.apply(svc('default', 'c'));
    fake.compact(false); // the history of the outage is gone: resuming the old watch answers 410
    await sleep(150);
    assert.deepEqual(names(store, 'Service'), ['default/a', 'default/b'], 'the store keeps the last known objects while the API server is down');
    await fake.start(port);
    await waitFor('the outage changes applied', () => names(store, 'Service').join() === 'default/b,default/c' || undefined, 5_000);
  });

  test('an HTTP 410 answer to a watch request relists', async () => {
    const { fake, store, begin } = await setup();
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    const lists = fake.listRequests('pods').length;
    fake.fail(410, (r) => r.path.endsWith('/pods') && r.query.get('watch') === 'true');
    fake.endWatches();
    await waitFor('pods relisted', () => fake.listRequests('pods').length === lists + 1);
    fake.apply(pod('default', 'p', {}));
    await waitFor('p seen after the relist', () => names(store, 'Pod').length === 1);
  });

  test('HTTP 500 on watch: restarts with exponential backoff and resumes without losing events', async () => {
    const { fake, store, registry, begin } = await setup();
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    fake.fail(500, (r) => r.path.endsWith('/services') && r.query.get('watch') === 'true', 4);
    fake.endWatches();
    await waitFor('five services watch attempts after the end', () => fake.watchRequests('services').length >= 6);
    // Arrival times at the server: the re-watch right away, then after >= ~40, 80, 160, 320 ms (-10 % jitter).
    const times = fake
      .watchRequests('services')
      .slice(1, 6)
      .map((r) => r.at);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    for (const [i, min] of [34, 70, 142, 286].entries())
      assert.ok((gaps[i] ?? 0) >= min, `attempt gap ${i} was ${gaps[i]} ms, expected >= ${min}: ${gaps.join(', ')}`);
    fake.apply(svc('default', 'after'));
    await waitFor('events flow again', () => names(store, 'Service').includes('default/after'));
    assert.match(await registry.metrics(), /meshgate_controller_k8s_watch_restarts_total\{kind="Service",reason="500"\} 4/);
  });

  test('connection refused: the store keeps its objects, retries back off up to the cap, and changes made meanwhile arrive once the server is back', async () => {
    const { fake, store, registry, begin } = await setup();
    fake.apply(svc('default', 'a'));
    const src = begin();
    await src.synced;
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    const port = fake.port;
    await fake.stop();
    await sleep(1_200); // 40 + 80 + 160 + 320 + 320 ... : several capped retries
    const metrics = await registry.metrics();
    assert.match(metrics, /meshgate_controller_k8s_watches_open\{kind="Service"\} 0/);
    const refused = Number(/meshgate_controller_k8s_watch_restarts_total\{kind="Service",reason="ECONNREFUSED"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.ok(refused >= 3 && refused <= 8, `retried with backoff, not in a tight loop: ${refused} attempts in 1.2 s`);
    assert.deepEqual(names(store, 'Service'), ['default/a']);
    fake.apply(svc('default', 'during-outage'));
    await fake.start(port);
    await waitFor('the change made during the outage', () => names(store, 'Service').includes('default/during-outage'), 3_000);
    await waitFor('the gauge shows the watch open again', () => fake.openWatches() === WATCHES);
    assert.match(await registry.metrics(), /meshgate_controller_k8s_watches_open\{kind="Service"\} 1/);
  });

  test('a watch that goes quiet (no event, no bookmark) is re-established by the watchdog', async () => {
    const { fake, store, registry, begin } = await setup({ timing: { ...FAST, idleMs: 300 } });
    const src = begin();
    await src.synced;
    fake.setHangWatches(true);
    fake.endWatches(); // the re-watches are accepted and then hang like a dead peer
    await waitFor('hung watches re-established by the watchdog', () => fake.watchRequests('services').length >= 3, 3_000);
    fake.setHangWatches(false);
    await waitFor('a live watch again', () => fake.openWatches() === WATCHES, 3_000);
    fake.apply(svc('default', 'x'));
    await waitFor('events flow on the new watch', () => names(store, 'Service').length === 1);
    assert.match(await registry.metrics(), /meshgate_controller_k8s_watch_restarts_total\{kind="Service",reason="idle"\} [1-9]/);
  });

  test('Istio kinds use v1 when served, and fall back to v1beta1 (or v1alpha3) when it is not', async () => {
    for (const [versions, expected] of [
      [['v1', 'v1beta1', 'v1alpha3'], 'v1'],
      [['v1beta1', 'v1alpha3'], 'v1beta1'],
      [['v1alpha3'], 'v1alpha3'],
    ] as const) {
      const { fake, store, begin } = await setup({
        resources: [...CORE_RESOURCES, ...versions.flatMap((v) => istioResources(v)), ...securityResources('v1'), ...telemetryResources('v1')],
      });
      fake.apply(gateway('default', 'gw'));
      const src = begin();
      await src.synced;
      assert.deepEqual(
        [
          ...new Set(
            fake
              .listRequests()
              .filter((r) => r.path.includes('networking.istio.io/'))
              .map((r) => r.path.split('/')[3]),
          ),
        ],
        [expected],
        `served ${versions.join(',')}`,
      );
      assert.equal(store.snapshot().byKind('Gateway')[0]?.obj.apiVersion, `networking.istio.io/${expected}`);
      await src.close();
    }
  });

  test('without the Istio CRDs the source is not synced, and it syncs once they appear', async () => {
    const resources = [...CORE_RESOURCES];
    const { fake, begin } = await setup({ resources });
    const src = begin();
    let done = false;
    void src.synced.then(() => (done = true));
    await waitFor('discovery retried', () => fake.requests.filter((r) => r.path === '/apis/networking.istio.io').length >= 3);
    assert.equal(done, false);
    resources.push(...istioResources('v1'), ...securityResources('v1'), ...telemetryResources('v1')); // the CRDs get installed
    await src.synced;
  });

  test('AuthorizationPolicies and RequestAuthentications come from security.istio.io, v1 when served, else v1beta1; without that CRD the source is not synced', async () => {
    const policy = (version: string): KubeObject => ({
      apiVersion: `security.istio.io/${version}`,
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-all', namespace: 'istio-system' },
      spec: {},
    });
    const authn = (version: string): KubeObject => ({
      apiVersion: `security.istio.io/${version}`,
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: 'istio-system' },
      spec: { jwtRules: [{ issuer: 'i', jwksUri: 'https://idp/jwks' }] },
    });
    for (const [versions, expected] of [
      [['v1', 'v1beta1'], 'v1'],
      [['v1beta1'], 'v1beta1'],
    ] as const) {
      const { fake, store, begin } = await setup({
        resources: [...CORE_RESOURCES, ...istioResources('v1'), ...versions.flatMap((v) => securityResources(v)), ...telemetryResources('v1')],
      });
      fake.apply(policy(expected));
      fake.apply(authn(expected));
      const src = begin();
      await src.synced;
      assert.deepEqual(names(store, 'AuthorizationPolicy'), ['istio-system/deny-all']);
      assert.deepEqual(names(store, 'RequestAuthentication'), ['istio-system/jwt']);
      for (const plural of ['authorizationpolicies', 'requestauthentications']) {
        assert.deepEqual(
          [...new Set(fake.listRequests(plural).map((r) => r.path))],
          [`/apis/security.istio.io/${expected}/${plural}`],
          `served ${versions.join(',')}`,
        );
      }
      await src.close();
    }
    const resources = [...CORE_RESOURCES, ...istioResources('v1'), ...telemetryResources('v1')];
    const { fake, begin } = await setup({ resources });
    const src = begin();
    let done = false;
    void src.synced.then(() => (done = true));
    await waitFor('security.istio.io discovery retried', () => fake.requests.filter((r) => r.path === '/apis/security.istio.io').length >= 3);
    assert.equal(done, false);
    resources.push(...securityResources('v1'));
    await src.synced;
  });

  test('Telemetries come from telemetry.istio.io, v1 when served, else v1alpha1', async () => {
    for (const [versions, expected] of [
      [['v1', 'v1alpha1'], 'v1'],
      [['v1alpha1'], 'v1alpha1'],
    ] as const) {
      const { fake, store, begin } = await setup({
        resources: [...CORE_RESOURCES, ...istioResources('v1'), ...securityResources('v1'), ...versions.flatMap((v) => telemetryResources(v))],
      });
      fake.apply({
        apiVersion: `telemetry.istio.io/${expected}`,
        kind: 'Telemetry',
        metadata: { name: 'mesh-default', namespace: 'istio-system' },
        spec: { accessLogging: [{ providers: [{ name: 'envoy' }] }] },
      });
      const src = begin();
      await src.synced;
      assert.deepEqual(names(store, 'Telemetry'), ['istio-system/mesh-default']);
      assert.deepEqual([...new Set(fake.listRequests('telemetries').map((r) => r.path))], [`/apis/telemetry.istio.io/${expected}/telemetries`]);
      await src.close();
    }
  });

  test('Gateway API kinds are read when their CRDs are served (optional: without them the source still syncs)', async () => {
    const route: KubeObject = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'default' },
      spec: { parentRefs: [{ name: 'gw' }] },
    };
    const served = { prefix: '/apis/gateway.networking.k8s.io/v1', plural: 'httproutes', kind: 'HTTPRoute', itemsTyped: true };
    const { fake, store, begin } = await setup({
      resources: [...CORE_RESOURCES, ...istioResources('v1'), ...securityResources('v1'), ...telemetryResources('v1'), served],
    });
    fake.apply(route);
    const src = begin();
    await src.synced;
    await waitFor('the HTTPRoute in the store', () => names(store, 'HTTPRoute').includes('default/r'));
    // Gateways and ReferenceGrants are not served by this fake: looked for, and no list of them holds back sync.
    assert.ok(fake.requests.some((r) => r.path === '/apis/gateway.networking.k8s.io'));
    assert.deepEqual(names(store, 'KubernetesGateway'), []);
  });

  test('secrets are watched only in the gateway namespace, without token and Helm release types', async () => {
    const { fake, store, begin } = await setup();
    fake.apply(secret('istio-system', 'httpbin-credential', 'kubernetes.io/tls'));
    fake.apply(secret('istio-system', 'sa-token', 'kubernetes.io/service-account-token'));
    fake.apply(secret('default', 'elsewhere', 'kubernetes.io/tls'));
    const src = begin();
    await src.synced;
    assert.deepEqual(names(store, 'Secret'), ['istio-system/httpbin-credential']);
    const paths = new Set(fake.requests.filter((r) => r.path.endsWith('/secrets')).map((r) => r.path));
    assert.deepEqual([...paths], ['/api/v1/namespaces/istio-system/secrets']);
    assert.equal(fake.listRequests('secrets')[0]?.query.get('fieldSelector'), SECRET_FIELD_SELECTOR);
  });

  test('--watch-namespaces limits the namespaced watches to those namespaces plus the gateway namespace', async () => {
    const { fake, store, begin } = await setup({ namespaces: ['apps'] });
    fake.apply(svc('apps', 'a'));
    fake.apply(svc('other', 'b'));
    fake.apply(svc('istio-system', 'istio-ingressgateway'));
    const src = begin();
    await src.synced;
    assert.deepEqual(names(store, 'Service'), ['apps/a', 'istio-system/istio-ingressgateway']);
    const paths = [...new Set(fake.listRequests().map((r) => r.path))].sort();
    for (const p of paths) assert.match(p, /\/namespaces\/(apps|istio-system)\//);
    assert.equal(paths.length, 2 * 10 + 1, 'ten namespaced kinds in two namespaces, and secrets');
    fake.apply(svc('other', 'c'));
    fake.apply(svc('apps', 'd'));
    await waitFor('apps/d', () => names(store, 'Service').includes('apps/d'));
    assert.ok(!names(store, 'Service').includes('other/c'));
  });

  test("the controller's own Pod labels come from the registry, follow relabels, and vanish with the Pod", async () => {
    const { fake, begin } = await setup({ podName: 'gw-1' });
    fake.apply(pod('istio-system', 'gw-1', { istio: 'ingressgateway' }));
    const src = begin();
    await src.synced;
    assert.deepEqual(src.ownPodLabels(), { istio: 'ingressgateway' });
    await waitFor('watches open', () => fake.openWatches() === WATCHES);
    fake.apply(pod('istio-system', 'gw-1', { istio: 'ingressgateway', version: 'v2' }));
    await waitFor('relabel seen', () => src.ownPodLabels()?.version === 'v2');
    fake.remove('Pod', 'istio-system', 'gw-1');
    await waitFor('pod gone', () => src.ownPodLabels() === undefined || undefined);
  });

  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
});
