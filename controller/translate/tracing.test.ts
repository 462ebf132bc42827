// gatewayHcmTracing against istiod's configureTracingFromTelemetry: which path applies (legacy mesh config or a
// provider), the sampling chosen, the tags, and what happens when a provider cannot be used (the tracing-* goldens
// compare whole HCMs with istiod).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMeshConfig } from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';
import { resolveTelemetry } from '../model/telemetry.ts';
import { gatewayHcmTracing } from './tracing.ts';

const HOSTS: Record<string, string[]> = { 'otel.obs.svc.cluster.local': ['obs'], 'zipkin.obs.svc.cluster.local': ['obs'] };

function push(meshYaml: string, labels: Record<string, string> = { app: 'gw' }): PushContext {
  const mesh = parseMeshConfig(meshYaml);
  if (!mesh.ok) throw new Error(mesh.errors.join('; '));
  return {
    mesh: mesh.mesh,
    identity: { namespace: 'edge', podName: 'gw-0', labels },
    namespacesOfHost: (h: string) => HOSTS[h] ?? [],
  } as unknown as PushContext;
}

/** The gateway's tracing with no Telemetry resource: the mesh's defaultProviders.tracing, resolved as the push resolves it. */
function tracingOf(meshYaml: string): ReturnType<typeof gatewayHcmTracing> {
  const p = push(meshYaml);
  const m = p.mesh;
  const resolved = resolveTelemetry(
    [],
    { rootNamespace: m.rootNamespace, namespace: 'edge', labels: {} },
    { accessLogging: m.defaultAccessLogging, metrics: m.defaultMetrics, tracing: m.defaultTracing },
    m.extensionProviders,
  );
  return gatewayHcmTracing(p, resolved.tracing?.client, m.defaultConfig);
}

const cases: { name: string; mesh: string; random?: number; provider?: string; none?: RegExp }[] = [
  { name: 'no mesh config: PILOT_TRACE_SAMPLING 1 %, no tracer', mesh: '', random: 1 },
  { name: 'defaultConfig.tracing.sampling', mesh: 'defaultConfig: {tracing: {sampling: 0.5}}', random: 0.5 },
  { name: 'sampling over 100 is 1', mesh: 'defaultConfig: {tracing: {sampling: 101}}', random: 1 },
  { name: 'enableTracing false: no tracing block', mesh: 'enableTracing: false', none: /^$/ },
  {
    name: 'a zipkin provider',
    mesh: 'defaultProviders: {tracing: [z]}\nextensionProviders: [{name: z, zipkin: {service: zipkin.obs.svc.cluster.local, port: 9411}}]',
    random: 1,
    provider: 'envoy.tracers.zipkin',
  },
  {
    name: 'an opentelemetry provider (named in another case)',
    mesh: 'defaultProviders: {tracing: [OTEL]}\nextensionProviders: [{name: otel, opentelemetry: {service: otel.obs.svc.cluster.local, port: 4317}}]',
    random: 1,
    provider: 'envoy.tracers.opentelemetry',
  },
  { name: 'a default provider that does not exist', mesh: 'defaultProviders: {tracing: [nope]}', none: /^$/ },
  {
    name: 'a provider whose service is not in the registry',
    mesh: 'defaultProviders: {tracing: [o]}\nextensionProviders: [{name: o, opentelemetry: {service: gone.obs, port: 4317}}]',
    none: /could not find service gone.obs in Istio service registry/,
  },
  { name: 'a provider that does not trace', mesh: 'defaultProviders: {tracing: [prometheus]}', none: /provider prometheus does not support tracing/ },
  {
    name: 'a datadog provider (not implemented by the proxy)',
    mesh: 'defaultProviders: {tracing: [d]}\nextensionProviders: [{name: d, datadog: {service: otel.obs.svc.cluster.local, port: 8126}}]',
    none: /datadog tracer is not implemented/,
  },
];

for (const c of cases) {
  test(`tracing: ${c.name}`, () => {
    const got = tracingOf(c.mesh);
    assert.equal(
      (got.request_id_extension.typed_config as { use_request_id_for_trace_sampling?: boolean }).use_request_id_for_trace_sampling,
      true,
      'the UUID request id extension is always there',
    );
    if (c.none) {
      assert.equal(got.tracing, undefined);
      assert.match(got.errors.map((e) => e.message).join('; '), c.none);
      return;
    }
    assert.deepEqual(got.errors, []);
    assert.equal(got.tracing?.random_sampling?.value, c.random);
    assert.equal(got.tracing?.client_sampling?.value, 100);
    assert.equal(got.tracing?.provider?.name, c.provider);
    assert.equal(got.tracing?.spawn_upstream_span, c.provider ? true : undefined);
  });
}

test('tracing: the OTLP/HTTP URI is the host joined with the path as Go url.JoinPath does', () => {
  const uri = (path: string): string | undefined => {
    const t = tracingOf(
      `defaultProviders: {tracing: [o]}\nextensionProviders: [{name: o, opentelemetry: {service: otel.obs.svc.cluster.local, port: 4318, http: {path: "${path}"}}}]`,
    );
    return (t.tracing?.provider?.typed_config as { http_service?: { http_uri?: { uri?: string } } }).http_service?.http_uri?.uri;
  };
  assert.equal(uri('/v1/traces'), 'otel.obs.svc.cluster.local/v1/traces');
  assert.equal(uri('v1//traces/'), 'otel.obs.svc.cluster.local/v1/traces/');
  assert.equal(uri(''), 'otel.obs.svc.cluster.local');
});

test("tracing: Istio's tags and the custom tags sorted by name; the pod's canonical name label is used", () => {
  const p = push('defaultConfig: {tracing: {customTags: {a: {literal: {value: x}}, z: {header: {name: h}}, e: {}}}}', {
    'service.istio.io/canonical-name': 'front',
  });
  const t = gatewayHcmTracing(p, undefined, p.mesh.defaultConfig);
  const tags = t.tracing?.custom_tags ?? [];
  assert.deepEqual(
    tags.map((x) => x.tag),
    [...tags.map((x) => x.tag)].sort(),
  );
  assert.ok(!tags.some((x) => x.tag === 'e'), 'a tag of no kind is skipped');
  assert.deepEqual(
    tags.find((x) => x.tag === 'istio.canonical_service'),
    { tag: 'istio.canonical_service', literal: { value: 'front' } },
  );
  assert.deepEqual(
    tags.find((x) => x.tag === 'z'),
    { tag: 'z', request_header: { name: 'h', default_value: '' } },
  );
});
