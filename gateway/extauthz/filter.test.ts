// The ext_authz HTTP filter against real authorization services (HTTP and gRPC) through the proxy's own cluster
// manager, with a small fake of the HCM's FilterCallbacks: what the service is asked, and what allow, deny,
// error, failure_mode_allow, timeouts, body inclusion, header lists and filter_enabled_metadata do to the request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { CertFactory } from '../../e2e/lib/certs.ts';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../cli/logger.ts';
import type { Duration, envoy } from '../../xds/envoy.ts';
import type { FilterCallbacks, LocalReply, StreamFilter } from '../http/filter.ts';
import { UAEX } from '../http/response-flags.ts';
import type { CompiledRoute } from '../router/route-config.ts';
import { metadataValue } from '../router/metadata-matcher.ts';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { ConfigError } from '../xds/json.ts';
import { encodeJson } from '../../xds/protos.ts';
import { parseExtAuthz } from './config.ts';
import { extAuthzFactory } from './filter.ts';
import { grpcFrame } from './grpc-client.ts';
import { clusterManager, GrpcAuthServer, HttpAuthServer, staticCluster } from './test-auth-servers.ts';

type ExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;

const HTTP_CLUSTER = 'outbound|8000||ext-authz.foo.svc.cluster.local';
const GRPC_CLUSTER = 'outbound|9000||ext-authz.foo.svc.cluster.local';
const BACKEND = 'outbound|80||httpbin.default.svc.cluster.local';

type Outcome = { kind: 'continue' } | { kind: 'reply'; reply: LocalReply } | { kind: 'error'; err: unknown };

interface Fake {
  cb: FilterCallbacks;
  outcome: Promise<Outcome>;
  meta: Record<string, Record<string, unknown>>;
  flags(): number;
  routeCleared(): boolean;
}

interface RequestOpts {
  method?: string;
  path?: string;
  headers?: string[];
  body?: Buffer;
  metadata?: Record<string, Record<string, unknown>>;
  noRoute?: boolean;
}

function fake(env: { clusters: ClusterManager; store: StatsStore }, o: RequestOpts = {}): Fake {
  let resolve!: (x: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => (resolve = r));
  const meta: Record<string, Record<string, unknown>> = { ...(o.metadata ?? {}) };
  let finished = false;
  let flags = 0;
  let cleared = false;
  const end = (x: Outcome): void => {
    if (finished) throw new Error('the chain ended twice');
    finished = x.kind !== 'continue';
    resolve(x);
  };
  const lookup = (f: string, p: readonly string[]): unknown => metadataValue(meta[f], p);
  const cb: FilterCallbacks = {
    method: o.method ?? 'GET',
    path: o.path ?? '/headers?a=1',
    authority: 'httpbin.example.com',
    scheme: 'http',
    headers: o.headers ?? ['host', 'httpbin.example.com', 'authorization', 'Bearer t', 'x-secret', 's', 'x-request-id', 'rid-1', 'x-forwarded-proto', 'http'],
    clientAddress: '127.0.0.1',
    requestId: 'rid-1',
    grpc: false,
    protocol: 'HTTP/1.1',
    endStream: o.body === undefined,
    downstream: { remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 8080, tls: false },
    route: () => (o.noRoute ? undefined : ({ cluster: BACKEND } as unknown as CompiledRoute)),
    clearRouteCache: () => {
      cleared = true;
    },
    setDynamicMetadata: (f, v) => {
      meta[f] = { ...(meta[f] ?? {}), ...v };
    },
    dynamicMetadata: lookup,
    metadataLookup: lookup,
    setFilterState: () => undefined,
    clusterInfo: () => undefined,
    observe: () => undefined,
    bufferBody: (max) => {
      const b = o.body ?? Buffer.alloc(0);
      return Promise.resolve({ body: b.subarray(0, max), complete: b.length <= max });
    },
    sendLocalReply: (reply) => end({ kind: 'reply', reply }),
    continueDecoding: () => end({ kind: 'continue' }),
    internalError: (err) => end({ kind: 'error', err }),
    addResponseFlag: (f) => {
      flags |= f;
    },
    store: env.store,
    clusters: env.clusters,
    log: silentLogger(),
    get finished() {
      return finished;
    },
  };
  return { cb, outcome, meta, flags: () => flags, routeCleared: () => cleared };
}

