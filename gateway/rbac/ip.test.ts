import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import fc from 'fast-check';
import { compileCidrRange, newIpAddr, parseIp, type IpAddr } from './ip.ts';
import { ConfigError } from '../xds/json.ts';

function parsed(s: string, mappedAsV4 = false): IpAddr {
  const a = newIpAddr();
  parseIp(s, a, mappedAsV4);
  return a;
}

function hex(a: IpAddr): string {
  if (a.family === 0) return 'invalid';
  if (a.family === 4) return `v4 ${(a.words[0] as number).toString(16).padStart(8, '0')}`;
  return `v6 ${[...a.words].map((w) => w.toString(16).padStart(8, '0')).join('')}`;
}

test('parseIp: inet_pton forms', () => {
  const cases: [string, string, boolean?][] = [
    ['1.2.3.4', 'v4 01020304'],
    ['0.0.0.0', 'v4 00000000'],
    ['255.255.255.255', 'v4 ffffffff'],
    ['01.2.3.4', 'invalid'], // inet_pton: no leading zeros
    ['1.2.3', 'invalid'],
    ['1.2.3.4.5', 'invalid'],
    ['256.1.1.1', 'invalid'],
    ['1.2.3.4 ', 'invalid'],
    ['', 'invalid'],
    ['::', 'v6 00000000000000000000000000000000'],
    ['::1', 'v6 00000000000000000000000000000001'],
    ['2001:db8::', 'v6 20010db8000000000000000000000000'],
    ['2001:DB8:0:0:0:0:0:1', 'v6 20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7::', 'v6 00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', 'v6 00000002000300040005000600070008'],
    ['1:2:3:4:5:6:7:8:9', 'invalid'],
    ['1::2::3', 'invalid'],
    ['1:2:3:4:5:6:7:8::', 'invalid'], // '::' must stand for at least one group
    [':1::', 'invalid'],
    ['1:', 'invalid'],
    ['12345::', 'invalid'],
    ['fe80::1%eth0', 'v6 fe800000000000000000000000000001'],
    ['::ffff:1.2.3.4', 'v6 00000000000000000000ffff01020304'],
    ['::ffff:1.2.3.4', 'v4 01020304', true],
    ['::ffff:102:304', 'v4 01020304', true],
    ['::1.2.3.4', 'v6 00000000000000000000000001020304', true],
    ['1:2:3:4:5:6:1.2.3.4', 'v6 00010002000300040005000601020304'],
    ['1:2:3:4:5:6:7:1.2.3.4', 'invalid'],
    ['::ffff:01.2.3.4', 'invalid'],
    ['localhost', 'invalid'],
  ];
  for (const [s, want, mapped] of cases) assert.equal(hex(parsed(s, mapped === true)), want, s);
});

test('parseIp accepts exactly what node (libuv inet_pton) accepts, on random text', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'0123456789.'), maxLength: 18 }), (s) => {
      assert.equal(parsed(s).family === 4, isIPv4(s), s);
    }),
    { numRuns: 3000, seed: 13 },
  );
  // IPv6-looking text: groups, empty groups ('::'), dotted quads, near-misses.
  const piece = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('0', '1', 'ff', 'FFFF', 'db8', '0a0') },
    { weight: 2, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: fc.constantFrom('1.2.3.4', '00000', '12345', 'g', '01.2.3.4', '1.2.3', '.') },
  );
  let valid = 0;
  fc.assert(
    fc.property(fc.array(piece, { minLength: 1, maxLength: 10 }), (pieces) => {
      const s = pieces.join(':');
      const ok = parsed(s).family === 6;
      assert.equal(ok, isIPv6(s), s);
      if (!ok) return;
      valid++;
      // The same bits as node's own rendering of the address (which places '::' elsewhere).
      const canonical = new SocketAddress({ address: s, family: 'ipv6' }).address;
      assert.equal(hex(parsed(s)), hex(parsed(canonical)), `${s} vs ${canonical}`);
    }),
    { numRuns: 5000, seed: 14 },
  );
  assert.ok(valid > 200, `only ${valid} valid addresses generated`);
});

const inRange = (prefix: string, len: number | undefined, addr: string, mapped = false): boolean =>
  compileCidrRange({ address_prefix: prefix, ...(len === undefined ? {} : { prefix_len: len }) }, 'cidr')(parsed(addr, mapped));

