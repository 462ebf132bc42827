// The control loop's Translator: after an endpoints-only change it reuses the last listeners and routes
// (the same objects) and builds only clusters, endpoints and secrets; its output always equals a full
// translate(). Run over every golden input that has EndpointSlices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ObjectStore } from '../model/store.ts';
import { isKind, type Kind, type KubeObject } from '../model/objects.ts';
import type { GatewayIdentity } from '../xds/snapshot.ts';
import { Translator, translate } from './translate.ts';

const DIR = join(import.meta.dirname, 'testdata');

function load(file: string): { identity: GatewayIdentity; store: ObjectStore } {
  let identity: GatewayIdentity = { namespace: 'istio-system', podName: 'istio-ingressgateway-0', labels: { istio: 'ingressgateway' } };
  const store = new ObjectStore();
  for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const o = d.toJS() as (KubeObject & { identity?: GatewayIdentity }) | null;
    if (!o) continue;
    if (o.kind === 'Identity' && o.identity) identity = o.identity;
    else if (isKind(o.kind)) {
      o.metadata.namespace ??= 'default';
      store.upsert(o.kind, o);
    }
  }
  return { identity, store };
}

/** Flips the readiness of every endpoint of every EndpointSlice (a new object each, as a source delivers). */
function flipEndpoints(store: ObjectStore): void {
  for (const s of store.snapshot().byKind('EndpointSlice')) {
    const o = structuredClone(s.obj) as KubeObject & { endpoints?: { conditions?: { ready?: boolean } }[] };
    for (const e of o.endpoints ?? []) e.conditions = { ...e.conditions, ready: e.conditions?.ready === false };
    store.upsert('EndpointSlice', o);
  }
}

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.in.yaml') && readFileSync(join(DIR, f), 'utf8').includes('kind: EndpointSlice'))
  .sort();

test('there are golden inputs with EndpointSlices to run on', () => assert.ok(cases.length >= 3));

for (const file of cases) {
  test(`${file}: an EndpointSlice change reuses listeners and routes and equals a full translation`, () => {
    const { identity, store } = load(join(DIR, file));
    const t = new Translator();
    const first = t.translate(store.snapshot(), identity, undefined);
    assert.equal(t.reused, false, 'the first call builds everything');
    flipEndpoints(store);
    const snapshot = store.snapshot();
    const second = t.translate(snapshot, identity, new Set<Kind>(['EndpointSlice']));
    assert.equal(t.reused, true);
    assert.equal(second.resources.listeners, first.resources.listeners);
    assert.equal(second.resources.routes, first.resources.routes);
    assert.deepEqual(second, translate(snapshot, identity));
  });
}

test('a change of any other kind, of the identity, or of an unknown set builds everything', () => {
  const { identity, store } = load(join(DIR, 'httpbin-ingress.in.yaml'));
  const t = new Translator();
  t.translate(store.snapshot(), identity, undefined);
  const svc = store.snapshot().byKind('Service')[0]!.obj;
  store.upsert('Service', { ...svc, metadata: { ...svc.metadata, labels: { changed: 'yes' } } });
  const r = t.translate(store.snapshot(), identity, new Set<Kind>(['Service', 'EndpointSlice']));
  assert.equal(t.reused, false);
  assert.deepEqual(r, translate(store.snapshot(), identity));
  t.translate(store.snapshot(), { ...identity, labels: { ...identity.labels, extra: 'x' } }, new Set<Kind>(['EndpointSlice']));
  assert.equal(t.reused, false, 'identity changed');
  t.translate(store.snapshot(), identity, undefined);
  assert.equal(t.reused, false, 'changed kinds unknown');
});

test("a change of the gateway's own Pod builds everything (a targetPort by name resolves against it)", () => {
  const { identity, store } = load(join(DIR, 'httpbin-ingress.in.yaml'));
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: identity.podName, namespace: identity.namespace, labels: { ...identity.labels } },
    spec: {},
  };
  store.upsert('Pod', pod);
  const t = new Translator();
  t.translate(store.snapshot(), identity, undefined);
  store.upsert('Pod', { ...pod, metadata: { ...pod.metadata, labels: { ...pod.metadata.labels, rev: '2' } } });
  t.translate(store.snapshot(), identity, new Set<Kind>(['Pod']));
  assert.equal(t.reused, false);
});