/** Runs decodeHeaders and waits for the chain to go on or end. */
async function run(filter: StreamFilter, f: Fake): Promise<Outcome> {
  if (filter.decodeHeaders(f.cb) === 'continue') return { kind: 'continue' };
  return f.outcome;
}

function header(flat: readonly string[], name: string): string | undefined {
  const all: string[] = [];
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) all.push(flat[i + 1] as string);
  return all.length === 0 ? undefined : all.join(' | ');
}

const exact = (...names: string[]): envoy.type.matcher.v3.ListStringMatcher => ({ patterns: names.map((n) => ({ exact: n, ignore_case: true })) });

function httpConfig(extra: Partial<ExtAuthz> = {}, service: Partial<envoy.extensions.filters.http.ext_authz.v3.HttpService> = {}): ExtAuthz {
  return {
    http_service: {
      server_uri: { uri: 'http://ext-authz.foo.svc.cluster.local', cluster: HTTP_CLUSTER, timeout: '2s' },
      path_prefix: '/check',
      ...service,
    },
    transport_api_version: 'V3',
    ...extra,
  };
}

function grpcConfig(extra: Partial<ExtAuthz> = {}, timeout: Duration = '2s'): ExtAuthz {
  return {
    grpc_service: { envoy_grpc: { cluster_name: GRPC_CLUSTER, authority: 'ext-authz.foo.svc.cluster.local' }, timeout },
    transport_api_version: 'V3',
    ...extra,
  };
}

function factory(cfg: ExtAuthz, env: { clusters: ClusterManager; store: StatsStore }) {
  const ctx = {
    counter: (n: string) => env.store.counter(`http.ingress.${n}`),
    gauge: (n: string) => env.store.gauge(`http.ingress.${n}`),
    store: env.store,
    clusters: env.clusters,
    log: silentLogger(),
  };
  return extAuthzFactory(parseExtAuthz(cfg, 'ext_authz'), ctx);
}

const stat = (env: { store: StatsStore }, name: string): number | undefined => env.store.valueOf(name);

describe('ext_authz config', () => {
  const bad: [string, ExtAuthz, RegExp][] = [
    ['no service', { failure_mode_allow: true }, /exactly one of grpc_service and http_service/],
    ['a gRPC service without transport_api_version V3', { grpc_service: { envoy_grpc: { cluster_name: 'c' } } }, /V2 \(and AUTO\)/],
    ['google_grpc', { grpc_service: { google_grpc: { target_uri: 'x', stat_prefix: 'x' } } }, /google_grpc: not supported/],
    ['an unimplemented field', { ...httpConfig(), metadata_context_namespaces: ['x'] }, /field 'metadata_context_namespaces' is not supported/],
    ['a zero max_request_bytes', { ...httpConfig(), with_request_body: { max_request_bytes: 0 } }, /max_request_bytes: must be greater than 0/],
    ['no timeout on server_uri', { http_service: { server_uri: { uri: 'http://x', cluster: 'c' } } }, /server_uri.timeout: is required/],
    [
      'allowed_headers twice',
      { ...httpConfig({}, { authorization_request: { allowed_headers: exact('a') } }), allowed_headers: exact('b') },
      /duplicate configuration for allowed_headers/,
    ],
  ];
  for (const [name, cfg, re] of bad) {
    test(`NACKs ${name}`, () => {
      assert.throws(
        () => parseExtAuthz(cfg, 'ext_authz'),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
      );
    });
  }

  test('status_on_error: an enum name, a number, and 403 for unset or out of range', () => {
    assert.equal(parseExtAuthz(httpConfig({ status_on_error: { code: 'ServiceUnavailable' } }), 'x').statusOnError, 503);
    assert.equal(parseExtAuthz(httpConfig(), 'x').statusOnError, 403);
    assert.equal(parseExtAuthz(grpcConfig({ status_on_error: { code: 'Empty' } }), 'x').statusOnError, 403);
  });

  test('the gRPC timeout defaults to 200 ms and the authority to the cluster name', () => {
    const s = parseExtAuthz({ grpc_service: { envoy_grpc: { cluster_name: GRPC_CLUSTER } }, transport_api_version: 'V3' }, 'x').service;
    assert.equal(s.kind, 'grpc');
    assert.equal(s.timeoutMs, 200);
    assert.equal(s.kind === 'grpc' ? s.authority : '', GRPC_CLUSTER);
  });
});

