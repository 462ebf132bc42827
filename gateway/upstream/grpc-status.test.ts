import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grpcToHttpStatus } from './grpc-status.ts';

test('grpc-status maps to HTTP as Envoy counts it for outlier detection (14 UNAVAILABLE -> 503, 4 -> 504, unknown -> 500)', () => {
  assert.deepEqual([0, 1, 4, 5, 8, 12, 13, 14, 16, 99].map(grpcToHttpStatus), [200, 499, 504, 404, 429, 501, 500, 503, 401, 500]);
});
