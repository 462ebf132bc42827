// The Kubernetes Gateway API against real processes (issue 19): `meshgate local` on a config directory holding a
// Gateway of the `istio` class bound to the gateway's Service (manual deployment) and HTTPRoutes, backend "pods" on
// their own loopback addresses, and a raw HTTP client: path matching, a weighted split, header modifiers, a
// redirect, a prefix rewrite, 404 for what no route matches and 500 for a backend that does not exist; an HTTPS
// listener with a certificateRef; a GRPCRoute with a real gRPC call.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort } from '../lib/process.ts';
import { get, type RawResponse } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';
import { CertFactory, secretYaml } from '../lib/certs.ts';
import { httpsGet } from '../lib/tls-client.ts';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, echoServer, type Echo } from '../lib/grpc-echo.ts';

const GW = '127.0.0.1';
const HOST = 'bookinfo.gwapi.example.com';
const SECURE = 'secure.gwapi.example.com';

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway, namespace: istio-system}
spec:
  gatewayClassName: istio
  addresses: [{type: Hostname, value: istio-ingressgateway.istio-system.svc.cluster.local}]
  listeners:
  - name: http
    hostname: "*.gwapi.example.com"
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: All}}
  - name: https
    hostname: ${SECURE}
    port: 443
    protocol: HTTPS
    tls: {mode: Terminate, certificateRefs: [{name: secure-credential}]}
    allowedRoutes: {namespaces: {from: All}}
`;

const GRPC = 'grpc.gwapi.example.com';
// The echo service is meshgate.test.Echo: Unary goes to the echo backend with a header set, every other method of
// the service to it as well; nothing else matches.
const GRPC_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: gateway, namespace: istio-system}]
  hostnames: [${GRPC}]
  rules:
  - matches: [{method: {service: meshgate.test.Echo, method: Unary}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-custom, value: from-grpcroute}]}
    backendRefs: [{name: grpc-echo, port: PORT}]
  - matches: [{method: {service: meshgate.test.Echo}}]
    backendRefs: [{name: grpc-echo, port: PORT}]
`;

const SECURE_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: secure, namespace: default}
spec:
  parentRefs: [{name: gateway, namespace: istio-system, sectionName: https}]
  hostnames: [${SECURE}]
  rules:
  - backendRefs: [{name: reviews-v2, port: PORT}]
`;

const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookinfo, namespace: default}
spec:
  parentRefs: [{name: gateway, namespace: istio-system}]
  hostnames: [${HOST}]
  rules:
  - matches: [{path: {type: Exact, value: /v2-only}}]
    backendRefs: [{name: reviews-v2, port: PORT}]
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs:
    - {name: reviews-v1, port: PORT, weight: 80}
    - {name: reviews-v2, port: PORT, weight: 20}
  - matches: [{path: {type: PathPrefix, value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-set, value: by-route}]
        add: [{name: x-added, value: yes}]
        remove: [x-drop]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: x-response, value: from-gateway}]
    backendRefs: [{name: reviews-v1, port: PORT}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 301, hostname: new.gwapi.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {type: PathPrefix, value: /moved}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 302, path: {type: ReplacePrefixMatch, replacePrefixMatch: /landing}}
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
    backendRefs: [{name: reviews-v1, port: PORT}]
  - matches: [{path: {type: PathPrefix, value: /gone}}]
    backendRefs: [{name: no-such-service, port: PORT}]
  - matches: [{path: {type: PathPrefix, value: /reviews}, headers: [{name: end-user, value: jason}]}]
    backendRefs: [{name: reviews-v2, port: PORT}]
  - matches: [{path: {type: PathPrefix, value: /reviews}}]
    backendRefs: [{name: reviews-v1, port: PORT}]
`;