describe('ext_authz with an HTTP authorization service', () => {
  const auth = new HttpAuthServer();
  let env: ReturnType<typeof clusterManager>;
  let deadPort = 0;

  before(async () => {
    await auth.start();
    const dead = createH2Server();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    deadPort = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    env = clusterManager([staticCluster(HTTP_CLUSTER, auth.port), staticCluster(BACKEND, 1), staticCluster('dead', deadPort)]);
  });
  after(async () => {
    env.clusters.close();
    await auth.close();
  });

  test('allowed: the check has the client method, prefixed path, host and allowed headers; upstream headers overwrite', async () => {
    auth.answer = (_q, res) => {
      res.setHeader('x-auth-user', 'alice');
      res.setHeader('x-not-allowed', 'no');
      res.setHeader('set-cookie', 'session=1');
      res.end('ignored');
    };
    const fa = factory(
      httpConfig(
        { allowed_headers: exact('x-custom') },
        {
          authorization_request: { headers_to_add: [{ key: 'x-header-1', value: 'value-1' }] },
          authorization_response: { allowed_upstream_headers: exact('x-auth-user'), allowed_client_headers_on_success: exact('set-cookie') },
        },
      ),
      env,
    );
    const filter = fa.createFilter();
    const f = fake(env, {
      headers: ['host', 'httpbin.example.com', 'authorization', 'Bearer t', 'x-secret', 's', 'x-custom', 'c1', 'x-custom', 'c2', 'x-auth-user', 'mallory'],
    });
    const before = auth.seen.length;
    assert.deepEqual(await run(filter, f), { kind: 'continue' });
    const q = auth.seen[before];
    assert.ok(q);
    assert.equal(q.method, 'GET');
    assert.equal(q.url, '/check/headers?a=1');
    assert.equal(q.headers.host, 'httpbin.example.com');
    assert.equal(q.headers.authorization, 'Bearer t');
    assert.equal(q.headers['x-custom'], 'c1,c2', 'a repeated header is one, joined with a comma');
    assert.equal(q.headers['x-secret'], undefined, 'not in the allowlist');
    assert.equal(q.headers['content-length'], '0');
    assert.equal(q.headers['x-header-1'], 'value-1');
    assert.equal(q.headers['x-envoy-internal'], 'true');
    assert.equal(q.headers['x-envoy-expected-rq-timeout-ms'], '2000');
    assert.ok(typeof q.headers['x-forwarded-for'] === 'string');
    assert.equal(header(f.cb.headers, 'x-auth-user'), 'alice', "the service's value replaces the client's");
    assert.equal(header(f.cb.headers, 'x-not-allowed'), undefined);
    const resp = ['content-type', 'text/plain'];
    filter.encodeHeaders?.(200, resp);
    assert.equal(header(resp, 'set-cookie'), 'session=1', 'allowed_client_headers_on_success reach the client');
    assert.equal(stat(env, 'http.ingress.ext_authz.ok'), 1);
  });

  test('x-envoy-auth-headers-to-remove removes request headers on allow (never host)', async () => {
    auth.answer = (_q, res) => {
      res.setHeader('x-envoy-auth-headers-to-remove', 'authorization, host');
      res.end();
    };
    const f = fake(env);
    assert.deepEqual(await run(factory(httpConfig(), env).createFilter(), f), { kind: 'continue' });
    assert.equal(header(f.cb.headers, 'authorization'), undefined);
    assert.equal(header(f.cb.headers, 'host'), 'httpbin.example.com');
  });

  test("denied: the service's status, body and allowed client headers go to the client, with UAEX", async () => {
    auth.answer = (_q, res) => {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Basic realm="x"');
      res.setHeader('x-deny-reason', 'no token');
      res.setHeader('x-hidden', 'h');
      res.setHeader('content-type', 'application/json');
      res.end('{"denied":true}');
    };
    const cfg = httpConfig({}, { authorization_response: { allowed_client_headers: exact('x-deny-reason', 'content-type') } });
    const f = fake(env);
    const o = await run(factory(cfg, env).createFilter(), f);
    assert.equal(o.kind, 'reply');
    const r = (o as { reply: LocalReply }).reply;
    assert.equal(r.status, 401);
    assert.equal(r.body, '{"denied":true}');
    assert.equal(r.details, 'ext_authz_denied');
    assert.equal(r.flags, UAEX);
    assert.equal(header(r.headers ?? [], 'www-authenticate'), 'Basic realm="x"', 'always allowed');
    assert.equal(header(r.headers ?? [], 'x-deny-reason'), 'no token');
    assert.equal(header(r.headers ?? [], 'content-type'), 'application/json');
    assert.equal(header(r.headers ?? [], 'x-hidden'), undefined);
    assert.equal(header(r.headers ?? [], 'content-length'), undefined, 'the reply writer frames the body');
    assert.equal(f.flags() & UAEX, UAEX);
    assert.equal(stat(env, 'http.ingress.ext_authz.denied'), 1);
    assert.equal(stat(env, `cluster.${BACKEND}.upstream_rq_401`), 1, "the route's cluster counts the status");
  });

  test('denied without allowed_client_headers: every header of the answer but host', async () => {
    auth.answer = (_q, res) => {
      res.statusCode = 302;
      res.setHeader('location', 'https://login.example.com/');
      res.setHeader('x-any', 'a');
      res.end();
    };
    const o = await run(factory(httpConfig(), env).createFilter(), fake(env));
    const r = (o as { reply: LocalReply }).reply;
    assert.equal(r.status, 302, 'a 3xx is a denial that passes through');
    assert.equal(header(r.headers ?? [], 'location'), 'https://login.example.com/');
    assert.equal(header(r.headers ?? [], 'x-any'), 'a');
  });

  test('a 5xx is an error: status_on_error (403 by default) with an empty body', async () => {
    auth.answer = (_q, res) => {
      res.statusCode = 503;
      res.end('down');
    };
    for (const [cfg, status] of [
      [httpConfig(), 403],
      [httpConfig({ status_on_error: { code: 'ServiceUnavailable' } }), 503],
    ] as const) {
      const f = fake(env);
      const o = await run(factory(cfg, env).createFilter(), f);
      assert.equal(o.kind, 'reply');
      const r = (o as { reply: LocalReply }).reply;
      assert.deepEqual([r.status, r.body, r.details, r.flags], [status, '', 'ext_authz_error', UAEX]);
    }
    assert.equal(stat(env, 'http.ingress.ext_authz.error'), 2);
  });

  test('failure_mode_allow lets the request through on an error, with the header when asked', async () => {
    auth.answer = (_q, res) => {
      res.statusCode = 500;
      res.end();
    };
    const f = fake(env);
    const o = await run(factory(httpConfig({ failure_mode_allow: true, failure_mode_allow_header_add: true }), env).createFilter(), f);
    assert.deepEqual(o, { kind: 'continue' });
    assert.equal(header(f.cb.headers, 'x-envoy-auth-failure-mode-allowed'), 'true');
    assert.equal(stat(env, 'http.ingress.ext_authz.failure_mode_allowed'), 1);
  });

  test('a hung service times out (server_uri.timeout) into an error; the call is abandoned', async () => {
    auth.answer = () => undefined;
    const cfg = httpConfig({}, { server_uri: { uri: 'http://x', cluster: HTTP_CLUSTER, timeout: '0.15s' } });
    const t0 = Date.now();
    const o = await run(factory(cfg, env).createFilter(), fake(env));
    assert.equal((o as { reply: LocalReply }).reply.details, 'ext_authz_error');
    assert.ok(Date.now() - t0 < 1500);
    assert.equal(stat(env, `cluster.${HTTP_CLUSTER}.upstream_rq_timeout`), 1);
  });

  test('a refused connection and a missing cluster are errors (the latter answered inline)', async () => {
    const refused = httpConfig({}, { server_uri: { uri: 'http://x', cluster: 'dead', timeout: '1s' } });
    assert.equal(((await run(factory(refused, env).createFilter(), fake(env))) as { reply: LocalReply }).reply.details, 'ext_authz_error');
    const missing = httpConfig({ failure_mode_allow: true }, { server_uri: { uri: 'http://x', cluster: 'nope', timeout: '1s' } });
    const f = fake(env);
    assert.equal(factory(missing, env).createFilter().decodeHeaders(f.cb), 'continue', 'failure mode allowed without waiting');
  });

  test('a response body over the limit is an error, not a process out of memory', async () => {
    auth.answer = (_q, res) => {
      res.statusCode = 403;
      res.end(Buffer.alloc(3 * 1024 * 1024, 0x61));
    };
    const o = await run(factory(httpConfig(), env).createFilter(), fake(env));
    assert.equal((o as { reply: LocalReply }).reply.details, 'ext_authz_error');
  });

  test('the client going away cancels the call and drops the answer', async () => {
    let arrived!: () => void;
    const seen = new Promise<void>((r) => (arrived = r));
    auth.answer = () => arrived();
    const filter = factory(httpConfig(), env).createFilter();
    const f = fake(env);
    const abortedBefore = auth.aborted;
    assert.equal(filter.decodeHeaders(f.cb), 'stop');
    await seen;
    filter.onDestroy?.();
    for (let i = 0; i < 100 && auth.aborted === abortedBefore; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(auth.aborted, abortedBefore + 1, 'the service saw the check request go away');
    assert.equal(f.cb.finished, false, 'no reply, no continue');
  });

  test('with_request_body sends the body (content-length, x-envoy-auth-partial-body: false)', async () => {
    auth.answer = (_q, res) => res.end();
    const before = auth.seen.length;
    const f = fake(env, { method: 'POST', body: Buffer.from('hello'), headers: ['host', 'h', 'content-length', '5'] });
    assert.deepEqual(await run(factory(httpConfig({ with_request_body: { max_request_bytes: 1024 } }), env).createFilter(), f), { kind: 'continue' });
    const q = auth.seen[before];
    assert.equal(q?.method, 'POST');
    assert.equal(q?.body.toString(), 'hello');
    assert.equal(q?.headers['content-length'], '5');
    assert.equal(q?.headers['x-envoy-auth-partial-body'], 'false');
  });

  test('a body over max_request_bytes: the first bytes with allow_partial_message, else 413', async () => {
    auth.answer = (_q, res) => res.end();
    const before = auth.seen.length;
    const body = Buffer.from('0123456789');
    const partial = httpConfig({ with_request_body: { max_request_bytes: 4, allow_partial_message: true } });
    assert.deepEqual(await run(factory(partial, env).createFilter(), fake(env, { method: 'POST', body })), { kind: 'continue' });
    assert.equal(auth.seen[before]?.body.toString(), '0123');
    assert.equal(auth.seen[before]?.headers['x-envoy-auth-partial-body'], 'true');
    const strict = httpConfig({ with_request_body: { max_request_bytes: 4 } });
    const o = await run(factory(strict, env).createFilter(), fake(env, { method: 'POST', body }));
    assert.deepEqual([(o as { reply: LocalReply }).reply.status, (o as { reply: LocalReply }).reply.body], [413, 'Payload Too Large']);
    assert.equal(auth.seen.length, before + 1, 'no check for the refused body');
    assert.equal(stat(env, 'http.ingress.downstream_rq_too_large'), 1);
  });

  test("filter_enabled_metadata: no check (ext_authz.disabled) unless the CUSTOM policy's RBAC shadow rules matched", async () => {
    auth.answer = (_q, res) => {
      res.statusCode = 403;
      res.end();
    };
    const cfg = httpConfig({
      filter_enabled_metadata: {
        filter: 'envoy.filters.http.rbac',
        path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
        value: { string_match: { prefix: 'istio-ext-authz' } },
      },
    });
    const fa = factory(cfg, env);
    const before = auth.seen.length;
    assert.deepEqual(await run(fa.createFilter(), fake(env)), { kind: 'continue' });
    assert.equal(auth.seen.length, before);
    assert.equal(stat(env, 'http.ingress.ext_authz.disabled'), 1);
    const matched = fake(env, {
      metadata: { 'envoy.filters.http.rbac': { istio_ext_authz_shadow_effective_policy_id: 'istio-ext-authz-ns[foo]-policy[ext]-rule[0]' } },
    });
    assert.equal(((await run(fa.createFilter(), matched)) as { reply: LocalReply }).reply.status, 403);
    assert.equal(auth.seen.length, before + 1);
  });

  test('a request without a route is not checked', async () => {
    const before = auth.seen.length;
    assert.deepEqual(await run(factory(httpConfig(), env).createFilter(), fake(env, { noRoute: true })), { kind: 'continue' });
    assert.equal(auth.seen.length, before);
  });

  test('many concurrent checks each get their own answer', async () => {
    auth.answer = (q, res) => {
      res.statusCode = q.url.endsWith('/odd') ? 403 : 200;
      setTimeout(() => res.end(), 5);
    };
    const fa = factory(httpConfig(), env);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => run(fa.createFilter(), fake(env, { path: i % 2 ? '/odd' : '/even' }))));
    results.forEach((o, i) => assert.equal(o.kind, i % 2 ? 'reply' : 'continue'));
  });
});

