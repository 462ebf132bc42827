import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { envoy } from '../../xds/envoy.ts';
import { ConfigError } from '../xds/json.ts';
import { decideHttpRbac, metadataValue, parseHttpRbac, RbacEngine, responseDetail, type RbacRequest } from './engine.ts';

type Permission = envoy.config.rbac.v3.Permission;
type Principal = envoy.config.rbac.v3.Principal;

interface Opts extends Partial<Omit<RbacRequest, 'metadata'>> {
  /** Dynamic metadata: filter name -> struct. */
  meta?: Record<string, unknown>;
}

function req(o: Opts = {}): RbacRequest {
  const { meta = {}, ...rest } = o;
  return {
    method: 'GET',
    authority: 'httpbin.example.com',
    path: '/',
    scheme: 'http',
    headers: [],
    directRemoteIp: '10.0.0.1',
    remoteIp: '10.0.0.1',
    destinationIp: '10.0.0.2',
    destinationPort: 8080,
    sni: undefined,
    peerCertificate: undefined,
    metadata: (filter, path) => metadataValue(meta[filter], path),
    ...rest,
  };
}

const JWT = 'envoy.filters.http.jwt_authn';
const cert = (o: Partial<NonNullable<RbacRequest['peerCertificate']>>): RbacRequest['peerCertificate'] => ({ uriSans: [], dnsSans: [], subject: '', ...o });

const engineOf = (permissions: Permission[], principals: Principal[], action?: 'ALLOW' | 'DENY' | 'LOG'): RbacEngine =>
  new RbacEngine({ ...(action ? { action } : {}), policies: { p: { permissions, principals } } }, 'rbac');
const permission = (p: Permission) => (r: RbacRequest) => engineOf([p], [{ any: true }]).match(r).matched;
const principal = (p: Principal) => (r: RbacRequest) => engineOf([{ any: true }], [p]).match(r).matched;

const permissionCases: { name: string; p: Permission; r: Opts; want: boolean }[] = [
  { name: 'any', p: { any: true }, r: {}, want: true },
  { name: 'header :method', p: { header: { name: ':method', string_match: { exact: 'GET' } } }, r: {}, want: true },
  { name: 'header :method, other method', p: { header: { name: ':method', string_match: { exact: 'GET' } } }, r: { method: 'POST' }, want: false },
  {
    name: 'header :authority, ignore_case',
    p: { header: { name: ':authority', string_match: { exact: 'httpbin.example.com', ignore_case: true } } },
    r: { authority: 'HTTPBIN.example.COM' },
    want: true,
  },
  { name: 'header prefix', p: { header: { name: 'x-token', string_match: { prefix: 'd' } } }, r: { headers: ['x-token', 'dog'] }, want: true },
  { name: 'header missing', p: { header: { name: 'x-token', string_match: { prefix: '' } } }, r: {}, want: false },
  {
    name: 'header repeated: values joined with ","',
    p: { header: { name: 'x-a', string_match: { exact: '1,2' } } },
    r: { headers: ['x-a', '1', 'x-a', '2'] },
    want: true,
  },
  { name: 'header present_match', p: { header: { name: 'x-a', present_match: true } }, r: { headers: ['x-a', ''] }, want: true },
  { name: 'header :path sees the query', p: { header: { name: ':path', string_match: { exact: '/a?b=1' } } }, r: { path: '/a?b=1' }, want: true },
  { name: 'url_path exact', p: { url_path: { path: { exact: '/headers' } } }, r: { path: '/headers' }, want: true },
  { name: 'url_path exact: query stripped', p: { url_path: { path: { exact: '/headers' } } }, r: { path: '/headers?a=b' }, want: true },
  { name: 'url_path exact: fragment stripped', p: { url_path: { path: { exact: '/headers' } } }, r: { path: '/headers#top' }, want: true },
  { name: 'url_path exact: "#" before "?"', p: { url_path: { path: { exact: '/a' } } }, r: { path: '/a#x?y' }, want: true },
  { name: 'url_path exact: other path', p: { url_path: { path: { exact: '/headers' } } }, r: { path: '/headers/' }, want: false },
  { name: 'url_path prefix', p: { url_path: { path: { prefix: '/status/' } } }, r: { path: '/status/200?x=1' }, want: true },
  { name: 'url_path prefix: no', p: { url_path: { path: { prefix: '/status/' } } }, r: { path: '/statusx' }, want: false },
  { name: 'url_path suffix ignores the query', p: { url_path: { path: { suffix: '/x' } } }, r: { path: '/a/y?q=/x' }, want: false },
  { name: 'url_path suffix', p: { url_path: { path: { suffix: '/x' } } }, r: { path: '/a/x?q=1' }, want: true },
  { name: 'url_path safe_regex', p: { url_path: { path: { safe_regex: { regex: '/v[0-9]+/.*' } } } }, r: { path: '/v2/x?y' }, want: true },
  { name: 'url_path: no :path never matches', p: { url_path: { path: { prefix: '' } } }, r: { path: '' }, want: false },
  { name: 'destination_ip v4', p: { destination_ip: { address_prefix: '10.0.0.0', prefix_len: 24 } }, r: {}, want: true },
  { name: 'destination_ip v4, no', p: { destination_ip: { address_prefix: '10.0.1.0', prefix_len: 24 } }, r: {}, want: false },
  {
    name: 'destination_ip: a mapped local address is IPv4',
    p: { destination_ip: { address_prefix: '10.0.0.2', prefix_len: 32 } },
    r: { destinationIp: '::ffff:10.0.0.2' },
    want: true,
  },
  { name: 'destination_ip v6', p: { destination_ip: { address_prefix: 'fd00::', prefix_len: 8 } }, r: { destinationIp: 'fd12::1' }, want: true },
  { name: 'destination_port', p: { destination_port: 8443 }, r: { destinationPort: 8443 }, want: true },
  { name: 'destination_port, other', p: { destination_port: 8443 }, r: {}, want: false },
  { name: 'destination_port_range start', p: { destination_port_range: { start: 8000, end: 9000 } }, r: { destinationPort: 8000 }, want: true },
  { name: 'destination_port_range end excluded', p: { destination_port_range: { start: 8000, end: 9000 } }, r: { destinationPort: 9000 }, want: false },
  { name: 'requested_server_name', p: { requested_server_name: { suffix: '.example.com' } }, r: { sni: 'a.example.com' }, want: true },
  { name: 'requested_server_name without SNI', p: { requested_server_name: { suffix: '.example.com' } }, r: {}, want: false },
  { name: 'requested_server_name: no SNI is ""', p: { requested_server_name: { exact: '' } }, r: {}, want: true },
  { name: 'uri_template * one segment', p: { uri_template: tmpl('/api/*/y') }, r: { path: '/api/a/y' }, want: true },
  { name: 'uri_template * not two', p: { uri_template: tmpl('/api/*/y') }, r: { path: '/api/a/b/y' }, want: false },
  { name: 'uri_template ** any rest', p: { uri_template: tmpl('/api/**') }, r: { path: '/api/a/b/y' }, want: true },
  { name: 'uri_template without the query', p: { uri_template: tmpl('/api/*/y') }, r: { path: '/api/a/y?z=/q' }, want: true },
  { name: 'uri_template {name=**}', p: { uri_template: tmpl('/v1/{rest=**}/end') }, r: { path: '/v1/a/b/end' }, want: true },
  { name: 'not_rule', p: { not_rule: { destination_port: 8443 } }, r: {}, want: true },
  { name: 'not_rule, matched inside', p: { not_rule: { destination_port: 8080 } }, r: {}, want: false },
  {
    name: 'and_rules: all',
    p: { and_rules: { rules: [{ destination_port: 8080 }, { header: { name: ':method', string_match: { exact: 'GET' } } }] } },
    r: {},
    want: true,
  },
  {
    name: 'and_rules: one fails',
    p: { and_rules: { rules: [{ destination_port: 8080 }, { header: { name: ':method', string_match: { exact: 'PUT' } } }] } },
    r: {},
    want: false,
  },
  { name: 'or_rules: one', p: { or_rules: { rules: [{ destination_port: 1 }, { destination_port: 8080 }] } }, r: {}, want: true },
  { name: 'or_rules: none', p: { or_rules: { rules: [{ destination_port: 1 }, { destination_port: 2 }] } }, r: {}, want: false },
  {
    name: 'nested: and(or(...), not(or(...)))',
    p: {
      and_rules: {
        rules: [{ or_rules: { rules: [{ url_path: { path: { prefix: '/a' } } }] } }, { not_rule: { or_rules: { rules: [{ destination_port: 8443 }] } } }],
      },
    },
    r: { path: '/ab' },
    want: true,
  },
  {
    name: 'metadata permission',
    p: { metadata: { filter: JWT, path: [{ key: 'payload' }, { key: 'iss' }], value: { string_match: { exact: 'me' } } } },
    r: { meta: { [JWT]: { payload: { iss: 'me' } } } },
    want: true,
  },
];

