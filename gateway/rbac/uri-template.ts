// Envoy's URI template path matcher (envoy.path.match.uri_template.uri_template_matcher, the
// UriTemplateMatchConfig RBAC's Permission.uri_template carries and Istio writes for `{*}` and `{**}` in
// AuthorizationPolicy paths). Envoy parses the template (source/extensions/path/uri_template_lib/
// uri_template_internal.cc) and compiles it to an RE2 pattern it full-matches against the path without its
// query and fragment:
//   - the template is '/' then segments separated by '/', each a literal, `*`, `**` or a variable `{name}`,
//     `{name=...}` whose match is literals and globs separated by '/'; a literal may end the last segment as
//     a suffix (`/*.jpg`); a trailing '/' is kept;
//   - literals are RFC 3986 pchars without '*' ([A-Za-z0-9-._~%!$&'()+,;:@=]);
//   - `*` (and a variable without a match) is [pchar]+, one non-empty segment; `**` is [pchar/]*, any rest;
//   - at most 5 variables with names of 1-16 characters, never repeated, and no glob after a `**`.
// The regex is that simple, and no glob follows a `**`, so this matches it directly, without a regex engine:
// each `*` takes the segment up to the next '/' (or up to a suffix at the end), and the one `**` takes what
// lies between what precedes it and the literal text that must end the path.
import { ConfigError } from '../xds/json.ts';

/** Matches a path without its query and fragment. */
export type UriTemplateMatch = (path: string) => boolean;

// The characters a literal and a glob may hold (Envoy's kLiteral).
const PCHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()+,;:@=") PCHAR[c.charCodeAt(0)] = 1;
const SLASH = 47;

function isLiteral(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || PCHAR[c] === 0) return false;
  }
  return true;
}

const VARIABLE_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;
const MAX_VARIABLES = 5;
const MAX_VARIABLE_NAME = 16;

// A path glob `*`, a text glob `**`, or literal text.
type Part = { kind: 'path' } | { kind: 'text' } | { kind: 'lit'; text: string };
type Segment = Part | { kind: 'var'; name: string; match: Part[] };

class Parser {
  rest: string;
  readonly where: string;
  constructor(template: string, where: string) {
    this.rest = template;
    this.where = where;
  }
  fail(why: string): never {
    throw new ConfigError(`${this.where}: invalid path template: ${why}`);
  }
  // Envoy parseLiteral: the text up to the next '/'.
  literal(): Part {
    const slash = this.rest.indexOf('/');
    const text = slash < 0 ? this.rest : this.rest.slice(0, slash);
    if (!isLiteral(text)) this.fail(`invalid literal "${text}"`);
    this.rest = this.rest.slice(text.length);
    return { kind: 'lit', text };
  }
  operator(): Part {
    if (this.rest.startsWith('**')) {
      this.rest = this.rest.slice(2);
      return { kind: 'text' };
    }
    this.rest = this.rest.slice(1);
    return { kind: 'path' };
  }
  variable(): Segment {
    const close = this.rest.indexOf('}');
    if (close < 0) this.fail(`unmatched variable bracket in "${this.rest}"`);
    const body = this.rest.slice(1, close);
    this.rest = this.rest.slice(close + 1);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    if (!VARIABLE_NAME.test(name)) this.fail(`invalid variable name "${name}"`);
    if (eq < 0) return { kind: 'var', name, match: [] };
    let m = body.slice(eq + 1);
    if (m === '') this.fail(`empty variable match in {${body}}`);
    const match: Part[] = [];
    while (m !== '') {
      if (m.startsWith('*')) {
        match.push(m.startsWith('**') ? { kind: 'text' } : { kind: 'path' });
        m = m.slice(m.startsWith('**') ? 2 : 1);
      } else {
        const slash = m.indexOf('/');
        const text = slash < 0 ? m : m.slice(0, slash);
        if (!isLiteral(text)) this.fail(`invalid literal "${text}" in {${body}}`);
        match.push({ kind: 'lit', text });
        m = m.slice(text.length);
      }
      if (m !== '') {
        if (m[0] !== '/' || m.length === 1) this.fail(`invalid variable match "${m}" in {${body}}`);
        m = m.slice(1);
      }
    }
    return { kind: 'var', name, match };
  }
}

