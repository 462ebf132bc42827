// RequestAuthentication as istiod reads and validates it: its JSON decoding (as for AuthorizationPolicy: wrong
// types refuse the object, unknown fields are ignored, a null list item is an empty message or string, a field may
// also go by its proto name, e.g. jwks_uri), the
// webhook's metadata check (no dry-run annotation on this kind, no internal annotations), then
// ValidateRequestAuthentication (pkg/config/validation): the selector or targetRef(s) as for AuthorizationPolicy,
// and per JWT rule validateJwtRule's checks with its messages: audiences, issuer or jwksUri, jwksUri
// (security.ParseJwksURI), inline jwks (jwk.Parse, jwks-parse.ts), token locations, claim headers, timeout.
// The warning about private key material in an inline jwks is left out, as other warnings are.
import type { FieldError } from './istio-validation.ts';
import { type Json, Decoder, attachmentErrors, decodeAttachment, metadataError } from './authorization-policy-validation.ts';
import { jwksParseError } from './jwks-parse.ts';
import { parseJwksUri } from './go-url.ts';
import type { ClaimToHeader, JWTHeader, JWTRule, RequestAuthenticationSpec } from './security-types.ts';

const UNITS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  μs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX = 1n << 63n;

/** The time package's quote: control and non-ASCII characters as \x bytes of their UTF-8. */
function timeQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c >= 0x80) for (const b of Buffer.from(ch, 'utf8')) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
  }
  return `${out}"`;
}

/** Go's time.ParseDuration: nanoseconds, or its error. */
export function parseGoDuration(orig: string): { ns: bigint } | { error: string } {
  const invalid = { error: `time: invalid duration ${timeQuote(orig)}` };
  let s = orig;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return { ns: 0n };
  if (s === '') return invalid;
  let d = 0n;
  while (s !== '') {
    if (!/^[0-9.]/.test(s)) return invalid;
    const int = /^[0-9]*/.exec(s)?.[0] ?? '';
    s = s.slice(int.length);
    let v = int === '' ? 0n : BigInt(int);
    if (v > MAX) return invalid; // leadingInt overflow
    let frac = '';
    let post = false;
    if (s.startsWith('.')) {
      s = s.slice(1);
      frac = /^[0-9]*/.exec(s)?.[0] ?? '';
      s = s.slice(frac.length);
      post = frac !== '';
    }
    if (int === '' && !post) return invalid;
    const unitText = /^[^0-9.]*/.exec(s)?.[0] ?? '';
    if (unitText === '') return { error: `time: missing unit in duration ${timeQuote(orig)}` };
    s = s.slice(unitText.length);
    const unit = UNITS[unitText];
    if (unit === undefined) return { error: `time: unknown unit ${timeQuote(unitText)} in duration ${timeQuote(orig)}` };
    if (v > MAX / unit) return invalid;
    v *= unit;
    if (frac !== '') {
      // leadingFraction keeps digits while they fit, then float64(f) * (unit / scale), truncated.
      let f = 0n;
      let scale = 1;
      let overflow = false;
      for (const c of frac) {
        if (overflow) continue;
        if (f > (MAX - 1n) / 10n) {
          overflow = true;
          continue;
        }
        const y = f * 10n + BigInt(c);
        if (y > MAX) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > MAX) return invalid;
    }
    d += v;
    if (d > MAX) return invalid;
  }
  if (neg) return { ns: -d };
  if (d > MAX - 1n) return invalid;
  return { ns: d };
}

/** The spec as istiod's decoder reads it, or the reasons it cannot. */
function decodeRequestAuthentication(raw: unknown): { spec: RequestAuthenticationSpec; errors: FieldError[] } {
  const d = new Decoder();
  const spec: RequestAuthenticationSpec = {};
  const m = d.map(raw, 'spec') ?? {};
  decodeAttachment(d, m, spec);
  const rules = d.messages(d.field(m, 'jwtRules'), 'spec.jwtRules', (x, f) => decodeJwtRule(d, x, f));
  if (rules) spec.jwtRules = rules;
  return { spec, errors: d.errors };
}

