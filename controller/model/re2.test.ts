import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRe2, re2ToJs } from './re2.ts';

const cases: { re: string; ok: boolean; why?: RegExp }[] = [
  { re: '/api/v[0-9]+/.*', ok: true },
  { re: '(?i)/admin', ok: true },
  { re: '(?P<id>[0-9]+)', ok: true },
  { re: '\\\\1', ok: true },
  { re: '\\++', ok: true },
  { re: '/(?!admin).*', ok: false, why: /lookaround/ },
  { re: '(?<=a)b', ok: false, why: /lookaround/ },
  { re: '(a)\\1', ok: false, why: /backreference/ },
  { re: '(?>a+)', ok: false, why: /atomic/ },
  { re: 'a++', ok: false, why: /possessive/ },
  { re: '[unclosed', ok: false, why: /invalid regex/ },
  { re: '*', ok: false, why: /invalid regex/ },
  { re: '', ok: false, why: /empty/ },
];
for (const c of cases) {
  test(`regex ${JSON.stringify(c.re)} is ${c.ok ? 'accepted' : 'rejected'}`, () => {
    const err = checkRe2(c.re);
    if (c.ok) assert.equal(err, undefined);
    else assert.match(err ?? '', c.why ?? /./);
  });
}

test('RE2-only syntax is rewritten so JavaScript runs the same match', () => {
  const { source, flags } = re2ToJs('(?i)^/(?P<x>abc)\\z');
  assert.ok(new RegExp(source, flags).test('/ABC'));
});
