import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultAbort, faultDelay } from './fault.ts';
import { compileFault, FAULT_TYPE } from '../router/fault-config.ts';
import { ConfigError } from '../xds/json.ts';
import type { Any } from '../../xds/envoy.ts';

const T = `type.googleapis.com/${FAULT_TYPE}`;

const compileCases: { name: string; in: Any; want?: Partial<ReturnType<typeof compileFault>>; error?: RegExp }[] = [
  {
    name: 'Istio fixed delay 5s at 100% (MILLION denominator)',
    in: { '@type': T, delay: { fixed_delay: '5s', percentage: { numerator: 1000000, denominator: 'MILLION' } } },
    want: { delayMs: 5000, delayProbability: 1, abortStatus: 0 },
  },
  {
    name: 'legacy integer percent (HUNDRED)',
    in: { '@type': T, delay: { fixed_delay: '0.5s', percentage: { numerator: 10 } } },
    want: { delayMs: 500, delayProbability: 0.1 },
  },
  {
    name: 'abort 418 at 50%',
    in: { '@type': T, abort: { http_status: 418, percentage: { numerator: 500000, denominator: 'MILLION' } } },
    want: { abortStatus: 418, abortGrpcStatus: -1, abortProbability: 0.5 },
  },
  {
    name: 'abort without percentage never fires (proto default 0%)',
    in: { '@type': T, abort: { http_status: 503 } },
    want: { abortStatus: 503, abortProbability: 0 },
  },
  {
    name: 'gRPC abort answers HTTP 200 with the gRPC status',
    in: { '@type': T, abort: { grpc_status: 14, percentage: { numerator: 100 } } },
    want: { abortStatus: 200, abortGrpcStatus: 14, abortProbability: 1 },
  },
  { name: 'http_status out of range', in: { '@type': T, abort: { http_status: 600, percentage: { numerator: 100 } } }, error: /\[200, 600\)/ },
  { name: 'header-controlled abort is rejected', in: { '@type': T, abort: { header_abort: {} } }, error: /header_abort/ },
  { name: 'unknown field is rejected', in: { '@type': T, bogus: 1 }, error: /bogus/ },
  {
    name: 'max_active_faults is rejected (faults are not capped here)',
    in: { '@type': T, max_active_faults: 3 },
    error: /field 'max_active_faults' is not supported/,
  },
  { name: 'wrong type', in: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' }, error: /expected/ },
];

for (const c of compileCases) {
  test(`fault config: ${c.name}`, () => {
    if (c.error) {
      assert.throws(
        () => compileFault(c.in, 'route'),
        (e: unknown) => e instanceof ConfigError && c.error!.test(e.message),
      );
      return;
    }
    const f = compileFault(c.in, 'route');
    for (const [k, v] of Object.entries(c.want ?? {})) assert.equal(f[k as keyof typeof f], v, k);
  });
}

test('fault decisions follow the percentages over many requests', () => {
  const f = compileFault(
    {
      '@type': T,
      delay: { fixed_delay: '1s', percentage: { numerator: 250000, denominator: 'MILLION' } },
      abort: { http_status: 503, percentage: { numerator: 75 } },
    },
    'r',
  );
  let delays = 0;
  let aborts = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    if (faultDelay(f) > 0) delays++;
    if (faultAbort(f)) aborts++;
  }
  assert.ok(Math.abs(delays / n - 0.25) < 0.02, `delays ${delays / n}`);
  assert.ok(Math.abs(aborts / n - 0.75) < 0.02, `aborts ${aborts / n}`);
  // 0% and 100% are exact.
  const always = compileFault({ '@type': T, abort: { http_status: 418, percentage: { numerator: 100 } } }, 'r');
  const never = compileFault({ '@type': T, abort: { http_status: 418, percentage: { numerator: 0 } } }, 'r');
  assert.equal(
    faultAbort(always, () => 0.999999),
    true,
  );
  assert.equal(
    faultAbort(never, () => 0),
    false,
  );
});
