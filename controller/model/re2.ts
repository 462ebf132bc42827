// Envoy compiles `safe_regex` with RE2. A regex istiod accepts (Go's regexp is RE2 syntax) must also compile
// for RE2 and, because our proxy runs JavaScript, for JS. Reject what RE2 cannot express (lookarounds,
// backreferences, atomic groups, possessive quantifiers) and what JS cannot compile.

const RE2_UNSUPPORTED: readonly [RegExp, string][] = [
  [/\(\?<?[=!]/, 'lookaround assertions ((?=, (?!, (?<=, (?<!) are not supported by RE2'],
  [/\(\?>/, 'atomic groups (?>...) are not supported by RE2'],
  [/\\[1-9]/, 'backreferences (\\1 ...) are not supported by RE2'],
  [/\\k</, 'named backreferences (\\k<name>) are not supported by RE2'],
  [/[*+?}][+]/, 'possessive quantifiers (a*+, a++) are not supported by RE2'],
];

/** Rewrites the RE2-only syntax JS lacks, so that JS can check (and run) the pattern. */
export function re2ToJs(pattern: string): { source: string; flags: string } {
  let src = pattern;
  let flags = '';
  // A leading flag group (?i) / (?s) / (?is) applies to the whole pattern.
  const lead = /^\(\?([imsU]+)\)/.exec(src);
  if (lead) {
    src = src.slice(lead[0].length);
    for (const f of lead[1] ?? '') if (f === 'i' || f === 's' || f === 'm') flags += f;
  }
  src = src
    .replace(/\(\?P</g, '(?<')
    .replace(/\\A/g, '^')
    .replace(/\\z/g, '$');
  return { source: src, flags };
}

/** Undefined when the pattern is acceptable; otherwise why it is not. */
export function checkRe2(pattern: string): string | undefined {
  if (pattern === '') return 'regex must not be empty';
  // Strip escaped backslashes so `\\1` (a literal backslash then 1) is not taken for a backreference.
  const noEscapedBackslash = pattern.replace(/\\\\/g, '');
  const noEscapes = pattern.replace(/\\./g, '_');
  for (const [re, why] of RE2_UNSUPPORTED) {
    const backref = why.includes('backreference');
    if (re.test(backref ? noEscapedBackslash : noEscapes)) return why;
  }
  const { source, flags } = re2ToJs(pattern);
  try {
    new RegExp(source, flags);
  } catch (err) {
    return `invalid regex: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  return undefined;
}
