import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MESH_CONFIG, parseMeshConfig, type ProxyConfig } from './mesh-config.ts';
import { PROXY_CONFIG_ANNOTATION, gatewayProxyConfig, gatewayTopologySettings, mergeProxyConfig } from './proxy-config.ts';

const meshDefault = (yaml: string): ProxyConfig => {
  const r = parseMeshConfig(yaml);
  assert.ok(r.ok, JSON.stringify(r));
  return r.mesh.defaultConfig;
};

/** The HCM settings for a mesh defaultConfig (YAML of the mesh config) and an annotation. */
function settings(annotation: string | undefined, mesh = DEFAULT_MESH_CONFIG.defaultConfig) {
  const r = gatewayProxyConfig(mesh, annotation === undefined ? undefined : { [PROXY_CONFIG_ANNOTATION]: annotation });
  if (!r.ok) return { error: r.error };
  return gatewayTopologySettings(r.config.gatewayTopology).settings;
}

const EDGE = { xffNumTrustedHops: 0, forwardClientCertDetails: 'SANITIZE_SET', setCurrentClientCertDetails: true, proxyProtocol: false };

const valid: { name: string; annotation: string | undefined; mesh?: string; want: Partial<typeof EDGE> }[] = [
  { name: 'no annotation and no mesh default: the edge (0 hops, SANITIZE_SET)', annotation: undefined, want: {} },
  { name: 'JSON annotation', annotation: '{"gatewayTopology":{"numTrustedProxies":2}}', want: { xffNumTrustedHops: 2 } },
  { name: 'YAML annotation', annotation: 'gatewayTopology:\n  numTrustedProxies: 1\n', want: { xffNumTrustedHops: 1 } },
  { name: 'proto field names', annotation: '{"gateway_topology":{"num_trusted_proxies":3}}', want: { xffNumTrustedHops: 3 } },
  {
    name: 'a quoted number (jsonpb strips the quotes of a uint32)',
    annotation: '{"gatewayTopology":{"numTrustedProxies":"4"}}',
    want: { xffNumTrustedHops: 4 },
  },
  {
    name: 'the JSON name wins over the proto name',
    annotation: '{"gatewayTopology":{"numTrustedProxies":2,"num_trusted_proxies":5}}',
    want: { xffNumTrustedHops: 2 },
  },
  {
    name: 'unknown fields are ignored',
    annotation: '{"gatewayTopology":{"numTrustedProxies":1,"bogus":true},"notAField":[1]}',
    want: { xffNumTrustedHops: 1 },
  },
  {
    name: 'an empty annotation applies nothing',
    annotation: '',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}',
    want: { xffNumTrustedHops: 2 },
  },
  {
    name: 'a null annotation applies nothing',
    annotation: 'null',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}',
    want: { xffNumTrustedHops: 2 },
  },
  { name: 'the mesh default alone', annotation: undefined, mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}', want: { xffNumTrustedHops: 2 } },
  {
    name: 'the annotation overrides the mesh default',
    annotation: '{"gatewayTopology":{"numTrustedProxies":1}}',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}',
    want: { xffNumTrustedHops: 1 },
  },
  {
    name: "the annotation's gatewayTopology replaces the mesh default's whole (forwardClientCertDetails back to SANITIZE_SET)",
    annotation: '{"gatewayTopology":{"numTrustedProxies":1}}',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2, forwardClientCertDetails: SANITIZE}}',
    want: { xffNumTrustedHops: 1 },
  },
  {
    name: 'a null gatewayTopology in the annotation keeps the mesh default',
    annotation: '{"gatewayTopology":null,"concurrency":2}',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}',
    want: { xffNumTrustedHops: 2 },
  },
  {
    name: 'other annotation fields leave the mesh gatewayTopology',
    annotation: 'concurrency: 2',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}',
    want: { xffNumTrustedHops: 2 },
  },
  {
    name: 'an empty gatewayTopology is 0 hops',
    annotation: '{"gatewayTopology":{}}',
    mesh: 'defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}',
    want: { xffNumTrustedHops: 0 },
  },
  {
    name: 'forwardClientCertDetails SANITIZE: no set_current_client_cert_details',
    annotation: '{"gatewayTopology":{"forwardClientCertDetails":"SANITIZE"}}',
    want: { forwardClientCertDetails: 'SANITIZE', setCurrentClientCertDetails: false },
  },
  {
    name: 'forwardClientCertDetails APPEND_FORWARD sets the current details',
    annotation: '{"gatewayTopology":{"forwardClientCertDetails":"APPEND_FORWARD"}}',
    want: { forwardClientCertDetails: 'APPEND_FORWARD' },
  },
  {
    name: 'forwardClientCertDetails by number (5 is ALWAYS_FORWARD_ONLY)',
    annotation: '{"gatewayTopology":{"forwardClientCertDetails":5}}',
    want: { forwardClientCertDetails: 'ALWAYS_FORWARD_ONLY', setCurrentClientCertDetails: false },
  },
  {
    name: 'forwardClientCertDetails UNDEFINED is the gateway default',
    annotation: '{"gatewayTopology":{"forwardClientCertDetails":"UNDEFINED","numTrustedProxies":1}}',
    want: { xffNumTrustedHops: 1 },
  },
  { name: 'proxyProtocol', annotation: 'gatewayTopology: {proxyProtocol: {}}', want: { proxyProtocol: true } },
];

