// ValidateTelemetry's rules with istiod's messages (pkg/config/validation TestValidateTelemetry), and what the
// decoder refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateTelemetry } from './telemetry-validation.ts';

const meta = { name: 't', namespace: 'istio-system' };
const messages = (spec: unknown, annotations: Record<string, string> = {}): string[] =>
  validateTelemetry({ ...meta, annotations }, spec).errors.map((e) => `${e.field}: ${e.message}`);

const cases: { name: string; spec: unknown; want: string[] }[] = [
  { name: 'an empty spec is valid', spec: {}, want: [] },
  {
    name: 'providers, filter, mode, disabled: valid',
    spec: { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' }, match: { mode: 'CLIENT' }, disabled: false }] },
    want: [],
  },
  {
    name: 'a filter that is not CEL',
    spec: { accessLogging: [{ filter: { expression: 'response.code >= ' } }] },
    want: ['spec.accessLogging[0].filter.expression: must be a valid CEL expression, '],
  },
  {
    name: 'an empty provider name',
    spec: { accessLogging: [{ providers: [{ name: 'a' }, {}] }] },
    want: ['spec.accessLogging[0].providers[1].name: providers.name may not be empty'],
  },
  {
    name: 'a tracing provider without a name',
    spec: { tracing: [{ providers: [{ name: '' }] }] },
    want: ['spec.tracing[0].providers[0].name: providers.name may not be empty'],
  },
  {
    name: 'sampling above 100',
    spec: { tracing: [{ randomSamplingPercentage: 101 }] },
    want: ['spec.tracing[0].randomSamplingPercentage: randomSamplingPercentage must be in range [0.0, 100.0]'],
  },
  {
    name: 'custom tags without values',
    spec: { tracing: [{ customTags: { a: { literal: {} }, b: { header: {} }, c: { environment: {} }, d: null } }] },
    want: [
      'spec.tracing[0].customTags.a.literal.value: literal tag value may not be empty',
      'spec.tracing[0].customTags.b.header.name: header tag name may not be empty',
      'spec.tracing[0].customTags.c.environment.name: environment tag name may not be empty',
      "spec.tracing[0].customTags.d: tag 'd' may not have a nil value",
    ],
  },
  {
    name: 'tag overrides: UPSERT needs a value, REMOVE takes none, a custom metric needs a name',
    spec: {
      metrics: [
        {
          overrides: [
            { tagOverrides: { a: {}, b: { operation: 'REMOVE', value: 'x' }, c: { operation: 'UPSERT', value: 'y' } } },
            { match: { customMetric: '' } },
          ],
        },
      ],
    },
    want: [
      'spec.metrics[0].overrides[0].tagOverrides.a.value: tagOverrides.value must be set when operation is UPSERT',
      'spec.metrics[0].overrides[0].tagOverrides.b.value: tagOverrides.value may only be set when operation is UPSERT',
      'spec.metrics[0].overrides[1].match.customMetric: customMetric may not be empty',
    ],
  },
  {
    name: 'selector and targetRefs together',
    spec: { selector: { matchLabels: { a: 'b' } }, targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }] },
    want: ['spec: only one of targetRefs or workloadSelector can be set'],
  },
  {
    name: 'a mode that is not one',
    spec: { accessLogging: [{ match: { mode: 'INBOUND' } }] },
    want: ['spec.accessLogging[0].match.mode: must be one of CLIENT_AND_SERVER, CLIENT, SERVER'],
  },
  { name: 'disabled as a string', spec: { accessLogging: [{ disabled: 'yes' }] }, want: ['spec.accessLogging[0].disabled: must be a boolean'] },
  { name: 'accessLogging not a list', spec: { accessLogging: {} }, want: ['spec.accessLogging: must be a list'] },
];

for (const c of cases) {
  test(c.name, () => {
    const got = messages(c.spec);
    assert.equal(got.length, c.want.length, got.join('\n'));
    c.want.forEach((w, i) => assert.ok(got[i]?.startsWith(w), `${got[i]} does not start with ${w}`));
  });
}

test('a mode given by its number decodes to its name; metrics by name', () => {
  const r = validateTelemetry(meta, {
    accessLogging: [{ match: { mode: 1 } }],
    metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT' }, disabled: true }] }],
  });
  assert.deepEqual(r.errors, []);
  assert.equal(r.spec.accessLogging?.[0]?.match?.mode, 'CLIENT');
  assert.equal(r.spec.metrics?.[0]?.overrides?.[0]?.match?.metric, 'REQUEST_COUNT');
});

test('the internal annotations refuse a Telemetry before its spec is looked at', () => {
  assert.deepEqual(messages({ accessLogging: [{ providers: [{}] }] }, { 'internal.istio.io/webhook-always-reject': '' }), [
    'metadata.annotations[internal.istio.io/webhook-always-reject]: "internal.istio.io/webhook-always-reject" annotation found, rejecting',
  ]);
});

// Filter expressions and whether istiod's webhook (cel-go's parser) takes them, as the istiod oracle answered for
// each one in a Telemetry: the CEL parser meshgate uses must agree, or a Telemetry istiod serves would be refused.
const CEL_VERDICTS: [string, boolean][] = [
  ['response.code >= 400', true],
  ["request.headers['x'] == 'y'", true],
  ['connection.mtls', true],
  ["xds.cluster_name.startsWith('outbound')", true],
  ['has(request.headers.x)', true],
  ["request.headers['x'] in ['a', 'b']", true],
  ['int(response.code) > 1', true],
  ['1u < 2u', true],
  ["b'abc' == b'abc'", true],
  ["request.url_path.contains('v1beta3')", true],
  ["(connection.mtls && request.headers['x-log-mtls'] == 'true') || request.url_path.contains('v1beta3')", true],
  ['response.code >= 400 || response.code == 0', true],
  ["request.headers.exists(k, k == 'x')", true],
  ["request.path.matches('^/api')", true],
  ["duration('1s') < request.duration", true],
  ["timestamp('2020-01-01T00:00:00Z') < request.time", true],
  ['response.flags & 1 == 1', false],
  ['a.b.c', true],
  ['?x', false],
  ['x.?y', false],
  ["'\\x41' == 'A'", true],
  ["r'raw\\d' == 'x'", true],
  ['1 +', false],
  ['', false],
  [' ', false],
  ['size(request.headers) > 0', true],
  ['request.headers["x"] != ""', true],
  ['response.code == 404 ? true : false', true],
  ['[1,2,3].all(x, x > 0)', true],
  ["{'a': 1}['a'] == 1", true],
  ["request.headers['x'].size() > 2", true],
  ['!connection.mtls', true],
  ["response.code_details == 'via_upstream'", true],
  ['0x10 == 16', true],
  ['1e3 == 1000.0', true],
  ['dyn(1) == 1', true],
  ['type(1) == int', true],
  ['null == null', true],
  ["'a' + 'b' == 'ab'", true],
  ['-1 < 0', true],
  ["request.method == 'GET' && request.host.endsWith('.com')", true],
  ['"""multi""" == \'multi\'', true],
  ['1 == 1 == true', true],
  ['a.in', false],
  ['in', false],
  ["request.headers['a'].lowerAscii() == 'x'", true],
  ['math.greatest(1,2) == 2', true],
];

test('filter expressions: accepted and refused as istiod does', () => {
  const wrong = CEL_VERDICTS.filter(([e, valid]) => (messages({ accessLogging: [{ filter: { expression: e } }] }).length === 0) !== valid);
  assert.deepEqual(wrong, []);
});
