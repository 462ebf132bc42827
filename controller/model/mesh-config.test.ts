import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MESH_CONFIG, parseGoDuration, parseMeshConfig } from './mesh-config.ts';

function ok(text: string): ReturnType<typeof parseMeshConfig> & { ok: true } {
  const r = parseMeshConfig(text, 'mesh.yaml');
  if (!r.ok) assert.fail(r.errors.join('\n'));
  return r;
}

test('an empty mesh config is istiod default', () => {
  assert.deepEqual(ok('').mesh, DEFAULT_MESH_CONFIG);
  assert.deepEqual(ok('# nothing\n').mesh, DEFAULT_MESH_CONFIG);
});

test('rootNamespace, trustDomain and aliases (sorted, deduplicated) are read by JSON or proto name', () => {
  const m = ok('root_namespace: mesh-root\ntrustDomain: example.org\ntrustDomainAliases: [b.org, a.org, b.org]\n').mesh;
  assert.equal(m.rootNamespace, 'mesh-root');
  assert.equal(m.trustDomain, 'example.org');
  assert.deepEqual(m.trustDomainAliases, ['a.org', 'b.org']);
});

test('unknown fields are accepted and ignored, as istiod retries jsonpb with AllowUnknownFields', () => {
  const r = ok('notAField: 1\ndefaultConfig:\n  alsoUnknown: true\n');
  assert.equal(r.mesh.rootNamespace, 'istio-system');
});

const refused: [string, string, RegExp][] = [
  ['a string field given a list', 'rootNamespace: [a]\n', /meshConfig\.rootNamespace: must be a string/],
  ['a bool given a string', 'enableTracing: "yes please"\n', /enableTracing: must be true or false/],
  ['an invalid trust domain', 'trustDomain: "Not_Valid"\n', /trustDomain: trust domain name "Not_Valid" invalid/],
  ['a bad duration', 'connectTimeout: 10\n', /connectTimeout: must be a duration/],
  ['numTrustedProxies negative', 'defaultConfig:\n  gatewayTopology:\n    numTrustedProxies: -1\n', /numTrustedProxies: must be an unsigned 32-bit integer/],
  ['not a map', '- a\n- b\n', /must be a map of MeshConfig fields/],
  ['invalid YAML', 'a: [\n', /not valid YAML/],
  [
    'a provider kind that is not a map',
    'extensionProviders:\n- name: x\n  zipkin: 1\n  envoyExtAuthzGrpc: {}\n',
    /extensionProviders\[0\]\.zipkin: must be a map/,
  ],
];
for (const [name, text, want] of refused) {
  test(`refused: ${name}`, () => {
    const r = parseMeshConfig(text, 'mesh.yaml');
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.errors.join('\n'), want);
    if (!r.ok) assert.match(r.errors[0] ?? '', /^mesh\.yaml: /);
  });
}

test('extension providers merge by name onto the defaults; ext_authz providers are typed', () => {
  const m = ok(`
extensionProviders:
- name: ext-authz-http
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: "8000"
    timeout: 1m30s
    pathPrefix: /check
    failOpen: true
    statusOnError: "503"
    includeRequestHeadersInCheck: [x-ext-authz, "x-b3-*"]
    includeAdditionalHeadersInCheck: {x-a: b}
    includeRequestBodyInCheck: {maxRequestBytes: 1024, allowPartialMessage: true}
    headersToUpstreamOnAllow: [x-user]
- name: envoy
  envoyExtAuthzGrpc:
    service: foo/ext-authz
    port: 9000
- name: otel
  opentelemetry: {service: otel.svc, port: 4317}
`).mesh;
  assert.deepEqual(
    m.extensionProviders.map((p) => [p.name, p.kind]),
    [
      ['prometheus', 'other'],
      ['stackdriver', 'other'],
      ['envoy', 'envoyExtAuthzGrpc'],
      ['ext-authz-http', 'envoyExtAuthzHttp'],
      ['otel', 'other'],
    ],
  );
  const http = m.extensionProviders.find((p) => p.name === 'ext-authz-http');
  assert.ok(http?.kind === 'envoyExtAuthzHttp');
  assert.equal(http.envoyExtAuthzHttp.port, 8000);
  assert.deepEqual(http.envoyExtAuthzHttp.timeout, { seconds: 90, nanos: 0 });
  assert.deepEqual(http.envoyExtAuthzHttp.includeRequestBodyInCheck, { maxRequestBytes: 1024, allowPartialMessage: true, packAsBytes: false });
  assert.deepEqual(http.envoyExtAuthzHttp.includeAdditionalHeadersInCheck, { 'x-a': 'b' });
});

test('a provider with two kinds is the later one in declaration order, as jsonpb sets a oneof', () => {
  const p = ok('extensionProviders:\n- name: x\n  envoyExtAuthzGrpc: {port: 1}\n  envoyExtAuthzHttp: {port: 2}\n').mesh.extensionProviders.at(-1);
  assert.equal(p?.kind, 'envoyExtAuthzGrpc');
});

test('an invalid extension provider is a warning, not a refusal (istiod logs it)', () => {
  const r = ok('extensionProviders:\n- name: bad\n  envoyExtAuthzHttp: {service: "", port: 0, statusOnError: "999"}\n');
  assert.match(
    r.warnings.join('\n'),
    /invalid extension provider bad: port number 0 must be in the range 1..65535; service must not be empty; unsupported statusOnError value 999/,
  );
});

test('defaultConfig keeps the raw object and types gatewayTopology', () => {
  const m = ok(
    'defaultConfig:\n  gatewayTopology:\n    numTrustedProxies: 2\n    forwardClientCertDetails: SANITIZE_SET\n  holdApplicationUntilProxyStarts: true\n',
  ).mesh;
  assert.deepEqual(m.defaultConfig.gatewayTopology, { numTrustedProxies: 2, forwardClientCertDetails: 'SANITIZE_SET' });
  assert.equal(m.defaultConfig.raw.holdApplicationUntilProxyStarts, true);
});

test('Go durations as jsonpb reads them', () => {
  assert.deepEqual(parseGoDuration('1.5s'), { seconds: 1, nanos: 500_000_000 });
  assert.deepEqual(parseGoDuration('2h45m'), { seconds: 9900, nanos: 0 });
  assert.deepEqual(parseGoDuration('0'), { seconds: 0, nanos: 0 });
  assert.equal(parseGoDuration('10'), undefined);
  assert.equal(parseGoDuration(''), undefined);
});