function tmpl(path_template: string): envoy.config.core.v3.TypedExtensionConfig {
  return {
    name: 'uri-template',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig', path_template },
  };
}

test('permissions', () => {
  for (const c of permissionCases) assert.equal(permission(c.p)(req(c.r)), c.want, c.name);
});

const md = (path: string[], value: envoy.type.matcher.v3.ValueMatcher, invert?: boolean): Principal => ({
  metadata: { filter: JWT, path: path.map((key) => ({ key })), value, ...(invert ? { invert } : {}) },
});
const claims = (payload: Record<string, unknown>): Opts => ({ meta: { [JWT]: { payload } } });
// What istiod writes for request.auth.claims[groups] = admin: a list claim or a string claim.
const groupsAdmin = md(['payload', 'groups'], {
  or_match: { value_matchers: [{ list_match: { one_of: { string_match: { exact: 'admin' } } } }, { string_match: { exact: 'admin' } }] },
});

const principalCases: { name: string; p: Principal; r: Opts; want: boolean }[] = [
  { name: 'any', p: { any: true }, r: {}, want: true },
  { name: 'authenticated {}: a TLS connection', p: { authenticated: {} }, r: { tls: true }, want: true },
  { name: 'authenticated {}: not TLS', p: { authenticated: {} }, r: {}, want: false },
  { name: 'authenticated {}: a client certificate means TLS', p: { authenticated: {} }, r: { peerCertificate: cert({}) }, want: true },
  { name: 'authenticated {}: tls false wins', p: { authenticated: {} }, r: { tls: false, peerCertificate: cert({}) }, want: false },
  {
    name: 'principal_name: URI SAN',
    p: { authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/a/sa/b' } } },
    r: { peerCertificate: cert({ uriSans: ['spiffe://x', 'spiffe://cluster.local/ns/a/sa/b'] }) },
    want: true,
  },
  {
    name: 'principal_name: regex',
    p: { authenticated: { principal_name: { safe_regex: { regex: 'spiffe://.*/sa/c' } } } },
    r: { peerCertificate: cert({ uriSans: ['spiffe://td/ns/x/sa/c'] }) },
    want: true,
  },
  {
    name: 'principal_name: DNS SAN after URI SANs',
    p: { authenticated: { principal_name: { exact: 'client.example.com' } } },
    r: { peerCertificate: cert({ uriSans: ['spiffe://x'], dnsSans: ['client.example.com'] }) },
    want: true,
  },
  {
    name: 'principal_name: subject last',
    p: { authenticated: { principal_name: { exact: 'CN=client,O=acme' } } },
    r: { peerCertificate: cert({ uriSans: ['spiffe://x'], subject: 'CN=client,O=acme' }) },
    want: true,
  },
  {
    name: 'principal_name: no match',
    p: { authenticated: { principal_name: { exact: 'spiffe://y' } } },
    r: { peerCertificate: cert({ uriSans: ['spiffe://x'], dnsSans: ['y'] }) },
    want: false,
  },
  {
    name: 'principal_name: TLS without a certificate has subject ""',
    p: { authenticated: { principal_name: { safe_regex: { regex: '.*' } } } },
    r: { tls: true },
    want: true,
  },
  { name: 'principal_name: not TLS', p: { authenticated: { principal_name: { safe_regex: { regex: '.*' } } } }, r: {}, want: false },
  { name: 'direct_remote_ip /32', p: { direct_remote_ip: { address_prefix: '1.2.3.4', prefix_len: 32 } }, r: { directRemoteIp: '1.2.3.4' }, want: true },
  { name: 'direct_remote_ip /24', p: { direct_remote_ip: { address_prefix: '5.6.7.0', prefix_len: 24 } }, r: { directRemoteIp: '5.6.7.8' }, want: true },
  { name: 'direct_remote_ip /24, no', p: { direct_remote_ip: { address_prefix: '5.6.7.0', prefix_len: 24 } }, r: { directRemoteIp: '5.6.8.8' }, want: false },
  {
    name: 'direct_remote_ip: a mapped peer is IPv4',
    p: { direct_remote_ip: { address_prefix: '5.6.7.0', prefix_len: 24 } },
    r: { directRemoteIp: '::ffff:5.6.7.8' },
    want: true,
  },
  {
    name: 'direct_remote_ip: not the x-forwarded-for address',
    p: { direct_remote_ip: { address_prefix: '9.9.9.9', prefix_len: 32 } },
    r: { remoteIp: '9.9.9.9' },
    want: false,
  },
  { name: 'direct_remote_ip v6', p: { direct_remote_ip: { address_prefix: '2001:db8::', prefix_len: 64 } }, r: { directRemoteIp: '2001:db8::7' }, want: true },
  {
    name: 'direct_remote_ip v6 range, v4 peer',
    p: { direct_remote_ip: { address_prefix: '::', prefix_len: 0 } },
    r: { directRemoteIp: '1.2.3.4' },
    want: false,
  },
  { name: 'source_ip is the peer', p: { source_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }, r: { remoteIp: '192.168.0.1' }, want: true },
  { name: 'remote_ip: the x-forwarded-for address', p: { remote_ip: { address_prefix: '9.9.9.9', prefix_len: 32 } }, r: { remoteIp: '9.9.9.9' }, want: true },
  { name: 'remote_ip: not the peer', p: { remote_ip: { address_prefix: '10.0.0.1', prefix_len: 32 } }, r: { remoteIp: '9.9.9.9' }, want: false },
  {
    name: 'remote_ip: the peer (mapped) when no hop',
    p: { remote_ip: { address_prefix: '1.2.3.4', prefix_len: 32 } },
    r: { directRemoteIp: '::ffff:1.2.3.4', remoteIp: '::ffff:1.2.3.4' },
    want: true,
  },
  {
    name: 'remote_ip: mapped text from x-forwarded-for stays IPv6',
    p: { remote_ip: { address_prefix: '1.2.3.4', prefix_len: 32 } },
    r: { remoteIp: '::ffff:1.2.3.4' },
    want: false,
  },
  { name: 'remote_ip: not an address', p: { remote_ip: { address_prefix: '0.0.0.0', prefix_len: 0 } }, r: { remoteIp: 'unknown' }, want: false },
  { name: 'header', p: { header: { name: 'x-token', string_match: { exact: 'abc' } } }, r: { headers: ['x-token', 'abc'] }, want: true },
  { name: 'url_path', p: { url_path: { path: { prefix: '/admin' } } }, r: { path: '/admin?x' }, want: true },
  { name: 'metadata string', p: md(['payload', 'iss'], { string_match: { exact: 'iss' } }), r: claims({ iss: 'iss' }), want: true },
  { name: 'metadata string, other', p: md(['payload', 'iss'], { string_match: { exact: 'iss' } }), r: claims({ iss: 'x' }), want: false },
  { name: 'metadata string: a list is not a string', p: md(['payload', 'aud'], { string_match: { exact: 'a' } }), r: claims({ aud: ['a'] }), want: false },
  {
    name: 'metadata list_match',
    p: md(['payload', 'aud'], { list_match: { one_of: { string_match: { exact: 'a' } } } }),
    r: claims({ aud: ['x', 'a'] }),
    want: true,
  },
  {
    name: 'metadata list_match: a string is not a list',
    p: md(['payload', 'aud'], { list_match: { one_of: { string_match: { exact: 'a' } } } }),
    r: claims({ aud: 'a' }),
    want: false,
  },
  { name: 'metadata or_match: list claim', p: groupsAdmin, r: claims({ groups: ['dev', 'admin'] }), want: true },
  { name: 'metadata or_match: string claim', p: groupsAdmin, r: claims({ groups: 'admin' }), want: true },
  { name: 'metadata or_match: neither', p: groupsAdmin, r: claims({ groups: ['dev'] }), want: false },
  { name: 'metadata missing claim', p: groupsAdmin, r: claims({}), want: false },
  { name: 'metadata missing filter', p: groupsAdmin, r: {}, want: false },
  { name: 'metadata nested claim', p: md(['payload', 'nested', 'key'], { string_match: { exact: 'v' } }), r: claims({ nested: { key: 'v' } }), want: true },
  { name: 'metadata path through a non-struct', p: md(['payload', 'nested', 'key'], { present_match: true }), r: claims({ nested: ['key'] }), want: false },
  {
    name: 'metadata regex .+ (istio requestPrincipals *)',
    p: md(['payload', 'iss'], { string_match: { safe_regex: { regex: '.+' } } }),
    r: claims({ iss: 'i' }),
    want: true,
  },
  { name: 'metadata regex .+ on ""', p: md(['payload', 'iss'], { string_match: { safe_regex: { regex: '.+' } } }), r: claims({ iss: '' }), want: false },
  { name: 'metadata non-ASCII string', p: md(['payload', 'name'], { string_match: { exact: 'Jürgen' } }), r: claims({ name: 'Jürgen' }), want: true },
  { name: 'metadata invert on a missing value', p: md(['payload', 'iss'], { string_match: { exact: 'x' } }, true), r: claims({}), want: true },
  { name: 'metadata invert on a match', p: md(['payload', 'iss'], { string_match: { exact: 'x' } }, true), r: claims({ iss: 'x' }), want: false },
  { name: 'metadata present_match true', p: md(['payload', 'iss'], { present_match: true }), r: claims({ iss: null }), want: true },
  { name: 'metadata present_match true, missing', p: md(['payload', 'iss'], { present_match: true }), r: claims({}), want: false },
  { name: 'metadata present_match false matches nothing', p: md(['payload', 'iss'], { present_match: false }), r: claims({}), want: false },
  { name: 'metadata bool_match', p: md(['payload', 'ok'], { bool_match: true }), r: claims({ ok: true }), want: true },
  { name: 'metadata bool_match false', p: md(['payload', 'ok'], { bool_match: false }), r: claims({ ok: false }), want: true },
  { name: 'metadata bool_match: "true" is a string', p: md(['payload', 'ok'], { bool_match: true }), r: claims({ ok: 'true' }), want: false },
  { name: 'metadata double exact', p: md(['payload', 'n'], { double_match: { exact: 3 } }), r: claims({ n: 3 }), want: true },
  { name: 'metadata double range', p: md(['payload', 'n'], { double_match: { range: { start: 1, end: 3 } } }), r: claims({ n: 2.5 }), want: true },
  { name: 'metadata double range end excluded', p: md(['payload', 'n'], { double_match: { range: { start: 1, end: 3 } } }), r: claims({ n: 3 }), want: false },
  { name: 'metadata double: "3" is a string', p: md(['payload', 'n'], { double_match: { exact: 3 } }), r: claims({ n: '3' }), want: false },
  { name: 'metadata null_match', p: md(['payload', 'n'], { null_match: {} }), r: claims({ n: null }), want: true },
  { name: 'metadata null_match: missing is not null', p: md(['payload', 'n'], { null_match: {} }), r: claims({}), want: false },
  { name: 'not_id', p: { not_id: { remote_ip: { address_prefix: '9.9.9.9', prefix_len: 32 } } }, r: {}, want: true },
  { name: 'not_id, matched inside', p: { not_id: { remote_ip: { address_prefix: '9.9.9.9', prefix_len: 32 } } }, r: { remoteIp: '9.9.9.9' }, want: false },
  { name: 'not_id(not_id(x)) is x', p: { not_id: { not_id: { any: true } } }, r: {}, want: true },
  { name: 'and_ids', p: { and_ids: { ids: [{ any: true }, { direct_remote_ip: { address_prefix: '10.0.0.1', prefix_len: 32 } }] } }, r: {}, want: true },
  {
    name: 'and_ids: one fails',
    p: { and_ids: { ids: [{ any: true }, { direct_remote_ip: { address_prefix: '10.0.0.9', prefix_len: 32 } }] } },
    r: {},
    want: false,
  },
  { name: 'or_ids', p: { or_ids: { ids: [{ authenticated: {} }, { direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] } }, r: {}, want: true },
];

test('principals', () => {
  for (const c of principalCases) assert.equal(principal(c.p)(req(c.r)), c.want, c.name);
});

test('a policy needs a matching permission and a matching principal', () => {
  const e = engineOf(
    [{ destination_port: 1 }, { url_path: { path: { prefix: '/a' } } }],
    [{ remote_ip: { address_prefix: '9.9.9.9', prefix_len: 32 } }, { header: { name: 'x-u', present_match: true } }],
  );
  assert.equal(e.match(req({ path: '/a', headers: ['x-u', '1'] })).matched, true);
  assert.equal(e.match(req({ path: '/b', headers: ['x-u', '1'] })).matched, false, 'no permission');
  assert.equal(e.match(req({ path: '/a' })).matched, false, 'no principal');
  assert.equal(e.match(req({ destinationPort: 1, remoteIp: '9.9.9.9' })).matched, true);
});

test('ALLOW, DENY and LOG decisions, with the effective policy', () => {
  const policies = {
    'b-admin': { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] },
    'a-all-get': { permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }], principals: [{ any: true }] },
    'c-never': { permissions: [{ destination_port: 1 }], principals: [{ any: true }] },
  };
  const allow = new RbacEngine({ policies }, 'r');
  const deny = new RbacEngine({ action: 'DENY', policies }, 'r');
  const log = new RbacEngine({ action: 'LOG', policies }, 'r');
  const cases: { r: Opts; allow: [boolean, string | undefined]; deny: [boolean, string | undefined] }[] = [
    // Both a-all-get and b-admin match: policies are tried in name order, whatever their order in the map.
    { r: { path: '/admin' }, allow: [true, 'a-all-get'], deny: [false, 'a-all-get'] },
    { r: { path: '/admin', method: 'POST' }, allow: [true, 'b-admin'], deny: [false, 'b-admin'] },
    { r: { path: '/x', method: 'POST' }, allow: [false, undefined], deny: [true, undefined] },
  ];
  for (const c of cases) {
    const r = req(c.r);
    assert.deepEqual(allow.handle(r), { allowed: c.allow[0], policy: c.allow[1] }, `ALLOW ${JSON.stringify(c.r)}`);
    assert.deepEqual(deny.handle(r), { allowed: c.deny[0], policy: c.deny[1] }, `DENY ${JSON.stringify(c.r)}`);
    assert.deepEqual(log.handle(r), { allowed: true, policy: c.allow[1] }, `LOG ${JSON.stringify(c.r)}`);
    assert.deepEqual(allow.match(r), { matched: c.allow[1] !== undefined, policy: c.allow[1] });
  }
  assert.equal(allow.action, 'ALLOW');
  assert.equal(deny.action, 'DENY');
  assert.equal(log.action, 'LOG');
});

