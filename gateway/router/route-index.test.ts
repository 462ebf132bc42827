import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileRouteConfig, findVirtualHost, matchRoute, matchRouteLinear, type CompiledVirtualHost } from './route-config.ts';
import { buildRouteIndex } from './route-index.ts';
import type { MatchRequest } from './matchers.ts';
import type { envoy } from '../../xds/envoy.ts';

function vhostOf(routes: envoy.config.route.v3.Route[], name = 'v'): CompiledVirtualHost {
  const v = compileRouteConfig({ name: 'r', virtual_hosts: [{ name, domains: ['*'], routes }] }).virtualHosts[0];
  assert.ok(v);
  return v;
}

function req(path: string, headers: string[] = [], method = 'GET'): [MatchRequest, string] {
  const q = path.indexOf('?');
  return [{ method, authority: 'h', path, scheme: 'http', headers }, q < 0 ? path : path.slice(0, q)];
}

describe('route index: first match in config order', () => {
  // The benchmark's shape: many prefixes that do not match, then the catch-all.
  const many = Array.from({ length: 1000 }, (_, i) =>
    i === 999
      ? { name: 'all', match: { prefix: '/' }, route: { cluster: 'c' } }
      : { name: `r${i}`, match: { prefix: `/r${String(i).padStart(4, '0')}` }, route: { cluster: 'c' } },
  );
  const v = vhostOf(many);
  test('a long route list is indexed, a short one is not', () => {
    assert.ok(v.index);
    assert.equal(vhostOf(many.slice(0, 3)).index, undefined);
  });
  const cases: [string, string, string[], string][] = [
    ['no prefix matches: the catch-all', '/', [], 'all'],
    ['a prefix', '/r0500/x', [], 'r500'],
    ['the prefix is a whole-string prefix, not a segment', '/r0007abc', [], 'r7'],
    ['the query is not part of the path', '/r0001?x=/r0002', [], 'r1'],
  ];
  for (const [name, path, headers, want] of cases) {
    test(name, () => {
      const [r, p] = req(path, headers);
      assert.equal(matchRoute(v, r, p, false)?.name, want);
    });
  }

  const mixed = vhostOf([
    { name: 'hdr', match: { prefix: '/api', headers: [{ name: 'x-v', string_match: { exact: '2' } }] }, route: { cluster: 'c' } },
    { name: 're', match: { safe_regex: { regex: '/api/v[0-9]+/x' } }, route: { cluster: 'c' } },
    { name: 'ci', match: { prefix: '/API/V1', case_sensitive: false }, route: { cluster: 'c' } },
    { name: 'exact', match: { path: '/api/v1/status' }, route: { cluster: 'c' } },
    { name: 'sep', match: { path_separated_prefix: '/api/v1' }, route: { cluster: 'c' } },
    { name: 'api', match: { prefix: '/api' }, route: { cluster: 'c' } },
    { name: 'q', match: { prefix: '/q', query_parameters: [{ name: 'a', present_match: true }] }, route: { cluster: 'c' } },
    { name: 'grpc', match: { prefix: '/g', grpc: {} }, route: { cluster: 'c' } },
    { name: 'all', match: { prefix: '' }, route: { cluster: 'c' } },
  ]);
  const mixedCases: [string, string, string[], boolean, string][] = [
    ['an earlier route with a header condition wins when it holds', '/api/v1/status', ['x-v', '2'], false, 'hdr'],
    ['an earlier regex wins over a later exact path', '/api/v1/x', [], false, 're'],
    ['case-insensitive prefix before the exact path', '/Api/V1/status', [], false, 'ci'],
    ['case-insensitive prefix, non-ASCII path', '/api/v1/\u00e9', [], false, 'ci'],
    ['a non-ASCII path that no prefix matches', '/\u00e9', [], false, 'all'],
    ['path_separated_prefix needs a separator', '/api/v10', [], false, 'ci'],
    ['prefix after the others', '/apix', [], false, 'api'],
    ['query parameter condition holds', '/q?a=1', [], false, 'q'],
    ['query parameter condition fails', '/q?b=1', [], false, 'all'],
    ['grpc route needs a grpc request', '/g', [], false, 'all'],
    ['grpc route with a grpc request', '/g', [], true, 'grpc'],
  ];
  const mv = mixed;
  assert.ok(mv.index);
  for (const [name, path, headers, grpc, want] of mixedCases) {
    test(name, () => {
      const [r, p] = req(path, headers);
      assert.equal(matchRoute(mv, r, p, grpc)?.name, want);
      assert.equal(matchRouteLinear(mv, r, p, grpc)?.name, want);
    });
  }
});

