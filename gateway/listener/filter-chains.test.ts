// Filter chain selection (Envoy's order for the fields gateways use): an exact server name, then the longest
// matching wildcard, then chains without server names; transport_protocol must agree with the connection.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterChainMatcher, type FilterChainSpec } from './filter-chains.ts';

describe('filter chain selection', () => {
  const chain = (index: number, serverNames: string[], transportProtocol = ''): { spec: FilterChainSpec } => ({
    spec: { index, serverNames, transportProtocol, tls: undefined, hcm: undefined, tcp: undefined, handshakeTimeoutMs: 0 },
  });
  const m = new FilterChainMatcher([chain(0, ['*.example.com']), chain(1, ['a.example.com']), chain(2, ['*.b.example.com']), chain(3, [])]);
  const cases: [string | undefined, number | undefined][] = [
    ['a.example.com', 1], // exact beats wildcard
    ['x.example.com', 0],
    ['x.b.example.com', 2], // longest wildcard
    ['deep.x.example.com', 0], // wildcards match deeper names
    ['other.test', 3], // chains without names catch the rest
    [undefined, 3],
  ];
  for (const [sni, want] of cases) test(`SNI ${String(sni)} -> chain ${String(want)}`, () => assert.equal(m.select(sni, true)?.spec.index, want));
  test('no catch-all chain: an unknown SNI matches nothing; transport_protocol must agree', () => {
    const only = new FilterChainMatcher([chain(0, ['a.example.com']), chain(1, [], 'raw_buffer')]);
    assert.equal(only.select('nope.example.com', true), undefined);
    assert.equal(only.select(undefined, false)?.spec.index, 1);
  });
});
