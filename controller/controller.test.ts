// The control loop end to end: store -> debounce -> translate -> errors reported once -> ADS server,
// observed through a real grpc-js ADS client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AdsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse } from '../xds/ads-service.ts';
import { unpackToJson } from '../xds/protos.ts';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../xds/type-urls.ts';
import { silentLogger } from '../cli/logger.ts';
import { ObjectStore } from './model/store.ts';
import type { KubeObject } from './model/objects.ts';
import type { ValidationError } from './model/validation.ts';
import { startController, type Controller } from './controller.ts';
import { PUBLIC_ONLY_JWKS } from './model/request-authentications.ts';
import { EventEmitter } from 'node:events';
import { DEFAULT_MESH_CONFIG, type MeshConfig, parseMeshConfig } from './model/mesh-config.ts';
import type { MeshConfigSource } from './sources/mesh-config-file.ts';

const AdsClient = grpc.makeGenericClientConstructor(AdsServiceDefinition, 'AggregatedDiscoveryService');
const identity = { namespace: 'istio-system', podName: 'gw-0', labels: { istio: 'ingressgateway' } };

const controllers: Controller[] = [];
const clients: grpc.Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const c of controllers) await c.close();
});

function gateway(name: string, port: number): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'default' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: port, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
  };
}

function service(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

async function setup(
  debounceMs = 100,
  mesh?: MeshConfigSource,
): Promise<{ store: ObjectStore; errors: ValidationError[]; controller: Controller; watch: (type: string) => () => DiscoveryResponse[] }> {
  const store = new ObjectStore();
  const errors: ValidationError[] = [];
  const controller = await startController({
    store,
    identity: () => identity,
    log: silentLogger(),
    xds: { host: '127.0.0.1', port: 0 },
    reporter: { report: (e) => errors.push(...e) },
    debounceMs,
    ...(mesh ? { mesh } : {}),
  });
  controllers.push(controller);
  const client = new AdsClient(`127.0.0.1:${controller.port}`, grpc.credentials.createInsecure());
  clients.push(client);
  const watch = (type: string): (() => DiscoveryResponse[]) => {
    const method = (client as unknown as Record<string, () => grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>>).StreamAggregatedResources;
    const call = method!.call(client);
    const got: DiscoveryResponse[] = [];
    call.on('data', (r: DiscoveryResponse) => {
      got.push(r);
      call.write({ version_info: r.version_info, resource_names: [], type_url: type, response_nonce: r.nonce });
    });
    call.on('error', () => undefined);
    call.write({
      version_info: '',
      resource_names: [],
      type_url: type,
      response_nonce: '',
      node: { id: 'router~127.0.0.1~gw-0.istio-system~istio-system.svc.cluster.local', cluster: 'gw', metadata: {} },
    });
    return () => got;
  };
  return { store, errors, controller, watch };
}

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const names = (r: DiscoveryResponse | undefined): string[] => (r?.resources ?? []).map((a) => String(unpackToJson(a).name));

test('nothing is served until markSynced, then the full translated state', async () => {
  const { store, controller, watch } = await setup();
  store.upsert('Gateway', gateway('gw', 8080));
  const lds = watch(LISTENER_TYPE);
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(lds().length, 0);
  controller.markSynced();
  await eventually(() => lds().length === 1);
  assert.deepEqual(names(lds()[0]), ['0.0.0.0_8080']);
});

test('a burst of store changes is debounced into one push that reflects the last state', async () => {
  const { store, controller, watch } = await setup(100);
  controller.markSynced();
  const cds = watch(CLUSTER_TYPE);
  await eventually(() => cds().length === 1);
  for (let i = 0; i < 10; i++) store.upsert('Service', service(`s${i}`));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(cds().length, 2, 'one push for the burst');
  assert.equal(names(cds()[1]).length, 11);
});

test('a source that never pauses still gets its changes out within a second', async () => {
  const { store, controller, watch } = await setup(100);
  controller.markSynced();
  const cds = watch(CLUSTER_TYPE);
  await eventually(() => cds().length === 1);
  const started = Date.now();
  let i = 0;
  const busy = setInterval(() => store.upsert('Service', service(`busy${i++}`)), 20);
  try {
    await eventually(() => cds().length >= 2, 1500);
  } finally {
    clearInterval(busy);
  }
  assert.ok(Date.now() - started < 1300, `pushed after ${Date.now() - started} ms`);
});

test('an invalid object is reported once, not on every push, and again after it was fixed and broken again', async () => {
  const { store, errors, controller } = await setup(10);
  controller.markSynced();
  const bad = gateway('bad', 80);
  (bad.spec as { servers: unknown[] }).servers = [];
  store.upsert('Gateway', bad);
  await eventually(() => errors.length === 1);
  assert.match(errors[0]?.message ?? '', /at least one server/);
  store.upsert('Service', service('unrelated'));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(errors.length, 1);
  store.upsert('Gateway', gateway('bad', 80));
  await new Promise((r) => setTimeout(r, 100));
  store.upsert('Gateway', bad);
  await eventually(() => errors.length === 2);
});

test('onErrors gets every error of every push (not only the new ones), and an empty list once all is fixed', async () => {
  const store = new ObjectStore();
  const seen: string[][] = [];
  const controller = await startController({
    store,
    identity: () => identity,
    log: silentLogger(),
    xds: { host: '127.0.0.1', port: 0 },
    reporter: { report: () => undefined },
    onErrors: (e) => seen.push(e.map((x) => `${x.kind}/${x.name}`)),
    debounceMs: 10,
  });
  controllers.push(controller);
  controller.markSynced();
  const bad = gateway('bad', 80);
  (bad.spec as { servers: unknown[] }).servers = [];
  store.upsert('Gateway', bad);
  await eventually(() => seen.at(-1)?.includes('Gateway/bad') === true);
  const pushes = seen.length;
  store.upsert('Service', service('unrelated'));
  await eventually(() => seen.length > pushes);
  assert.deepEqual(seen.at(-1), ['Gateway/bad'], 'the same error again, for the status writer to compare');
  store.upsert('Gateway', gateway('bad', 80));
  await eventually(() => seen.at(-1)?.length === 0);
});

/** The JWKS (local_jwks.inline_string) of the first provider of the first listener of an LDS response. */
function inlineKeys(r: DiscoveryResponse | undefined): unknown {
  const listener = unpackToJson(r?.resources?.[0] ?? { type_url: '', value: Buffer.alloc(0) }) as {
    filter_chains: {
      filters: { typed_config: { http_filters: { name: string; typed_config: { providers: Record<string, { local_jwks: { inline_string: string } }> } }[] } }[];
    }[];
  };
  const jwt = listener.filter_chains[0]?.filters[0]?.typed_config.http_filters.find((f) => f.name === 'envoy.filters.http.jwt_authn');
  return jwt?.typed_config.providers['origins-0']?.local_jwks.inline_string;
}

const requestAuthentication = (name: string, jwksUri: string): KubeObject => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'RequestAuthentication',
  metadata: { name, namespace: 'istio-system' },
  spec: { jwtRules: [{ issuer: name, jwksUri }] },
});

