// numTrustedProxies in Kubernetes: the gateway Deployment's pod template carries proxy.istio.io/config (what the
// chart's podAnnotations renders), the Downward API annotations file the chart mounts hands it to the controller
// when the pod starts, and the gateway then takes the last X-Forwarded-For address as the client:
// x-envoy-external-address upstream and AuthorizationPolicy remoteIpBlocks follow it; ipBlocks keep the peer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../controller/model/objects.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, RELEASES, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;
const PEER = '127.0.52.7';

describe('kubernetes: numTrustedProxies from the gateway pod annotation proxy.istio.io/config', () => {
  let s: Suite;
  let gw: GatewayPod;
  const get = (path: string, xff?: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${xff === undefined ? '' : `X-Forwarded-For: ${xff}\r\n`}\r\n`, {
      localAddress: PEER,
    });
  const policy = (name: string, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: s.ns.gw },
    spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, ...spec },
  });

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' }));
      // As `helm upgrade --set-json podAnnotations=...` would render it (charts/tests covers the rendering).
      await s.kube.mergePatch('Deployment', s.ns.gw, RELEASES.ingress.name, {
        spec: { template: { metadata: { annotations: { 'proxy.istio.io/config': '{"gatewayTopology":{"numTrustedProxies":1}}' } } } },
      });
      gw = await startIngressPod(s);
      await eventually('the route', async () => ((await get('/headers')).status === 200 ? true : undefined), 30_000, 200);
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

  test('the last X-Forwarded-For address reaches the backend as x-envoy-external-address', async () => {
    const r = await get('/headers', '198.51.100.1, 203.0.113.5');
    assert.equal(r.status, 200);
    const headers = (JSON.parse(r.body.toString()) as { headers: Record<string, string | string[]> }).headers;
    const value = Object.entries(headers).find(([k]) => k.toLowerCase() === 'x-envoy-external-address')?.[1];
    assert.equal(Array.isArray(value) ? value[0] : value, '203.0.113.5');
  });

  test('remoteIpBlocks match the client from X-Forwarded-For; ipBlocks the peer', async () => {
    await s.kube.apply(
      policy('clients', {
        action: 'ALLOW',
        rules: [
          { from: [{ source: { remoteIpBlocks: ['203.0.113.0/24'] } }], to: [{ operation: { paths: ['/status/200'] } }] },
          { from: [{ source: { ipBlocks: ['127.0.52.0/24'] } }], to: [{ operation: { paths: ['/status/201'] } }] },
        ],
      }),
    );
    await eventually('the policy', async () => ((await get('/status/200')).status === 403 ? true : undefined), 30_000, 200);
    assert.equal((await get('/status/200', '203.0.113.5')).status, 200);
    assert.equal((await get('/status/200', '203.0.113.5, 192.0.2.1')).status, 403);
    assert.equal((await get('/status/201', '192.0.2.1')).status, 201);
  });
});
