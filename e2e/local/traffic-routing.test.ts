// Istio's traffic-management tasks against real processes (issue 6): `meshgate local` on a config directory,
// backend "pods" on their own loopback addresses recording what they receive, and a raw HTTP client
// asserting the exact answers. Routing, shifting, rewrites, redirects, direct responses, faults, timeouts,
// CORS, mirroring and delegation. Resilience (retries, circuit breaking, outlier detection) is in
// traffic-resilience.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort } from '../lib/process.ts';
import { get, rawRequest, type RawResponse } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';

const GW = '127.0.0.1';
const vs = (name: string, host: string, http: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${host}]
  gateways: [tm-gateway]
  http:
${http}`;

describe('traffic management: routing, faults, timeouts, CORS, mirroring', () => {
  let gw: Gateway;
  let port: number;
  const backends: Backend[] = [];
  let v1: Backend;
  let v2: Backend;
  let shadow: Backend;
  let bport: number;

  const send = (path: string, host: string, extra: Record<string, string> = {}): Promise<RawResponse> => get(GW, port, path, host, extra);
  const routed = (what: string, path: string, host: string, ok: (r: RawResponse) => boolean, extra: Record<string, string> = {}): Promise<RawResponse> =>
    eventually(
      what,
      async () => {
        const r = await send(path, host, extra);
        return ok(r) ? r : undefined;
      },
      15_000,
      100,
    );

  before(async () => {
    bport = await freePort();
    v1 = await startBackend('127.0.10.1', bport, 'reviews-v1');
    v2 = await startBackend('127.0.10.2', bport, 'reviews-v2');
    shadow = await startBackend('127.0.10.3', bport, 'shadow');
    backends.push(v1, v2, shadow);
    gw = await startGateway({ accessLog: true });
    port = gw.port;
    gw.write('10-gateway.yaml', gatewayYaml('tm-gateway', ['*.tm.example.com']));
    gw.write(
      '20-reviews.yaml',
      serviceYaml('reviews', bport, [
        { ip: '127.0.10.1', version: 'v1' },
        { ip: '127.0.10.2', version: 'v2' },
      ]),
    );
    gw.write('21-shadow.yaml', serviceYaml('shadow', bport, [{ ip: '127.0.10.3' }]));
    gw.write(
      '30-dr.yaml',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`,
    );
  });

  after(async () => {
    await gw?.stop();
    for (const b of backends) await b.close();
  });

  test('request routing: end-user jason goes to v2, everyone else to v1 (Istio "Request Routing" task)', async () => {
    gw.write(
      '40-routing.yaml',
      vs(
        'reviews-routing',
        'routing.tm.example.com',
        `  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
`,
      ),
    );
    const jason = await routed('jason routed to v2', '/reviews/1', 'routing.tm.example.com', (r) => r.status === 200, { 'end-user': 'jason' });
    assert.equal(jason.header('x-backend'), 'reviews-v2');
    for (let i = 0; i < 5; i++) assert.equal((await send('/reviews/1', 'routing.tm.example.com', { 'end-user': 'jason' })).header('x-backend'), 'reviews-v2');
    for (let i = 0; i < 5; i++) assert.equal((await send('/reviews/1', 'routing.tm.example.com', { 'end-user': 'other' })).header('x-backend'), 'reviews-v1');
    assert.equal((await send('/reviews/1', 'routing.tm.example.com')).header('x-backend'), 'reviews-v1');
  });

  test('traffic shifting: 50/50 between v1 and v2 over 400 requests stays within ±10%', async () => {
    const shift = (v1Weight: number, v2Weight: number): void =>
      gw.write(
        '41-shifting.yaml',
        vs(
          'reviews-shifting',
          'shift.tm.example.com',
          `  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${v1Weight}
    - destination: {host: reviews, subset: v2}
      weight: ${v2Weight}
`,
        ),
      );
    shift(50, 50);
    await routed('shifting routed', '/', 'shift.tm.example.com', (r) => r.status === 200);
    let n1 = 0;
    let n2 = 0;
    const N = 400;
    for (let i = 0; i < N; i++) {
      const b = (await send('/', 'shift.tm.example.com')).header('x-backend');
      if (b === 'reviews-v1') n1++;
      else if (b === 'reviews-v2') n2++;
    }
    assert.equal(n1 + n2, N);
    assert.ok(Math.abs(n1 / N - 0.5) <= 0.1, `v1 got ${n1}/${N}`);
    // 90/10: v2 gets about a tenth.
    shift(90, 10);
    await eventually(
      '90/10 to apply',
      async () => {
        let c = 0;
        for (let i = 0; i < 40; i++) if ((await send('/', 'shift.tm.example.com')).header('x-backend') === 'reviews-v2') c++;
        return c <= 10 ? true : undefined;
      },
      15_000,
      200,
    );
    let m2 = 0;
    for (let i = 0; i < N; i++) if ((await send('/', 'shift.tm.example.com')).header('x-backend') === 'reviews-v2') m2++;
    assert.ok(Math.abs(m2 / N - 0.1) <= 0.06, `v2 got ${m2}/${N} at weight 10`);
  });

  test('rewrite: /v1/x reaches the backend as /v2/x with x-envoy-original-path', async () => {
    gw.write(
      '42-rewrite.yaml',
      vs(
        'reviews-rewrite',
        'rewrite.tm.example.com',
        `  - match: [{uri: {prefix: /v1}}]
    rewrite: {uri: /v2, authority: internal.reviews}
    route:
    - destination: {host: reviews, subset: v1}
`,
      ),
    );
    const before = v1.seen.length;
    const r = await routed('rewrite routed', '/v1/x?q=1', 'rewrite.tm.example.com', (x) => x.status === 200);
    assert.equal(r.header('x-backend'), 'reviews-v1');
    const seen = v1.seen.slice(before).at(-1);
    assert.ok(seen);
    assert.equal(seen.path, '/v2/x?q=1');
    assert.equal(seen.headers['x-envoy-original-path'], '/v1/x?q=1');
    assert.equal(seen.headers.host, 'internal.reviews');
  });

  test('redirect: 301 with location built from the request; query kept; no body', async () => {
    gw.write(
      '43-redirect.yaml',
      vs(
        'redirect',
        'redirect.tm.example.com',
        `  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new}
  - match: [{uri: {prefix: /moved}}]
    redirect: {authority: other.example.com, redirectCode: 308, scheme: https}
`,
      ),
    );
    const r = await routed('redirect', '/old?a=1', 'redirect.tm.example.com', (x) => x.status === 301);
    assert.equal(r.statusLine, 'HTTP/1.1 301 Moved Permanently');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['location', 'date', 'server', 'content-length'],
    );
    assert.equal(r.header('location'), 'http://redirect.tm.example.com/new?a=1');
    assert.equal(r.header('content-length'), '0');
    assert.equal(r.body.length, 0);
    const r2 = await send('/moved/x', 'redirect.tm.example.com:80');
    assert.equal(r2.statusLine, 'HTTP/1.1 308 Permanent Redirect');
    assert.equal(r2.header('location'), 'https://other.example.com/moved/x');
  });

  test('direct response: status and body as configured, text/plain', async () => {
    gw.write(
      '44-direct.yaml',
      vs(
        'direct',
        'direct.tm.example.com',
        `  - match: [{uri: {exact: /down}}]
    directResponse: {status: 503, body: {string: "down"}}
`,
      ),
    );
    const r = await routed('direct response', '/down', 'direct.tm.example.com', (x) => x.status === 503);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['content-length', 'content-type', 'date', 'server'],
    );
    assert.equal(r.header('content-type'), 'text/plain');
    assert.equal(r.header('content-length'), '4');
    assert.equal(r.body.toString(), 'down');
  });

  test('headers: request set/remove reach the backend; response add, then the destination-level set, follow x-envoy-upstream-service-time', async () => {
    gw.write(
      '44b-headers.yaml',
      vs(
        'headers',
        'headers.tm.example.com',
        `  - headers:
      request: {set: {x-tenant: blue}, remove: [x-debug]}
      response: {add: {x-served-by: gateway}}
    route:
    - destination: {host: reviews, subset: v1}
      headers:
        response: {set: {x-version: v1}}
`,
      ),
    );
    const before = v1.seen.length;
    const r = await routed('header ops', '/', 'headers.tm.example.com', (x) => x.status === 200, { 'x-debug': '1', 'x-tenant': 'red' });
    const names = r.headers.map(([k]) => k);
    assert.deepEqual(names.slice(names.indexOf('x-envoy-upstream-service-time')), ['x-envoy-upstream-service-time', 'x-served-by', 'x-version', 'server']);
    assert.equal(r.header('x-version'), 'v1');
    assert.equal(r.header('x-served-by'), 'gateway');
    const seen = v1.seen.slice(before).at(-1);
    assert.equal(seen?.headers['x-tenant'], 'blue');
    assert.equal(seen?.headers['x-debug'], undefined);
  });

  test('fault injection: abort 418 answers "HTTP/1.1 418 Unknown" with "fault filter abort" (18 bytes); the backend is not called', async () => {
    gw.write(
      '45-abort.yaml',
      vs(
        'abort',
        'abort.tm.example.com',
        `  - fault:
      abort: {httpStatus: 418, percentage: {value: 100}}
    route:
    - destination: {host: reviews, subset: v1}
`,
      ),
    );
    const before = v1.seen.length;
    const r = await routed('abort', '/', 'abort.tm.example.com', (x) => x.status === 418);
    const aborts = await gw.stat(`http.outbound_0.0.0.0_${port};.fault.aborts_injected`);
    assert.equal((await send('/', 'abort.tm.example.com')).status, 418);
    assert.equal(await gw.stat(`http.outbound_0.0.0.0_${port};.fault.aborts_injected`), aborts + 1);
    assert.equal(r.statusLine, 'HTTP/1.1 418 Unknown');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['content-length', 'content-type', 'date', 'server'],
    );
    assert.equal(r.header('content-length'), '18');
    assert.equal(r.header('content-type'), 'text/plain');
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.body.toString(), 'fault filter abort');
    assert.equal(v1.seen.length, before);
    // The access log records Envoy's flag and details for the abort.
    await eventually(
      'the abort in the access log',
      () =>
        Promise.resolve(
          /"GET \/ HTTP\/1\.1" 418 FI fault_filter_abort - "-" 0 18 \d+ - "[^"]*" "curl\/8\.5\.0" "[0-9a-f-]{36}" "abort\.tm\.example\.com" "-" /.test(
            gw.accessLog(),
          )
            ? true
            : undefined,
        ),
      5_000,
      100,
    );
  });

  test('fault injection: a gRPC abort answers gRPC clients with HTTP 200, grpc-status 14 and grpc-message "fault filter abort"', async () => {
    gw.write(
      '45b-grpc-abort.yaml',
      vs(
        'grpc-abort',
        'grpc-abort.tm.example.com',
        `  - fault:
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}
    route:
    - destination: {host: reviews, subset: v1}
`,
      ),
    );
    const grpc = (): Promise<RawResponse> =>
      rawRequest(
        GW,
        port,
        'POST /helloworld.Greeter/SayHello HTTP/1.1\r\nHost: grpc-abort.tm.example.com\r\nContent-Type: application/grpc\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n',
      );
    const r = await eventually(
      'gRPC abort',
      async () => {
        const x = await grpc();
        return x.header('grpc-status') === '14' ? x : undefined;
      },
      15_000,
      100,
    );
    assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['content-type', 'grpc-status', 'grpc-message', 'date', 'server', 'content-length'],
    );
    assert.equal(r.header('content-type'), 'application/grpc');
    assert.equal(r.header('grpc-status'), '14');
    assert.equal(r.header('grpc-message'), 'fault filter abort');
    assert.equal(r.body.length, 0);
  });

  test('fault injection: a fixed delay of 700ms holds the request at least that long, then it is proxied', async () => {
    gw.write(
      '46-delay.yaml',
      vs(
        'delay',
        'delay.tm.example.com',
        `  - fault:
      delay: {fixedDelay: 0.7s, percentage: {value: 100}}
    route:
    - destination: {host: reviews, subset: v1}
`,
      ),
    );
    await routed('delay applied', '/', 'delay.tm.example.com', (x) => x.status === 200);
    const delays = await gw.stat(`http.outbound_0.0.0.0_${port};.fault.delays_injected`);
    const t0 = performance.now();
    const r = await send('/', 'delay.tm.example.com');
    const took = performance.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(r.header('x-backend'), 'reviews-v1');
    assert.ok(took >= 690, `took ${took} ms`);
    assert.equal(await gw.stat(`http.outbound_0.0.0.0_${port};.fault.delays_injected`), delays + 1);
    assert.equal(await gw.stat(`http.outbound_0.0.0.0_${port};.fault.active_faults`), 0);
    await eventually(
      'the delay in the access log',
      () =>
        Promise.resolve(
          /"GET \/ HTTP\/1\.1" 200 DI via_upstream - "-" 0 \d+ \d+ \d+ "[^"]*" "curl\/8\.5\.0" "[0-9a-f-]{36}" "delay\.tm\.example\.com" "127\.0\.10\.1:\d+" outbound\|\d+\|v1\|reviews\.default\.svc\.cluster\.local /.test(
            gw.accessLog(),
          )
            ? true
            : undefined,
        ),
      5_000,
      100,
    );
    // The delay is before the upstream: the service time does not include it.
    assert.ok(Number(r.header('x-envoy-upstream-service-time')) < 500);
  });

  test('request timeout: 504 "upstream request timeout" (24 bytes) after 0.5s; the backend saw x-envoy-expected-rq-timeout-ms', async () => {
    gw.write(
      '47-timeout.yaml',
      vs(
        'timeout',
        'timeout.tm.example.com',
        `  - timeout: 0.5s
    route:
    - destination: {host: reviews, subset: v2}
`,
      ),
    );
    await routed(
      'timeout applied',
      '/fast',
      'timeout.tm.example.com',
      (x) => x.status === 200 && v2.seen.at(-1)?.headers['x-envoy-expected-rq-timeout-ms'] === '500',
    );
    v2.behave = (req) => (req.path === '/slow' ? { delayMs: 1500 } : {});
    const t0 = performance.now();
    const r = await send('/slow', 'timeout.tm.example.com', { 'x-envoy-upstream-rq-timeout-ms': '10000' });
    const took = performance.now() - t0;
    v2.behave = () => ({});
    assert.equal(r.statusLine, 'HTTP/1.1 504 Gateway Timeout');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['content-length', 'content-type', 'date', 'server'],
    );
    assert.equal(r.header('content-length'), '24');
    assert.equal(r.body.toString(), 'upstream request timeout');
    assert.ok(took >= 480 && took < 1400, `took ${took} ms (the client's x-envoy-upstream-rq-timeout-ms is ignored)`);
    const seen = v2.seen.filter((s) => s.path === '/slow').at(-1);
    assert.equal(seen?.headers['x-envoy-expected-rq-timeout-ms'], '500');
    assert.equal(seen?.headers['x-envoy-upstream-rq-timeout-ms'], undefined);
  });

  test('CORS: preflight from an allowed origin is answered by the gateway; simple requests get allow-origin; others are left alone', async () => {
    gw.write(
      '48-cors.yaml',
      vs(
        'cors',
        'cors.tm.example.com',
        `  - corsPolicy:
      allowOrigins: [{exact: "https://example.com"}, {prefix: "https://app."}]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom]
      exposeHeaders: [x-backend]
      maxAge: 24h
      allowCredentials: true
    route:
    - destination: {host: reviews, subset: v1}
`,
      ),
    );
    const preflight = (origin: string): Promise<RawResponse> =>
      rawRequest(GW, port, `OPTIONS /api HTTP/1.1\r\nHost: cors.tm.example.com\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: POST\r\n\r\n`);
    const before = v1.seen.length;
    const r = await eventually(
      'CORS preflight answered',
      async () => {
        const x = await preflight('https://example.com');
        return x.header('access-control-allow-origin') ? x : undefined;
      },
      15_000,
      100,
    );
    assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
    assert.deepEqual(r.headers, [
      ['access-control-allow-origin', 'https://example.com'],
      ['access-control-allow-credentials', 'true'],
      ['access-control-allow-methods', 'GET,POST'],
      ['access-control-allow-headers', 'x-custom'],
      ['access-control-max-age', '86400'],
      ['date', r.header('date') ?? ''],
      ['server', 'istio-envoy'],
      ['content-length', '0'],
    ]);
    assert.equal(v1.seen.length, before, 'the preflight was answered by the gateway');
    const prefixed = await preflight('https://app.example.org');
    assert.equal(prefixed.header('access-control-allow-origin'), 'https://app.example.org');
    // Not an allowed origin: forwarded to the backend (unmatchedPreflights FORWARD), no CORS headers added.
    const other = await preflight('https://evil.example');
    assert.equal(other.header('x-backend'), 'reviews-v1');
    assert.equal(other.header('access-control-allow-origin'), undefined);
    const simple = await send('/api', 'cors.tm.example.com', { Origin: 'https://example.com' });
    assert.equal(simple.status, 200);
    const names = simple.headers.map(([k]) => k);
    assert.deepEqual(names.slice(names.indexOf('x-envoy-upstream-service-time')), [
      'x-envoy-upstream-service-time',
      'access-control-allow-origin',
      'access-control-allow-credentials',
      'access-control-expose-headers',
      'server',
    ]);
    assert.equal(simple.header('access-control-expose-headers'), 'x-backend');
  });

  test('mirroring: the shadow backend receives a copy (same Host on Istio >= 1.28); the client gets the primary answer even if the mirror fails', async () => {
    gw.write(
      '49-mirror.yaml',
      vs(
        'mirror',
        'mirror.tm.example.com',
        `  - route:
    - destination: {host: reviews, subset: v1}
    mirror: {host: shadow}
    mirrorPercentage: {value: 100}
`,
      ),
    );
    const marker = `m-${Date.now()}`;
    const r = await eventually(
      'mirrored request',
      async () => {
        const x = await send(`/mirror?id=${marker}`, 'mirror.tm.example.com', { 'x-trace': marker });
        return shadow.seen.some((s) => s.path === `/mirror?id=${marker}`) ? x : undefined;
      },
      15_000,
      200,
    );
    assert.equal(r.status, 200);
    assert.equal(r.header('x-backend'), 'reviews-v1');
    const copy = shadow.seen.find((s) => s.path === `/mirror?id=${marker}`);
    assert.equal(copy?.headers.host, 'mirror.tm.example.com');
    assert.equal(copy?.headers['x-trace'], marker);
    // A POST body is mirrored too.
    const body = 'hello mirror';
    await rawRequest(GW, port, `POST /post HTTP/1.1\r\nHost: mirror.tm.example.com\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await eventually('mirrored POST body', () => Promise.resolve(shadow.seen.some((s) => s.path === '/post' && s.body === body) ? true : undefined), 5_000);
    // The mirror failing (500 after a delay) changes nothing for the client.
    shadow.behave = () => ({ status: 500, delayMs: 300 });
    const t0 = performance.now();
    const ok = await send('/mirror?id=fail', 'mirror.tm.example.com');
    shadow.behave = () => ({});
    assert.equal(ok.status, 200);
    assert.ok(performance.now() - t0 < 280, 'the client does not wait for the mirror');
  });

  test("delegation: a root VirtualService hands /reviews to a delegate; the delegate's header match and the root's prefix combine", async () => {
    gw.write(
      '50-delegate.yaml',
      `${vs(
        'root',
        'delegate.tm.example.com',
        `  - match: [{uri: {prefix: /reviews}}]
    delegate: {name: reviews-delegate, namespace: default}
  - directResponse: {status: 404, body: {string: "root fallthrough"}}
`,
      )}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-delegate, namespace: default}
spec:
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
`,
    );
    const j = await routed('delegate routed', '/reviews/7', 'delegate.tm.example.com', (x) => x.status === 200, { 'end-user': 'jason' });
    assert.equal(j.header('x-backend'), 'reviews-v2');
    assert.equal((await send('/reviews/7', 'delegate.tm.example.com')).header('x-backend'), 'reviews-v1');
    const other = await send('/ratings', 'delegate.tm.example.com', { 'end-user': 'jason' });
    assert.equal(other.status, 404);
    assert.equal(other.body.toString(), 'root fallthrough');
  });
});
