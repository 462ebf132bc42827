// Gateway selection and the namespace rules end to end: objects served by a (fake) API server, the
// Kubernetes source, the pod identity (registry labels, labels file), and the model that selects Gateways
// and binds VirtualServices, as istiod does for a gateway pod.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../../cli/logger.ts';
import type { KubeObject } from '../../model/objects.ts';
import { buildPushContext } from '../../model/push-context.ts';
import { ObjectStore } from '../../model/store.ts';
import { virtualServicesForGateway } from '../../model/virtual-services.ts';
import { KubeClient } from './client.ts';
import { gatewayIdentity } from './identity.ts';
import { startKubeSource, type KubeSource } from './source.ts';
import { FakeApiServer } from './testing/fake-apiserver.ts';

const GW_LABELS = { app: 'istio-ingressgateway', istio: 'ingressgateway' };

const gateway = (namespace: string, name: string, selector: Record<string, string> | undefined, host: string): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { ...(selector ? { selector } : {}), servers: [{ port: { number: 80, name: `http-${name}`, protocol: 'HTTP' }, hosts: [host] }] },
});
const vs = (namespace: string, name: string, gateways: string[], host: string): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { hosts: [host], gateways, http: [{ route: [{ destination: { host: 'httpbin' } }] }] },
});

describe('gateway selection through the Kubernetes source and the model', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(podName: string, fileLabels: Record<string, string>) {
    const fake = new FakeApiServer();
    await fake.start();
    cleanups.push(() => fake.stop());
    fake.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'gw-1', namespace: 'istio-system', labels: GW_LABELS }, spec: { containers: [] } });
    fake.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'istio-ingressgateway', namespace: 'istio-system', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { selector: { istio: 'ingressgateway' }, ports: [{ name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    });
    fake.apply(gateway('default', 'match', { istio: 'ingressgateway' }, 'a.example.com'));
    fake.apply(gateway('default', 'egress', { istio: 'egressgateway' }, 'b.example.com'));
    fake.apply(gateway('team-b', 'other-namespace', { istio: 'ingressgateway' }, 'c.example.com'));
    fake.apply(gateway('team-b', 'no-selector', undefined, 'd.example.com'));
    fake.apply(gateway('default', 'needs-v2', { istio: 'ingressgateway', version: 'v2' }, 'e.example.com'));

    const dir = mkdtempSync(join(tmpdir(), 'meshgate-selection-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const labelsFile = join(dir, 'labels');
    writeFileSync(
      labelsFile,
      Object.entries(fileLabels)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join('\n'),
    );

    const kc = new KubeConfig();
    kc.loadFromString(fake.kubeconfig());
    const store = new ObjectStore();
    const source: KubeSource = startKubeSource({
      client: new KubeClient(kc),
      store,
      log: silentLogger(),
      podNamespace: 'istio-system',
      podName,
      timing: { backoffInitialMs: 20, backoffMaxMs: 100 },
    });
    cleanups.push(() => source.close());
    await source.synced;
    const identity = gatewayIdentity({ podName, podNamespace: 'istio-system', labelsFile, registryLabels: () => source.ownPodLabels(), log: silentLogger() });
    const selected = (): string[] => {
      const push = buildPushContext(store.snapshot(), identity());
      return [...push.merged.merged.values()].flatMap((m) => m.servers.map((s) => s.gatewayName)).sort();
    };
    return { fake, store, identity, selected };
  }

  test('Gateways whose selector is a subset of the registry pod labels apply, from every namespace; an empty selector applies to all', async () => {
    const { selected, store, identity } = await setup('gw-1', { istio: 'from-the-file' });
    assert.deepEqual(selected(), ['default/match', 'team-b/no-selector', 'team-b/other-namespace']);
    const push = buildPushContext(store.snapshot(), identity());
    assert.deepEqual(
      push.merged.serverPorts.map((p) => p.number),
      [8080],
      'port 80 is translated through the gateway Service found by its selector',
    );
  });

  test('relabelling the gateway pod in the API server changes which Gateways apply', async () => {
    const { fake, selected } = await setup('gw-1', {});
    await new Promise((r) => setTimeout(r, 50));
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'gw-1', namespace: 'istio-system', labels: { ...GW_LABELS, version: 'v2' } },
      spec: { containers: [] },
    });
    const deadline = Date.now() + 5_000;
    while (!selected().includes('default/needs-v2')) {
      if (Date.now() > deadline) throw new Error(`relabel not seen: ${selected().join(', ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(selected(), ['default/match', 'default/needs-v2', 'team-b/no-selector', 'team-b/other-namespace']);
  });

  test('a pod not found in the registry selects with the labels of its Downward API file', async () => {
    const { selected } = await setup('gw-not-registered', { istio: 'egressgateway' });
    assert.deepEqual(selected(), ['default/egress', 'team-b/no-selector']);
  });

  test('VirtualServices bind across namespaces with ns/name; a short gateway name resolves in the VirtualService namespace', async () => {
    const { fake, store, identity } = await setup('gw-1', {});
    fake.apply(vs('team-b', 'qualified', ['default/match'], 'a.example.com'));
    fake.apply(vs('team-b', 'short', ['match'], 'a.example.com'));
    fake.apply(vs('default', 'same-namespace', ['match'], 'a.example.com'));
    const deadline = Date.now() + 5_000;
    while (store.snapshot().byKind('VirtualService').length < 3) {
      if (Date.now() > deadline) throw new Error('VirtualServices not seen');
      await new Promise((r) => setTimeout(r, 20));
    }
    const push = buildPushContext(store.snapshot(), identity());
    const bound = virtualServicesForGateway(push.virtualServices, 'istio-system', 'default/match')
      .map((v) => `${v.namespace}/${v.name}`)
      .sort();
    assert.deepEqual(bound, ['default/same-namespace', 'team-b/qualified']);
  });
});
