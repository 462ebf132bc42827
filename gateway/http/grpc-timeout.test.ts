import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGrpcTimeout, legacyGrpcTimeout, parseGrpcTimeout, streamDuration } from './grpc-timeout.ts';

test('grpc-timeout parses as Envoy getGrpcTimeout: 1-8 digits and a unit, sub-ms rounded up, anything else ignored', () => {
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('3S'), 3000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('1500u'), 2);
  assert.equal(parseGrpcTimeout('1n'), 1);
  assert.equal(parseGrpcTimeout('0m'), 0);
  assert.equal(parseGrpcTimeout('99999999m'), 99_999_999);
  for (const bad of [undefined, '', 'm', '100', '123456789m', '1x', '-1m', '1.5S', ' 1m']) assert.equal(parseGrpcTimeout(bad), undefined, String(bad));
});

test('a duration goes upstream in milliseconds, in a larger unit past 8 digits', () => {
  assert.equal(formatGrpcTimeout(300), '300m');
  assert.equal(formatGrpcTimeout(99_999_999), '99999999m');
  assert.equal(formatGrpcTimeout(100_000_000), '100000S');
});

test("the stream's limit: grpc-timeout when grpc_timeout_header_max is set (0: no cap), capped and offset; else max_stream_duration", () => {
  const istio = { maxStreamDurationMs: 0, grpcTimeoutHeaderMaxMs: 0, grpcTimeoutHeaderOffsetMs: undefined };
  assert.deepEqual(streamDuration(istio, 300), { ms: 300, fromHeader: true });
  assert.equal(streamDuration(istio, undefined), undefined);
  assert.deepEqual(streamDuration({ ...istio, grpcTimeoutHeaderMaxMs: 100 }, 300), { ms: 100, fromHeader: true });
  assert.deepEqual(streamDuration({ ...istio, grpcTimeoutHeaderOffsetMs: 50 }, 300), { ms: 250, fromHeader: true });
  assert.deepEqual(streamDuration({ ...istio, grpcTimeoutHeaderOffsetMs: 500 }, 300), { ms: 0, fromHeader: true });
  assert.deepEqual(streamDuration({ maxStreamDurationMs: 2000, grpcTimeoutHeaderMaxMs: undefined, grpcTimeoutHeaderOffsetMs: undefined }, 300), {
    ms: 2000,
    fromHeader: false,
  });
});

test("istiod's max_grpc_timeout: the grpc-timeout header (absent: none), less the offset while that leaves time, capped (0: no cap)", () => {
  assert.equal(legacyGrpcTimeout(0, 0, undefined), 0);
  assert.equal(legacyGrpcTimeout(0, 0, 300), 300);
  assert.equal(legacyGrpcTimeout(1000, 0, undefined), 1000);
  assert.equal(legacyGrpcTimeout(1000, 0, 300), 300);
  assert.equal(legacyGrpcTimeout(1000, 0, 5000), 1000);
  assert.equal(legacyGrpcTimeout(0, 100, 300), 200);
  assert.equal(legacyGrpcTimeout(0, 500, 300), 300);
});
