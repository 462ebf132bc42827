// Addresses as Go's net/netip reads and prints them (what istiod accepts in ipBlocks and writes to Envoy);
// the expectations were checked against Go 1.26's netip.ParseAddr/ParsePrefix and Addr.String.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr } from './netip.ts';

const good: [string, string, number][] = [
  ['1.2.3.4', '1.2.3.4', 32],
  ['10.1.2.3/8', '10.1.2.3', 8],
  ['0.0.0.0/0', '0.0.0.0', 0],
  ['2001:DB8::1', '2001:db8::1', 128],
  ['2001:db8:0:0:1:0:0:0/64', '2001:db8:0:0:1::', 64],
  ['1:0:0:2:0:0:0:3', '1:0:0:2::3', 128],
  ['::', '::', 128],
  ['::1', '::1', 128],
  ['1::', '1::', 128],
  ['::ffff:1.2.3.4', '::ffff:1.2.3.4', 128],
  ['::1.2.3.4', '::102:304', 128],
  ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304', 128],
  ['fe80::1%eth0', 'fe80::1', 128],
  ['1:0:1:0:0:1:0:0', '1:0:1::1:0:0', 128],
  ['::ffff:1.2.3.4/120', '::ffff:1.2.3.4', 120],
];

for (const [input, address, bits] of good) {
  test(`netip: ${input} is ${address}/${bits}`, () => {
    assert.deepEqual(parseCidr(input), { ok: true, value: { address, bits } });
  });
}

const bad: [string, RegExp][] = [
  ['01.2.3.4', /leading zero/],
  ['1.2.3', /too short/],
  ['1.2.3.4.5', /too long/],
  ['256.1.1.1', />255/],
  ['1.2.3.4/33', /prefix length out of range/],
  ['1.2.3.4/08', /bad bits after slash: "08"/],
  ['1.2.3.4/', /bad bits/],
  ['fe80::1%eth0/64', /zones cannot be present/],
  ['1::2::3', /multiple ::/],
  ['12345::', /4 or less digits/],
  ['1:2:3:4:5:6:7:8:9', /trailing garbage/],
  ['1:2:3:4:5:6:7', /too short/],
  ['1:2:3:4:5:6:7::8', /at least one field of zeros/],
  ['fe80::1%', /zone must be a non-empty string/],
  ['%eth0', /missing IPv6 address/],
  ['host', /unable to parse IP/],
  ['', /unable to parse IP/],
  ['1.2.3.4/-1', /bad bits/],
  ['1.2.3.4%x', /unexpected character/],
  ['::1.2.3', /too short/],
  ['1:2:3:4:5:6:7:1.2.3.4', /ParseAddr/],
];

for (const [input, message] of bad) {
  test(`netip: ${JSON.stringify(input)} is refused`, () => {
    const r = parseCidr(input);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, message);
  });
}