test('policy order is byte order of the names (std::map), not the JSON order', () => {
  const anyPolicy = { permissions: [{ any: true }], principals: [{ any: true }] };
  // '10' < '9' as bytes; JS would put the integer-like keys first in ascending numeric order.
  assert.equal(new RbacEngine({ policies: { '9': anyPolicy, '10': anyPolicy } }, 'r').match(req()).policy, '10');
  assert.equal(new RbacEngine({ policies: { b: anyPolicy, B: anyPolicy, a: anyPolicy } }, 'r').match(req()).policy, 'B');
  // U+FF5E is before U+1F600 in UTF-8, after it in UTF-16 code units.
  assert.equal(new RbacEngine({ policies: { '\u{1F600}': anyPolicy, '\uFF5E': anyPolicy } }, 'r').match(req()).policy, '\uFF5E');
});

test('an engine without policies: ALLOW denies everything, DENY allows everything', () => {
  assert.deepEqual(new RbacEngine({}, 'r').handle(req()), { allowed: false, policy: undefined });
  assert.deepEqual(new RbacEngine({ action: 'DENY' }, 'r').handle(req()), { allowed: true, policy: undefined });
  // proto3 JSON may carry an enum by number.
  assert.equal(new RbacEngine({ action: 2 as unknown as 'LOG' }, 'r').action, 'LOG');
});