function decodeJwtRule(d: Decoder, m: Json, f: string): JWTRule {
  const rule: JWTRule = {};
  for (const k of ['issuer', 'jwksUri', 'jwks', 'outputPayloadToHeader'] as const) {
    const s = d.string(d.field(m, k), `${f}.${k}`);
    if (s !== undefined) rule[k] = s;
  }
  for (const k of ['audiences', 'fromParams', 'fromCookies', 'spaceDelimitedClaims'] as const) {
    const l = d.strings(d.field(m, k), `${f}.${k}`);
    if (l) rule[k] = l;
  }
  const headers = d.messages(d.field(m, 'fromHeaders'), `${f}.fromHeaders`, (x, g): JWTHeader => {
    const h: JWTHeader = {};
    const name = d.string(x.name, `${g}.name`);
    if (name !== undefined) h.name = name;
    const prefix = d.string(x.prefix, `${g}.prefix`);
    if (prefix !== undefined) h.prefix = prefix;
    return h;
  });
  if (headers) rule.fromHeaders = headers;
  const claims = d.messages(d.field(m, 'outputClaimToHeaders'), `${f}.outputClaimToHeaders`, (x, g): ClaimToHeader => {
    const c: ClaimToHeader = {};
    const header = d.string(x.header, `${g}.header`);
    if (header !== undefined) c.header = header;
    const claim = d.string(x.claim, `${g}.claim`);
    if (claim !== undefined) c.claim = claim;
    return c;
  });
  if (claims) rule.outputClaimToHeaders = claims;
  const forward = d.field(m, 'forwardOriginalToken');
  if (typeof forward === 'boolean') rule.forwardOriginalToken = forward;
  else if (forward !== undefined && forward !== null) d.errors.push({ field: `${f}.forwardOriginalToken`, message: 'must be a boolean' });
  const timeout = d.string(m.timeout, `${f}.timeout`);
  if (timeout !== undefined) {
    const p = parseGoDuration(timeout);
    if ('error' in p) d.errors.push({ field: `${f}.timeout`, message: `bad Duration: ${p.error}` });
    else rule.timeout = timeout;
  }
  return rule;
}

/** A JWT rule's timeout in nanoseconds (5 s when unset), as the JWKS resolver is given it. */
export function ruleTimeoutNs(rule: JWTRule): bigint {
  const p = rule.timeout === undefined ? undefined : parseGoDuration(rule.timeout);
  return p && 'ns' in p ? p.ns : 5_000_000_000n;
}

/** ValidateStrictHTTPHeaderName's pattern. */
const STRICT_HEADER_NAME = /^[-_A-Za-z0-9]+$/;

/** validateJwtRule. */
function jwtRuleErrors(rule: JWTRule, f: string, add: (f: string, m: string) => void): void {
  rule.audiences?.forEach((a, j) => {
    if (a === '') add(`${f}.audiences[${j}]`, 'audience must be non-empty string');
  });
  if (!rule.issuer && !rule.jwksUri) add(f, 'issuer or jwksUri must be non-empty string');
  if (rule.jwksUri) {
    const p = parseJwksUri(rule.jwksUri);
    if (!p.ok) add(`${f}.jwksUri`, p.error);
  }
  if (rule.jwks) {
    const e = jwksParseError(rule.jwks);
    if (e) add(`${f}.jwks`, `jwks parse error: ${e}`);
  }
  rule.fromHeaders?.forEach((h, j) => {
    if (!h.name) add(`${f}.fromHeaders[${j}].name`, 'location header name must be non-empty string');
  });
  rule.fromParams?.forEach((p, j) => {
    if (p === '') add(`${f}.fromParams[${j}]`, 'location query must be non-empty string');
  });
  rule.fromCookies?.forEach((c, j) => {
    if (c === '') add(`${f}.fromCookies[${j}]`, 'cookie name must be non-empty string');
  });
  rule.outputClaimToHeaders?.forEach((c, j) => {
    const g = `${f}.outputClaimToHeaders[${j}]`;
    if (!c.claim || !c.header) add(g, 'outputClaimToHeaders header and claim value must be non-empty string');
    else if (!STRICT_HEADER_NAME.test(c.header)) add(`${g}.header`, `header name ${c.header} is not a valid header name`);
  });
  if (rule.timeout !== undefined) {
    const ns = ruleTimeoutNs(rule);
    if (ns < 1_000_000n) add(`${f}.timeout`, 'duration must be greater than 1ms');
    else if (ns % 1_000_000n !== 0n) add(`${f}.timeout`, 'only durations to ms precision are supported');
  }
}

/** ValidateRequestAuthentication on a decoded spec. */
function requestAuthenticationErrors(spec: RequestAuthenticationSpec): FieldError[] {
  const out: FieldError[] = [];
  const add = (field: string, message: string): void => {
    out.push({ field, message });
  };
  attachmentErrors(spec, add);
  spec.jwtRules?.forEach((r, i) => jwtRuleErrors(r, `spec.jwtRules[${i}]`, add));
  return out;
}

/**
 * Everything that keeps a RequestAuthentication from being served, in istiod's order: what its decoder refuses,
 * then the metadata check (which stops there), then the spec rules. `decoded` tells a spec that could not be read
 * at all from one that was read and refused.
 */
export function validateRequestAuthentication(
  meta: { name: string; namespace: string; annotations?: Readonly<Record<string, string>> },
  raw: unknown,
): { spec: RequestAuthenticationSpec; errors: FieldError[]; decoded: boolean } {
  const { spec, errors } = decodeRequestAuthentication(raw);
  if (errors.length) return { spec, errors, decoded: false };
  const m = metadataError(meta.name, meta.namespace, meta.annotations ?? {});
  if (m) return { spec, errors: [m], decoded: true };
  return { spec, errors: requestAuthenticationErrors(spec), decoded: true };
}
