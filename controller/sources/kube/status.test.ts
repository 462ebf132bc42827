// Status conditions on rejected Istio objects, against the fake API server: what is written, that nothing is
// written twice, that other writers' conditions survive, and the API's answers (409, 403, 404, 5xx).
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { KubeObject } from '../../model/objects.ts';
import { ObjectStore } from '../../model/store.ts';
import type { ValidationError } from '../../model/validation.ts';
import { KubeClient } from './client.ts';
import { kubeSourceMetrics } from './metrics.ts';
import { startKubeSource } from './source.ts';
import { conditionFor, createStatusWriter, nextConditions, STATUS_REASON, statusConditionType, UNSUPPORTED_REASON, type IstioCondition } from './status.ts';
import { CORE_RESOURCES, FakeApiServer, istioResources, securityResources, telemetryResources, type RequestRecord } from './testing/fake-apiserver.ts';

const TYPE = 'istio-ingressgateway.istio-system.meshgate.io/Accepted';

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

const policy = (name: string, extra: Partial<KubeObject> = {}): KubeObject => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'istio-system' },
  spec: { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] },
  ...extra,
});
const badIp = (name: string): ValidationError => ({
  kind: 'AuthorizationPolicy',
  namespace: 'istio-system',
  name,
  origin: {},
  field: 'spec.rules[0].from[0].source.ipBlocks[0]',
  message: 'invalid CIDR "10.0.0.0/33"; enforced as DENY of every request',
});
const istiodCondition: IstioCondition = {
  type: 'WaypointAccepted',
  status: 'True',
  reason: 'Accepted',
  message: 'bound to default/waypoint',
  lastTransitionTime: '2026-01-01T00:00:00Z',
};

const conditionsOf = (o: KubeObject | undefined): IstioCondition[] => (o?.status as { conditions?: IstioCondition[] } | undefined)?.conditions ?? [];
const ours = (o: KubeObject | undefined): IstioCondition | undefined => conditionsOf(o).find((c) => c.type === TYPE);
const patches = (fake: FakeApiServer): RequestRecord[] => fake.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status'));