// istiod's own output for the AuthorizationPolicies of e2e/istiod (ingress gateway listener 0.0.0.0_8080).
const ISTIO_ALLOW = JSON.parse(
  '{"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC","rules":{"policies":{"ns[istio-system]-policy[ingress-policy]-rule[0]":{"permissions":[{"and_rules":{"rules":[{"or_rules":{"rules":[{"header":{"name":":authority","string_match":{"exact":"httpbin.example.com","ignore_case":true}}}]}},{"or_rules":{"rules":[{"header":{"name":":method","string_match":{"exact":"GET"}}}]}},{"or_rules":{"rules":[{"url_path":{"path":{"exact":"/headers"}}},{"url_path":{"path":{"prefix":"/status/"}}},{"url_path":{"path":{"suffix":"/x"}}},{"uri_template":{"name":"uri-template","typed_config":{"@type":"type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig","path_template":"/api/*/y"}}}]}},{"not_rule":{"or_rules":{"rules":[{"destination_port":8443}]}}}]}}],"principals":[{"and_ids":{"ids":[{"not_id":{"or_ids":{"ids":[{"remote_ip":{"address_prefix":"9.9.9.9","prefix_len":32}}]}}},{"or_ids":{"ids":[{"direct_remote_ip":{"address_prefix":"1.2.3.4","prefix_len":32}},{"direct_remote_ip":{"address_prefix":"5.6.7.0","prefix_len":24}}]}},{"or_ids":{"ids":[{"header":{"name":"x-token","string_match":{"exact":"abc"}}},{"header":{"name":"x-token","string_match":{"prefix":"d"}}}]}},{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"groups"}],"value":{"or_match":{"value_matchers":[{"list_match":{"one_of":{"string_match":{"exact":"admin"}}}},{"string_match":{"exact":"admin"}}]}}}}]}}]}}},"shadow_rules_stat_prefix":"istio_dry_run_allow_"}',
) as envoy.extensions.filters.http.rbac.v3.RBAC;
const ISTIO_DENY = JSON.parse(
  '{"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC","rules":{"action":"DENY","policies":{"ns[istio-system]-policy[deny-evil]-rule[0]":{"permissions":[{"and_rules":{"rules":[{"any":true}]}}],"principals":[{"and_ids":{"ids":[{"and_ids":{"ids":[{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"iss"}],"value":{"string_match":{"safe_regex":{"regex":".+"}}}}},{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"sub"}],"value":{"string_match":{"safe_regex":{"regex":".+"}}}}}]}},{"or_ids":{"ids":[{"remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}]}}]}}]}}},"shadow_rules_stat_prefix":"istio_dry_run_allow_"}',
) as envoy.extensions.filters.http.rbac.v3.RBAC;
const ISTIO_AUDIT = JSON.parse(
  '{"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC","rules":{"action":"LOG","policies":{"ns[istio-system]-policy[audit-all]-rule[0]":{"permissions":[{"and_rules":{"rules":[{"or_rules":{"rules":[{"url_path":{"path":{"exact":"/audit"}}}]}}]}}],"principals":[{"and_ids":{"ids":[{"any":true}]}}]}}},"shadow_rules_stat_prefix":"istio_dry_run_allow_"}',
) as envoy.extensions.filters.http.rbac.v3.RBAC;
const ISTIO_DRY_RUN = JSON.parse(
  '{"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC","shadow_rules":{"action":"DENY","policies":{"ns[istio-system]-policy[dry]-rule[0]":{"permissions":[{"and_rules":{"rules":[{"not_rule":{"or_rules":{"rules":[{"header":{"name":":method","string_match":{"exact":"GET"}}}]}}},{"not_rule":{"or_rules":{"rules":[{"url_path":{"path":{"prefix":"/x/*"}}}]}}}]}}],"principals":[{"and_ids":{"ids":[{"any":true}]}}]}}},"shadow_rules_stat_prefix":"istio_dry_run_deny_"}',
) as envoy.extensions.filters.http.rbac.v3.RBAC;
const ISTIO_ALLOW_WHEN = JSON.parse(
  '{"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC","rules":{"policies":{"ns[istio-system]-policy[allow-when]-rule[0]":{"permissions":[{"and_rules":{"rules":[{"or_rules":{"rules":[{"destination_port":8080}]}},{"or_rules":{"rules":[{"requested_server_name":{"suffix":".example.com"}}]}}]}}],"principals":[{"and_ids":{"ids":[{"or_ids":{"ids":[{"authenticated":{"principal_name":{"exact":"spiffe://cluster.local/ns/a/sa/b"}}},{"authenticated":{"principal_name":{"safe_regex":{"regex":"spiffe://.*/sa/c"}}}}]}},{"not_id":{"and_ids":{"ids":[{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"iss"}],"value":{"string_match":{"exact":"iss"}}}},{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"sub"}],"value":{"string_match":{"exact":"sub"}}}}]}}},{"or_ids":{"ids":[{"authenticated":{"principal_name":{"safe_regex":{"regex":".*/ns/foo/.*"}}}}]}},{"or_ids":{"ids":[{"direct_remote_ip":{"address_prefix":"10.1.0.0","prefix_len":16}}]}},{"not_id":{"or_ids":{"ids":[{"remote_ip":{"address_prefix":"10.2.0.1","prefix_len":32}}]}}},{"or_ids":{"ids":[{"header":{"name":":method","string_match":{"exact":"PUT"}}}]}}]}}]},"ns[istio-system]-policy[allow-when]-rule[1]":{"permissions":[{"and_rules":{"rules":[{"any":true}]}}],"principals":[{"and_ids":{"ids":[{"any":true}]}}]}}},"shadow_rules_stat_prefix":"istio_dry_run_allow_"}',
) as envoy.extensions.filters.http.rbac.v3.RBAC;

