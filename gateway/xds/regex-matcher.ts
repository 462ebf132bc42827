// envoy.type.matcher.v3.RegexMatcher (safe_regex): one field table and one compile step for every place the
// proxy reads one.
import type { envoy } from '../../xds/envoy.ts';
import type { Re2 } from '../../xds/re2.ts';
import { fieldTable } from './fields.ts';
import { compileRe2 } from './json.ts';

const checkRegexMatcher = fieldTable('envoy.type.matcher.v3.RegexMatcher', {
  regex: true,
  google_re2: 'deprecated in Envoy; its max_program_size is not enforced, every pattern compiles to a linear-time matcher (xds/re2.ts)',
});

/** A RegexMatcher compiled by xds/re2.ts; an invalid pattern is a ConfigError carrying RE2's message. */
export function regexMatcher(m: envoy.type.matcher.v3.RegexMatcher, where: string): Re2 {
  checkRegexMatcher(m, where);
  return compileRe2(m.regex ?? '', where);
}