/** Envoy parsePathPatternSyntax + its checks; throws a ConfigError naming `where`. */
function parseTemplate(template: string, where: string): { segments: Segment[]; suffix: string } {
  const p = new Parser(template, where);
  if (!/^\/[\x21-\x7e]*$/.test(template)) p.fail(`"${template}" must be '/' followed by printable ASCII`);
  p.rest = template.slice(1);
  const segments: Segment[] = [];
  let suffix = '';
  while (p.rest !== '') {
    const c = p.rest[0];
    segments.push(c === '*' ? p.operator() : c === '{' ? p.variable() : p.literal());
    if (p.rest === '') break;
    if (p.rest === '/') {
      segments.push({ kind: 'lit', text: '' }); // a trailing '/'
      break;
    }
    if (p.rest[0] === '/') {
      p.rest = p.rest.slice(1);
      continue;
    }
    // Text right after a glob or a variable, up to the end: a suffix.
    const s = p.literal();
    if (s.kind === 'lit') suffix = s.text;
    if (p.rest !== '') p.fail('a suffix must end the template (prefix match not supported)');
    break;
  }
  const names = new Set<string>();
  for (const s of segments) {
    if (s.kind !== 'var') continue;
    if (names.size >= MAX_VARIABLES) p.fail(`more than ${MAX_VARIABLES} variables`);
    if (s.name.length > MAX_VARIABLE_NAME) p.fail(`variable name "${s.name}" is longer than ${MAX_VARIABLE_NAME} characters`);
    if (names.has(s.name)) p.fail(`repeated variable name "${s.name}"`);
    names.add(s.name);
  }
  let textGlob = false;
  for (const s of segments) {
    const parts: Part[] = s.kind === 'var' ? (s.match.length ? s.match : [{ kind: 'path' }]) : [s];
    for (const part of parts) {
      if (part.kind === 'lit') continue;
      if (textGlob) p.fail('a glob after a ** text glob');
      textGlob = part.kind === 'text';
    }
  }
  return { segments, suffix };
}

/** The template as Envoy's regex reads it, flattened: '/', the segments joined by '/', the suffix; literals merged. */
function tokens(segments: readonly Segment[], suffix: string): Part[] {
  const out: Part[] = [];
  const lit = (text: string): void => {
    const last = out[out.length - 1];
    if (last?.kind === 'lit') last.text += text;
    else out.push({ kind: 'lit', text });
  };
  lit('/');
  segments.forEach((s, i) => {
    if (i > 0) lit('/');
    const parts: Part[] = s.kind === 'var' ? (s.match.length ? s.match : [{ kind: 'path' }]) : [s];
    parts.forEach((part, j) => {
      if (j > 0) lit('/');
      if (part.kind === 'lit') lit(part.text);
      else out.push(part);
    });
  });
  if (suffix) lit(suffix);
  return out;
}

/** Every character of s[from, to) is a pchar (or also '/', for a text glob). */
function allowed(s: string, from: number, to: number, slash: boolean): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (PCHAR[c] === 0 && !(slash && c === SLASH))) return false;
  }
  return true;
}

/**
 * UriTemplateMatchConfig.path_template -> its matcher (Envoy: RE2::FullMatch of the compiled template against
 * the path without query and fragment). Throws a ConfigError for a template Envoy rejects.
 */
export function compileUriTemplate(template: string, where: string): UriTemplateMatch {
  const { segments, suffix } = parseTemplate(template, where);
  const all = tokens(segments, suffix);
  const t = all.findIndex((k) => k.kind === 'text');
  const head = t < 0 ? all : all.slice(0, t);
  // After the text glob only literal text remains (no glob may follow it): the path must end with it.
  const tail = t < 0 ? undefined : all.slice(t + 1).reduce((acc, k) => acc + (k.kind === 'lit' ? k.text : ''), '');
  const n = head.length;
  return (path) => {
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const k = head[i] as Part;
      if (k.kind === 'lit') {
        if (!path.startsWith(k.text, pos)) return false;
        pos += k.text.length;
        continue;
      }
      // A path glob: one or more pchars, up to the '/' that starts the next literal, or up to the suffix
      // (or the end) when it is last.
      const next = head[i + 1];
      let end: number;
      if (next === undefined) end = path.length;
      else if (next.kind === 'lit' && next.text.charCodeAt(0) === SLASH) {
        end = path.indexOf('/', pos);
        if (end < 0) return false;
      } else if (next.kind === 'lit' && i + 2 === n && tail === undefined) {
        end = path.length - next.text.length;
      } else return false; // not produced by parseTemplate
      if (end <= pos || !allowed(path, pos, end, false)) return false;
      pos = end;
    }
    if (tail === undefined) return pos === path.length;
    const end = path.length - tail.length;
    return end >= pos && path.endsWith(tail) && allowed(path, pos, end, true);
  };
}

/**
 * The RE2 pattern Envoy builds for a template (uri_template_internal.cc toRegexPattern), for tests that check
 * the matcher above against RE2 itself.
 */
export function uriTemplateRegex(template: string): string {
  const { segments, suffix } = parseTemplate(template, 'uriTemplateRegex');
  const pchar = "a-zA-Z0-9-._~%!$&'()+,;:@=";
  const esc = (s: string): string => s.replace(/[$()+.]/g, (c) => '\\' + c);
  const part = (p: Part): string => (p.kind === 'lit' ? esc(p.text) : p.kind === 'path' ? `[${pchar}]+` : `[${pchar}/]*`);
  const seg = (s: Segment): string => (s.kind === 'var' ? `(?P<${s.name}>${s.match.length ? s.match.map(part).join('/') : part({ kind: 'path' })})` : part(s));
  return '/' + segments.map(seg).join('/') + esc(suffix);
}
