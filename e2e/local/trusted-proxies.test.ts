// Trusted proxies in local mode: the gateway pod's proxy.istio.io/config annotation (`meshgate local --proxy-config`)
// sets gatewayTopology.numTrustedProxies, which istiod turns into the HCM's xff_num_trusted_hops. With one trusted
// proxy in front, the client address is the last x-forwarded-for entry: it reaches the backend as
// x-envoy-external-address, and AuthorizationPolicy remoteIpBlocks (remote.ip) match it, while ipBlocks keep
// matching the peer of the connection. A gateway with the default (no proxy trusted) ignores x-forwarded-for for both.
// Real processes, real sockets; each client on its own loopback address.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort, meshgate } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'httpbin.example.com';
const BACKEND_IP = '127.0.46.1';
/** The load balancer in front of the gateway: a peer ipBlocks allow. */
const LB = '127.0.47.2';
/** Some other peer. */
const OTHER_PEER = '127.0.46.9';

const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-clients, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]
    to: [{operation: {paths: ["/remote"]}}]
  - from: [{source: {ipBlocks: ["127.0.47.0/24"]}}]
    to: [{operation: {paths: ["/direct"]}}]
  - to: [{operation: {paths: ["/headers"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{from: [{source: {remoteIpBlocks: ["203.0.113.66/32"]}}]}]
`;

async function configure(gw: Gateway, backend: Backend): Promise<void> {
  gw.write('10-gateway.yaml', gatewayYaml('httpbin-gateway', [HOST]));
  gw.write('20-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
  gw.write('30-vs.yaml', virtualServiceYaml('httpbin', HOST, 'httpbin-gateway', 'httpbin'));
  gw.write('40-policies.yaml', POLICIES);
  const probe = (): Promise<RawResponse> => rawRequest('127.0.0.1', gw.port, `GET /nothing HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  await eventually('the routes and policies', async () => ((await probe()).status === 403 ? true : undefined), 20_000, 200);
}

/** A GET from `from` (the peer address the gateway sees) with an x-forwarded-for header when `xff` is given. */
function get(gw: Gateway, path: string, from: string, xff?: string): Promise<RawResponse> {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${HOST}`, ...(xff === undefined ? [] : [`X-Forwarded-For: ${xff}`]), '', ''];
  return rawRequest('127.0.0.1', gw.port, lines.join('\r\n'), { localAddress: from });
}

describe('local mode: numTrustedProxies from --proxy-config (proxy.istio.io/config)', () => {
  let backend: Backend;
  let trusting: Gateway;
  let edge: Gateway;

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    trusting = await startGateway({ args: ['--proxy-config', 'gatewayTopology:\n  numTrustedProxies: 1\n'] });
    edge = await startGateway();
    await Promise.all([configure(trusting, backend), configure(edge, backend)]);
  });

  after(async () => {
    await trusting?.stop();
    await edge?.stop();
    await backend?.close();
  });

  /** The headers the backend saw for the last request to `path`. */
  const upstreamHeaders = (path: string): Record<string, string> => {
    const seen = backend.seen.filter((s) => s.path === path).at(-1);
    assert.ok(seen, `the backend saw ${path}`);
    return seen.headers;
  };

  test('one trusted proxy: the last x-forwarded-for address is the client, sent upstream as x-envoy-external-address', async () => {
    const r = await get(trusting, '/headers', LB, '198.51.100.1, 203.0.113.5');
    assert.equal(r.status, 200);
    const h = upstreamHeaders('/headers');
    assert.equal(h['x-envoy-external-address'], '203.0.113.5');
    // The gateway appends the peer (for a loopback peer Envoy appends its own address instead).
    assert.match(h['x-forwarded-for'] ?? '', /^198\.51\.100\.1, 203\.0\.113\.5,[0-9.]+$/);
  });

  test('one trusted proxy, no x-forwarded-for: the peer is the client', async () => {
    assert.equal((await get(trusting, '/headers', OTHER_PEER)).status, 200);
    const h = upstreamHeaders('/headers');
    assert.equal(h['x-envoy-external-address'], OTHER_PEER);
    assert.match(h['x-forwarded-for'] ?? '', /^[0-9.]+$/);
  });

  test('remoteIpBlocks match the trusted client address from x-forwarded-for', async () => {
    assert.equal((await get(trusting, '/remote', OTHER_PEER, '203.0.113.5')).status, 200);
    // Only the last entry is trusted: an address a client wrote further left does not count.
    const spoofed = await get(trusting, '/remote', OTHER_PEER, '203.0.113.5, 192.0.2.1');
    assert.equal(spoofed.status, 403);
    assert.equal(spoofed.body.toString(), 'RBAC: access denied');
    assert.equal((await get(trusting, '/remote', OTHER_PEER)).status, 403, 'no x-forwarded-for: the peer is not in the block');
  });

  test('a DENY on remoteIpBlocks follows x-forwarded-for too', async () => {
    assert.equal((await get(trusting, '/headers', OTHER_PEER, '203.0.113.66')).status, 403);
    assert.equal((await get(trusting, '/headers', OTHER_PEER, '203.0.113.67')).status, 200);
  });

  test('ipBlocks keep matching the peer of the connection, whatever x-forwarded-for says', async () => {
    assert.equal((await get(trusting, '/direct', LB, '192.0.2.1')).status, 200);
    assert.equal((await get(trusting, '/direct', OTHER_PEER, LB)).status, 403);
  });

  test('the default (no proxy trusted): x-forwarded-for decides nothing, the peer is the client', async () => {
    const r = await get(edge, '/headers', OTHER_PEER, '203.0.113.5');
    assert.equal(r.status, 200);
    const h = upstreamHeaders('/headers');
    assert.equal(h['x-envoy-external-address'], OTHER_PEER);
    assert.match(h['x-forwarded-for'] ?? '', /^203\.0\.113\.5,[0-9.]+$/);
    assert.equal((await get(edge, '/remote', OTHER_PEER, '203.0.113.5')).status, 403);
    assert.equal((await get(edge, '/headers', OTHER_PEER, '203.0.113.66')).status, 200, 'the DENY does not see the x-forwarded-for address');
  });
});

describe('local mode: an invalid --proxy-config', () => {
  test('meshgate local refuses to start and names the field, as Istio’s agent does not start with such an annotation', async () => {
    const proc = meshgate(['local', '--config', '.', '--proxy-config', '{"gatewayTopology":{"numTrustedProxies":-1}}']);
    try {
      const code = await Promise.race([proc.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('did not exit')), 15_000))]);
      assert.equal(code, 2);
      assert.match(
        proc.output(),
        /--proxy-config: annotation proxy\.istio\.io\/config: proxyConfig\.gatewayTopology\.numTrustedProxies: must be an unsigned 32-bit integer/,
      );
    } finally {
      await proc.stop();
    }
  });
});
