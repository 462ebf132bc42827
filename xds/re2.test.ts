// The one table of RE2 behaviour. The proxy compiles every safe_regex with compileRe2 and the controller
// validates VirtualService regexes with it, so a row here holds on both sides; the last tests check the
// controller's validation against the same rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRe2, isRe2Error, type Re2 } from './re2.ts';
import { validateVirtualService } from '../controller/model/istio-validation.ts';

/** [input, RE2::FullMatch, RE2::PartialMatch] */
type Sample = readonly [input: string, full: boolean, partial: boolean];

type Row =
  | { pattern: string; samples: readonly Sample[] }
  /** RE2's own error text, as Envoy reports it; `go`: Go's regexp error, as istiod's webhook reports it (checked with Go 1.26). */
  | { pattern: string; error: string; go: string };

const TABLE: readonly Row[] = [
  { pattern: 'cluster\\..*rq', samples: [['cluster.a.upstream_rq_total', false, true]] },
  { pattern: 'cluster\\..*total', samples: [['cluster.a.upstream_rq_total', true, true]] },
  { pattern: '^server\\.', samples: [['cluster.server.x', false, false]] },
  { pattern: '/api/v[0-9]+/.*', samples: [['/api/v2/users', true, true]] },
  { pattern: '', samples: [['anything', false, true]] },
  { pattern: 'a|ab', samples: [['ab', true, true]] },
  // `.` does not match a newline and `^`/`$` only the ends of the text, as in RE2's default (non-POSIX) options.
  { pattern: 'a.b', samples: [['a\nb', false, false]] },
  { pattern: 'a$', samples: [['a\n', false, false]] },
  { pattern: '^a$', samples: [['b\na', false, false]] },
  // Flag groups: leading, combined, negated, mid-pattern and scoped.
  { pattern: '(?i)CLUSTER', samples: [['cluster', true, true]] },
  { pattern: '(?i)/admin', samples: [['/ADMIN', true, true]] },
  {
    pattern: '(?s)a.b',
    samples: [
      ['a\nb', true, true],
      ['axb', true, true],
    ],
  },
  {
    pattern: '(?is)abc',
    samples: [
      ['ABC', true, true],
      ['xAbC', false, true],
    ],
  },
  { pattern: '(?is)a.c', samples: [['A\nC', true, true]] },
  {
    pattern: '(?m)^a$',
    samples: [
      ['a', true, true],
      ['b\na\nc', false, true],
      ['a\n', false, true],
    ],
  },
  // (?U) swaps greedy and lazy: `a+` is lazy, `a+?` greedy.
  { pattern: '(?U)a+', samples: [['aaa', true, true]] },
  {
    pattern: '(?i:a)b',
    samples: [
      ['Ab', true, true],
      ['AB', false, false],
    ],
  },
  {
    pattern: 'a(?i)b',
    samples: [
      ['aB', true, true],
      ['AB', false, false],
    ],
  },
  { pattern: '(?i)(?-i)a', samples: [['A', false, false]] },
  {
    pattern: '(?s:.)(?-s:.)',
    samples: [
      ['\nx', true, true],
      ['x\n', false, false],
    ],
  },
  // POSIX classes, Perl classes, Unicode classes.
  {
    pattern: '[[:alpha:]]+',
    samples: [
      ['abc', true, true],
      ['ab1', false, true],
    ],
  },
  { pattern: '[[:^alpha:]]', samples: [['1', true, true]] },
  { pattern: '[[:word:]]+', samples: [['a_1', true, true]] },
  { pattern: '\\d+\\s\\w+', samples: [['42 x', true, true]] },
  { pattern: '\\pL+', samples: [['héllo', true, true]] },
  { pattern: '\\p{Greek}', samples: [['α', true, true]] },
  // Text anchors, quoting, escapes.
  {
    pattern: '\\Ahttp\\z',
    samples: [
      ['http', true, true],
      ['xhttp', false, false],
    ],
  },
  {
    pattern: '\\Q.*\\E',
    samples: [
      ['.*', true, true],
      ['ab', false, false],
    ],
  },
  { pattern: '\\x{41}\\141', samples: [['Aa', true, true]] },
  { pattern: '\\\\1', samples: [['\\1', true, true]] },
  { pattern: '\\++', samples: [['++', true, true]] },
  { pattern: 'a{,5}', samples: [['a{,5}', true, true]] },
  { pattern: '^.$', samples: [['😀', true, true]] },
  // Named groups, both spellings.
  { pattern: '(?P<svc>[[:alpha:]]+)\\.default', samples: [['httpbin.default', true, true]] },
  { pattern: '(?<id>[0-9]+)', samples: [['42', true, true]] },

  // Invalid: RE2's own error texts (re2/regexp.cc), which Envoy passes on.
  { pattern: '[', error: 'missing ]: [', go: 'error parsing regexp: missing closing ]: `[`' },
  { pattern: '([', error: 'missing ]: [', go: 'error parsing regexp: missing closing ]: `[`' },
  { pattern: '(a', error: 'missing ): (a', go: 'error parsing regexp: missing closing ): `(a`' },
  { pattern: 'a)', error: 'unexpected ): a)', go: 'error parsing regexp: unexpected ): `a)`' },
  { pattern: 'a\\', error: 'trailing \\', go: 'error parsing regexp: trailing backslash at end of expression: ``' },
  { pattern: '*', error: 'no argument for repetition operator: *', go: 'error parsing regexp: missing argument to repetition operator: `*`' },
  { pattern: 'a**', error: 'bad repetition operator: **', go: 'error parsing regexp: invalid nested repetition operator: `**`' },
  { pattern: 'a{1001}', error: 'invalid repetition size: {1001}', go: 'error parsing regexp: invalid repeat count: `{1001}`' },
  { pattern: 'a{2,1}', error: 'invalid repetition size: {2,1}', go: 'error parsing regexp: invalid repeat count: `{2,1}`' },
  { pattern: '[z-a]', error: 'invalid character class range: z-a', go: 'error parsing regexp: invalid character class range: `z-a`' },
  { pattern: '[[:foo:]]', error: 'invalid character class range: [:foo:]', go: 'error parsing regexp: invalid character class range: `[:foo:]`' },
  { pattern: '(?z)a', error: 'invalid perl operator: (?z', go: 'error parsing regexp: invalid or unsupported Perl syntax: `(?z`' },
  { pattern: '(?i', error: 'invalid perl operator: (?i', go: 'error parsing regexp: invalid or unsupported Perl syntax: `(?i`' },
  { pattern: '(?P<>a)', error: 'invalid named capture group: (?P<>', go: 'error parsing regexp: invalid named capture: `(?P<>`' },
  { pattern: '\\Z', error: 'invalid escape sequence: \\Z', go: 'error parsing regexp: invalid escape sequence: `\\Z`' },
  // Perl syntax RE2 refuses because it cannot run in linear time.
  { pattern: '(?=a)', error: 'invalid perl operator: (?=', go: 'error parsing regexp: invalid or unsupported Perl syntax: `(?=`' },
  { pattern: '/(?!admin).*', error: 'invalid perl operator: (?!', go: 'error parsing regexp: invalid or unsupported Perl syntax: `(?!`' },
  { pattern: '(?<=a)b', error: 'invalid perl operator: (?<=', go: 'error parsing regexp: invalid named capture: `(?<=a)b`' },
  { pattern: '(?<!a)b', error: 'invalid perl operator: (?<!', go: 'error parsing regexp: invalid named capture: `(?<!a)b`' },
  { pattern: '(?>a+)', error: 'invalid perl operator: (?>', go: 'error parsing regexp: invalid or unsupported Perl syntax: `(?>`' },
  { pattern: '\\1', error: 'invalid escape sequence: \\1', go: 'error parsing regexp: invalid escape sequence: `\\1`' },
  { pattern: '(a)\\1', error: 'invalid escape sequence: \\1', go: 'error parsing regexp: invalid escape sequence: `\\1`' },
  { pattern: '(?<n>a)\\k<n>', error: 'invalid escape sequence: \\k', go: 'error parsing regexp: invalid escape sequence: `\\k`' },
  { pattern: 'a++', error: 'bad repetition operator: ++', go: 'error parsing regexp: invalid nested repetition operator: `++`' },
  { pattern: 'a*+', error: 'bad repetition operator: *+', go: 'error parsing regexp: invalid nested repetition operator: `*+`' },
  { pattern: 'a{2}+', error: 'bad repetition operator: {2}+', go: 'error parsing regexp: invalid nested repetition operator: `{2}+`' },
  // RE2 accepts these two. Go's regexp (istiod's webhook) refuses \C. Go 1.26 accepts a duplicate group name, which
  // re2js (the proxy's engine, and the webhook check here) refuses: a difference from istiod built with that Go.
  { pattern: '\\C', error: 'invalid escape sequence: \\C', go: 'error parsing regexp: invalid escape sequence: `\\C`' },
  { pattern: '(?P<n>a)(?P<n>b)', error: 'invalid named capture group: n', go: 'error parsing regexp: duplicate capture group name: `n`' },
];

