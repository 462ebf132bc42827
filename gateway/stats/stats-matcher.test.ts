import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileStatsMatcher, envoyStatsMatcher, istioStatsInclusion, statsFilter, type IstioStatsInclusionInput, type StatsMatcher } from './stats-matcher.ts';

function matcher(i: IstioStatsInclusionInput = {}): StatsMatcher {
  const c = compileStatsMatcher(istioStatsInclusion(i));
  if (!c.ok) throw new Error(c.error);
  return c.matches;
}

const CLUSTER = 'cluster.outbound|8000||httpbin.default.svc.cluster.local;.';
const HCM = 'http.outbound_0.0.0.0_8080;.';

describe("Istio's stats inclusion list", () => {
  test("the default list is the bootstrap's for a gateway, in the template's order", () => {
    assert.deepEqual(istioStatsInclusion({}), [
      { prefix: 'reporter=' },
      { prefix: 'cluster_manager' },
      { prefix: 'listener_manager' },
      { prefix: 'server' },
      { prefix: 'cluster.xds-grpc' },
      { prefix: 'wasm' },
      { suffix: 'rbac.allowed' },
      { suffix: 'rbac.denied' },
      { suffix: 'shadow_allowed' },
      { suffix: 'shadow_denied' },
      { safeRegex: 'vhost\\..*\\.route\\..*' },
      { prefix: 'component' },
      { prefix: 'istio' },
    ]);
  });

  const defaults: [string, boolean][] = [
    ['server.live', true],
    ['server.total_connections', true],
    ['cluster_manager.active_clusters', true],
    ['cluster_manager.cds.update_success', true],
    ['listener_manager.total_listeners_active', true],
    ['cluster.xds-grpc.upstream_cx_total', true],
    ['istiocustom.istio_requests_total.reporter.source.response_code.200', true],
    ['istiocustom.istio_build.component.proxy.tag.1.28.0', true],
    [`${HCM}rbac.allowed`, true],
    [`${HCM}rbac.denied`, true],
    [`${HCM}rbac.shadow_denied`, true],
    ['vhost.httpbin.example.com:80.route.my-prefix.upstream_rq_200', true],
    [`${CLUSTER}upstream_rq_200`, false],
    [`${CLUSTER}upstream_rq_total`, false],
    [`${CLUSTER}upstream_cx_active`, false],
    [`${CLUSTER}upstream_rq_time`, false],
    [`${HCM}downstream_rq_2xx`, false],
    [`${HCM}downstream_cx_active`, false],
    ['listener.0.0.0.0_8080.downstream_cx_total', false],
    ['cluster.prometheus_stats.upstream_rq_total', false],
    // safe_regex is a full match: `vhost.` must start the name.
    ['x.vhost.a.route.b', false],
  ];
  for (const [name, want] of defaults) test(`by default ${name} is ${want ? 'exported' : 'not exported'}`, () => assert.equal(matcher()(name), want));

  test('proxyStatsMatcher adds prefixes, suffixes and regexps to the required ones', () => {
    const m = matcher({
      proxyStatsMatcher: {
        inclusionPrefixes: ['cluster.outbound', 'http.'],
        inclusionSuffixes: ['upstream_cx_active'],
        inclusionRegexps: ['listener\\..*\\.downstream_cx_total'],
      },
    });
    assert.equal(m(`${CLUSTER}upstream_rq_200`), true);
    assert.equal(m(`${HCM}downstream_rq_2xx`), true);
    assert.equal(m('cluster.prometheus_stats.upstream_cx_active'), true);
    assert.equal(m('listener.0.0.0.0_8080.downstream_cx_total'), true);
    assert.equal(m('listener.0.0.0.0_8080.downstream_cx_destroy'), false);
    assert.equal(m('server.live'), true);
    assert.equal(m('cluster.prometheus_stats.upstream_rq_total'), false);
  });

  test('an annotation replaces the proxy config list of its kind only (no merge), split on commas', () => {
    const list = istioStatsInclusion({
      proxyStatsMatcher: { inclusionPrefixes: ['cluster.outbound'], inclusionSuffixes: ['upstream_rq_total'] },
      annotations: { 'sidecar.istio.io/statsInclusionPrefixes': 'http.,listener.' },
    });
    const prefixes = list.flatMap((p) => ('prefix' in p ? [p.prefix] : []));
    const suffixes = list.flatMap((p) => ('suffix' in p ? [p.suffix] : []));
    assert.deepEqual(prefixes, [
      'reporter=',
      'http.',
      'listener.',
      'cluster_manager',
      'listener_manager',
      'server',
      'cluster.xds-grpc',
      'wasm',
      'component',
      'istio',
    ]);
    assert.deepEqual(suffixes, ['upstream_rq_total', 'rbac.allowed', 'rbac.denied', 'shadow_allowed', 'shadow_denied']);
  });

  test('an empty annotation leaves the proxy config list in force', () => {
    const m = matcher({ proxyStatsMatcher: { inclusionPrefixes: ['cluster.outbound'] }, annotations: { 'sidecar.istio.io/statsInclusionPrefixes': '' } });
    assert.equal(m(`${CLUSTER}upstream_rq_200`), true);
  });

  test('{pod_ip} becomes one pattern per pod IP, and disappears without one', () => {
    const given = { annotations: { 'sidecar.istio.io/statsInclusionPrefixes': 'http.{pod_ip}_,a' } };
    const prefixes = (i: IstioStatsInclusionInput): string[] => istioStatsInclusion(i).flatMap((p) => ('prefix' in p ? [p.prefix] : []));
    assert.deepEqual(prefixes({ ...given, podIps: ['10.0.0.1', '10.0.0.2'] }).slice(1, 4), ['http.10.0.0.1_', 'http.10.0.0.2_', 'a']);
    assert.deepEqual(prefixes(given).slice(1, 2), ['a']);
  });

  test('the regexps annotation is RE2, fully matched', () => {
    const m = matcher({ annotations: { 'sidecar.istio.io/statsInclusionRegexps': 'http\\..*;\\.downstream_rq_[0-9]xx' } });
    assert.equal(m(`${HCM}downstream_rq_2xx`), true);
    assert.equal(m(`${HCM}downstream_rq_2xx_extra`), false);
  });

  const invalid: [string, IstioStatsInclusionInput, RegExp][] = [
    ['an empty prefix (a doubled comma)', { annotations: { 'sidecar.istio.io/statsInclusionPrefixes': 'a,,b' } }, /inclusion prefix is empty/],
    ['an empty suffix', { proxyStatsMatcher: { inclusionSuffixes: [''] } }, /inclusion suffix is empty/],
    ['a regexp RE2 refuses', { proxyStatsMatcher: { inclusionRegexps: ['(?=lookahead)'] } }, /inclusion regexp "\(\?=lookahead\)" is not RE2/],
    ['an unbalanced regexp', { annotations: { 'sidecar.istio.io/statsInclusionRegexps': 'http.(' } }, /missing \)/],
  ];
  for (const [name, input, error] of invalid)
    test(`${name} is refused, as Envoy refuses the bootstrap`, () => {
      const c = compileStatsMatcher(istioStatsInclusion(input));
      assert.equal(c.ok, false);
      assert.match(c.ok ? '' : c.error, error);
    });

  test("the bootstrap's stats_matcher in Envoy's JSON: StringMatchers prefix, suffix and safe_regex", () => {
    assert.deepEqual(envoyStatsMatcher([{ prefix: 'server' }, { suffix: 'rbac.allowed' }, { safeRegex: 'vhost\\..*' }]), {
      inclusion_list: { patterns: [{ prefix: 'server' }, { suffix: 'rbac.allowed' }, { safe_regex: { regex: 'vhost\\..*' } }] },
    });
  });

  test('statsFilter keeps the matching stats and asks the matcher once per name while the name stays', () => {
    const asked: string[] = [];
    const filter = statsFilter((n) => {
      asked.push(n);
      return n.startsWith('keep');
    });
    const a = { name: 'keep.a' };
    const b = { name: 'drop.b' };
    assert.deepEqual(filter([a, b]), [a]);
    assert.deepEqual(filter([a, b, { name: 'keep.c' }]), [a, { name: 'keep.c' }]);
    assert.deepEqual(asked, ['keep.a', 'drop.b', 'keep.c']);
    // A name gone from a list is forgotten: asked again when it comes back.
    filter([a]);
    filter([a, b]);
    assert.deepEqual(asked, ['keep.a', 'drop.b', 'keep.c', 'drop.b']);
  });
});
