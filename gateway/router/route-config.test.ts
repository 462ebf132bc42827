import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteConfig, findVirtualHost, matchRoute, stripPort } from './route-config.ts';
import { ConfigError } from '../xds/json.ts';
import type { MatchRequest } from './matchers.ts';
import type { envoy } from '../../xds/envoy.ts';

const rc = compileRouteConfig({
  name: 'http.8080',
  ignore_port_in_host_matching: true,
  virtual_hosts: [
    { name: 'exact', domains: ['api.example.com'], routes: [{ match: { prefix: '/' }, route: { cluster: 'exact' } }] },
    { name: 'suffix-long', domains: ['*.b.example.com'], routes: [{ match: { prefix: '/' }, route: { cluster: 'suffix-long' } }] },
    { name: 'suffix', domains: ['*.example.com'], routes: [{ match: { prefix: '/' }, route: { cluster: 'suffix' } }] },
    { name: 'prefix', domains: ['foo.*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'prefix' } }] },
    { name: 'star', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'star' } }] },
  ],
});

describe('virtual host selection (exact, longest suffix wildcard, prefix wildcard, *)', () => {
  const cases: [string, string][] = [
    ['api.example.com', 'exact'],
    ['api.example.com:8080', 'exact'],
    ['x.b.example.com', 'suffix-long'],
    ['b.example.com', 'suffix'],
    ['x.example.com', 'suffix'],
    ['foo.org', 'prefix'],
    ['example.com', 'star'],
    ['.example.com', 'star'],
    ['other', 'star'],
  ];
  for (const [host, want] of cases) {
    test(`${host} -> ${want}`, () => assert.equal(findVirtualHost(rc, host.toLowerCase())?.name, want));
  }
  test('the port is kept when ignore_port_in_host_matching is off', () => {
    const strict = compileRouteConfig({ name: 'x', virtual_hosts: [{ name: 'a', domains: ['a.com'], routes: [] }] });
    assert.equal(findVirtualHost(strict, 'a.com:80'), undefined);
    assert.equal(findVirtualHost(strict, 'a.com')?.name, 'a');
  });
  test('stripPort keeps IPv6 literals and non-numeric ports', () => {
    assert.equal(stripPort('[::1]:80'), '[::1]');
    assert.equal(stripPort('[::1]'), '[::1]');
    assert.equal(stripPort('a.com:x'), 'a.com:x');
  });
});

function req(path: string, headers: string[] = [], method = 'GET', authority = 'h'): [MatchRequest, string] {
  const q = path.indexOf('?');
  return [{ method, authority, path, scheme: 'http', headers }, q < 0 ? path : path.slice(0, q)];
}

describe('routes: first match wins, Envoy matcher semantics', () => {
  const cfg = compileRouteConfig({
    name: 'r',
    virtual_hosts: [
      {
        name: 'v',
        domains: ['*'],
        routes: [
          { name: 'exact', match: { path: '/exact' }, route: { cluster: 'c' } },
          { name: 'ci', match: { prefix: '/CI', case_sensitive: false }, route: { cluster: 'c' } },
          { name: 'regex', match: { safe_regex: { regex: '/re/[0-9]+' } }, route: { cluster: 'c' } },
          { name: 'hdr', match: { prefix: '/h', headers: [{ name: 'x-a', string_match: { exact: 'b' } }] }, route: { cluster: 'c' } },
          {
            name: 'hdr-inv',
            match: { prefix: '/inv', headers: [{ name: 'x-a', string_match: { exact: 'b' }, invert_match: true, treat_missing_header_as_empty: true }] },
            route: { cluster: 'c' },
          },
          { name: 'present', match: { prefix: '/present', headers: [{ name: 'x-p', present_match: true }] }, route: { cluster: 'c' } },
          { name: 'method', match: { prefix: '/m', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }, route: { cluster: 'c' } },
          { name: 'query', match: { prefix: '/q', query_parameters: [{ name: 'v', string_match: { exact: '1' } }] }, route: { cluster: 'c' } },
          { name: 'regex-hdr', match: { prefix: '/rh', headers: [{ name: 'x-v', safe_regex_match: { regex: 'v[12]' } }] }, route: { cluster: 'c' } },
          { name: 'sep', match: { path_separated_prefix: '/sep' }, route: { cluster: 'c' } },
          { name: 'catchall', match: { prefix: '/' }, route: { cluster: 'c' } },
        ],
      },
    ],
  });
  const v = cfg.virtualHosts[0];
  assert.ok(v);
  const cases: [string, [MatchRequest, string], string][] = [
    ['exact path', req('/exact'), 'exact'],
    ['exact path ignores the query', req('/exact?x=1'), 'exact'],
    ['exact path is not a prefix', req('/exactly'), 'catchall'],
    ['case-insensitive prefix', req('/ci/x'), 'ci'],
    ['regex full match', req('/re/123'), 'regex'],
    ['regex must match the whole path', req('/re/123x'), 'catchall'],
    ['header exact', req('/h', ['x-a', 'b']), 'hdr'],
    ['header mismatch falls through', req('/h', ['x-a', 'c']), 'catchall'],
    ['inverted header with missing-as-empty matches when absent', req('/inv'), 'hdr-inv'],
    ['inverted header does not match the value', req('/inv', ['x-a', 'b']), 'catchall'],
    ['present match', req('/present', ['x-p', '']), 'present'],
    ['present match absent', req('/present'), 'catchall'],
    [':method pseudo-header', req('/m', [], 'POST'), 'method'],
    [':method mismatch', req('/m'), 'catchall'],
    ['query parameter', req('/q?v=1'), 'query'],
    ['query parameter mismatch', req('/q?v=2'), 'catchall'],
    ['regex header', req('/rh', ['x-v', 'v2']), 'regex-hdr'],
    ['path_separated_prefix exact', req('/sep'), 'sep'],
    ['path_separated_prefix with slash', req('/sep/x'), 'sep'],
    ['path_separated_prefix is not a plain prefix', req('/separate'), 'catchall'],
  ];
  for (const [name, [r, p], want] of cases) test(name, () => assert.equal(matchRoute(v, r, p, false)?.name, want));
});

