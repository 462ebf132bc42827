import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIT_ATTACH, ADMIT_OVERFLOW, ADMIT_PENDING, OVERFLOW_BODY, admit, canRetry } from './circuit-breakers.ts';

const MAX = 4294967295;
const th = (
  o: Partial<{
    maxConnections: number;
    maxPendingRequests: number;
    maxRequests: number;
    maxRetries: number;
    retryBudget: { percent: number; minConcurrency: number };
  }>,
) => ({ maxConnections: MAX, maxPendingRequests: MAX, maxRequests: MAX, maxRetries: MAX, ...o });

const cases = [
  {
    name: 'Istio defaults: everything is admitted',
    th: th({}),
    s: { attachedRq: 1000, pendingRq: 1000, connections: 1000 },
    idle: false,
    want: ADMIT_PENDING,
    cx: false,
  },
  {
    name: 'an idle connection attaches at once, whatever the pending limit',
    th: th({ maxPendingRequests: 0 }),
    s: { attachedRq: 0, pendingRq: 5, connections: 1 },
    idle: true,
    want: ADMIT_ATTACH,
    cx: false,
  },
  {
    name: 'http2MaxRequests reached: overflow even with an idle connection',
    th: th({ maxRequests: 2 }),
    s: { attachedRq: 2, pendingRq: 0, connections: 3 },
    idle: true,
    want: ADMIT_OVERFLOW,
    cx: false,
  },
  {
    name: 'http1MaxPendingRequests 1, one already waiting: overflow',
    th: th({ maxPendingRequests: 1 }),
    s: { attachedRq: 1, pendingRq: 1, connections: 1 },
    idle: false,
    want: ADMIT_OVERFLOW,
    cx: false,
  },
  {
    name: 'maxConnections 1 in use: the request waits and counts upstream_cx_overflow',
    th: th({ maxConnections: 1, maxPendingRequests: 1 }),
    s: { attachedRq: 1, pendingRq: 0, connections: 1 },
    idle: false,
    want: ADMIT_PENDING,
    cx: true,
  },
  {
    name: 'first request of a cold cluster waits for its connection',
    th: th({ maxConnections: 1, maxPendingRequests: 1 }),
    s: { attachedRq: 0, pendingRq: 0, connections: 0 },
    idle: false,
    want: ADMIT_PENDING,
    cx: false,
  },
];

for (const c of cases) {
  test(`circuit breakers: ${c.name}`, () => {
    const a = admit(c.th, c.s, c.idle);
    assert.equal(a.result, c.want);
    assert.equal(a.cxOverflow, c.cx);
  });
}

test('circuit breakers: max_retries bounds concurrent retries', () => {
  assert.equal(canRetry(th({ maxRetries: 3 }), 2), true);
  assert.equal(canRetry(th({ maxRetries: 3 }), 3), false);
});

test("circuit breakers: the overflow body is Envoy's 81 bytes", () => assert.equal(Buffer.byteLength(OVERFLOW_BODY), 81));

test('circuit breakers: a retry budget replaces max_retries (20% of active + pending, at least min_retry_concurrency)', () => {
  const budget = th({ maxRetries: 0, retryBudget: { percent: 20, minConcurrency: 3 } });
  assert.equal(canRetry(budget, 2, 5, 0), true, 'min concurrency 3');
  assert.equal(canRetry(budget, 3, 5, 0), false);
  assert.equal(canRetry(budget, 9, 40, 10), true, '20% of 50 = 10');
  assert.equal(canRetry(budget, 10, 40, 10), false);
});
