import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileUriTemplate, uriTemplateRegex } from './uri-template.ts';
import { compileRe2, isRe2Error } from '../../xds/re2.ts';
import { ConfigError } from '../xds/json.ts';

const cases: { template: string; yes: string[]; no: string[] }[] = [
  { template: '/api/*/y', yes: ['/api/a/y', '/api/a.b~c/y'], no: ['/api/a/b/y', '/api//y', '/api/a/y/', '/api/a/yy', '/API/a/y'] },
  { template: '/api/**', yes: ['/api/', '/api/a', '/api/a/b/c', '/api/a//b/'], no: ['/api', '/apix/a', '/other/api/a'] },
  { template: '/**', yes: ['/', '/a', '/a/b/'], no: ['', 'a'] },
  { template: '/**/x', yes: ['//x', '/a/x', '/a/b/x'], no: ['/x', '/a/xy', '/a/x/'] },
  { template: '/*', yes: ['/a', '/abc'], no: ['/', '/a/', '/a/b'] },
  { template: '/', yes: ['/'], no: ['', '/a'] },
  { template: '/a/', yes: ['/a/'], no: ['/a', '/a/b'] },
  { template: '/*/', yes: ['/a/'], no: ['/a', '//', '/a/b/'] },
  { template: '/*.jpg', yes: ['/a.jpg', '/x.y.jpg'], no: ['/.jpg', '/a/b.jpg', '/a.png'] },
  { template: '/foo/{lang}/{country}', yes: ['/foo/en/us'], no: ['/foo/en', '/foo/en/us/x', '/foo//us'] },
  { template: '/v1/{name=projects/*/books/*}', yes: ['/v1/projects/p/books/b'], no: ['/v1/projects/p/books', '/v1/projects/p/shelves/b'] },
  { template: '/v1/{path=**}', yes: ['/v1/', '/v1/a/b'], no: ['/v1'] },
  { template: '/v1/{a=*}/{b=**}/end', yes: ['/v1/x//end', '/v1/x/y/z/end'], no: ['/v1/x/end', '/v1//y/end'] },
  { template: '/{x}suffix', yes: ['/asuffix'], no: ['/suffix', '/a/suffix'] },
  { template: "/a!$&'()+,;:@=~-_.%/b", yes: ["/a!$&'()+,;:@=~-_.%/b"], no: ['/a/b'] },
  // The globs take pchars only: no spaces, no '?', no bytes above 0x7f.
  { template: '/x/*', yes: ['/x/%20'], no: ['/x/a b', '/x/a?b', '/x/\u00e9'] },
  { template: '/x/**', yes: ['/x/a/%2F'], no: ['/x/a b', '/x/\u00e9/'] },
];

test('uri templates match what Envoy matches', () => {
  for (const c of cases) {
    const m = compileUriTemplate(c.template, 't');
    for (const p of c.yes) assert.equal(m(p), true, `${c.template} should match ${p}`);
    for (const p of c.no) assert.equal(m(p), false, `${c.template} should not match ${p}`);
  }
});

test('templates Envoy rejects are ConfigErrors', () => {
  const bad: [string, RegExp][] = [
    ['api/*', /must be '\/' followed by printable ASCII/],
    ['/a b', /printable/],
    ['/a/{x', /unmatched variable bracket/],
    ['/{1x}', /invalid variable name "1x"/],
    ['/{x=}', /empty variable match/],
    ['/{x=*a}', /invalid variable match/],
    ['/{x=a/}', /invalid variable match/],
    ['/a*', /invalid literal "a\*"/],
    ['/a//b', /invalid literal ""/],
    ['/**/*', /glob after a \*\* text glob/],
    ['/**/{x}', /glob after a \*\* text glob/],
    ['/{x=**}/{y=*}', /glob after a \*\* text glob/],
    ['/*a/b', /suffix must end the template/],
    ['/{a}/{b}/{c}/{d}/{e}/{f}', /more than 5 variables/],
    ['/{abcdefghijklmnopq}', /longer than 16 characters/],
    ['/{a}/{a}', /repeated variable name "a"/],
    ['/{*}', /invalid variable name "\*"/],
  ];
  for (const [t, re] of bad) {
    assert.throws(
      () => compileUriTemplate(t, 'perm.uri_template'),
      (e: Error) => e instanceof ConfigError && e.message.startsWith('perm.uri_template: invalid path template: ') && re.test(e.message),
      t,
    );
  }
});

test("the matcher agrees with RE2 running Envoy's own regex for the template", () => {
  const piece = fc.constantFrom('a', 'b.c', '*', '**', '{v}', '{w=*}', '{x=**}', '{y=a/*}', '{z=*/b}', '', '%7e');
  const template = fc
    .tuple(fc.array(piece, { minLength: 0, maxLength: 4 }), fc.constantFrom('', '', '/', '.jpg', 'x'))
    .map(([segs, tail]) => '/' + segs.join('/') + tail);
  const path = fc
    .string({ unit: fc.constantFrom('/', 'a', 'b', '.', 'c', 'x', 'j', 'p', 'g', '%', '~', ' ', '?', '\u00e9'), maxLength: 14 })
    .map((s) => '/' + s);
  let compiled = 0;
  let matched = 0;
  fc.assert(
    fc.property(template, fc.array(path, { minLength: 8, maxLength: 8 }), (t, paths) => {
      let m: (p: string) => boolean;
      try {
        m = compileUriTemplate(t, 't');
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return;
      }
      compiled++;
      const re = compileRe2(uriTemplateRegex(t));
      if (isRe2Error(re)) throw new Error(`${t}: ${re.message}`);
      for (const p of paths) assert.equal(m(p), re.fullMatch(p), `${t} on ${p} (${re.pattern})`);
      // The template's own literal form, and near misses of it, must agree too.
      const literal = t.replace(/\{[a-z]=?|\}/g, '').replace(/\*/g, 'a');
      for (const p of [literal, literal + '/', literal.slice(0, -1)]) {
        assert.equal(m(p), re.fullMatch(p), `${t} on ${p} (${re.pattern})`);
        if (m(p)) matched++;
      }
    }),
    { numRuns: 4000, seed: 7 },
  );
  assert.ok(compiled > 1000, `only ${compiled} templates compiled`);
  assert.ok(matched > 1000, `only ${matched} paths matched`);
});
