import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLabelsFile, unquoteGo } from './labels-file.ts';

/** What the kubelet writes (fieldpath.FormatMap): `key=%q` lines sorted by key, no trailing newline. */
const kubeletFile = (lines: string[]): string => lines.join('\n');

const cases: { name: string; text: string; want?: Record<string, string>; error?: RegExp }[] = [
  {
    name: 'the Downward API format, as the kubelet writes /etc/istio/pod/labels',
    text: kubeletFile(['app="istio-ingressgateway"', 'istio="ingressgateway"', 'pod-template-hash="7d4f9c6b5"', 'sidecar.istio.io/inject="false"']),
    want: { app: 'istio-ingressgateway', istio: 'ingressgateway', 'pod-template-hash': '7d4f9c6b5', 'sidecar.istio.io/inject': 'false' },
  },
  { name: 'empty values and a trailing newline', text: 'a=""\n\n', want: { a: '' } },
  { name: 'an empty file has no labels', text: '', want: {} },
  { name: 'CRLF line ends and indentation are ignored', text: '  a="1"\r\nb="2"\r\n', want: { a: '1', b: '2' } },
  { name: 'a later line for the same key wins', text: 'a="1"\na="2"', want: { a: '2' } },
  { name: 'an = inside the quoted value is kept', text: 'a="x=y"', want: { a: 'x=y' } },
  {
    // The same format carries annotations (metadata.annotations), whose values %q escapes.
    name: "Go's %q escapes: quote, backslash, control characters, \\x, \\u and \\U",
    text: kubeletFile([
      String.raw`a="say \"hi\"\\ now"`,
      String.raw`b="tab\there\nnewline\r\a\b\f\v"`,
      String.raw`c="del\x7f nul\x00"`,
      String.raw`d="zero\u200bwidth tag\U000e0001"`,
      'e="é 日本 😀"',
      String.raw`f="octal \101\102"`,
    ]),
    want: {
      a: 'say "hi"\\ now',
      b: 'tab\there\nnewline\r\x07\b\f\v',
      c: 'del\x7f nul\x00',
      d: 'zero\u200bwidth tag\u{e0001}',
      e: 'é 日本 😀',
      f: 'octal AB',
    },
  },
  { name: '\\x bytes form UTF-8 sequences, as in a Go string', text: String.raw`a="\xc3\xa9"`, want: { a: 'é' } },
  {
    name: 'a BOM, no-break and line separators and an invalid byte, as %q escapes them',
    text: String.raw`h="\ufeffbom \u00a0nbsp \u2028ls"` + '\n' + String.raw`g="\xff raw"`,
    want: { h: '\ufeffbom \u00a0nbsp \u2028ls', g: '\ufffd raw' },
  },
  { name: 'an unquoted value is rejected with the line number', text: 'a="1"\nb=2\n', error: /labels:2: expected key="value"/ },
  { name: 'a line without = is rejected', text: 'just-text', error: /labels:1/ },
  { name: 'a line without a key is rejected', text: '="v"', error: /labels:1: expected key="value"/ },
  { name: 'a bare quote inside the value is rejected', text: 'a="x"y"', error: /labels:1: the value of a is not a valid quoted string: "x"y"/ },
  { name: "\\' is not an escape in a double-quoted Go string", text: String.raw`a="it\'s"`, error: /the value of a is not a valid quoted string/ },
  { name: 'an unknown escape is rejected', text: String.raw`a="\q"`, error: /the value of a is not a valid quoted string/ },
  { name: 'a short \\x escape is rejected', text: String.raw`a="\x7"`, error: /the value of a is not a valid quoted string/ },
  { name: 'a surrogate \\u escape is rejected (not a valid rune)', text: String.raw`a="\ud800"`, error: /the value of a is not a valid quoted string/ },
  { name: 'a \\U escape beyond U+10FFFF is rejected', text: String.raw`a="\U00110000"`, error: /the value of a is not a valid quoted string/ },
  { name: 'an octal escape above \\377 is rejected', text: String.raw`a="\400"`, error: /the value of a is not a valid quoted string/ },
  { name: 'a trailing backslash is rejected', text: String.raw`a="x\"`, error: /the value of a is not a valid quoted string/ },
];

for (const c of cases) {
  test(`labels file: ${c.name}`, () => {
    if (c.error) assert.throws(() => parseLabelsFile(c.text, 'labels'), c.error);
    else assert.deepEqual(parseLabelsFile(c.text, 'labels'), c.want);
  });
}

test('labels file: JSON escapes Go does not have are rejected (\\/ and a JSON-only surrogate pair)', () => {
  assert.equal(unquoteGo(String.raw`"a\/b"`), undefined);
  assert.equal(unquoteGo(String.raw`"\ud83d\ude00"`), undefined);
  assert.equal(unquoteGo(String.raw`"\U0001f600"`), '😀');
});
