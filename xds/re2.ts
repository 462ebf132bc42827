// Google RE2, the only regex engine Envoy offers (`safe_regex`, admin `filter=` / `name_regex=`), here through
// re2js, a linear-time port: matching time grows with the input, never exponentially, so a pattern from a
// request (`(a+)+$`) cannot stall the thread that runs it. JavaScript's RegExp backtracks and must never
// see a pattern that came from a request or a config.
//
// The one RE2 of the repository: the controller validates VirtualService regexes with it (as istiod's webhook
// does with Go's regexp, whose syntax re2js ports) and the proxy compiles safe_regex with it, so a pattern one
// side accepts the other does too. re2js parses RE2's syntax with RE2::Options' defaults as Envoy uses them:
// flag groups (?i) (?m) (?s) (?U), combined, negated and scoped ((?is), (?-s), (?i:...)); POSIX classes
// ([[:alpha:]]); \A \z \Q...\E \pL; named groups (?P<n>...) and (?<n>...); `.` not matching a newline and
// `^`/`$` only at the ends of the text unless (?s)/(?m) say otherwise. Two differences with RE2 remain, both
// refused here as istiod refuses them: `\C` (a single byte) and two groups of the same name.
import { RE2JS, RE2JSException, RE2JSSyntaxException } from 're2js';

export interface Re2 {
  /** The pattern as given. */
  readonly pattern: string;
  /** Its number of capture groups. */
  readonly groups: number;
  /** RE2::FullMatch: the whole input matches (Envoy's compiled `safe_regex` matchers, `name_regex=`). */
  fullMatch(input: string): boolean;
  /** RE2::PartialMatch: some part of the input matches (admin `/stats?filter=`). */
  partialMatch(input: string): boolean;
  /**
   * RE2::GlobalReplace: every non-overlapping match replaced by what `rewrite` returns for its groups
   * (`groups[0]` the whole match, then each capture group, '' when it did not take part).
   */
  replaceAll(input: string, rewrite: (groups: readonly string[]) => string): string;
}

/** An invalid pattern; `message` is RE2's own error text, as Envoy reports it (`missing ]: [`). */
export interface Re2Error {
  readonly pattern: string;
  readonly message: string;
  /** Go's regexp error, as istiod's webhook reports it (`error parsing regexp: missing closing ]: \`[\``). */
  readonly goMessage: string;
}

// re2js reports Go's regexp/syntax texts; Envoy passes on RE2's (re2/regexp.cc kErrorStrings, joined to the
// offending text by RegexpStatus::Text as "<code>: <arg>").
const RE2_ERROR_TEXT: Readonly<Record<string, string>> = {
  'missing closing ]': 'missing ]',
  'missing closing )': 'missing )',
  'unexpected )': 'unexpected )',
  'trailing backslash at end of expression': 'trailing \\',
  'missing argument to repetition operator': 'no argument for repetition operator',
  'invalid repeat count': 'invalid repetition size',
  'invalid nested repetition operator': 'bad repetition operator',
  'invalid or unsupported Perl syntax': 'invalid perl operator',
  'invalid named capture': 'invalid named capture group',
  'duplicate capture group name': 'invalid named capture group',
  'invalid escape sequence': 'invalid escape sequence',
  'invalid character class range': 'invalid character class range',
  'expression too large': 'pattern too large - compile failed',
};

function compileError(pattern: string, err: unknown): Re2Error {
  if (err instanceof RE2JSSyntaxException) {
    const input = err.input ?? '';
    // re2js is a port of Go's regexp/syntax: its code and input are Go's, which istiod's webhook prints.
    const goMessage = `error parsing regexp: ${err.error}: \`${input}\``;
    let code = RE2_ERROR_TEXT[err.error] ?? err.error;
    let arg = input;
    // re2js parses `(?<=` and `(?<!` as a named group; RE2 checks for look-behinds first (re2/parse.cc ParsePerlFlags).
    if (code === 'invalid named capture group' && (arg.startsWith('(?<=') || arg.startsWith('(?<!'))) {
      code = 'invalid perl operator';
      arg = arg.slice(0, 4);
    }
    return { pattern, message: arg ? `${code}: ${arg}` : code, goMessage };
  }
  if (err instanceof RE2JSException) return { pattern, message: err.message, goMessage: `error parsing regexp: ${err.message}` };
  throw err;
}

/** Compiles an RE2 pattern; an invalid one is a value, not an exception. */
export function compileRe2(pattern: string): Re2 | Re2Error {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    return compileError(pattern, err);
  }
  const groups = re.groupCount();
  return {
    pattern,
    groups,
    fullMatch: (input) => re.testExact(input),
    partialMatch: (input) => re.test(input),
    replaceAll: (input, rewrite) =>
      // The replacer gets (match, group 1..n, offset, input), as String#replace's does.
      re.matcher(input).replaceAll((...args: unknown[]) => rewrite(args.slice(0, groups + 1).map((g) => (typeof g === 'string' ? g : '')))),
  };
}

export function isRe2Error(r: Re2 | Re2Error): r is Re2Error {
  return !('fullMatch' in r);
}