// Few characters, so that keys and paths collide often; the Kelvin sign lowercases to ASCII 'k' and
// U+0130 to two characters, the cases where lowercasing is not per ASCII character.
const CHARS = ['/', 'a', 'A', 'b', 'k', 'K', '\u212a', '\u0130', '.'];
const segment = fc.array(fc.constantFrom(...CHARS), { maxLength: 5 }).map((a) => a.join(''));
const pathArb = segment.map((s) => '/' + s);
const REGEXES = ['/a.*', '/[ab]+', '(?i)/k.*', '/.*/b', '.*'];

const matchArb = fc.oneof(
  fc.record({ prefix: fc.oneof(pathArb, fc.constant(''), fc.constant('/'), segment) }),
  fc.record({ path: pathArb }),
  fc.record({ path_separated_prefix: pathArb.filter((p) => !p.endsWith('/')) }),
  fc.record({ safe_regex: fc.record({ regex: fc.constantFrom(...REGEXES) }) }),
);
const routeArb = fc
  .record({
    match: matchArb,
    case_sensitive: fc.option(fc.boolean(), { nil: undefined }),
    header: fc.option(fc.constantFrom('1', '2'), { nil: undefined }),
    query: fc.boolean(),
    grpc: fc.boolean(),
  })
  .map(({ match, case_sensitive, header, query, grpc }) => {
    const m: envoy.config.route.v3.RouteMatch = { ...match };
    if (case_sensitive !== undefined) m.case_sensitive = case_sensitive;
    if (header !== undefined) m.headers = [{ name: 'x-v', string_match: { exact: header } }];
    if (query) m.query_parameters = [{ name: 'q', present_match: true }];
    if (grpc) m.grpc = {};
    return m;
  });
const requestArb = fc.record({
  path: fc.oneof(pathArb, segment),
  query: fc.boolean(),
  header: fc.option(fc.constantFrom('1', '2'), { nil: undefined }),
  grpc: fc.boolean(),
});

describe('route index: property, same route as the scan in order', () => {
  test('random route tables and requests', () => {
    fc.assert(
      fc.property(fc.array(routeArb, { maxLength: 40 }), fc.array(requestArb, { minLength: 1, maxLength: 20 }), (matches, requests) => {
        const v = vhostOf(matches.map((match, i) => ({ name: `r${i}`, match, route: { cluster: 'c' } })));
        v.index = buildRouteIndex(v.routes, 0);
        for (const r of requests) {
          const path = r.query ? `${r.path}?q=1` : r.path;
          const [mr, p] = req(path, r.header === undefined ? [] : ['x-v', r.header]);
          assert.equal(matchRoute(v, mr, p, r.grpc), matchRouteLinear(v, mr, p, r.grpc), `path ${JSON.stringify(path)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('virtual host lookup: exact, then the longest wildcard suffix, then prefix, then *', () => {
  const label = fc.array(fc.constantFrom('a', 'b', '-'), { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
  const hostArb = fc.array(label, { minLength: 1, maxLength: 4 }).map((a) => a.join('.'));
  const domainArb = fc.oneof(
    hostArb,
    hostArb.map((h) => `*${h}`),
    hostArb.map((h) => `*.${h}`),
    hostArb.map((h) => `${h}*`),
    fc.constant('*'),
  );
  // Envoy's order, written as plainly as possible.
  function reference(domains: string[][], host: string): number | undefined {
    const all = domains.flatMap((ds, i) => ds.map((d) => [d, i] as const));
    const exact = all.find(([d]) => d === host);
    if (exact) return exact[1];
    const longest = (c: (readonly [string, number])[], key: (d: string) => string): number | undefined =>
      c.sort((a, b) => key(b[0]).length - key(a[0]).length)[0]?.[1];
    const suffix = all.filter(([d]) => d !== '*' && d.startsWith('*') && host.length > d.length - 1 && host.endsWith(d.slice(1)));
    if (suffix.length) return longest(suffix, (d) => d.slice(1));
    const prefix = all.filter(([d]) => d !== '*' && !d.startsWith('*') && d.endsWith('*') && host.length > d.length - 1 && host.startsWith(d.slice(0, -1)));
    if (prefix.length) return longest(prefix, (d) => d.slice(0, -1));
    return all.find(([d]) => d === '*')?.[1];
  }
  test('random domains and hosts', () => {
    fc.assert(
      fc.property(fc.uniqueArray(domainArb, { maxLength: 30 }), fc.array(hostArb, { minLength: 1, maxLength: 10 }), (domains, hosts) => {
        // Spread the domains over virtual hosts of up to three domains each.
        const groups: string[][] = [];
        for (let i = 0; i < domains.length; i += 3) groups.push(domains.slice(i, i + 3));
        const rc = compileRouteConfig({ name: 'r', virtual_hosts: groups.map((ds, i) => ({ name: String(i), domains: ds, routes: [] })) });
        for (const h of hosts) {
          const want = reference(groups, h);
          assert.equal(findVirtualHost(rc, h)?.name, want === undefined ? undefined : String(want), h);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