test("istiod's ALLOW policy", () => {
  const f = parseHttpRbac(ISTIO_ALLOW, 'rbac');
  assert.equal(f.shadow, undefined);
  assert.equal(f.shadowStatPrefix, 'istio_dry_run_allow_');
  assert.equal(f.rulesStatPrefix, '');
  const ok: Opts = {
    path: '/headers',
    directRemoteIp: '5.6.7.9',
    remoteIp: '5.6.7.9',
    headers: ['x-token', 'abc'],
    meta: { [JWT]: { payload: { groups: ['admin'] } } },
  };
  const policy = 'ns[istio-system]-policy[ingress-policy]-rule[0]';
  const cases: { name: string; r: Opts; allowed: boolean }[] = [
    { name: 'everything right', r: ok, allowed: true },
    { name: 'status prefix, query', r: { ...ok, path: '/status/418?x=1' }, allowed: true },
    { name: 'uri template', r: { ...ok, path: '/api/v1/y' }, allowed: true },
    { name: 'uri template, two segments', r: { ...ok, path: '/api/v1/v2/y' }, allowed: false },
    { name: 'suffix /x', r: { ...ok, path: '/a/b/x' }, allowed: true },
    { name: 'other host', r: { ...ok, authority: 'other.example.com' }, allowed: false },
    { name: 'POST', r: { ...ok, method: 'POST' }, allowed: false },
    { name: 'port 8443', r: { ...ok, destinationPort: 8443 }, allowed: false },
    { name: 'forwarded for 9.9.9.9', r: { ...ok, remoteIp: '9.9.9.9' }, allowed: false },
    { name: 'peer outside the ipBlocks', r: { ...ok, directRemoteIp: '5.6.8.9', remoteIp: '5.6.8.9' }, allowed: false },
    { name: 'x-token d...', r: { ...ok, headers: ['x-token', 'dx'] }, allowed: true },
    { name: 'no x-token', r: { ...ok, headers: [] }, allowed: false },
    { name: 'groups as a string claim', r: { ...ok, meta: { [JWT]: { payload: { groups: 'admin' } } } }, allowed: true },
    { name: 'no JWT', r: { ...ok, meta: {} }, allowed: false },
  ];
  for (const c of cases) {
    const d = decideHttpRbac(f, req(c.r));
    assert.equal(d.allowed, c.allowed, c.name);
    assert.deepEqual(
      d.metadata,
      c.allowed ? { enforced_effective_policy_id: policy, enforced_engine_result: 'allowed' } : { enforced_engine_result: 'denied' },
      c.name,
    );
    assert.deepEqual(d.counters, [c.allowed ? 'rbac.allowed' : 'rbac.denied'], c.name);
    assert.equal(d.responseCodeDetails, c.allowed ? undefined : 'rbac_access_denied_matched_policy[none]', c.name);
    assert.equal(d.accessLogHint, undefined);
  }
});

