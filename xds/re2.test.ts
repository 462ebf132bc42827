import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRe2, isRe2Error, type Re2 } from './re2.ts';

function compiled(pattern: string): Re2 {
  const r = compileRe2(pattern);
  if (isRe2Error(r)) assert.fail(`${pattern}: ${r.message}`);
  return r;
}

const MATCHES: { pattern: string; input: string; full: boolean; partial: boolean }[] = [
  { pattern: 'cluster\\..*rq', input: 'cluster.a.upstream_rq_total', full: false, partial: true },
  { pattern: 'cluster\\..*total', input: 'cluster.a.upstream_rq_total', full: true, partial: true },
  { pattern: '^server\\.', input: 'cluster.server.x', full: false, partial: false },
  { pattern: '(?i)CLUSTER', input: 'cluster', full: true, partial: true },
  { pattern: '(?P<svc>[[:alpha:]]+)\\.default', input: 'httpbin.default', full: true, partial: true },
  { pattern: '\\Ahttp\\z', input: 'http', full: true, partial: true },
  // `.` does not match a newline and `$` only the end of the text, as in RE2's default (non-POSIX) options.
  { pattern: 'a.b', input: 'a\nb', full: false, partial: false },
  { pattern: 'a$', input: 'a\n', full: false, partial: false },
  { pattern: '', input: 'anything', full: false, partial: true },
];

for (const c of MATCHES) {
  test(`${JSON.stringify(c.pattern)} against ${JSON.stringify(c.input)}: full ${c.full}, partial ${c.partial}`, () => {
    const re = compiled(c.pattern);
    assert.equal(re.fullMatch(c.input), c.full);
    assert.equal(re.partialMatch(c.input), c.partial);
  });
}

// RE2's own error texts (re2/regexp.cc), which Envoy passes on (`Error while parsing name_regex from ...: <text>`).
const INVALID: { pattern: string; message: string }[] = [
  { pattern: '[', message: 'missing ]: [' },
  { pattern: '(a', message: 'missing ): (a' },
  { pattern: 'a)', message: 'unexpected ): a)' },
  { pattern: 'a\\', message: 'trailing \\' },
  { pattern: '*', message: 'no argument for repetition operator: *' },
  { pattern: 'a**', message: 'bad repetition operator: **' },
  { pattern: 'a{1001}', message: 'invalid repetition size: {1001}' },
  { pattern: '[z-a]', message: 'invalid character class range: z-a' },
  { pattern: '\\1', message: 'invalid escape sequence: \\1' },
  // Perl syntax RE2 refuses because it cannot run in linear time.
  { pattern: '(?=a)', message: 'invalid perl operator: (?=' },
  { pattern: '(?!a)', message: 'invalid perl operator: (?!' },
];

for (const c of INVALID) {
  test(`${JSON.stringify(c.pattern)} is invalid: ${c.message}`, () => {
    const r = compileRe2(c.pattern);
    assert.ok(isRe2Error(r));
    assert.equal(r.message, c.message);
    assert.equal(r.pattern, c.pattern);
  });
}

test('a catastrophic-backtracking pattern matches a long input in linear time', () => {
  // JavaScript's RegExp takes minutes on this (exponential in the run of a's); RE2 one pass.
  const re = compiled('(a+)+$');
  const input = `${'a'.repeat(100_000)}!`;
  assert.equal(re.partialMatch(input), false);
  assert.equal(re.fullMatch(input), false);
  assert.equal(re.partialMatch(`${'a'.repeat(100_000)}`), true);
});