function compiled(pattern: string): Re2 {
  const r = compileRe2(pattern);
  if (isRe2Error(r)) assert.fail(`${pattern}: ${r.message}`);
  return r;
}

for (const row of TABLE) {
  if ('samples' in row) {
    test(`${JSON.stringify(row.pattern)} compiles: ${row.samples.map(([i, f, p]) => `${JSON.stringify(i)} full ${f}, partial ${p}`).join('; ')}`, () => {
      const re = compiled(row.pattern);
      for (const [input, full, partial] of row.samples) {
        assert.equal(re.fullMatch(input), full, `full match of ${JSON.stringify(input)}`);
        assert.equal(re.partialMatch(input), partial, `partial match of ${JSON.stringify(input)}`);
      }
    });
  } else {
    test(`${JSON.stringify(row.pattern)} is invalid: ${row.error}`, () => {
      const r = compileRe2(row.pattern);
      assert.ok(isRe2Error(r));
      assert.equal(r.message, row.error);
      assert.equal(r.pattern, row.pattern);
      assert.equal(r.goMessage, row.go);
    });
  }
}

test('(?U) makes repetitions lazy: each a is its own match', () => {
  assert.equal(
    compiled('(?U)a+').replaceAll('aaa', () => 'x'),
    'xxx',
  );
  assert.equal(
    compiled('(?U)a+?').replaceAll('aaa', () => 'x'),
    'x',
  );
});