test("istiod's DENY policy", () => {
  const f = parseHttpRbac(ISTIO_DENY, 'rbac');
  const jwt = { meta: { [JWT]: { payload: { iss: 'i', sub: 's' } } } };
  const denied = decideHttpRbac(f, req({ ...jwt, remoteIp: '10.3.4.5' }));
  assert.equal(denied.allowed, false);
  assert.equal(denied.responseCodeDetails, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-evil]-rule[0]]');
  assert.deepEqual(denied.metadata, { enforced_effective_policy_id: 'ns[istio-system]-policy[deny-evil]-rule[0]', enforced_engine_result: 'denied' });
  assert.equal(decideHttpRbac(f, req({ ...jwt, remoteIp: '11.3.4.5' })).allowed, true);
  assert.equal(decideHttpRbac(f, req({ remoteIp: '10.3.4.5' })).allowed, true, 'no request principal');
});

test("istiod's AUDIT (LOG) policy: always allowed, the hint says whether it matched", () => {
  const f = parseHttpRbac(ISTIO_AUDIT, 'rbac');
  const hit = decideHttpRbac(f, req({ path: '/audit' }));
  assert.equal(hit.allowed, true);
  assert.equal(hit.accessLogHint, true);
  assert.deepEqual(hit.metadata, { enforced_effective_policy_id: 'ns[istio-system]-policy[audit-all]-rule[0]', enforced_engine_result: 'allowed' });
  const miss = decideHttpRbac(f, req({ path: '/other' }));
  assert.equal(miss.allowed, true);
  assert.equal(miss.accessLogHint, false);
  assert.deepEqual(miss.counters, ['rbac.allowed']);
});

test("istiod's dry-run policy: shadow rules only, never enforced", () => {
  const f = parseHttpRbac(ISTIO_DRY_RUN, 'rbac');
  assert.equal(f.rules, undefined);
  const d = decideHttpRbac(f, req({ method: 'POST', path: '/y' }));
  assert.equal(d.allowed, true);
  assert.deepEqual(d.metadata, {
    istio_dry_run_deny_shadow_effective_policy_id: 'ns[istio-system]-policy[dry]-rule[0]',
    istio_dry_run_deny_shadow_engine_result: 'denied',
  });
  assert.deepEqual(d.counters, ['rbac.istio_dry_run_deny_shadow_denied']);
  // The prefix "/x/*" is a literal prefix (istiod only writes uri_template for {*} and {**}).
  assert.deepEqual(decideHttpRbac(f, req({ method: 'POST', path: '/x/*a' })).counters, ['rbac.istio_dry_run_deny_shadow_allowed']);
  assert.deepEqual(decideHttpRbac(f, req({ method: 'GET', path: '/y' })).metadata, { istio_dry_run_deny_shadow_engine_result: 'allowed' });
});

test("istiod's ALLOW with conditions: mTLS principals, SNI, port, addresses", () => {
  const f = parseHttpRbac(ISTIO_ALLOW_WHEN, 'rbac');
  const rule0 = 'ns[istio-system]-policy[allow-when]-rule[0]';
  const rule1 = 'ns[istio-system]-policy[allow-when]-rule[1]';
  // rule[1] is `{}`: it allows everything, so the effective policy tells which rule matched first.
  const good: Opts = {
    method: 'PUT',
    sni: 'a.example.com',
    directRemoteIp: '10.1.2.3',
    remoteIp: '10.1.2.3',
    peerCertificate: cert({ uriSans: ['spiffe://cluster.local/ns/foo/sa/c'] }),
  };
  assert.deepEqual(f.rules?.handle(req(good)), { allowed: true, policy: rule0 });
  assert.deepEqual(f.rules?.handle(req({ ...good, method: 'GET' })), { allowed: true, policy: rule1 });
  assert.deepEqual(f.rules?.handle(req({ ...good, remoteIp: '10.2.0.1' })), { allowed: true, policy: rule1 });
  assert.deepEqual(f.rules?.handle(req({ ...good, peerCertificate: undefined })), { allowed: true, policy: rule1 });
  assert.deepEqual(f.rules?.handle(req({ ...good, meta: { [JWT]: { payload: { iss: 'iss', sub: 'sub' } } } })), { allowed: true, policy: rule1 });
});