test('CIDR ranges: IPv4, IPv6, families never mix', () => {
  const cases: [string, number | undefined, string, boolean, boolean?][] = [
    ['5.6.7.0', 24, '5.6.7.200', true],
    ['5.6.7.0', 24, '5.6.8.1', false],
    ['5.6.7.99', 24, '5.6.7.1', true], // the prefix's host bits are ignored
    ['1.2.3.4', 32, '1.2.3.4', true],
    ['1.2.3.4', 32, '1.2.3.5', false],
    ['1.2.3.4', 33, '1.2.3.4', true], // cut to 32, as Envoy does
    ['1.2.3.4', 128, '1.2.3.5', false],
    ['10.0.0.0', 8, '10.255.0.1', true],
    ['10.0.0.0', 8, '11.0.0.1', false],
    ['128.0.0.0', 1, '200.0.0.1', true],
    ['128.0.0.0', 1, '127.0.0.1', false],
    ['9.9.9.9', undefined, '1.1.1.1', true], // prefix_len defaults to 0: every IPv4 address
    ['9.9.9.9', 0, '::1', false],
    ['::', 0, '1.2.3.4', false],
    ['::', 0, '2001:db8::1', true],
    ['2001:db8::', 32, '2001:db8:ffff::1', true],
    ['2001:db8::', 32, '2001:db9::1', false],
    ['2001:db8:0:1::', 64, '2001:db8:0:1:ffff:ffff:ffff:ffff', true],
    ['2001:db8:0:1::', 64, '2001:db8:0:2::', false],
    ['2001:db8::', 33, '2001:db8:7fff::', true],
    ['2001:db8::', 33, '2001:db8:8000::', false],
    ['2001:db8::1', 128, '2001:db8::1', true],
    ['2001:db8::1', 128, '2001:db8::2', false],
    ['2001:db8::1', 127, '2001:db8::', true],
    ['2001:db8::', 100, '2001:db8::fff:ffff', true],
    ['2001:db8::', 100, '2001:db8::1000:0', false],
    ['::ffff:0:0', 96, '::fffe:1.2.3.4', false],
    ['1:2:3:4:5:6:7:8', 112, '1:2:3:4:5:6:7:9', true],
    ['1:2:3:4:5:6:7:8', 112, '1:2:3:4:5:6:8:8', false],
    ['1:2:3:4:5:6:7:8', 80, '1:2:3:4:5:0:0:0', true],
    ['1:2:3:4:5:6:7:8', 80, '1:2:3:4:6::', false],
    // IPv4-mapped: IPv6 unless it is a socket address on a dual-stack listener.
    ['1.2.3.0', 24, '::ffff:1.2.3.4', false],
    ['1.2.3.0', 24, '::ffff:1.2.3.4', true, true],
    ['::ffff:0:0', 96, '::ffff:1.2.3.4', true],
    ['::ffff:0:0', 96, '::ffff:1.2.3.4', false, true],
    ['1.2.3.0', 24, 'not-an-ip', false],
    ['::', 0, '', false],
  ];
  for (const [prefix, len, addr, want, mapped] of cases) assert.equal(inRange(prefix, len, addr, mapped === true), want, `${addr} in ${prefix}/${len}`);
});

test('CIDR ranges Envoy rejects are ConfigErrors naming the field', () => {
  assert.throws(
    () => compileCidrRange({ address_prefix: '1.2.3', prefix_len: 8 }, 'p.remote_ip'),
    (e: Error) => e instanceof ConfigError && /p\.remote_ip\.address_prefix: malformed IP address: '1\.2\.3'/.test(e.message),
  );
  assert.throws(() => compileCidrRange({ prefix_len: 8 }, 'p.remote_ip'), /p\.remote_ip\.address_prefix/);
  assert.throws(() => compileCidrRange({ address_prefix: '::', prefix_len: 129 }, 'p.remote_ip'), /p\.remote_ip\.prefix_len: 129/);
  assert.throws(() => compileCidrRange({ address_prefix: '1.2.3.4', prefix_len: 8, x: 1 } as never, 'p.remote_ip'), /field 'x' is not supported/);
});

// A reference: the address's first `len` bits, as a BigInt, compared.
function bits(words: number[], width: number): bigint {
  return words.reduce((acc, w) => (acc << 32n) | BigInt(w >>> 0), 0n) & ((1n << BigInt(width)) - 1n);
}

test('CIDR matching agrees with a BigInt reference on random IPv4 and IPv6 addresses', () => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
  fc.assert(
    fc.property(v4, v4, fc.integer({ min: 0, max: 32 }), (prefix, addr, len) => {
      const p = parsed(prefix);
      const a = parsed(addr);
      const shift = 32n - BigInt(len);
      const want = bits([p.words[0] as number], 32) >> shift === bits([a.words[0] as number], 32) >> shift;
      assert.equal(inRange(prefix, len, addr), want);
    }),
    { numRuns: 3000, seed: 4 },
  );
  // Addresses near each other (a few groups of the prefix changed), so long prefixes are exercised too.
  const group = fc.constantFrom(0, 1, 0xffff, 0x8000, 0x7fff, 0xdb8, 0x2001);
  const groups8 = fc.array(group, { minLength: 8, maxLength: 8 });
  const near = fc.tuple(groups8, groups8, fc.array(fc.nat(3), { minLength: 8, maxLength: 8 }));
  const text = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  fc.assert(
    fc.property(near, fc.integer({ min: 0, max: 128 }), ([base, other, pick], len) => {
      const prefix = text(base);
      const addr = text(base.map((g, i) => (pick[i] === 0 ? (other[i] as number) : g)));
      const p = parsed(prefix);
      const a = parsed(addr);
      const shift = 128n - BigInt(len);
      const want = bits([...p.words], 128) >> shift === bits([...a.words], 128) >> shift;
      assert.equal(inRange(prefix, len, addr), want, `${addr} in ${prefix}/${len}`);
    }),
    { numRuns: 3000, seed: 6 },
  );
});