describe('Gateway API: a Gateway bound to the gateway Service and an HTTPRoute', () => {
  let gw: Gateway;
  let port: number;
  let v1: Backend;
  let v2: Backend;
  let tlsPort: number;
  let grpcServer: grpc.Server;
  let echo: Echo;
  let ca: string;
  const certs = new CertFactory();
  const send = (path: string, extra: Record<string, string> = {}, host = HOST): Promise<RawResponse> => get(GW, port, path, host, extra);

  before(async () => {
    const bport = await freePort();
    v1 = await startBackend('127.0.19.1', bport, 'reviews-v1');
    v2 = await startBackend('127.0.19.2', bport, 'reviews-v2');
    gw = await startGateway();
    port = gw.port;
    // The gateway Service gains 443 -> a free port for the HTTPS listener (Istio's chart maps 443 -> 8443).
    tlsPort = await freePort();
    gw.write(
      '00-gateway-service.yaml',
      `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${port}}
  - {name: https, port: 443, targetPort: ${tlsPort}}
`,
    );
    const authority = certs.ca('gwapi.example.com');
    ca = authority.cert;
    const leaf = certs.leaf(authority, SECURE, { dns: [SECURE] });
    gw.write('05-secret.yaml', secretYaml('secure-credential', 'istio-system', { 'tls.crt': leaf.cert, 'tls.key': leaf.key }, 'kubernetes.io/tls'));
    gw.write('10-reviews.yaml', serviceYaml('reviews-v1', bport, [{ ip: '127.0.19.1' }]) + '---\n' + serviceYaml('reviews-v2', bport, [{ ip: '127.0.19.2' }]));
    gw.write('20-gateway.yaml', GATEWAY);
    gw.write('30-route.yaml', ROUTE.replaceAll('PORT', String(bport)));
    gw.write('31-secure.yaml', SECURE_ROUTE.replaceAll('PORT', String(bport)));
    const gport = await freePort();
    grpcServer = echoServer();
    await new Promise<void>((resolve, reject) =>
      grpcServer.bindAsync(`127.0.19.3:${gport}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
    );
    // A Service port named grpc: the cluster speaks HTTP/2 upstream.
    gw.write('12-grpc.yaml', serviceYaml('grpc-echo', gport, [{ ip: '127.0.19.3' }]).replaceAll('{name: http, port:', '{name: grpc, port:'));
    gw.write('32-grpc.yaml', GRPC_ROUTE.replaceAll('PORT', String(gport)));
    echo = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': GRPC }) as Echo;
    await eventually('the HTTPRoute to apply', async () => ((await send('/reviews/1')).status === 200 ? true : undefined), 20_000, 100);
  });

  after(async () => {
    await gw?.stop();
    await v1?.close();
    await v2?.close();
    echo?.close();
    grpcServer?.forceShutdown();
    certs.cleanup();
  });

  test('matches: Exact, PathPrefix on whole segments, a header match before the plain prefix', async () => {
    assert.equal((await send('/v2-only')).header('x-backend'), 'reviews-v2');
    // Exact: a longer path is not the same path.
    assert.equal((await send('/v2-only/more')).status, 404);
    assert.equal((await send('/reviews/1')).header('x-backend'), 'reviews-v1');
    assert.equal((await send('/reviews/1', { 'end-user': 'jason' })).header('x-backend'), 'reviews-v2');
    // PathPrefix /reviews matches /reviews and /reviews/..., not /reviewsX (Gateway API: path segments).
    assert.equal((await send('/reviews')).header('x-backend'), 'reviews-v1');
    assert.equal((await send('/reviewsX')).status, 404);
  });

  test('no route: 404 for an unmatched path and for a host no listener serves', async () => {
    const r = await send('/nothing/here');
    assert.equal(r.status, 404);
    assert.equal((await send('/reviews/1', {}, 'other.example.org')).status, 404);
  });

  test('weighted backendRefs: 80/20 over 300 requests stays within ±10%', async () => {
    let n1 = 0;
    let n2 = 0;
    const N = 300;
    for (let i = 0; i < N; i++) {
      const b = (await send('/split')).header('x-backend');
      if (b === 'reviews-v1') n1++;
      else if (b === 'reviews-v2') n2++;
    }
    assert.equal(n1 + n2, N);
    assert.ok(Math.abs(n2 / N - 0.2) <= 0.1, `v2 got ${n2}/${N}`);
  });

  test('RequestHeaderModifier and ResponseHeaderModifier', async () => {
    const before = v1.seen.length;
    const r = await send('/headers', { 'x-set': 'by-client', 'x-drop': 'secret', 'x-added': 'client' });
    assert.equal(r.status, 200);
    assert.equal(r.header('x-response'), 'from-gateway');
    const seen = v1.seen.slice(before).find((s) => s.path === '/headers');
    assert.ok(seen, 'the backend saw the request');
    assert.equal(seen.headers['x-set'], 'by-route');
    assert.equal(seen.headers['x-drop'], undefined);
    // add appends to what the client sent.
    assert.equal(seen.headers['x-added'], 'client,yes');
  });

  test('RequestRedirect: 301 to another host with the prefix replaced; without a hostname the request port is kept', async () => {
    const r = await send('/old/page?q=1');
    assert.equal(r.status, 301);
    assert.equal(r.header('location'), 'http://new.gwapi.example.com/new/page?q=1');
    // A hostname replaces the whole authority, port included (Envoy's host_redirect, as under istiod).
    assert.equal((await send('/old/page', {}, `${HOST}:8080`)).header('location'), 'http://new.gwapi.example.com/new/page');
    // No hostname and no port: the request's authority, port included, is kept (derivePort FROM_REQUEST_PORT).
    const samehost = await send('/moved/x', {}, `${HOST}:8080`);
    assert.equal(samehost.status, 302);
    assert.equal(samehost.header('location'), `http://${HOST}:8080/landing/x`);
  });

  test('URLRewrite ReplacePrefixMatch "/": the matched prefix is removed', async () => {
    const before = v1.seen.length;
    assert.equal((await send('/api/items/7')).status, 200);
    assert.equal((await send('/api')).status, 200);
    const paths = v1.seen.slice(before).map((s) => s.path);
    assert.deepEqual(paths, ['/items/7', '/']);
  });

  test('a backendRef to a Service that does not exist answers 500 (Gateway API), not 503', async () => {
    assert.equal((await send('/gone')).status, 500);
  });

  test("HTTPS listener, TLS Terminate with a certificateRef: the Secret's certificate is served and the route applies", async () => {
    const target = { host: GW, port: tlsPort, servername: SECURE, ca, hostHeader: SECURE };
    const r = await eventually('the HTTPS listener to serve', async () => {
      const res = await httpsGet(target, '/anything').catch(() => undefined);
      return res?.status === 200 ? res : undefined;
    });
    assert.equal(r.headers['x-backend'], 'reviews-v2');
    assert.ok(r.peer.subjectaltname?.includes(`DNS:${SECURE}`), r.peer.subjectaltname);
    // The route is bound to the HTTPS listener only (sectionName): the HTTP listener does not serve its host.
    assert.equal((await send('/anything', {}, SECURE)).status, 404);
  });

  test('GRPCRoute: a unary call matched by service and method reaches the gRPC backend with the header set', async () => {
    const call = (): Promise<{ err: grpc.ServiceError | null; reply?: Buffer }> =>
      new Promise((resolve) => echo.unary(Buffer.from('hello'), new grpc.Metadata(), {}, (err, reply) => resolve({ err, reply })));
    const r = await eventually('the GRPCRoute to apply', async () => {
      const res = await call();
      return res.err ? undefined : res;
    });
    const seen = JSON.parse(r.reply?.toString() ?? '{}') as { head?: string; custom?: string };
    assert.equal(seen.head, 'hello');
    assert.equal(seen.custom, 'from-grpcroute');
    // A path of another gRPC service: no rule of the GRPCRoute matches it.
    assert.equal((await send('/other.Service/Call', {}, GRPC)).status, 404);
  });
});