test('decisions without an enforced engine: allowed, no metadata unless shadow rules ran', () => {
  assert.deepEqual(decideHttpRbac(parseHttpRbac({}, 'rbac'), req()), {
    allowed: true,
    responseCodeDetails: undefined,
    metadata: undefined,
    accessLogHint: undefined,
    counters: [],
  });
  const denyAll = parseHttpRbac({ rules: {}, rules_stat_prefix: 'p_' }, 'rbac');
  assert.deepEqual(decideHttpRbac(denyAll, req()), {
    allowed: false,
    responseCodeDetails: 'rbac_access_denied_matched_policy[none]',
    metadata: { p_enforced_engine_result: 'denied' },
    accessLogHint: undefined,
    counters: ['rbac.p_denied'],
  });
});

test('responseDetail replaces whitespace in the policy name', () => {
  assert.equal(responseDetail('a b\tc'), 'rbac_access_denied_matched_policy[a_b_c]');
  assert.equal(responseDetail(undefined), 'rbac_access_denied_matched_policy[none]');
});

test('metadataValue walks structs only', () => {
  const s = { payload: { a: { b: 1 }, l: [{ b: 2 }], n: null } };
  assert.equal(metadataValue(s, ['payload', 'a', 'b']), 1);
  assert.deepEqual(metadataValue(s, ['payload', 'a']), { b: 1 });
  assert.equal(metadataValue(s, ['payload', 'l', 'b']), undefined);
  assert.equal(metadataValue(s, ['payload', 'n']), null);
  assert.equal(metadataValue(s, ['payload', 'n', 'x']), undefined);
  assert.equal(metadataValue(s, ['payload', 'toString']), undefined);
  assert.equal(metadataValue(undefined, ['payload']), undefined);
  assert.equal(metadataValue(s, []), undefined);
});

const badConfigs: { name: string; cfg: unknown; error: RegExp }[] = [
  { name: 'matcher', cfg: { matcher: { matcher_list: {} } }, error: /^rbac\.matcher: the matcher-API form of RBAC is not supported/ },
  { name: 'shadow_matcher', cfg: { shadow_matcher: {} }, error: /^rbac\.shadow_matcher: the matcher-API form/ },
  { name: 'track_per_rule_stats', cfg: { track_per_rule_stats: true }, error: /^rbac\.track_per_rule_stats: per-policy RBAC stats are not supported/ },
  { name: 'unknown field', cfg: { rules: {}, stat_prefix: 'x' }, error: /^rbac: field 'stat_prefix' is not supported/ },
  {
    name: 'audit_logging_options',
    cfg: { rules: { audit_logging_options: {} } },
    error: /^rbac\.rules\.audit_logging_options: RBAC audit loggers are not supported/,
  },
  { name: 'unknown action', cfg: { rules: { action: 'AUDIT' } }, error: /^rbac\.rules\.action: unknown action 'AUDIT'/ },
  { name: 'not an action', cfg: { rules: { action: 'toString' } }, error: /^rbac\.rules\.action: unknown action 'toString'/ },
  { name: 'condition', cfg: pol({ condition: {} }), error: /^rbac\.rules\.policies\["p"\]\.condition: CEL conditions are not supported/ },
  { name: 'checked_condition', cfg: pol({ checked_condition: {} }), error: /policies\["p"\]\.checked_condition: CEL/ },
  { name: 'no permissions', cfg: pol({ permissions: [] }), error: /policies\["p"\]\.permissions: at least one entry is required/ },
  { name: 'no principals', cfg: pol({ principals: undefined }), error: /policies\["p"\]\.principals: at least one entry is required/ },
  { name: 'permission.matcher', cfg: perm({ matcher: { name: 'm' } }), error: /permissions\[0\]\.matcher: RBAC matcher extensions are not supported/ },
  { name: 'empty permission', cfg: perm({}), error: /permissions\[0\]: a permission sets none of its fields/ },
  { name: 'two kinds', cfg: perm({ any: true, destination_port: 1 }), error: /permissions\[0\]: a permission sets both 'any' and 'destination_port'/ },
  { name: 'any false', cfg: perm({ any: false }), error: /permissions\[0\]\.any: must be true/ },
  { name: 'empty and_rules', cfg: perm({ and_rules: { rules: [] } }), error: /permissions\[0\]\.and_rules\.rules: at least one entry/ },
  {
    name: 'nested bad',
    cfg: perm({ or_rules: { rules: [{ not_rule: { destination_port: 70000 } }] } }),
    error: /permissions\[0\]\.or_rules\.rules\[0\]\.not_rule\.destination_port: 70000 is not a port/,
  },
  {
    name: 'port range',
    cfg: perm({ destination_port_range: { start: 10, end: 10 } }),
    error: /destination_port_range: range start 10 cannot be greater or equal than range end 10/,
  },
  {
    name: 'port range bound',
    cfg: perm({ destination_port_range: { start: 0, end: 70000 } }),
    error: /destination_port_range: range end 70000 is out of bounds/,
  },
  {
    name: 'bad CIDR',
    cfg: perm({ destination_ip: { address_prefix: '10.0.0', prefix_len: 8 } }),
    error: /destination_ip\.address_prefix: malformed IP address/,
  },
  {
    name: 'custom string matcher',
    cfg: perm({ requested_server_name: { custom: { name: 'x' } } }),
    error: /requested_server_name: field 'custom' is not supported/,
  },
  { name: 'bad regex', cfg: perm({ url_path: { path: { safe_regex: { regex: '(' } } } }), error: /url_path\.path\.safe_regex: invalid regex/ },
  { name: 'url_path without path', cfg: perm({ url_path: {} }), error: /url_path\.path: is required/ },
  {
    name: 'uri_template type',
    cfg: perm({ uri_template: { name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.StringValue' } } }),
    error: /uri_template\.typed_config: only envoy\.extensions\.path\.match\.uri_template\.v3\.UriTemplateMatchConfig is supported/,
  },
  {
    name: 'uri_template invalid',
    cfg: perm({ uri_template: tmpl('/api/{*}/y') }),
    error: /uri_template\.typed_config\.path_template: invalid path template: invalid variable name "\*"/,
  },
  { name: 'uri_template too long', cfg: perm({ uri_template: tmpl('/' + 'a'.repeat(256)) }), error: /path_template: must be 1 to 256 characters/ },
  {
    name: 'principal filter_state',
    cfg: prin({ filter_state: { key: 'k' } }),
    error: /principals\[0\]\.filter_state: filter_state principals are not supported/,
  },
  { name: 'principal any false', cfg: prin({ any: false }), error: /principals\[0\]\.any: must be true/ },
  { name: 'empty or_ids', cfg: prin({ or_ids: {} }), error: /principals\[0\]\.or_ids\.ids: at least one entry/ },
  {
    name: 'authenticated extra field',
    cfg: prin({ authenticated: { principal_name: { exact: 'x' }, x: 1 } }),
    error: /authenticated: field 'x' is not supported/,
  },
  {
    name: 'metadata without path',
    cfg: prin({ metadata: { filter: 'f', path: [], value: { present_match: true } } }),
    error: /principals\[0\]\.metadata\.path: at least one key/,
  },
  {
    name: 'metadata without filter',
    cfg: prin({ metadata: { path: [{ key: 'a' }], value: { present_match: true } } }),
    error: /metadata\.filter: must not be empty/,
  },
  { name: 'metadata without value', cfg: prin({ metadata: { filter: 'f', path: [{ key: 'a' }] } }), error: /metadata\.value: is required/ },
  {
    name: 'empty value matcher',
    cfg: prin({ metadata: { filter: 'f', path: [{ key: 'a' }], value: {} } }),
    error: /metadata\.value: a value matcher sets none/,
  },
  {
    name: 'or_match of one',
    cfg: prin({ metadata: { filter: 'f', path: [{ key: 'a' }], value: { or_match: { value_matchers: [{ present_match: true }] } } } }),
    error: /value\.or_match\.value_matchers: at least 2/,
  },
  {
    name: 'list_match without one_of',
    cfg: prin({ metadata: { filter: 'f', path: [{ key: 'a' }], value: { list_match: {} } } }),
    error: /value\.list_match: one_of is required/,
  },
  { name: 'header without name', cfg: prin({ header: { exact_match: 'x' } }), error: /principals\[0\]\.header: header matcher without a name/ },
];

function pol(o: Record<string, unknown>): unknown {
  return { rules: { policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], ...o } } } };
}
function perm(p: unknown): unknown {
  return pol({ permissions: [p] });
}
function prin(p: unknown): unknown {
  return pol({ principals: [p] });
}