describe('status condition helpers', () => {
  const typeCases: { name: string; ns: string; labels: Record<string, string>; want: string }[] = [
    { name: 'app label of the chart', ns: 'istio-system', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' }, want: TYPE },
    { name: 'istio label without app', ns: 'gw', labels: { istio: 'egressgateway' }, want: 'egressgateway.gw.meshgate.io/Accepted' },
    { name: 'label value made a DNS label', ns: 'gw', labels: { app: 'My_Gateway.v2' }, want: 'my-gateway-v2.gw.meshgate.io/Accepted' },
    { name: 'no labels', ns: 'gw', labels: {}, want: 'gateway.gw.meshgate.io/Accepted' },
  ];
  for (const c of typeCases) test(`condition type: ${c.name}`, () => assert.equal(statusConditionType(c.ns, c.labels), c.want));

  test('the message lists every error once, sorted, field first, and is capped', () => {
    const c = conditionFor(TYPE, [badIp('p'), { ...badIp('p'), field: 'spec.action', message: 'b' }, badIp('p')], 3);
    assert.deepEqual(c, {
      type: TYPE,
      status: 'False',
      reason: STATUS_REASON,
      message: 'spec.action: b\nspec.rules[0].from[0].source.ipBlocks[0]: invalid CIDR "10.0.0.0/33"; enforced as DENY of every request',
      observedGeneration: 3,
    });
    const many = Array.from({ length: 200 }, (_, i) => ({ ...badIp('p'), field: `spec.rules[${String(i).padStart(3, '0')}]` }));
    const capped = conditionFor(TYPE, many, 1).message ?? '';
    assert.ok(capped.length <= 4096, `${capped.length}`);
    assert.match(capped, /\n\(\d+ more: see the controller log or the object's Events\)$/);
  });

  test('nothing to write when the condition differs only in lastTransitionTime', () => {
    const want = conditionFor(TYPE, [badIp('p')], 1);
    const obj = policy('p', { status: { conditions: [istiodCondition, { ...want, lastTransitionTime: '2026-01-02T00:00:00Z' }] } });
    assert.equal(nextConditions(obj, want, TYPE, '2026-12-01T00:00:00Z'), undefined);
    assert.equal(nextConditions(policy('p'), undefined, TYPE, 'now'), undefined, 'no condition and none wanted');
  });

  test('a new message keeps the transition time and the other writers entries in place', () => {
    const old = { ...conditionFor(TYPE, [badIp('p')], 1), lastTransitionTime: '2026-01-02T00:00:00Z' };
    const obj = policy('p', { status: { conditions: [old, istiodCondition] } });
    const next = nextConditions(obj, conditionFor(TYPE, [badIp('p')], 2), TYPE, '2026-12-01T00:00:00Z');
    assert.deepEqual(next, [{ ...old, observedGeneration: 2 }, istiodCondition]);
    assert.deepEqual(nextConditions(obj, undefined, TYPE, 'now'), [istiodCondition], 'cleared: only ours goes');
  });
});

describe('status conditions on rejected objects', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(objects: KubeObject[], opts: { minIntervalMs?: number; enable?: boolean } = {}) {
    const fake = new FakeApiServer();
    await fake.start();
    cleanups.push(() => fake.stop());
    for (const o of objects) fake.apply(o);
    const kc = new KubeConfig();
    kc.loadFromString(fake.kubeconfig());
    const client = new KubeClient(kc);
    const store = new ObjectStore();
    const lines: { level: number; msg: string; kind?: string }[] = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
    const registry = new Registry();
    const metrics = kubeSourceMetrics(registry);
    const source = startKubeSource({ client, podNamespace: 'istio-system', store, log, timing: { backoffInitialMs: 40, backoffMaxMs: 320 } });
    cleanups.push(() => source.close());
    await source.synced;
    const newWriter = (): ReturnType<typeof createStatusWriter> => {
      const w = createStatusWriter({
        client,
        log,
        snapshot: () => store.snapshot(),
        conditionType: () => TYPE,
        metrics,
        minIntervalMs: opts.minIntervalMs ?? 0,
        retryMs: 50,
        now: () => new Date('2026-12-07T10:00:00.500Z'),
      });
      cleanups.push(() => w.close());
      if (opts.enable !== false) w.enable();
      return w;
    };
    return { fake, store, lines, registry, writer: newWriter(), newWriter };
  }

  test('an invalid AuthorizationPolicy gets a False condition; istiod conditions and validationMessages stay', async () => {
    const validationMessages = [{ level: 'ERROR', type: { code: 'IST0101', name: 'ReferencedResourceNotFound' } }];
    const { fake, writer } = await setup([policy('deny-bad', { status: { conditions: [istiodCondition], validationMessages } })]);
    writer.update([badIp('deny-bad')]);
    await writer.idle();
    const obj = fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad');
    assert.deepEqual(ours(obj), {
      type: TYPE,
      status: 'False',
      reason: 'Invalid',
      message: 'spec.rules[0].from[0].source.ipBlocks[0]: invalid CIDR "10.0.0.0/33"; enforced as DENY of every request',
      observedGeneration: 1,
      lastTransitionTime: '2026-12-07T10:00:00Z',
    });
    assert.deepEqual(conditionsOf(obj)[0], istiodCondition, 'the other writer keeps its entry, first');
    assert.deepEqual((obj?.status as { validationMessages?: unknown }).validationMessages, validationMessages);
    const [p] = patches(fake);
    assert.equal(p?.path, '/apis/security.istio.io/v1/namespaces/istio-system/authorizationpolicies/deny-bad/status');
    assert.equal((p?.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion !== undefined, true, 'written with a precondition');
  });

  test('the same errors on every push, and a second replica, write nothing more', async () => {
    const { fake, store, writer, newWriter } = await setup([policy('deny-bad')]);
    writer.update([badIp('deny-bad')]);
    await writer.idle();
    await waitFor('the store has the written status', () => ours(store.snapshot().byKind('AuthorizationPolicy')[0]?.obj));
    writer.update([badIp('deny-bad')]);
    const replica = newWriter();
    replica.update([badIp('deny-bad')]);
    await writer.idle();
    await replica.idle();
    await sleep(50);
    assert.equal(patches(fake).length, 1, JSON.stringify(patches(fake)));
  });

  test('before the store is synced (enable) nothing is written; then the last errors are', async () => {
    const { fake, writer } = await setup([policy('deny-bad')], { enable: false });
    writer.update([badIp('deny-bad')]);
    await sleep(50);
    assert.equal(patches(fake).length, 0);
    writer.enable();
    await writer.idle();
    assert.ok(ours(fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad')));
  });

  test('fixed: the condition is removed, other conditions stay; a new error changes the message', async () => {
    const { fake, store, writer } = await setup([policy('deny-bad', { status: { conditions: [istiodCondition] } })]);
    writer.update([badIp('deny-bad')]);
    await writer.idle();
    await waitFor('written', () => ours(store.snapshot().byKind('AuthorizationPolicy')[0]?.obj));
    fake.apply(policy('deny-bad', { spec: { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] } }));
    await waitFor('generation 2 in the store', () => store.snapshot().byKind('AuthorizationPolicy')[0]?.obj.metadata.generation === 2);
    writer.update([]);
    await writer.idle();
    const obj = fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad');
    assert.deepEqual(conditionsOf(obj), [istiodCondition]);

    writer.update([{ ...badIp('deny-bad'), message: 'another problem' }]);
    await writer.idle();
    assert.equal(ours(fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad'))?.message, 'spec.rules[0].from[0].source.ipBlocks[0]: another problem');
    assert.equal(ours(fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad'))?.observedGeneration, 2);
  });

  test('a condition left by an earlier run is cleared once the object is valid (level-triggered)', async () => {
    const stale = { ...conditionFor(TYPE, [badIp('p')], 1), lastTransitionTime: '2026-01-01T00:00:00Z' };
    const { fake, writer } = await setup([policy('p', { status: { conditions: [stale, istiodCondition] } })]);
    writer.update([]);
    await writer.idle();
    assert.deepEqual(conditionsOf(fake.get('AuthorizationPolicy', 'istio-system', 'p')), [istiodCondition]);
  });

  test('409: the object is read again and the write retried on the fresh copy', async () => {
    const { fake, writer, registry } = await setup([policy('deny-bad')]);
    fake.fail(409, (r) => r.method === 'PATCH', 1);
    writer.update([badIp('deny-bad')]);
    await writer.idle();
    assert.ok(ours(fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad')));
    assert.ok(fake.requests.some((r) => r.method === 'GET' && r.path.endsWith('/authorizationpolicies/deny-bad')));
    assert.match(await registry.metrics(), /meshgate_controller_k8s_status_writes_total\{result="conflict"\} 1/);
  });

  test('a real conflict: another writer changed the status in between; its entry is kept', async () => {
    const { fake, writer } = await setup([policy('deny-bad')]);
    // The store's copy is now stale: the write from it is refused, the object read again, and both entries kept.
    fake.fail(409, (r) => r.method === 'PATCH', 0);
    const cur = fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad');
    assert.ok(cur);
    const res = await fetch(`http://127.0.0.1:${fake.port}/apis/security.istio.io/v1/namespaces/istio-system/authorizationpolicies/deny-bad/status`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ status: { conditions: [istiodCondition] } }),
    });
    assert.equal(res.status, 200);
    writer.update([badIp('deny-bad')]);
    await writer.idle();
    const types = conditionsOf(fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad')).map((c) => c.type);
    assert.deepEqual(types, ['WaypointAccepted', TYPE]);
  });

  test('403: logged once, no retry storm, the other kinds still written', async () => {
    const vs: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'bad-regex', namespace: 'default' },
      spec: { hosts: ['a'] },
    };
    const { fake, writer, lines } = await setup([policy('a'), policy('b'), vs]);
    fake.fail(403, (r) => r.method === 'PATCH' && r.path.includes('/authorizationpolicies/'), 10);
    const vsError: ValidationError = { kind: 'VirtualService', namespace: 'default', name: 'bad-regex', origin: {}, message: 'bad' };
    writer.update([badIp('a'), badIp('b'), vsError]);
    await writer.idle();
    writer.update([badIp('a'), badIp('b'), vsError, { ...badIp('a'), message: 'changed' }]);
    await writer.idle();
    assert.equal(patches(fake).filter((r) => r.path.includes('/authorizationpolicies/')).length, 1, 'one try for the kind, then a pause');
    assert.equal(lines.filter((l) => l.msg.startsWith('cannot write status conditions')).length, 1);
    assert.ok(ours(fake.get('VirtualService', 'default', 'bad-regex')));
  });

  test('404: an object deleted before the write is dropped', async () => {
    const { fake, writer, registry } = await setup([policy('gone')]);
    fake.fail(404, (r) => r.method === 'PATCH', 1);
    writer.update([badIp('gone')]);
    await writer.idle();
    assert.equal(patches(fake).length, 1);
    assert.match(await registry.metrics(), /meshgate_controller_k8s_status_writes_total\{result="gone"\} 1/);
  });

  test('5xx: retried with backoff until it succeeds', async () => {
    const { fake, writer } = await setup([policy('deny-bad')]);
    fake.fail(500, (r) => r.method === 'PATCH', 2);
    writer.update([badIp('deny-bad')]);
    await waitFor('written after two failures', () => ours(fake.get('AuthorizationPolicy', 'istio-system', 'deny-bad')));
    assert.equal(patches(fake).length, 3);
    const gaps = patches(fake)
      .map((r) => r.at)
      .slice(1)
      .map((t, i) => t - (patches(fake)[i]?.at ?? 0));
    assert.ok(gaps.every((g) => g >= 40) && (gaps[1] ?? 0) > (gaps[0] ?? 0), `backoff grows: ${gaps.join(', ')}`);
  });

  test('writes are rate-limited', async () => {
    const { fake, writer } = await setup([policy('a'), policy('b'), policy('c')], { minIntervalMs: 60 });
    writer.update([badIp('a'), badIp('b'), badIp('c')]);
    await writer.idle();
    const at = patches(fake).map((r) => r.at);
    assert.equal(at.length, 3);
    for (let i = 1; i < at.length; i++) assert.ok((at[i] ?? 0) - (at[i - 1] ?? 0) >= 40, `gap ${(at[i] ?? 0) - (at[i - 1] ?? 0)} ms`);
  });

  test('errors of objects without a status subresource (Secrets, files) are ignored', async () => {
    const { fake, writer } = await setup([policy('p')]);
    writer.update([{ kind: 'Secret', namespace: 'istio-system', name: 'cert', origin: {}, message: 'no tls.crt' }]);
    await writer.idle();
    assert.equal(patches(fake).length, 0);
  });
});

describe('status conditions on objects of kinds meshgate does not implement', () => {
  test('an EnvoyFilter and a WasmPlugin get an Unsupported condition, written once per generation, without the kinds delaying sync', async () => {
    const fake = new FakeApiServer([
      ...CORE_RESOURCES,
      ...istioResources('v1'),
      ...securityResources('v1'),
      ...telemetryResources('v1'),
      { prefix: '/apis/networking.istio.io/v1alpha3', plural: 'envoyfilters', kind: 'EnvoyFilter', itemsTyped: true },
      { prefix: '/apis/extensions.istio.io/v1alpha1', plural: 'wasmplugins', kind: 'WasmPlugin', itemsTyped: true },
    ]);
    await fake.start();
    const filter: KubeObject = {
      apiVersion: 'networking.istio.io/v1alpha3',
      kind: 'EnvoyFilter',
      metadata: { name: 'lua', namespace: 'istio-system' },
      spec: { priority: 1 },
    };
    fake.apply(filter);
    fake.apply({
      apiVersion: 'extensions.istio.io/v1alpha1',
      kind: 'WasmPlugin',
      metadata: { name: 'wasm', namespace: 'istio-system' },
      spec: { url: 'oci://x' },
    });
    const kc = new KubeConfig();
    kc.loadFromString(fake.kubeconfig());
    const client = new KubeClient(kc);
    const store = new ObjectStore();
    const log = pino({ level: 'silent' });
    const source = startKubeSource({ client, podNamespace: 'istio-system', store, log, timing: { backoffInitialMs: 40, backoffMaxMs: 320 } });
    const writer = createStatusWriter({
      client,
      log,
      snapshot: () => store.snapshot(),
      conditionType: () => TYPE,
      minIntervalMs: 0,
      now: () => new Date('2026-12-07T10:00:00Z'),
    });
    try {
      // TrafficExtension and the other kinds are not served here (a cluster with older CRDs): sync does not wait for them.
      await source.synced;
      writer.enable();
      const push = (): void => writer.update([]);
      await waitFor('both objects in the store', () => store.snapshot().byKind('EnvoyFilter').length + store.snapshot().byKind('WasmPlugin').length === 2);
      push();
      await writer.idle();
      assert.deepEqual(ours(fake.get('EnvoyFilter', 'istio-system', 'lua')), {
        type: TYPE,
        status: 'False',
        reason: UNSUPPORTED_REASON,
        message: 'EnvoyFilter is not implemented by meshgate: this gateway ignores it (docs/install.md#crds)',
        observedGeneration: 1,
        lastTransitionTime: '2026-12-07T10:00:00Z',
      });
      assert.equal(ours(fake.get('WasmPlugin', 'istio-system', 'wasm'))?.reason, UNSUPPORTED_REASON);
      assert.equal(patches(fake).length, 2);
      await waitFor('the store has the written status', () => ours(store.snapshot().byKind('EnvoyFilter')[0]?.obj));
      push();
      await writer.idle();
      assert.equal(patches(fake).length, 2, 'the same generation is not written again');
      fake.apply({ ...filter, spec: { priority: 2 } });
      await waitFor('generation 2 in the store', () => store.snapshot().byKind('EnvoyFilter')[0]?.obj.metadata.generation === 2);
      push();
      await writer.idle();
      assert.equal(ours(fake.get('EnvoyFilter', 'istio-system', 'lua'))?.observedGeneration, 2);
      assert.equal(patches(fake).length, 3);
    } finally {
      writer.close();
      await source.close();
      await fake.stop();
    }
  });
});
