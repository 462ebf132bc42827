// External authorization against a real kube-apiserver, after Istio's "External Authorization" task: Istio's sample
// authorizer as a pod behind a Service with an http and a grpc port, its two extension providers in the gateway
// chart's mesh ConfigMap (the `meshConfig` value's ConfigMap, as the chart mounts it), and a CUSTOM
// AuthorizationPolicy on /headers applied through the API. The HTTP provider first, then the gRPC one by editing the
// policy: the authorizer's verdict decides, its 403 and body reach the client, the gRPC provider's headers reach the
// backend, and other paths are not checked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../controller/model/objects.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import { DENY_BODY } from '../lib/ext-authz-sample.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, RELEASES, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;
const AUTHZ_HTTP = 8000;
const AUTHZ_GRPC = 9000;

describe('kubernetes: CUSTOM AuthorizationPolicy with an external authorizer', () => {
  let s: Suite;
  let gw: GatewayPod;
  const get = (path: string, check?: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${check ? `x-ext-authz: ${check}\r\n` : ''}\r\n`);
  const policy = (provider: string): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'ext-authz', namespace: s.ns.gw },
    spec: {
      selector: { matchLabels: { istio: 'ingressgateway' } },
      action: 'CUSTOM',
      provider: { name: provider },
      rules: [{ to: [{ operation: { paths: ['/headers'] } }] }],
    },
  });
  const until = (what: string, path: string, check: string, status: number): Promise<RawResponse> =>
    eventually(
      what,
      async () => {
        const r = await get(path, check);
        return r.status === status ? r : undefined;
      },
      30_000,
      200,
    );
  /** httpbin's /headers answer, names compared without case. */
  const echoed = (r: RawResponse, name: string): unknown => {
    const headers = (JSON.parse(r.body.toString()) as { headers: Record<string, unknown> }).headers;
    return Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  };

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      const authz = await s.extAuthz('ext-authz-0', s.ns.app, { app: 'ext-authz' }, AUTHZ_HTTP, AUTHZ_GRPC);
      await s.service('ext-authz', s.ns.app, [authz], { app: 'ext-authz' }, [
        { name: 'http', port: AUTHZ_HTTP, targetPort: AUTHZ_HTTP },
        { name: 'grpc', port: AUTHZ_GRPC, targetPort: AUTHZ_GRPC },
      ]);
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' }));
      // What `--set meshConfig.extensionProviders=...` renders into the chart's ConfigMap.
      const service = `ext-authz.${s.ns.app}.svc.cluster.local`;
      await s.kube.apply({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${RELEASES.ingress.name}-mesh`, namespace: s.ns.gw },
        data: {
          mesh: [
            'extensionProviders:',
            '- name: sample-ext-authz-grpc',
            `  envoyExtAuthzGrpc: {service: ${service}, port: ${AUTHZ_GRPC}}`,
            '- name: sample-ext-authz-http',
            `  envoyExtAuthzHttp: {service: ${service}, port: "${AUTHZ_HTTP}", includeRequestHeadersInCheck: [x-ext-authz]}`,
            '',
          ].join('\n'),
        },
      });
      gw = await startIngressPod(s);
      await until('the route', '/headers', 'deny', 200);
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

  test("HTTP provider: the authorizer's 403 and body for x-ext-authz: deny, the backend for allow; other paths unchecked", async () => {
    await s.kube.apply(policy('sample-ext-authz-http'));
    const denied = await until('the CUSTOM policy', '/headers', 'deny', 403);
    assert.equal(denied.body.toString(), DENY_BODY);
    assert.equal(denied.header('x-ext-authz-check-result'), 'denied');
    assert.equal((await get('/headers', 'allow')).status, 200);
    assert.equal((await get('/ip', 'deny')).status, 200, 'a path outside the policy is not sent to the authorizer');
  });

  test('gRPC provider: the same verdicts, and the OkHttpResponse header reaches the backend', async () => {
    await s.kube.apply(policy('sample-ext-authz-grpc'));
    const ok = await eventually(
      'the gRPC provider',
      async () => {
        const r = await get('/headers', 'allow');
        return r.status === 200 && echoed(r, 'x-ext-authz-check-result') === 'allowed' ? r : undefined;
      },
      30_000,
      200,
    );
    assert.equal(echoed(ok, 'x-ext-authz'), 'allow');
    const denied = await get('/headers', 'deny');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.toString(), DENY_BODY);
  });
});