test('what the proxy cannot enforce is a ConfigError naming the field', () => {
  for (const c of badConfigs) {
    assert.throws(
      () => parseHttpRbac(c.cfg as envoy.extensions.filters.http.rbac.v3.RBAC, 'rbac'),
      (e: Error) => e instanceof ConfigError && c.error.test(e.message),
      `${c.name}: expected ${String(c.error)}`,
    );
  }
  // Defaults Envoy accepts.
  assert.doesNotThrow(() => parseHttpRbac({ rules: {}, track_per_rule_stats: false }, 'rbac'));
});

// Random requests and principals: combinators are boolean algebra over their parts.
const arbRequest = fc.record({
  method: fc.constantFrom('GET', 'POST'),
  path: fc.constantFrom('/', '/admin', '/admin?x=1', '/api/a/y', '/a#b'),
  directRemoteIp: fc.constantFrom('10.0.0.1', '5.6.7.8', '::ffff:5.6.7.8', '2001:db8::1', 'bogus'),
  remoteIp: fc.constantFrom('10.0.0.1', '9.9.9.9', '::ffff:9.9.9.9', '2001:db8::2'),
  sni: fc.constantFrom(undefined, 'a.example.com'),
  tls: fc.boolean(),
  headers: fc.constantFrom([], ['x-token', 'abc'], ['x-token', 'd', 'x-token', 'e']),
  groups: fc.constantFrom(undefined, 'admin', ['admin'], ['dev']),
});
const leafPrincipals: Principal[] = [
  { any: true },
  { authenticated: {} },
  { direct_remote_ip: { address_prefix: '5.6.7.0', prefix_len: 24 } },
  { remote_ip: { address_prefix: '9.9.9.9', prefix_len: 32 } },
  { remote_ip: { address_prefix: '2001:db8::', prefix_len: 32 } },
  { header: { name: 'x-token', string_match: { prefix: 'd' } } },
  { url_path: { path: { prefix: '/admin' } } },
  groupsAdmin,
  md(['payload', 'groups'], { present_match: true }, true),
];
const arbPrincipal: fc.Arbitrary<Principal> = fc.letrec<{ p: Principal }>((tie) => ({
  p: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...leafPrincipals),
    tie('p').map((p) => ({ not_id: p })),
    fc.array(tie('p'), { minLength: 1, maxLength: 3 }).map((ids) => ({ and_ids: { ids } })),
    fc.array(tie('p'), { minLength: 1, maxLength: 3 }).map((ids) => ({ or_ids: { ids } })),
  ),
})).p;

function toRequest(r: Omit<Opts, 'meta'> & { groups: unknown }): RbacRequest {
  const { groups, ...rest } = r;
  return req({ ...rest, meta: groups === undefined ? {} : { [JWT]: { payload: { groups } } } });
}

test('not_id(x) is the negation of x, and_ids/or_ids are every/some, for random requests', () => {
  fc.assert(
    fc.property(arbPrincipal, fc.array(arbPrincipal, { minLength: 1, maxLength: 3 }), fc.array(arbRequest, { minLength: 1, maxLength: 6 }), (x, xs, rs) => {
      const one = principal(x);
      const not = principal({ not_id: x });
      const each = xs.map((p) => principal(p));
      const and = principal({ and_ids: { ids: xs } });
      const or = principal({ or_ids: { ids: xs } });
      for (const raw of rs) {
        const r = toRequest(raw);
        assert.equal(not(r), !one(r));
        assert.equal(
          and(r),
          each.every((f) => f(r)),
        );
        assert.equal(
          or(r),
          each.some((f) => f(r)),
        );
      }
    }),
    { numRuns: 500, seed: 20261207 },
  );
});

test('not_rule(x) is the negation of x, for random requests', () => {
  const leaves: Permission[] = [
    { any: true },
    { url_path: { path: { exact: '/admin' } } },
    { uri_template: tmpl('/api/*/y') },
    { header: { name: ':method', string_match: { exact: 'GET' } } },
    { requested_server_name: { suffix: '.example.com' } },
    { destination_port: 8080 },
  ];
  fc.assert(
    fc.property(fc.constantFrom(...leaves), fc.array(arbRequest, { minLength: 1, maxLength: 6 }), (x, rs) => {
      const one = permission(x);
      const not = permission({ not_rule: x });
      for (const raw of rs) assert.equal(not(toRequest(raw)), !one(toRequest(raw)));
    }),
    { numRuns: 200, seed: 3 },
  );
});
