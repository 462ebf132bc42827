// What a CheckRequest carries of a request's bytes: valid UTF-8 as text, each byte that breaks it as '!' (Envoy's
// MessageUtil::sanitizeUtf8String), from header values held one char per byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeUtf8 } from './check-request.ts';

const bin = (...bytes: number[]): string => Buffer.from(bytes).toString('latin1');

const cases: [string, string, string][] = [
  ['ASCII as it is', 'plain value', 'plain value'],
  ['valid UTF-8 decoded', bin(0x63, 0x61, 0x66, 0xc3, 0xa9), 'café'],
  ['a four-byte character', bin(0xf0, 0x9f, 0x98, 0x80), '😀'],
  ['a lone continuation byte', bin(0x61, 0x80, 0x62), 'a!b'],
  ['a truncated sequence at the end', bin(0x61, 0xe2, 0x82), 'a!!'],
  ['an overlong encoding', bin(0xc0, 0xaf), '!!'],
  ['a surrogate', bin(0xed, 0xa0, 0x80), '!!!'],
  ['latin1 text that is not UTF-8', bin(0x63, 0x61, 0x66, 0xe9), 'caf!'],
];
for (const [name, input, want] of cases) {
  test(`sanitizeUtf8: ${name}`, () => assert.equal(sanitizeUtf8(input), want));
}