test('a catastrophic-backtracking pattern matches a long input in linear time', () => {
  // JavaScript's RegExp takes minutes on this (exponential in the run of a's); RE2 one pass.
  const re = compiled('(a+)+$');
  const input = `${'a'.repeat(100_000)}!`;
  assert.equal(re.partialMatch(input), false);
  assert.equal(re.fullMatch(input), false);
  assert.equal(re.partialMatch(`${'a'.repeat(100_000)}`), true);
});

// The controller's side: a VirtualService regex (URI and header) is accepted exactly when RE2 compiles it.
function vsRegexErrors(pattern: string): string[] {
  const spec = {
    hosts: ['a.example.com'],
    http: [{ match: [{ uri: { regex: pattern }, headers: { 'x-a': { regex: pattern } } }], route: [{ destination: { host: 'httpbin' } }] }],
  };
  return validateVirtualService(spec)
    .filter((e) => e.field.endsWith('.regex'))
    .map((e) => `${e.field}: ${e.message}`);
}

for (const row of TABLE) {
  // Istio refuses an empty regex match whatever RE2 says (below).
  if (row.pattern === '') continue;
  test(`VirtualService validation ${'samples' in row ? 'accepts' : 'refuses'} ${JSON.stringify(row.pattern)}`, () => {
    const errors = vsRegexErrors(row.pattern);
    if ('samples' in row) {
      assert.deepEqual(errors, []);
      return;
    }
    // istiod refuses "*" in a header match too: only withoutHeaders reads it as Istio's "present" match.
    assert.equal(errors.length, 2, errors.join('\n'));
    for (const e of errors) {
      assert.ok(e.endsWith(`.regex: ${row.go}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`), e);
    }
  });
}

test('VirtualService validation refuses an empty regex, as istiod does', () => {
  assert.deepEqual(vsRegexErrors('').sort(), [
    'spec.http[0].match[0].headers.x-a.regex: regex string match should not be empty',
    'spec.http[0].match[0].uri.regex: regex string match should not be empty',
  ]);
});
