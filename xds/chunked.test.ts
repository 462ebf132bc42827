// The chunked decoder under each of its rules: what every reader shares (sizes, extensions, CRLF line ends,
// trailers, bodies split at any byte, stopping), and what each rule changes. The rule sets below are the two
// the gateway uses (gateway/fast/request-head.ts REQUEST_CHUNKED under the default max_request_headers_kb,
// gateway/upstream/response-head.ts RESPONSE_CHUNKED, both without their trailer-line checks), spelt out so this
// contract test does not reach into gateway/.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedDecoder, type ChunkedRules } from './chunked.ts';

const REQUEST: ChunkedRules = {
  maxSizeDigits: 12,
  countLeadingZeros: true,
  whitespaceAfterSize: false,
  delInExtension: true,
  maxSizeLine: Infinity,
  maxTrailerLine: Infinity,
  maxTrailerSection: 60 * 1024,
};
const RESPONSE: ChunkedRules = {
  maxSizeDigits: 13,
  countLeadingZeros: false,
  whitespaceAfterSize: true,
  delInExtension: false,
  maxSizeLine: 1024,
  maxTrailerLine: Infinity,
  maxTrailerSection: 80 * 1024,
};

/** Decodes `raw` in one feed: the body, the bytes left after it, or the error. */
function decode(rules: ChunkedRules, raw: string): { body: string; rest: string; done: boolean } | { error: string; code: string } {
  const d = new ChunkedDecoder(rules);
  const out: string[] = [];
  const buf = Buffer.from(raw, 'latin1');
  const n = d.feed(buf, 0, buf.length, (b) => void out.push(b.toString('latin1')));
  if (n < 0) return { error: d.error?.message ?? '', code: d.error?.code ?? '' };
  return { body: out.join(''), rest: buf.subarray(n).toString('latin1'), done: d.done };
}