describe('invalid route configurations are rejected with a message naming the problem', () => {
  const bad: [string, envoy.config.route.v3.RouteConfiguration, RegExp][] = [
    [
      'bad regex',
      { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }] }] },
      /route configuration 'r'.*invalid regex '\('/,
    ],
    ['unknown field', { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], rate_limits: [{}], routes: [] }] }, /field 'rate_limits' is not supported/],
    [
      'duplicate domain',
      {
        name: 'r',
        virtual_hosts: [
          { name: 'a', domains: ['x'], routes: [] },
          { name: 'b', domains: ['X'], routes: [] },
        ],
      },
      /Duplicate entry of domain x/,
    ],
    [
      'route without action',
      { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' } }] }] },
      /exactly one of route, redirect, direct_response/,
    ],
    [
      'unsupported per-route filter config',
      {
        name: 'r',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route: { cluster: 'c' },
                typed_per_filter_config: {
                  'envoy.filters.http.ext_authz': {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
                    check_settings: {},
                  },
                },
              },
            ],
          },
        ],
      },
      /per-route configuration for filter 'envoy.filters.http.ext_authz'/,
    ],
    [
      'fault abort status out of range',
      {
        name: 'r',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route: { cluster: 'c' },
                typed_per_filter_config: {
                  'envoy.filters.http.fault': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', abort: { http_status: 100 } },
                },
              },
            ],
          },
        ],
      },
      /http_status must be in \[200, 600\)/,
    ],
    [
      'zero weights',
      {
        name: 'r',
        virtual_hosts: [
          { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 0 }] } } }] },
        ],
      },
      /sum of weights must be greater than 0/,
    ],
    [
      'a route buffer limit (retries and mirrors use the listener limit)',
      {
        name: 'r',
        virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, per_request_buffer_limit_bytes: 1 }] }],
      },
      /routes\[0\]: field 'per_request_buffer_limit_bytes' is not supported/,
    ],
    [
      'a filter-state hash policy (there is no filter state to hash)',
      {
        name: 'r',
        virtual_hosts: [
          { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', hash_policy: [{ filter_state: { key: 'k' } }] } }] },
        ],
      },
      /hash_policy\[0\]: field 'filter_state' is not supported/,
    ],
    [
      'a route runtime_fraction keeps its own message',
      { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/', runtime_fraction: {} }, route: { cluster: 'c' } }] }] },
      /match\.runtime_fraction is not supported by this proxy/,
    ],
    [
      'auto_host_rewrite true (only false is accepted)',
      { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', auto_host_rewrite: true } }] }] },
      /route\.auto_host_rewrite is not supported by this proxy/,
    ],
  ];
  for (const [name, cfg, re] of bad) {
    test(name, () => {
      assert.throws(
        () => compileRouteConfig(cfg),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
      );
    });
  }
});

