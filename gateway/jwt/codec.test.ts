import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completePadding, webSafeBase64Decode } from './base64.ts';
import { parseStruct, printJson, simpleDtoa } from './json.ts';
import { parseQuery, percentDecode, removeQueryParam } from './extractor.ts';

const dec = (s: string): string | undefined => webSafeBase64Decode(s)?.toString('latin1');

test("base64url decoding is absl's: whitespace skipped, padding absent or complete, '=' or '.'", () => {
  const cases: [string, string | undefined][] = [
    ['', ''],
    ['QQ', 'A'],
    ['QQ==', 'A'],
    ['QQ..', 'A'],
    ['QQ=', undefined],
    ['QUI', 'AB'],
    ['QUI=', 'AB'],
    ['QUI==', undefined],
    ['QUJD', 'ABC'],
    ['QUJD=', undefined],
    ['Q', undefined],
    ['Q U\tJ\nD ', 'ABC'],
    ['QQ= =', 'A'],
    ['QQ=A', undefined],
    ['Q+I', undefined],
    ['Q/I', undefined],
    ['-_-_', '\xfb\xff\xbf'],
    ['QR', 'A'], // the unused low bits are not checked
    ['Q\0Q', undefined],
  ];
  for (const [input, want] of cases) assert.equal(dec(input), want, JSON.stringify(input));
  assert.equal(completePadding('abc'), 'abc=');
  assert.equal(completePadding('ab'), 'ab==');
  assert.equal(completePadding('abcd'), 'abcd');
});

test("protobuf's JSON printer: no whitespace, its escapes, SimpleDtoa numbers", () => {
  assert.equal(printJson({ a: [1, 'x', true, null], b: { c: 1.5 } }), '{"a":[1,"x",true,null],"b":{"c":1.5}}');
  assert.equal(printJson('<a href="x">\u2028\u00ad\n\u0001é😀'), '"\\u003ca href=\\"x\\"\\u003e\\u2028\\u00ad\\n\\u0001é😀"');
  const nums: [number, string][] = [
    [0, '0'],
    [-0, '-0'],
    [100, '100'],
    [1e15, '1e+15'],
    [123456789012345, '123456789012345'],
    [1234567890123456, '1234567890123456'],
    [2 ** 64, '1.8446744073709552e+19'],
    [0.1, '0.1'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [1 / 3, '0.33333333333333331'],
    [1e21, '1e+21'],
    [-2.5e-7, '-2.5e-07'],
  ];
  for (const [n, want] of nums) assert.equal(simpleDtoa(n), want, String(n));
});

test('parseStruct accepts what protobuf accepts', () => {
  const ok = (s: string): unknown => parseStruct(Buffer.from(s, 'utf8'));
  assert.deepEqual(ok(' { "a" : -1.5e3 , "b":[ ] ,"c":{}} '), { a: -1500, b: [], c: {} });
  assert.deepEqual(ok('null'), {});
  assert.deepEqual(ok("{'a':'it\\'s'}"), { a: "it's" });
  assert.deepEqual(ok('{"a":"\u0001"}'), { a: '\u0001' });
  for (const bad of ['', '{', '{"a"}', '{"a":}', '{"a":1 "b":2}', '{"a":+1}', '{"a":.5}', '{"a":tru}', '{"a":"\\x"}', '{"a":"\\udc00"}', '{,}', '{"a":[1,,2]}'])
    assert.equal(ok(bad), undefined, bad);
  assert.equal(parseStruct(Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x22, 0x7d])), undefined);
});

test("query parameters as Envoy's QueryParamsMulti reads and reprints them", () => {
  assert.equal(percentDecode('a%20b%2x%41%'), 'a b%2xA%');
  assert.deepEqual(
    [...parseQuery('/p?a=1&b&&a=%32&c=x=y')],
    [
      ['a', ['1', '2']],
      ['b', ['']],
      ['', ['']],
      ['c', ['x=y']],
    ],
  );
  assert.equal(removeQueryParam('/p?t=1&z=%20&b&a=2', 't'), '/p?a=2&b=&z= ');
  assert.equal(removeQueryParam('/p?t=1', 't'), '/p');
  assert.equal(removeQueryParam('/p?t=1&t=2', 't'), '/p');
});