for (const c of valid) {
  test(`proxy config: ${c.name}`, () => {
    assert.deepEqual(settings(c.annotation, c.mesh === undefined ? undefined : meshDefault(c.mesh)), { ...EDGE, ...c.want });
  });
}

const invalid: { name: string; annotation: string; error: RegExp }[] = [
  { name: 'not YAML', annotation: '{"gatewayTopology": {', error: /not valid YAML or JSON/ },
  { name: 'a list', annotation: '- 1', error: /must be a map of ProxyConfig fields/ },
  { name: 'a string', annotation: 'hello', error: /must be a map of ProxyConfig fields/ },
  { name: 'duplicate keys', annotation: 'gatewayTopology: {}\ngatewayTopology: {}', error: /not valid YAML or JSON/ },
  { name: 'gatewayTopology not a map', annotation: 'gatewayTopology: 2', error: /proxyConfig\.gatewayTopology: must be a map/ },
  {
    name: 'negative numTrustedProxies',
    annotation: '{"gatewayTopology":{"numTrustedProxies":-1}}',
    error: /numTrustedProxies: must be an unsigned 32-bit integer/,
  },
  { name: 'fractional numTrustedProxies', annotation: '{"gatewayTopology":{"numTrustedProxies":1.5}}', error: /numTrustedProxies/ },
  { name: 'numTrustedProxies as a word', annotation: '{"gatewayTopology":{"numTrustedProxies":"two"}}', error: /numTrustedProxies/ },
  { name: 'numTrustedProxies too large', annotation: '{"gatewayTopology":{"numTrustedProxies":4294967296}}', error: /numTrustedProxies/ },
  { name: 'numTrustedProxies a boolean', annotation: 'gatewayTopology: {numTrustedProxies: yes}', error: /numTrustedProxies/ },
  { name: 'enum names are case-sensitive', annotation: '{"gatewayTopology":{"forwardClientCertDetails":"sanitize"}}', error: /forwardClientCertDetails/ },
  {
    name: 'an enum number Envoy has no value for',
    annotation: '{"gatewayTopology":{"forwardClientCertDetails":7}}',
    error: /forwardClientCertDetails: 7 is not/,
  },
  { name: 'proxyProtocol not a map', annotation: 'gatewayTopology: {proxyProtocol: true}', error: /proxyProtocol: must be a map/ },
  {
    name: 'a wrong type elsewhere fails the whole annotation',
    annotation: '{"gatewayTopology":{"numTrustedProxies":1},"drainDuration":"soon"}',
    error: /drainDuration/,
  },
];

for (const c of invalid) {
  test(`proxy config: refused: ${c.name}`, () => {
    const r = gatewayProxyConfig(DEFAULT_MESH_CONFIG.defaultConfig, { [PROXY_CONFIG_ANNOTATION]: c.annotation });
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, c.error);
    assert.match(r.ok ? '' : r.error, /^annotation proxy\.istio\.io\/config: /);
  });
}

test('proxy config: other annotations are not read', () => {
  const r = gatewayProxyConfig(DEFAULT_MESH_CONFIG.defaultConfig, { 'proxy.istio.io/other': '{', 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
  assert.deepEqual(r, { ok: true, config: DEFAULT_MESH_CONFIG.defaultConfig });
});

test('proxy config merge: fields replaced whole, proxyMetadata merged by key, proxyHeaders kept per header', () => {
  const base = {
    gatewayTopology: { numTrustedProxies: 2 },
    proxy_metadata: { A: '1', B: '2' },
    proxyHeaders: { server: { disabled: true }, requestId: { disabled: true } },
    concurrency: 2,
  };
  const overlay = {
    gatewayTopology: { forwardClientCertDetails: 'SANITIZE' },
    proxyMetadata: { B: '3', C: '4' },
    proxyHeaders: { server: { value: 'x' } },
    concurrency: null,
  };
  assert.deepEqual(mergeProxyConfig(base, overlay), {
    gatewayTopology: { forwardClientCertDetails: 'SANITIZE' },
    proxyMetadata: { A: '1', B: '3', C: '4' },
    proxyHeaders: { server: { value: 'x' }, requestId: { disabled: true } },
    concurrency: 2,
  });
});