describe('compiled routes share what is identical (memory at thousands of routes)', () => {
  const retry = { retry_on: 'connect-failure,refused-stream', num_retries: 2 };
  const cfg = compileRouteConfig({
    name: 'r',
    request_headers_to_add: [{ header: { key: 'x-rc', value: '1' } }],
    virtual_hosts: [1, 2].map((n) => ({
      name: `v${n}`,
      domains: [`v${n}.com`],
      routes: [
        { match: { prefix: '/a' }, route: { cluster: 'c', retry_policy: retry } },
        { match: { prefix: '/b' }, route: { cluster: 'c', retry_policy: { ...retry } } },
        { match: { prefix: '/c' }, route: { cluster: 'c', retry_policy: { ...retry, num_retries: 3 } } },
        { match: { prefix: '/d' }, route: { cluster: 'c' }, request_headers_to_add: [{ header: { key: 'x-r', value: '1' } }] },
      ],
    })),
  });
  const [a, b, c, d] = cfg.virtualHosts[0]?.routes ?? [];
  const other = cfg.virtualHosts[1]?.routes[0];
  assert.ok(a && b && c && d && other);
  test('equal retry policies are one object, a different one is its own', () => {
    assert.equal(a.retry, b.retry);
    assert.equal(a.retry, other.retry);
    assert.notEqual(a.retry, c.retry);
    assert.equal(c.retry?.numRetries, 3);
  });
  test('routes without conditions or mutations of their own share the lists', () => {
    assert.equal(a.headers, b.headers);
    assert.equal(a.query, b.query);
    assert.equal(a.requestHeaders, b.requestHeaders);
    assert.equal(a.requestHeaders.length, 1);
  });
  test('a route with its own header mutation puts it before the inherited ones', () => {
    assert.equal(d.requestHeaders.length, 2);
    assert.equal(d.requestHeaders[1], a.requestHeaders[0]);
  });
});

describe('RE2 route regexes (xds/re2.ts: RE2 syntax, linear time)', () => {
  const r2 = compileRouteConfig({
    name: 're2',
    virtual_hosts: [
      {
        name: 'v',
        domains: ['*'],
        routes: [
          { name: 'redos', match: { safe_regex: { regex: '/(a+)+$' } }, route: { cluster: 'c' } },
          { name: 'dotall', match: { safe_regex: { regex: '(?s)/s/a.b' } }, route: { cluster: 'c' } },
          { name: 'posix', match: { safe_regex: { regex: '/p/[[:alpha:]]+' } }, route: { cluster: 'c' } },
          { name: 'named', match: { safe_regex: { regex: '/n/(?P<id>[0-9]+)' } }, route: { cluster: 'c' } },
          {
            name: 'rewrite',
            match: { prefix: '/v1/' },
            route: { cluster: 'c', regex_rewrite: { pattern: { regex: '^/v1/([a-z]+)/([0-9]+)' }, substitution: '/\\2/\\1\\\\x' } },
          },
          { name: 'catchall', match: { prefix: '/' }, route: { cluster: 'c' } },
        ],
      },
    ],
  });
  const route = (path: string): string | undefined => {
    const vh = findVirtualHost(r2, 'x');
    return vh ? matchRoute(vh, { method: 'GET', authority: 'x', path, scheme: 'http', headers: [] }, path.split('?')[0] as string, false)?.name : undefined;
  };

  test('a nested quantifier cannot backtrack: 60 a and a mismatch answer at once (a JS RegExp would take years)', () => {
    assert.equal(route(`/${'a'.repeat(60)}!`), 'catchall');
    assert.equal(route(`/${'a'.repeat(60)}`), 'redos');
  });
  for (const [path, want] of [
    ['/s/a\nb', 'dotall'],
    ['/p/abc', 'posix'],
    ['/p/ab1', 'catchall'],
    ['/n/42', 'named'],
  ] as const) {
    test(`RE2 syntax: ${JSON.stringify(path)} -> ${want}`, () => assert.equal(route(path), want));
  }
  test('regex_rewrite: every match replaced, \\N groups and \\\\ a backslash (RE2::GlobalReplace)', () => {
    const vh = findVirtualHost(r2, 'x');
    const r = vh && matchRoute(vh, { method: 'GET', authority: 'x', path: '/v1/abc/12/rest', scheme: 'http', headers: [] }, '/v1/abc/12/rest', false);
    assert.equal(r?.regexRewrite?.apply('/v1/abc/12/rest'), '/12/abc\\x/rest');
  });
  for (const [name, sub, want] of [
    ['a group the pattern does not have', '/\\3', /names a group the pattern does not have/],
    ['a backslash before a letter', '/\\n', /a backslash must be followed by a digit or a backslash/],
  ] as const) {
    test(`regex_rewrite is rejected with ${name}`, () => {
      assert.throws(
        () =>
          compileRouteConfig({
            name: 'bad',
            virtual_hosts: [
              {
                name: 'v',
                domains: ['*'],
                routes: [{ match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '/(a)' }, substitution: sub } } }],
              },
            ],
          }),
        (e: unknown) => e instanceof ConfigError && want.test(e.message),
      );
    });
  }
});
