import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLocalReply, grpcPercentEncode, isGrpcContentType } from './local-reply.ts';
import { reasonPhrase } from './codes.ts';
import { normalizePath } from './path.ts';
import { parseRequestHeaders, type RequestHeaderOptions } from './request-headers.ts';
import { buildResponseHeaders } from './response-headers.ts';
import { SERVER_OVERWRITE } from './hcm-config.ts';
import { applyHeaderMutation, compileHeaderMutation } from '../router/header-ops.ts';
import { formatResponseFlags, UF, URX, NR, UH } from './response-flags.ts';
import { backOffMs, compileRetryPolicy, excludedPriorities } from '../router/retry-policy.ts';
import { ISTIO_DEFAULT_RETRY } from '../test/fixtures.ts';

const names = (flat: string[]): string[] => flat.filter((_, i) => i % 2 === 0);

describe('local replies (Envoy prepareLocalReply + HCM + HTTP/1 encoder)', () => {
  test('no route: date, server, content-length: 0, empty body', () => {
    const r = buildLocalReply(404, '', { serverName: 'istio-envoy' });
    assert.deepEqual(names(r.headers), ['date', 'server', 'content-length']);
    assert.equal(r.headers[3], 'istio-envoy');
    assert.equal(r.headers[5], '0');
    assert.equal(r.body, '');
  });
  test('no healthy upstream: content-length 19, text/plain, then date and server', () => {
    const r = buildLocalReply(503, 'no healthy upstream', { serverName: 'istio-envoy' });
    assert.deepEqual(names(r.headers), ['content-length', 'content-type', 'date', 'server']);
    assert.equal(r.headers[1], '19');
    assert.equal(r.headers[3], 'text/plain');
  });
  test('component headers come first; connection: close after server', () => {
    const r = buildLocalReply(503, 'x', { serverName: 'envoy', headers: ['x-envoy-overloaded', 'true'], close: true });
    assert.deepEqual(names(r.headers), ['x-envoy-overloaded', 'content-length', 'content-type', 'date', 'server', 'connection']);
  });
  test('empty reply that closes: content-length: 0 last', () => {
    const r = buildLocalReply(426, '', { serverName: 'istio-envoy', close: true });
    assert.deepEqual(names(r.headers), ['date', 'server', 'connection', 'content-length']);
  });
  test('HEAD keeps the would-be content-length and drops the body', () => {
    const r = buildLocalReply(503, 'no healthy upstream', { serverName: 'istio-envoy', head: true });
    assert.equal(r.headers[1], '19');
    assert.equal(r.body, '');
    assert.ok(!names(buildLocalReply(404, '', { serverName: 'x', head: true }).headers).includes('content-length'));
  });
  test('gRPC: 200 trailers-only with mapped grpc-status and percent-encoded message', () => {
    const r = buildLocalReply(503, 'no healthy upstream', { serverName: 'istio-envoy', grpc: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers.slice(0, 6), ['content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'no healthy upstream']);
    assert.equal(grpcPercentEncode('a%b~\n'), 'a%25b%7E%0A');
    assert.ok(isGrpcContentType('application/grpc') && isGrpcContentType('application/grpc+proto') && !isGrpcContentType('application/grpc-web'));
  });
  test('reason phrases from Envoy table; unknown codes are `Unknown`', () => {
    assert.equal(reasonPhrase(503), 'Service Unavailable');
    assert.equal(reasonPhrase(418), 'Unknown');
    assert.equal(reasonPhrase(426), 'Upgrade Required');
    assert.equal(reasonPhrase(499), 'Unknown');
  });
  test('connect-refused body after retries is 190 bytes', () => {
    const body =
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused';
    assert.equal(Buffer.byteLength(body), 190);
  });
});

const opts: RequestHeaderOptions = {
  remoteAddress: '10.0.0.7',
  localAddress: '10.1.1.1',
  useRemoteAddress: true,
  skipXffAppend: false,
  xffNumTrustedHops: 0,
  generateRequestId: true,
  preserveExternalRequestId: false,
  internalOnlyHeaders: [],
  tls: false,
};

describe('request headers (mutateRequestHeaders)', () => {
  test('XFF appended with a bare comma, XFP overwritten in place, fresh request id, external address', () => {
    const p = parseRequestHeaders(['Host', 'a', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Proto', 'https', 'X-Request-Id', 'client', 'Accept', '*/*'], opts);
    assert.deepEqual(names(p.headers), ['x-forwarded-for', 'x-forwarded-proto', 'x-request-id', 'accept', 'x-envoy-external-address']);
    assert.equal(p.headers[1], '1.2.3.4,10.0.0.7');
    assert.equal(p.headers[3], 'http');
    assert.notEqual(p.requestId, 'client');
    assert.match(p.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(p.headers[9], '10.0.0.7');
    assert.equal(p.host, 'a');
  });
  test("loopback peer: XFF gets Envoy's own address", () => {
    const p = parseRequestHeaders(['host', 'a'], { ...opts, remoteAddress: '::ffff:127.0.0.1' });
    assert.equal(p.headers[1], '10.1.1.1');
    assert.equal(p.clientAddress, '127.0.0.1');
  });
  test('hop-by-hop and internal headers are stripped; te kept only as trailers', () => {
    const p = parseRequestHeaders(
      [
        'host',
        'a',
        'connection',
        'close',
        'keep-alive',
        'x',
        'proxy-connection',
        'x',
        'transfer-encoding',
        'chunked',
        'x-envoy-internal',
        'true',
        'x-envoy-retry-on',
        '5xx',
        'x-envoy-max-retries',
        '5',
        'x-envoy-decorator-operation',
        'x',
        'te',
        'trailers, deflate',
        'upgrade',
        'h2c',
      ],
      opts,
    );
    assert.deepEqual(names(p.headers), ['te', 'x-forwarded-for', 'x-forwarded-proto', 'x-envoy-external-address', 'x-request-id']);
    assert.equal(p.headers[1], 'trailers');
    assert.ok(p.connectionClose && p.chunked && p.upgrade === undefined);
  });
});

describe('response headers', () => {
  test('server overwritten in place, date kept, hop-by-hop dropped, service time then route ops', () => {
    const { headers } = buildResponseHeaders(['Date', 'd', 'Server', 'gunicorn', 'Connection', 'keep-alive', 'Content-Length', '2'], {
      status: 200,
      serviceTimeMs: 3,
      serverName: 'istio-envoy',
      serverTransformation: SERVER_OVERWRITE,
      suppressEnvoyHeaders: false,
      close: false,
      head: false,
      mutate: (h) => h.push('x-added', '1'),
      attemptCount: 0,
    });
    assert.deepEqual(headers, ['date', 'd', 'server', 'istio-envoy', 'content-length', '2', 'x-envoy-upstream-service-time', '3', 'x-added', '1']);
  });
  test('no content-length: chunked framing; no date upstream: appended after service time', () => {
    const { headers } = buildResponseHeaders([], {
      status: 200,
      serviceTimeMs: 0,
      serverName: 's',
      serverTransformation: SERVER_OVERWRITE,
      suppressEnvoyHeaders: false,
      close: true,
      head: false,
      mutate: undefined,
      attemptCount: 0,
    });
    assert.deepEqual(names(headers), ['x-envoy-upstream-service-time', 'date', 'server', 'connection', 'transfer-encoding']);
  });
});

describe('route header mutations (append_action)', () => {
  const ctx = { remoteAddress: '1.2.3.4', remotePort: 5, localAddress: '6.7.8.9', localPort: 80, protocol: 'HTTP/1.1' };
  test('append, add-if-absent, overwrite, overwrite-if-exists, remove, substitution', () => {
    const m = compileHeaderMutation(
      [
        { header: { key: 'x-a', value: '2' } },
        { header: { key: 'x-b', value: 'new' }, append_action: 'ADD_IF_ABSENT' },
        { header: { key: 'x-c', value: 'set' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'x-d', value: 'no' }, append_action: 'OVERWRITE_IF_EXISTS' },
        { header: { key: 'x-ip', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% 100%%' } },
      ],
      ['x-gone'],
      'test',
    );
    const h = ['x-a', '1', 'x-b', 'old', 'x-c', 'c1', 'x-c', 'c2', 'x-gone', 'g'];
    applyHeaderMutation(m, h, ctx);
    assert.deepEqual(h, ['x-a', '1', 'x-b', 'old', 'x-c', 'set', 'x-a', '2', 'x-ip', '1.2.3.4 100%']);
  });
  test('pseudo-headers and unknown variables are rejected', () => {
    assert.throws(() => compileHeaderMutation([{ header: { key: ':path', value: 'x' } }], undefined, 't'));
    assert.throws(() => compileHeaderMutation([{ header: { key: 'x', value: '%NOPE%' } }], undefined, 't'), /not supported/);
  });
});

describe('path normalisation (normalize_path, Istio BASE)', () => {
  const cases: [string, string | undefined][] = [
    ['/a/../b', '/b'],
    ['/a/./b/', '/a/b/'],
    ['/a%2Fb', '/a%2Fb'],
    ['/%61bc', '/abc'],
    ['/a//b', '/a//b'],
    ['/a\\b', '/a/b'],
    ['/%00', undefined],
    ['/x?q=/../', '/x?q=/../'],
    ['/..', '/'],
  ];
  for (const [input, want] of cases) test(`${input} -> ${String(want)}`, () => assert.equal(normalizePath(input, false), want));
  test('merge_slashes', () => assert.equal(normalizePath('/a//b', true), '/a/b'));
});

describe('response flags and retries', () => {
  test('flags print in Envoy order joined by commas', () => {
    assert.equal(formatResponseFlags(URX | UF), 'UF,URX');
    assert.equal(formatResponseFlags(NR), 'NR');
    assert.equal(formatResponseFlags(UH), 'UH');
    assert.equal(formatResponseFlags(0), '-');
  });
  test('back-off is fully jittered within [0, (2^n - 1) * base), capped at 10 x base', () => {
    const p = compileRetryPolicy({ retry_on: '5xx', num_retries: 3 }, 't');
    for (let i = 0; i < 200; i++) {
      assert.ok(backOffMs(p, 1) < 25);
      assert.ok(backOffMs(p, 2) < 75);
      assert.ok(backOffMs(p, 10) < 250);
    }
  });
  test('Istio default policy parses: 2 retries, connect-failure, previous hosts', () => {
    const p = compileRetryPolicy(ISTIO_DEFAULT_RETRY, 't');
    assert.equal(p.numRetries, 2);
    assert.ok(p.previousHosts);
    assert.equal(p.hostSelectionMaxAttempts, 5);
    assert.ok(p.grpcOn.has(14) && p.grpcOn.has(1));
    assert.equal(p.priorityUpdateFrequency, 0);
  });
  test('retry_priority: previous_priorities with its update_frequency; anything else is NACKed by name', () => {
    const pp = (cfg: Record<string, unknown>) => ({
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', ...cfg },
    });
    assert.equal(compileRetryPolicy({ retry_priority: pp({ update_frequency: 2 }) }, 't').priorityUpdateFrequency, 2);
    assert.throws(() => compileRetryPolicy({ retry_priority: pp({}) }, 't'), /t\.retry_priority\.typed_config\.update_frequency must be greater than 0/);
    assert.throws(
      () => compileRetryPolicy({ retry_priority: { name: 'envoy.retry_priorities.other', typed_config: { '@type': 'type.googleapis.com/x.Other' } } }, 't'),
      /t\.retry_priority: retry priority 'envoy\.retry_priorities\.other' is not supported/,
    );
  });
  test('previous_priorities excludes the priorities tried every update_frequency attempts, keeping the set in between', () => {
    const tried = (...p: number[]) => p.map((priority) => ({ priority }));
    assert.equal(excludedPriorities(2, tried(0), undefined), undefined);
    const two = excludedPriorities(2, tried(0, 1), undefined);
    assert.deepEqual([...(two ?? [])], [0, 1]);
    assert.equal(excludedPriorities(2, tried(0, 1, 2), two), two);
    assert.deepEqual([...(excludedPriorities(2, tried(0, 1, 2, 2), two) ?? [])], [0, 1, 2]);
    assert.equal(excludedPriorities(0, tried(0, 1), undefined), undefined);
  });
});