test('JWKS: the first config waits for the fetches its RequestAuthentications start; a later one is pushed at once with the never-verifying JWKS, then again with the keys', async () => {
  const keys = '{"keys":[{"kty":"RSA","kid":"k","e":"AQAB","n":"AQAB"}]}';
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const jwksServer = http.createServer((req, res) => {
    // /held answers only once the test has seen the push without the keys.
    if (req.url === '/held') void held.then(() => res.end(keys));
    else res.end(keys);
  });
  jwksServer.listen(0, '127.0.0.1');
  await once(jwksServer, 'listening');
  const base = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  try {
    const { store, controller, watch } = await setup(10);
    store.upsert('Gateway', gateway('gw', 8080));
    store.upsert('RequestAuthentication', requestAuthentication('a-first', `${base}/jwks`));
    const lds = watch(LISTENER_TYPE);
    controller.markSynced();
    await eventually(() => lds().length === 1);
    assert.equal(inlineKeys(lds()[0]), keys, 'the first config has the keys');
    store.delete('RequestAuthentication', 'istio-system', 'a-first');
    store.upsert('RequestAuthentication', requestAuthentication('b-later', `${base}/held`));
    await eventually(() => inlineKeys(lds().at(-1)) === PUBLIC_ONLY_JWKS);
    release();
    await eventually(() => inlineKeys(lds().at(-1)) === keys);
  } finally {
    release();
    jwksServer.closeAllConnections();
    jwksServer.close();
  }
});

/** A mesh config source the test switches by hand. */
class TestMesh extends EventEmitter implements MeshConfigSource {
  mesh: MeshConfig = DEFAULT_MESH_CONFIG;
  current(): MeshConfig {
    return this.mesh;
  }
  set(yaml: string): void {
    const r = parseMeshConfig(yaml);
    if (!r.ok) throw new Error(r.errors.join('; '));
    this.mesh = r.mesh;
    this.emit('change');
  }
}

test('a new mesh config is pushed at once: a CUSTOM policy that failed closed gets its ext_authz provider', async () => {
  const mesh = new TestMesh();
  const { store, controller, watch } = await setup(10, mesh);
  store.upsert('Gateway', gateway('gw', 8080));
  store.upsert('Service', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'authz', namespace: 'foo' },
    spec: { ports: [{ name: 'http', port: 8000 }] },
  });
  store.upsert('AuthorizationPolicy', {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'ext', namespace: 'istio-system' },
    spec: { action: 'CUSTOM', provider: { name: 'ext' }, rules: [{ to: [{ operation: { paths: ['/headers'] } }] }] },
  });
  controller.markSynced();
  const lds = watch(LISTENER_TYPE);
  const last = (): string =>
    JSON.stringify(
      lds()
        .at(-1)
        ?.resources?.map((a) => unpackToJson(a)) ?? [],
    );
  await eventually(() => last().includes('deny-due-to-bad-CUSTOM-action'));
  mesh.set('extensionProviders:\n- name: ext\n  envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 8000}\n');
  await eventually(() => last().includes('envoy.filters.http.ext_authz'));
  assert.ok(last().includes('outbound|8000||authz.foo.svc.cluster.local'));
  assert.ok(!last().includes('deny-due-to-bad-CUSTOM-action'));
});
