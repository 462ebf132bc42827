// Status conditions against a real kube-apiserver: the controller, with exactly the chart's RBAC, writes its
// condition on an AuthorizationPolicy it refuses (while the gateway stays closed), keeps another writer's
// condition beside it, does not rewrite an unchanged condition, and removes its condition once the policy is fixed;
// a RequestAuthentication, a Telemetry and a VirtualService the same way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../controller/model/objects.ts';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { statusConditionType, type IstioCondition } from '../../controller/sources/kube/status.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;
const ALLOWED = '127.0.50.7';
const OTHER = '127.0.51.7';

const conditionsOf = (o: KubeObject | undefined): IstioCondition[] => (o?.status as { conditions?: IstioCondition[] } | undefined)?.conditions ?? [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kubernetes: status conditions on objects the gateway cannot honour', () => {
  let s: Suite;
  let gw: GatewayPod;
  let type: string;
  const get = (path: string, from: string, headers = ''): Promise<RawResponse> =>
    rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${headers}\r\n`, { localAddress: from });
  const allowFrom = (name: string, cidr: string): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: s.ns.gw },
    spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: [cidr] } }] }] },
  });
  const until = (what: string, path: string, from: string, status: number): Promise<RawResponse> =>
    eventually(
      what,
      async () => {
        const r = await get(path, from);
        return r.status === status ? r : undefined;
      },
      30_000,
      200,
    );
  const policy = (): Promise<KubeObject | undefined> => s.kube.get('AuthorizationPolicy', s.ns.gw, 'ingress-policy');
  const ours = async (): Promise<IstioCondition | undefined> => conditionsOf(await policy()).find((c) => c.type === type);

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' }));
      gw = await startIngressPod(s);
      await until('the route', '/status/200', OTHER, 200);
      // The chart's pod labels: app=istio-ingressgateway.
      type = statusConditionType(s.ns.gw, gw.pod.metadata.labels ?? {});
      assert.equal(type, `istio-ingressgateway.${s.ns.gw}.meshgate.io/Accepted`);
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

  test('a refused ALLOW policy gets a False condition with the error, and the gateway stays closed', async () => {
    await s.kube.apply(allowFrom('ingress-policy', '127.0.50.0/33'));
    const cond = await eventually('the condition on ingress-policy', ours, 30_000, 250);
    assert.equal(cond.status, 'False');
    assert.equal(cond.reason, 'Invalid');
    assert.match(cond.message ?? '', /^spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks: .*127\.0\.50\.0\/33/);
    assert.match(cond.message ?? '', /allows nothing, so the gateway does not fail open/);
    assert.equal(Number(cond.observedGeneration), (await policy())?.metadata.generation);
    assert.match(cond.lastTransitionTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Fails closed meanwhile: the client the policy meant to allow is refused too.
    await until('the refused ALLOW policy, closed', '/status/200', ALLOWED, 403);
    assert.equal((await get('/status/200', OTHER)).status, 403);
    // The same problem is also logged and recorded as an Event.
    assert.match(gw.controller?.output() ?? '', /status condition written/);
    const events = await s.kube.eventsFor('AuthorizationPolicy', s.ns.gw, 'ingress-policy');
    assert.ok(events.length > 0, 'a Warning Event too');
  });

  test('settled: no further writes (the resourceVersion stays)', async () => {
    const rv = (await policy())?.metadata.resourceVersion;
    await sleep(3_000);
    assert.equal((await policy())?.metadata.resourceVersion, rv);
  });

  test("another writer's condition (istiod's) is kept beside ours, and ours is put back when it is dropped", async () => {
    const istiod: IstioCondition = {
      type: 'WaypointAccepted',
      status: 'True',
      reason: 'Accepted',
      message: 'bound',
      lastTransitionTime: '2026-01-01T00:00:00Z',
    };
    // A writer that replaces the whole list, as a server-side apply of an atomic list does.
    await s.kube.mergePatch('AuthorizationPolicy', s.ns.gw, 'ingress-policy', { status: { conditions: [istiod] } }, 'status');
    const both = await eventually(
      'ours back beside istiod',
      async () => {
        const c = conditionsOf(await policy());
        return c.length === 2 ? c : undefined;
      },
      30_000,
      250,
    );
    assert.deepEqual(
      both.map((c) => c.type),
      ['WaypointAccepted', type],
    );
    assert.deepEqual(both[0], istiod);
  });

  test('fixed: the condition is removed (the other stays) and the policy is enforced as written', async () => {
    await s.kube.apply(allowFrom('ingress-policy', '127.0.50.0/24'));
    await eventually('our condition removed', async () => ((await ours()) === undefined ? true : undefined), 30_000, 250);
    assert.deepEqual(
      conditionsOf(await policy()).map((c) => c.type),
      ['WaypointAccepted'],
    );
    await until('the fixed ALLOW policy', '/status/200', ALLOWED, 200);
    assert.equal((await get('/status/200', OTHER)).status, 403);
    assert.match(gw.controller?.output() ?? '', /status condition cleared/);
  });

  test('refused again, then deleted: the condition goes with the object, and no write fails', async () => {
    await s.kube.apply(allowFrom('ingress-policy', '127.0.50.0/33'));
    await eventually('the condition again', ours, 30_000, 250);
    await s.kube.remove('AuthorizationPolicy', s.ns.gw, 'ingress-policy');
    await until('no policy: open', '/status/200', OTHER, 200);
    await sleep(1_000);
    assert.doesNotMatch(gw.controller?.output() ?? '', /could not write a status condition|cannot write status conditions/);
  });

  test('a refused RequestAuthentication: the condition says so, its tokens get 401 meanwhile; fixed, it is cleared', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const issuer = 'status@meshgate.example';
    const ra = (jwks: string): KubeObject => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: s.ns.gw },
      spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, jwtRules: [{ issuer, jwks }] },
    });
    const token = `Authorization: Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(issuer).setExpirationTime('1h').sign(privateKey)}\r\n`;
    const condition = async (): Promise<IstioCondition | undefined> =>
      conditionsOf(await s.kube.get('RequestAuthentication', s.ns.gw, 'jwt')).find((c) => c.type === type);

    await s.kube.apply(ra('{"keys": ['));
    const cond = await eventually('the condition on RequestAuthentication jwt', condition, 30_000, 250);
    assert.equal(cond.status, 'False');
    assert.match(cond.message ?? '', /^spec\.jwtRules\[0\]\.jwks: jwks parse error/);
    await eventually('its tokens refused', async () => ((await get('/status/200', OTHER, token)).status === 401 ? true : undefined), 30_000, 200);

    await s.kube.apply(ra(JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] })));
    await eventually('the condition removed', async () => ((await condition()) === undefined ? true : undefined), 30_000, 250);
    await eventually('its tokens verified', async () => ((await get('/status/200', OTHER, token)).status === 200 ? true : undefined), 30_000, 200);
  });

  test("a refused Telemetry (a filter that is not CEL) gets the condition with istiod's message; fixed, it is cleared", async () => {
    const telemetry = (expression: string): KubeObject => ({
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'logs', namespace: s.ns.gw },
      spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression } }] },
    });
    const condition = async (): Promise<IstioCondition | undefined> =>
      conditionsOf(await s.kube.get('Telemetry', s.ns.gw, 'logs')).find((c) => c.type === type);
    await s.kube.apply(telemetry('response.code >= '));
    const cond = await eventually('the condition on Telemetry logs', condition, 30_000, 250);
    assert.equal(cond.status, 'False');
    assert.match(cond.message ?? '', /^spec\.accessLogging\[0\]\.filter\.expression: must be a valid CEL expression/);
    await s.kube.apply(telemetry('response.code >= 400'));
    await eventually('the condition removed', async () => ((await condition()) === undefined ? true : undefined), 30_000, 250);
    await s.kube.remove('Telemetry', s.ns.gw, 'logs');
  });

  test('the other Istio kinds the same way: a VirtualService with an invalid regex, skipped, gets the condition', async () => {
    const vs = virtualService('bad-regex', s.ns.app, { hosts: ['bad.example.com'], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' });
    (vs.spec as { http: { match: unknown[] }[] }).http[0]!.match = [{ uri: { regex: '/(unclosed' } }];
    await s.kube.apply(vs);
    const cond = await eventually(
      'the condition on VirtualService bad-regex',
      async () => conditionsOf(await s.kube.get('VirtualService', s.ns.app, 'bad-regex')).find((c) => c.type === type),
      30_000,
      250,
    );
    assert.equal(cond.status, 'False');
    assert.match(cond.message ?? '', /^spec\.http\[0\]\.match\[0\]\.uri\.regex: /);
    await s.kube.remove('VirtualService', s.ns.app, 'bad-regex');
  });
});