describe('ext_authz with a gRPC authorization service', () => {
  const auth = new GrpcAuthServer();
  let env: ReturnType<typeof clusterManager>;
  let raw: Http2Server;
  let rawAnswer: (s: import('node:http2').ServerHttp2Stream) => void = (s) => s.close();

  before(async () => {
    await auth.start();
    raw = createH2Server();
    raw.on('stream', (s) => rawAnswer(s));
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    env = clusterManager([
      staticCluster(GRPC_CLUSTER, auth.port, true),
      staticCluster('raw', (raw.address() as AddressInfo).port, true),
      staticCluster('h1-only', auth.port, false),
      staticCluster(BACKEND, 1),
    ]);
  });
  after(async () => {
    env.clusters.close();
    await auth.close();
    raw.close();
  });

  test('allowed: CheckRequest attributes as Envoy fills them; ok_response mutations applied', async () => {
    auth.answer = (_q, cb) =>
      cb(null, {
        status: { code: 0 },
        ok_response: {
          headers: [
            { header: { key: 'x-user', value: 'alice' }, append: false },
            { header: { key: 'x-tags', value: 'b' }, append: true },
            { header: { key: 'x-added', value: 'new' } },
            { header: { key: 'x-set', value: 'new' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
            { header: { key: 'x-absent', value: 'new' }, append_action: 'ADD_IF_ABSENT' },
            { header: { key: 'x-dup', value: 'no' }, append_action: 'ADD_IF_ABSENT' },
            { header: { key: 'x-gone', value: 'no' }, append_action: 'OVERWRITE_IF_EXISTS' },
          ],
          headers_to_remove: ['authorization', ':path'],
          response_headers_to_add: [{ header: { key: 'x-authz', value: 'ok' } }],
          query_parameters_to_set: [{ key: 'z', value: '9' }],
          query_parameters_to_remove: ['a'],
        },
        dynamic_metadata: { user: 'alice' },
      });
    const filter = factory(grpcConfig({ clear_route_cache: true }), env).createFilter();
    const f = fake(env, {
      headers: [
        'host',
        'httpbin.example.com',
        'authorization',
        'Bearer t',
        'x-tags',
        'a',
        'x-dup',
        '1',
        'x-dup',
        '2',
        'x-added',
        'old',
        'x-set',
        'old',
        'x-user',
        'mallory',
        'x-latin',
        'caf\u00e9',
      ],
    });
    const before = auth.seen.length;
    assert.deepEqual(await run(filter, f), { kind: 'continue' });
    const seen = auth.seen[before];
    assert.ok(seen);
    const attrs = seen.request.attributes as Record<string, Record<string, unknown>>;
    assert.deepEqual(attrs.source?.address, { socket_address: { address: '127.0.0.1', port_value: 40000 } });
    assert.deepEqual(attrs.destination?.address, { socket_address: { address: '127.0.0.1', port_value: 8080 } });
    const http = (attrs.request as { http: Record<string, unknown> }).http;
    assert.equal(http.method, 'GET');
    assert.equal(http.path, '/headers?a=1');
    assert.equal(http.host, 'httpbin.example.com');
    assert.equal(http.scheme, 'http');
    assert.equal(http.protocol, 'HTTP/1.1');
    const hs = http.headers as Record<string, string>;
    assert.equal(hs[':authority'], 'httpbin.example.com');
    assert.equal(hs[':method'], 'GET');
    assert.equal(hs.authorization, 'Bearer t', 'gRPC without an allowlist: every header');
    assert.equal(hs['x-dup'], '1,2');
    assert.equal(hs.host, undefined, 'host is :authority');
    assert.equal(hs['x-latin'], 'caf!', 'a byte that is not UTF-8 becomes ! (Envoy sanitizes proto strings)');
    assert.equal(seen.metadata.get('x-envoy-internal')[0], 'true');
    assert.equal(header(f.cb.headers, 'x-user'), 'alice');
    assert.equal(header(f.cb.headers, 'x-tags'), 'a,b', 'append: true appends to the existing header');
    assert.equal(header(f.cb.headers, 'x-added'), 'old | new', 'no append field: append_action APPEND_IF_EXISTS_OR_ADD adds beside');
    assert.equal(header(f.cb.headers, 'x-set'), 'new');
    assert.equal(header(f.cb.headers, 'x-absent'), 'new');
    assert.equal(header(f.cb.headers, 'x-dup'), '1 | 2', 'ADD_IF_ABSENT leaves a present header');
    assert.equal(header(f.cb.headers, 'x-gone'), undefined, 'OVERWRITE_IF_EXISTS does not add');
    assert.equal(header(f.cb.headers, 'authorization'), undefined);
    assert.equal(f.cb.path, '/headers?z=9', 'query parameters set and removed; pseudo-headers cannot be removed');
    assert.ok(f.routeCleared());
    assert.equal(f.meta['envoy.filters.http.ext_authz']?.user, 'alice');
    const resp: string[] = [];
    filter.encodeHeaders?.(200, resp);
    assert.equal(header(resp, 'x-authz'), 'ok');
  });

  test("the Check call's head: path, authority, content-type, te, grpc-timeout and Envoy's headers", async () => {
    let head: import('node:http2').IncomingHttpHeaders = {};
    rawAnswer = (s) => {
      s.on('data', () => undefined);
      s.on('end', () => {
        s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
        s.end(grpcFrame(encodeJson('envoy.service.auth.v3.CheckResponse', { status: { code: 0 } })));
      });
    };
    const cfg: ExtAuthz = {
      grpc_service: {
        envoy_grpc: { cluster_name: 'raw', authority: 'ext-authz.foo.svc.cluster.local' },
        timeout: '0.5s',
        initial_metadata: [{ key: 'x-md', value: 'v' }],
      },
      transport_api_version: 'V3',
    };
    raw.once('stream', (_s, h) => (head = h));
    assert.deepEqual(await run(factory(cfg, env).createFilter(), fake(env)), { kind: 'continue' });
    assert.equal(head[':method'], 'POST');
    assert.equal(head[':path'], '/envoy.service.auth.v3.Authorization/Check');
    assert.equal(head[':authority'], 'ext-authz.foo.svc.cluster.local');
    assert.equal(head['content-type'], 'application/grpc');
    assert.equal(head.te, 'trailers');
    assert.equal(head['grpc-timeout'], '500m');
    assert.equal(head['x-md'], 'v');
    assert.equal(head['x-envoy-internal'], 'true');
    assert.equal(head['x-envoy-expected-rq-timeout-ms'], '500');
  });

  test('over TLS: the principals (URI SAN, else DNS SAN, else subject) and, when asked, the client certificate', async () => {
    const certs = new CertFactory();
    try {
      const ca = certs.ca('ext-authz-ca');
      const server = certs.leaf(ca, 'gateway', { dns: ['httpbin.example.com'] });
      const client = certs.leaf(ca, 'client', { uri: ['spiffe://cluster.local/ns/foo/sa/bar'], client: true });
      const tlsServer = createTlsServer({ cert: server.cert, key: server.key, ca: ca.cert, requestCert: true });
      const accepted = new Promise<TLSSocket>((r) => tlsServer.once('secureConnection', r));
      await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
      const c = tlsConnect({
        port: (tlsServer.address() as AddressInfo).port,
        host: '127.0.0.1',
        ca: ca.cert,
        cert: client.cert,
        key: client.key,
        servername: 'httpbin.example.com',
      });
      c.on('error', () => undefined);
      const sock = await accepted;
      auth.answer = (_q, cb) => cb(null, { status: { code: 0 } });
      const before = auth.seen.length;
      const f = fake(env);
      const cb = { ...f.cb, downstream: { ...f.cb.downstream, tls: true, tlsSocket: sock } } as FilterCallbacks;
      Object.defineProperty(cb, 'finished', { get: () => f.cb.finished });
      assert.deepEqual(await run(factory(grpcConfig({ include_peer_certificate: true }), env).createFilter(), { ...f, cb }), { kind: 'continue' });
      const attrs = auth.seen[before]?.request.attributes as Record<string, Record<string, unknown>>;
      assert.equal(attrs.source?.principal, 'spiffe://cluster.local/ns/foo/sa/bar');
      assert.equal(attrs.destination?.principal, 'httpbin.example.com');
      assert.equal(decodeURIComponent(String(attrs.source?.certificate)), new X509Certificate(client.cert).toString());
      c.destroy();
      sock.destroy();
      tlsServer.close();
    } finally {
      certs.cleanup();
    }
  });

  test('denied with a DeniedHttpResponse: its status, headers and body', async () => {
    auth.answer = (_q, cb) =>
      cb(null, {
        status: { code: 7 },
        denied_response: { status: { code: 'Unauthorized' }, headers: [{ header: { key: 'x-reason', value: 'bad' } }], body: 'go away' },
      });
    const o = await run(factory(grpcConfig(), env).createFilter(), fake(env));
    const r = (o as { reply: LocalReply }).reply;
    assert.deepEqual([r.status, r.body, header(r.headers ?? [], 'x-reason'), r.details], [401, 'go away', 'bad', 'ext_authz_denied']);
  });

  test('a denied status no reply can carry (1xx, past 599) is 403', async () => {
    for (const code of [101, 600]) {
      auth.answer = (_q, cb) => cb(null, { status: { code: 7 }, denied_response: { status: { code } } });
      const r = ((await run(factory(grpcConfig(), env).createFilter(), fake(env))) as { reply: LocalReply }).reply;
      assert.equal(r.status, 403);
    }
  });

  test('denied without a DeniedHttpResponse: 403 with an empty body', async () => {
    auth.answer = (_q, cb) => cb(null, { status: { code: 16 } });
    const r = ((await run(factory(grpcConfig(), env).createFilter(), fake(env))) as { reply: LocalReply }).reply;
    assert.deepEqual([r.status, r.body], [403, '']);
  });

  test('a failed call (gRPC status) is an error; failure_mode_allow lets it through', async () => {
    auth.answer = (_q, cb) => cb({ code: grpc.status.UNAVAILABLE, details: 'down' });
    const r = ((await run(factory(grpcConfig({ status_on_error: { code: 'ServiceUnavailable' } }), env).createFilter(), fake(env))) as { reply: LocalReply })
      .reply;
    assert.deepEqual([r.status, r.details], [503, 'ext_authz_error']);
    assert.deepEqual(await run(factory(grpcConfig({ failure_mode_allow: true }), env).createFilter(), fake(env)), { kind: 'continue' });
  });

  test('the gRPC timeout ends a hung call with an error; the server sees it cancelled', async () => {
    auth.answer = () => undefined;
    const cancelled = auth.cancelled;
    const t0 = Date.now();
    const r = ((await run(factory(grpcConfig({}, '0.1s'), env).createFilter(), fake(env))) as { reply: LocalReply }).reply;
    assert.equal(r.details, 'ext_authz_error');
    assert.ok(Date.now() - t0 < 1500);
    for (let i = 0; i < 100 && auth.cancelled === cancelled; i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(auth.cancelled, cancelled + 1);
  });

  test('with_request_body: body as a string, raw_body with pack_as_bytes', async () => {
    auth.answer = (_q, cb) => cb(null, { status: { code: 0 } });
    const before = auth.seen.length;
    const body = Buffer.from([0x68, 0x69, 0xff]);
    await run(
      factory(grpcConfig({ with_request_body: { max_request_bytes: 100, pack_as_bytes: true } }), env).createFilter(),
      fake(env, { method: 'POST', body }),
    );
    await run(
      factory(grpcConfig({ with_request_body: { max_request_bytes: 100 } }), env).createFilter(),
      fake(env, { method: 'POST', body: Buffer.from('hi') }),
    );
    const h1 = (auth.seen[before]?.request.attributes as { request: { http: Record<string, unknown> } }).request.http;
    const h2 = (auth.seen[before + 1]?.request.attributes as { request: { http: Record<string, unknown> } }).request.http;
    assert.equal(h1.raw_body, body.toString('base64'));
    assert.equal(h1.size, '3');
    assert.equal((h1.headers as Record<string, string>)['x-envoy-auth-partial-body'], 'false');
    assert.equal(h2.body, 'hi');
  });

  test('hostile answers are errors: a message that does not decode, no grpc-status, an HTTP/1.1-only cluster', async () => {
    const cfg = (cluster: string): ExtAuthz => ({ grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: '1s' }, transport_api_version: 'V3' });
    rawAnswer = (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]));
    };
    assert.equal(((await run(factory(cfg('raw'), env).createFilter(), fake(env))) as { reply: LocalReply }).reply.details, 'ext_authz_error');
    rawAnswer = (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end();
    };
    assert.equal(((await run(factory(cfg('raw'), env).createFilter(), fake(env))) as { reply: LocalReply }).reply.details, 'ext_authz_error');
    rawAnswer = (s) => {
      s.respond({ ':status': 302, location: '/x' });
      s.end();
    };
    assert.equal(((await run(factory(cfg('raw'), env).createFilter(), fake(env))) as { reply: LocalReply }).reply.details, 'ext_authz_error');
    assert.equal(((await run(factory(cfg('h1-only'), env).createFilter(), fake(env))) as { reply: LocalReply }).reply.details, 'ext_authz_error');
  });
});