describe('chunked decoding shared by every reader', () => {
  for (const [name, rules] of [
    ['request', REQUEST],
    ['response', RESPONSE],
  ] as const) {
    test(`${name}: sizes, extensions and trailers, split at every byte; the bytes after the body are left`, () => {
      const raw = '5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\nNEXT';
      const buf = Buffer.from(raw);
      for (let split = 1; split < raw.length - 4; split++) {
        const d = new ChunkedDecoder(rules);
        const out: string[] = [];
        assert.equal(
          d.feed(buf.subarray(0, split), 0, split, (b) => void out.push(b.toString())),
          split,
        );
        const rest = buf.subarray(split);
        const used = d.feed(rest, 0, rest.length, (b) => void out.push(b.toString()));
        assert.ok(d.done, `split ${split}`);
        assert.equal(out.join(''), 'helloabcdefghijklmnopqrstuvwxyz');
        assert.equal(rest.subarray(used).toString(), 'NEXT');
      }
    });

    const rejected: [string, string][] = [
      ['no size', '\r\nabc\r\n0\r\n\r\n'],
      ['non-hex size', 'g\r\nabc\r\n0\r\n\r\n'],
      ['0x prefix', '0x3\r\nabc\r\n0\r\n\r\n'],
      ['space before the size', ' 3\r\nabc\r\n0\r\n\r\n'],
      ['bare LF after the size', '3\nabc\r\n0\r\n\r\n'],
      ['bare CR in an extension', '3;a\rb\r\nabc\r\n0\r\n\r\n'],
      ['NUL in an extension', '3;a\x00\r\nabc\r\n0\r\n\r\n'],
      ['data not followed by CRLF', '3\r\nabcd\r\n0\r\n\r\n'],
      ['data followed by a bare LF', '3\r\nabc\n0\r\n\r\n'],
      ['size beyond 64 bits', 'fffffffffffffffff\r\n'],
      ['bare LF in the trailers', '0\r\nx-t: 1\n\r\n'],
      ['bare CR in the trailers', '0\r\nx-t: 1\rx\r\n\r\n'],
    ];
    for (const [what, raw] of rejected) {
      test(`${name} rejects: ${what}`, () => assert.ok('error' in decode(rules, raw), JSON.stringify(decode(rules, raw))));
    }

    test(`${name}: stop() from onData ends the feed after that piece`, () => {
      const d = new ChunkedDecoder(rules);
      const buf = Buffer.from('2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
      const seen: string[] = [];
      const used = d.feed(buf, 0, buf.length, (b) => {
        seen.push(b.toString());
        d.stop();
      });
      assert.deepEqual(seen, ['ab']);
      assert.equal(used, 5);
      assert.equal(d.done, false);
      // The next feed goes on from there.
      d.feed(buf, used, buf.length, (b) => void seen.push(b.toString()));
      assert.deepEqual(seen, ['ab', 'cd']);
    });
  }
});

describe('where the request and response rules differ', () => {
  // [what, input, accepted as a request, accepted as a response] (a size too large to send is accepted as long as
  // the decoder does not reject it outright)
  const cases: [string, string, boolean, boolean][] = [
    ['whitespace after the size (BWS)', '3 \r\nabc\r\n0\r\n\r\n', false, true],
    ['whitespace between the size and an extension', '3\t;a=b\r\nabc\r\n0\r\n\r\n', false, true],
    ['DEL in an extension', '3;a\x7f\r\nabc\r\n0\r\n\r\n', true, false],
    ['non-ASCII bytes in an extension', '3;a=\xe9\r\nabc\r\n0\r\n\r\n', true, true],
    ['13 size digits, leading zeros among them', '0000000000003\r\nabc\r\n0\r\n\r\n', false, true],
    ['13 significant size digits', '1000000000000\r\n', false, true],
    ['14 significant size digits', '10000000000000\r\n', false, false],
    ['a 2 KiB extension', `3;${'a'.repeat(2048)}\r\nabc\r\n0\r\n\r\n`, true, false],
    ['a 20 KiB trailer line', `0\r\nx-t: ${'a'.repeat(20 * 1024)}\r\n\r\n`, true, true],
    ['70 KiB of trailers in short lines', `0\r\n${'x-t: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(2300)}\r\n`, false, true],
    ['100 KiB of trailers in short lines', `0\r\n${'x-t: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(3500)}\r\n`, false, false],
  ];
  for (const [what, raw, request, response] of cases) {
    test(`${what}: request ${request ? 'accepts' : 'rejects'}, response ${response ? 'accepts' : 'rejects'}`, () => {
      const r = decode(REQUEST, raw);
      const s = decode(RESPONSE, raw);
      assert.equal(!('error' in r), request, JSON.stringify(r).slice(0, 200));
      assert.equal(!('error' in s), response, JSON.stringify(s).slice(0, 200));
    });
  }
});

describe('trailer check', () => {
  test('checkTrailers sees the trailer lines once the section is complete; its exception leaves feed', () => {
    const seen: string[][] = [];
    const rules: ChunkedRules = {
      ...RESPONSE,
      checkTrailers: (lines) => {
        seen.push(lines);
        if (lines.some((l) => !l.includes(':'))) throw new Error('bad trailer');
      },
    };
    assert.deepEqual(decode(rules, '1\r\na\r\n0\r\nx-a: 1\r\nx-b: 2\r\n\r\n'), { body: 'a', rest: '', done: true });
    assert.deepEqual(seen, [['x-a: 1', 'x-b: 2']]);
    assert.throws(() => decode(rules, '0\r\nnocolon\r\n\r\n'), /bad trailer/);
    // No trailers: nothing to check.
    seen.length = 0;
    decode(rules, '0\r\n\r\n');
    assert.deepEqual(seen, []);
  });

  test('error codes name the llhttp error the upstream side reports', () => {
    assert.deepEqual(decode(RESPONSE, 'zz\r\n'), { error: 'chunk size line without a size', code: 'HPE_INVALID_CHUNK_SIZE' });
    assert.deepEqual(decode(RESPONSE, '2\r\nokX'), { error: 'missing CRLF after chunk data', code: 'HPE_STRICT' });
    assert.deepEqual(decode(RESPONSE, `1${'0'.repeat(13)}\r\n`), { error: 'chunk size overflow', code: 'HPE_INVALID_CHUNK_SIZE' });
    assert.deepEqual(decode(RESPONSE, `1;${'a'.repeat(1100)}`), { error: 'chunk size line too long', code: 'HPE_INVALID_CHUNK_SIZE' });
  });
});
