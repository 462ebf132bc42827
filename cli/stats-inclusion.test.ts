import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMeshConfig, type ProxyConfig } from '../controller/model/mesh-config.ts';
import { gatewayStatsInclusion } from './stats-inclusion.ts';

function meshDefault(yaml: string): ProxyConfig {
  const r = parseMeshConfig(yaml);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.mesh.defaultConfig;
}

const CLUSTER = 'cluster.outbound|80||a.default.svc.cluster.local;.upstream_rq_200';
const HCM = 'http.outbound_0.0.0.0_8080;.downstream_rq_2xx';

describe('the stats a gateway exports: mesh defaultConfig, proxy.istio.io/config, statsInclusion annotations', () => {
  test("the mesh config's defaultConfig.proxyStatsMatcher applies (proto field names too)", () => {
    const r = gatewayStatsInclusion(meshDefault('defaultConfig:\n  proxy_stats_matcher:\n    inclusion_prefixes: [cluster.outbound]\n'), {}, []);
    assert.ok(r.ok);
    assert.equal(r.matches(CLUSTER), true);
    assert.equal(r.matches(HCM), false);
  });

  test("the annotation's proxyStatsMatcher replaces the mesh default's whole", () => {
    const mesh = meshDefault('defaultConfig:\n  proxyStatsMatcher:\n    inclusionPrefixes: [cluster.outbound]\n');
    const r = gatewayStatsInclusion(mesh, { 'proxy.istio.io/config': '{"proxyStatsMatcher":{"inclusionSuffixes":["downstream_rq_2xx"]}}' }, []);
    assert.ok(r.ok);
    assert.equal(r.matches(HCM), true);
    assert.equal(r.matches(CLUSTER), false);
  });

  test('an annotation without proxyStatsMatcher keeps the mesh default, and sidecar.istio.io/statsInclusionPrefixes replaces its prefixes', () => {
    const mesh = meshDefault('defaultConfig:\n  proxyStatsMatcher:\n    inclusionPrefixes: [cluster.outbound]\n');
    const kept = gatewayStatsInclusion(mesh, { 'proxy.istio.io/config': '{"gatewayTopology":{"numTrustedProxies":1}}' }, []);
    assert.ok(kept.ok && kept.matches(CLUSTER));
    const replaced = gatewayStatsInclusion(mesh, { 'sidecar.istio.io/statsInclusionPrefixes': 'http.' }, []);
    assert.ok(replaced.ok);
    assert.equal(replaced.matches(HCM), true);
    assert.equal(replaced.matches(CLUSTER), false);
  });

  const refused: [string, Record<string, string>, RegExp][] = [
    [
      'a list of the wrong type',
      { 'proxy.istio.io/config': '{"proxyStatsMatcher":{"inclusionPrefixes":"cluster."}}' },
      /proxyStatsMatcher\.inclusionPrefixes: must be a list of strings/,
    ],
    ['a regexp RE2 refuses', { 'proxy.istio.io/config': '{"proxyStatsMatcher":{"inclusionRegexps":["a(?!b)"]}}' }, /inclusion regexp "a\(\?!b\)" is not RE2/],
    ['an empty suffix in the annotation', { 'sidecar.istio.io/statsInclusionSuffixes': 'a,' }, /inclusion suffix is empty/],
  ];
  for (const [name, annotations, error] of refused)
    test(`${name} is an error (the proxy does not start)`, () => {
      const r = gatewayStatsInclusion(meshDefault(''), annotations, []);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.error, error);
    });
});
