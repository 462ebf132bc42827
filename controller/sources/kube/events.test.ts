import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../cli/logger.ts';
import type { KubeObject } from '../../model/objects.ts';
import type { ValidationError } from '../../model/validation.ts';
import { KubeClient } from './client.ts';
import { createEventReporter, EVENT_REASON } from './events.ts';
import { kubeSourceMetrics } from './metrics.ts';
import { FakeApiServer } from './testing/fake-apiserver.ts';

describe('Events for invalid configuration', () => {
  let fake: FakeApiServer;
  afterEach(async () => fake.stop());

  async function setup(objects: Record<string, KubeObject>) {
    fake = new FakeApiServer();
    await fake.start();
    const kc = new KubeConfig();
    kc.loadFromString(fake.kubeconfig());
    const registry = new Registry();
    const reporter = createEventReporter({
      client: new KubeClient(kc),
      log: silentLogger(),
      instance: 'gw-1',
      metrics: kubeSourceMetrics(registry),
      index: () => (kind, ns, name) => objects[`${kind}/${ns}/${name}`],
      now: () => new Date('2026-11-23T10:00:00.123Z'),
    });
    return { reporter, registry };
  }

  const vs = (rv: string): KubeObject => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'bad-regex', namespace: 'default', uid: 'uid-vs', resourceVersion: rv },
  });
  const err: ValidationError = {
    kind: 'VirtualService',
    namespace: 'default',
    name: 'bad-regex',
    origin: {},
    field: 'spec.http[0].match[0].uri.regex',
    message: 'invalid regex "/(unclosed": missing )',
  };

  test('an error becomes one Warning Event on the object, with its uid, field and reason', async () => {
    const { reporter } = await setup({ 'VirtualService/default/bad-regex': vs('7') });
    reporter.report([err]);
    await reporter.flush();
    const events = [...fake.events.values()];
    assert.equal(events.length, 1);
    const ev = events[0] as Record<string, unknown>;
    assert.deepEqual(ev.involvedObject, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      name: 'bad-regex',
      namespace: 'default',
      uid: 'uid-vs',
      resourceVersion: '7',
    });
    assert.equal(ev.type, 'Warning');
    assert.equal(ev.reason, EVENT_REASON);
    assert.equal(ev.message, 'spec.http[0].match[0].uri.regex: invalid regex "/(unclosed": missing )');
    assert.equal(ev.count, 1);
    assert.equal(ev.firstTimestamp, '2026-11-23T10:00:00Z');
    assert.deepEqual(ev.source, { component: 'meshgate-controller', host: 'gw-1' });
    assert.match((ev.metadata as { name: string }).name, /^bad-regex\.[0-9a-f]+$/);
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, 1);
    assert.equal(fake.requests[0]?.path, '/api/v1/namespaces/default/events');
  });

  test('the same error on every push is recorded once per resourceVersion; a new resourceVersion with the same error patches the count', async () => {
    const objects = { 'VirtualService/default/bad-regex': vs('7') };
    const { reporter, registry } = await setup(objects);
    for (let push = 0; push < 5; push++) reporter.report([err]);
    await reporter.flush();
    assert.equal(fake.requests.length, 1, 'five pushes, one request');
    objects['VirtualService/default/bad-regex'] = vs('8'); // edited, still broken
    reporter.report([err]);
    reporter.report([err]);
    await reporter.flush();
    assert.equal(fake.events.size, 1);
    const patches = fake.requests.filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, 1);
    assert.equal([...fake.events.values()][0]?.count, 2);
    const metrics = await registry.metrics();
    assert.match(metrics, /meshgate_controller_k8s_config_events_total\{result="created"\} 1/);
    assert.match(metrics, /meshgate_controller_k8s_config_events_total\{result="patched"\} 1/);
  });

  test('a different message on the same object is a separate Event; an expired Event is created again', async () => {
    const objects = { 'VirtualService/default/bad-regex': vs('7') };
    const { reporter } = await setup(objects);
    reporter.report([err, { ...err, field: 'spec.hosts', message: 'at least one host is required' }]);
    await reporter.flush();
    assert.equal(fake.events.size, 2);
    fake.events.clear(); // the API server's TTL removed them
    objects['VirtualService/default/bad-regex'] = vs('9');
    reporter.report([err]);
    await reporter.flush();
    assert.equal(fake.events.size, 1, 'PATCH answered 404, so the Event was created again');
    assert.equal([...fake.events.values()][0]?.count, 1);
  });

  test('an unreachable API server loses the Event but never throws into the push', async () => {
    const { reporter, registry } = await setup({});
    await fake.stop();
    assert.doesNotThrow(() => reporter.report([err]));
    await reporter.flush();
    assert.match(await registry.metrics(), /meshgate_controller_k8s_config_events_total\{result="failed"\} 1/);
    await fake.start();
  });
});
