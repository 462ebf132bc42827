// resolveExtAuthzProviders against istiod's processExtensionProvider: which providers a CUSTOM policy can use, the
// errors that make it fail closed, and the fields of the filters built (the goldens authz-custom-* cover the rest).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMeshConfig } from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';
import { extAuthzFor, resolveExtAuthzProviders } from './ext-authz.ts';

/** The part of a push the resolution reads: the mesh config and the service registry's hostnames. */
function push(meshYaml: string, hosts: Record<string, string[]>): PushContext {
  const mesh = parseMeshConfig(meshYaml);
  if (!mesh.ok) throw new Error(mesh.errors.join('; '));
  return { mesh: mesh.mesh, namespacesOfHost: (h: string) => hosts[h] ?? [] } as unknown as PushContext;
}

const HOSTS = { 'authz.foo.svc.cluster.local': ['foo'], 'shared.example.com': ['a', 'b'] };

const cases: { name: string; provider: string; want: RegExp | 'ok' }[] = [
  { name: 'a valid HTTP provider', provider: 'envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 8000}', want: 'ok' },
  { name: 'a valid gRPC provider', provider: 'envoyExtAuthzGrpc: {service: foo/authz.foo.svc.cluster.local, port: 9000}', want: 'ok' },
  {
    name: 'a service in no namespace',
    provider: 'envoyExtAuthzHttp: {service: nope.svc, port: 8000}',
    want: /could not find service nope.svc in Istio service registry/,
  },
  {
    name: 'a service in two namespaces',
    provider: 'envoyExtAuthzGrpc: {service: shared.example.com, port: 9000}',
    want: /found shared.example.com in multiple namespaces \[a b\]/,
  },
  {
    name: 'the wrong namespace',
    provider: 'envoyExtAuthzGrpc: {service: bar/authz.foo.svc.cluster.local, port: 9000}',
    want: /could not find service bar\/authz/,
  },
  { name: 'port 0', provider: 'envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local}', want: /port number 0 must be in the range 1..65535/ },
  {
    name: 'statusOnError not a code',
    provider: 'envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 80, statusOnError: "299"}',
    want: /unsupported statusOnError value 299/,
  },
  {
    name: 'a bad escape in pathPrefix',
    provider: 'envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 80, pathPrefix: "/a%zz"}',
    want: /invalid URL escape "%zz"/,
  },
  {
    name: 'a lone * header',
    provider: 'envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 80, headersToDownstreamOnDeny: ["*"]}',
    want: /single wildcard.*HeadersToDownstreamOnDeny/,
  },
];

for (const c of cases) {
  test(`provider: ${c.name}`, () => {
    const p = push(`extensionProviders:\n- name: ext\n  ${c.provider}\n`, HOSTS);
    const got = extAuthzFor(resolveExtAuthzProviders(p), 'ext');
    if (c.want === 'ok') assert.equal(got.error, undefined);
    else assert.match(got.error ?? '', c.want);
  });
}

test('provider names: upper case, and a name no provider has', () => {
  const resolved = resolveExtAuthzProviders(
    push('extensionProviders:\n- name: Ext\n  envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 80}\n', HOSTS),
  );
  assert.match(extAuthzFor(resolved, 'Ext').error ?? '', /uppercase letters not allowed/);
  assert.match(extAuthzFor(resolved, 'other').error ?? '', /available providers are \[Ext\] but found "other"/);
});

test('other provider kinds are not ext_authz providers', () => {
  const resolved = resolveExtAuthzProviders(push('extensionProviders:\n- name: z\n  zipkin: {service: z.svc, port: 9411}\n', HOSTS));
  assert.deepEqual([...resolved.keys()], []);
});

test('an HTTP provider: the cluster, the default timeout and header matchers as istiod builds them; no TCP filter', () => {
  const p = push(
    'extensionProviders:\n- name: ext\n  envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 8000, includeHeadersInCheck: ["x-*"], headersToUpstreamOnAllow: ["*-id"]}\n',
    HOSTS,
  );
  const built = extAuthzFor(resolveExtAuthzProviders(p), 'ext');
  assert.equal(built.tcp, undefined);
  assert.deepEqual(built.http?.http_service?.server_uri, {
    uri: 'http://authz.foo.svc.cluster.local',
    cluster: 'outbound|8000||authz.foo.svc.cluster.local',
    timeout: '600s',
  });
  assert.deepEqual(built.http?.allowed_headers, { patterns: [{ prefix: 'x-', ignore_case: true }] });
  assert.deepEqual(built.http?.http_service?.authorization_response, { allowed_upstream_headers: { patterns: [{ suffix: '-id', ignore_case: true }] } });
});

test('a gRPC provider: the same gRPC service in the HTTP and the TCP filter, with the hostname as authority', () => {
  const p = push(
    'extensionProviders:\n- name: ext\n  envoyExtAuthzGrpc: {service: authz.foo.svc.cluster.local, port: 9000, timeout: 1.5s, failOpen: true}\n',
    HOSTS,
  );
  const built = extAuthzFor(resolveExtAuthzProviders(p), 'ext');
  const grpc = { envoy_grpc: { cluster_name: 'outbound|9000||authz.foo.svc.cluster.local', authority: 'authz.foo.svc.cluster.local' }, timeout: '1.5s' };
  assert.deepEqual(built.http?.grpc_service, grpc);
  assert.deepEqual(built.tcp, { stat_prefix: 'tcp.', failure_mode_allow: true, transport_api_version: 'V3', grpc_service: grpc });
});
