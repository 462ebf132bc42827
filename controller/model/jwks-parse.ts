// Whether istiod's webhook takes a RequestAuthentication's inline `jwks`, and its message when it does not:
// ValidateRequestAuthentication runs jwk.Parse (github.com/lestrrat-go/jwx v1.2.31) on it, which reads the first
// JSON value with Go's encoding/json Decoder (anything after it is ignored; none at all is "EOF"), then walks it as
// a key set ({"keys": [...]}) or, without a "keys" member, as one key. A key's type comes from "kty" (RSA, EC, OKP,
// oct; a "d" member makes it a private key); its byte members must be base64 (jwx picks the URL or standard
// alphabet, padded or not, from the text), its string members strings, and its required members present. Nothing
// about the key material itself is checked (Envoy, or the proxy, does that). Messages are jwx's and Go's.
import { X509Certificate } from 'node:crypto';

/** A JSON value as Go's token stream sees it: object members in order, duplicates kept. */
type Json =
  { t: 'object'; entries: [string, Json][] } | { t: 'array'; items: Json[] } | { t: 'string'; value: string } | { t: 'number' } | { t: 'bool' } | { t: 'null' };

class JsonError extends Error {}

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const isHex = (c: number | undefined): boolean => c !== undefined && (isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));

/** strconv.Quote of one rune (what Go's %q and quoteChar print). */
function quoteRune(r: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v', 0x5c: '\\\\', 0x22: '\\"' };
  if (named[r] !== undefined) return named[r];
  if (r < 0x20 || r === 0x7f) return `\\x${r.toString(16).padStart(2, '0')}`;
  // Latin-1 runes Go does not print: C1 controls, no-break space, soft hyphen.
  if ((r >= 0x80 && r <= 0xa0) || r === 0xad) return `\\u${r.toString(16).padStart(4, '0')}`;
  return String.fromCodePoint(r);
}

/** strconv.Quote of a string (Go's %q), for the strings that appear in these messages. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const r = ch.codePointAt(0) ?? 0;
    out += r < 0x100 ? quoteRune(r) : ch === '\u2028' || ch === '\u2029' ? `\\u${r.toString(16)}` : ch;
  }
  return `${out}"`;
}

/** The scanner's quoteChar: one byte, as Go turns it into a rune (a byte >= 0x80 reads as Latin-1). */
function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return `'"'`;
  return `'${quoteRune(c)}'`;
}

/**
 * The first JSON value of `src`, read as Go's json.Decoder reads it: leading whitespace skipped, the value checked
 * with Go's scanner messages, whatever follows it ignored.
 */
function firstValue(src: Uint8Array): Json {
  let i = 0;
  const eof = (): never => {
    throw new JsonError('unexpected EOF');
  };
  const bad = (context: string): never => {
    const c = src[i];
    if (c === undefined) return eof();
    throw new JsonError(`invalid character ${quoteChar(c)} ${context}`);
  };
  const skipSpace = (): void => {
    while (isSpace(src[i])) i++;
  };
  const literal = (word: string, t: Json): Json => {
    for (let k = 1; k < word.length; k++) {
      i++;
      if (src[i] === undefined) eof();
      if (src[i] !== word.charCodeAt(k)) bad(`in literal ${word} (expecting '${word[k]}')`);
    }
    i++;
    return t;
  };
  const number = (): Json => {
    if (src[i] === 0x2d) {
      i++;
      if (!isDigit(src[i])) bad('in numeric literal');
    }
    if (src[i] === 0x30) i++;
    else while (isDigit(src[i])) i++;
    if (src[i] === 0x2e) {
      i++;
      if (!isDigit(src[i])) bad('after decimal point in numeric literal');
      while (isDigit(src[i])) i++;
    }
    if (src[i] === 0x65 || src[i] === 0x45) {
      i++;
      if (src[i] === 0x2b || src[i] === 0x2d) i++;
      if (!isDigit(src[i])) bad('in exponent of numeric literal');
      while (isDigit(src[i])) i++;
    }
    // A number at the very end is complete (the decoder feeds its scanner a space at EOF), unless inside a value.
    return { t: 'number' };
  };
  const string = (): string => {
    i++; // the opening quote
    const units: number[] = [];
    let raw: number[] = [];
    const flush = (): void => {
      if (raw.length) for (const ch of new TextDecoder().decode(new Uint8Array(raw))) units.push(...[...ch].map((x) => x.codePointAt(0) ?? 0xfffd));
      raw = [];
    };
    const hex4 = (): number => {
      let v = 0;
      for (let k = 0; k < 4; k++) {
        i++;
        if (src[i] === undefined) eof();
        if (!isHex(src[i])) bad('in \\u hexadecimal character escape');
        v = v * 16 + parseInt(String.fromCharCode(src[i] ?? 0), 16);
      }
      return v;
    };
    for (;;) {
      const c = src[i];
      if (c === undefined) return eof();
      if (c === 0x22) {
        i++;
        flush();
        // Go's unquote: a surrogate escape not followed by its pair is U+FFFD.
        let out = '';
        for (let k = 0; k < units.length; k++) {
          const u = units[k] ?? 0xfffd;
          if (u >= 0xd800 && u < 0xdc00 && (units[k + 1] ?? 0) >= 0xdc00 && (units[k + 1] ?? 0) < 0xe000) {
            out += String.fromCharCode(u, units[k + 1] ?? 0);
            k++;
          } else out += u >= 0xd800 && u < 0xe000 ? '\ufffd' : String.fromCodePoint(u);
        }
        return out;
      }
      if (c < 0x20) bad('in string literal');
      if (c !== 0x5c) {
        raw.push(c);
        i++;
        continue;
      }
      flush();
      i++;
      const e = src[i];
      if (e === undefined) return eof();
      const simple: Record<number, number> = { 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x5c: 0x5c, 0x2f: 0x2f, 0x22: 0x22 };
      if (simple[e] !== undefined) {
        units.push(simple[e]);
        i++;
      } else if (e === 0x75) {
        units.push(hex4());
        i++;
      } else bad('in string escape code');
    }
  };
  const value = (): Json => {
    skipSpace();
    const c = src[i];
    switch (c) {
      case undefined:
        return eof();
      case 0x7b: {
        i++;
        const entries: [string, Json][] = [];
        skipSpace();
        if (src[i] === 0x7d) {
          i++;
          return { t: 'object', entries };
        }
        for (;;) {
          skipSpace();
          if (src[i] !== 0x22) bad('looking for beginning of object key string');
          const key = string();
          skipSpace();
          if (src[i] !== 0x3a) bad('after object key');
          i++;
          entries.push([key, value()]);
          skipSpace();
          if (src[i] === 0x2c) {
            i++;
            continue;
          }
          if (src[i] === 0x7d) {
            i++;
            return { t: 'object', entries };
          }
          bad('after object key:value pair');
        }
      }
      case 0x5b: {
        i++;
        const items: Json[] = [];
        skipSpace();
        if (src[i] === 0x5d) {
          i++;
          return { t: 'array', items };
        }
        for (;;) {
          items.push(value());
          skipSpace();
          if (src[i] === 0x2c) {
            i++;
            continue;
          }
          if (src[i] === 0x5d) {
            i++;
            return { t: 'array', items };
          }
          bad('after array element');
        }
      }
      case 0x22:
        return { t: 'string', value: string() };
      case 0x74:
        return literal('true', { t: 'bool' });
      case 0x66:
        return literal('false', { t: 'bool' });
      case 0x6e:
        return literal('null', { t: 'null' });
      default:
        if (c === 0x2d || isDigit(c)) return number();
        return bad('looking for beginning of value');
    }
  };
  skipSpace();
  if (i >= src.length) throw new JsonError('EOF');
  const v = value();
  // Inside an object or array a truncated number is caught above; a top-level one is complete at EOF.
  return v;
}

/** What Go's json calls a value's type in "cannot unmarshal X into Go value of type T". */
const goKind = (v: Json): string => (v.t === 'bool' ? 'bool' : v.t);

/** json.Decode of a value into a Go string (null leaves it empty). */
function asString(v: Json, type = 'string'): string {
  if (v.t === 'string') return v.value;
  if (v.t === 'null') return '';
  throw new JsonError(`json: cannot unmarshal ${goKind(v)} into Go value of type ${type}`);
}

// ---- base64 as jwx decodes it -----------------------------------------------------------------------

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * jwx's base64.Decode: padded when the text ends with `=`, the URL alphabet unless it has `+` or `/`; then Go's
 * (non-strict) decoder, which skips CR and LF. Returns the bytes, or the offset Go reports as corrupt.
 */
function jwxBase64(s: string): { bytes: Buffer } | { corruptAt: number } {
  const padded = s.endsWith('=');
  const alphabet = /[+/]/.test(s) ? STD : URL;
  const src = Buffer.from(s, 'latin1');
  const sextets: number[] = [];
  let si = 0;
  const isNewline = (c: number | undefined): boolean => c === 0x0a || c === 0x0d;
  while (si < src.length) {
    const quantum: number[] = [];
    let end = false;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 1 || padded) return { corruptAt: si - j };
        end = true;
        break;
      }
      const c = src[si++] ?? 0;
      const v = alphabet.indexOf(String.fromCharCode(c));
      if (v >= 0) {
        quantum.push(v);
        continue;
      }
      if (isNewline(c)) {
        j--;
        continue;
      }
      if (!padded || c !== 0x3d) return { corruptAt: si - 1 };
      if (j < 2) return { corruptAt: si - 1 };
      if (j === 2) {
        while (si < src.length && isNewline(src[si])) si++;
        if (si === src.length) return { corruptAt: src.length };
        if (src[si] !== 0x3d) return { corruptAt: si - 1 };
        si++;
      }
      while (si < src.length && isNewline(src[si])) si++;
      if (si < src.length) return { corruptAt: si };
      end = true;
      break;
    }
    sextets.push(...quantum);
    if (end) break;
  }
  const out: number[] = [];
  for (let k = 0; k + 1 < sextets.length; k += 4) {
    const q = sextets.slice(k, k + 4);
    const val = ((q[0] ?? 0) << 18) | ((q[1] ?? 0) << 12) | ((q[2] ?? 0) << 6) | (q[3] ?? 0);
    out.push((val >> 16) & 0xff);
    if (q.length > 2) out.push((val >> 8) & 0xff);
    if (q.length > 3) out.push(val & 0xff);
  }
  return { bytes: Buffer.from(out) };
}

// ---- keys --------------------------------------------------------------------------------------------

interface KeyType {
  /** The Go type jwx names in its messages. */
  goType: string;
  kty: string;
  /** Members holding base64 bytes. */
  bytes: readonly string[];
  /** Members that must be present, in the order jwx checks them. */
  required: readonly string[];
}

const KEY_TYPES: Record<string, [pub: KeyType, priv: KeyType]> = {
  RSA: [
    { goType: '*jwk.rsaPublicKey', kty: 'RSA', bytes: ['e', 'n'], required: ['e', 'n'] },
    { goType: '*jwk.rsaPrivateKey', kty: 'RSA', bytes: ['d', 'dp', 'dq', 'e', 'n', 'p', 'q', 'qi'], required: ['d', 'e', 'n'] },
  ],
  EC: [
    { goType: '*jwk.ecdsaPublicKey', kty: 'EC', bytes: ['x', 'y'], required: ['crv', 'x', 'y'] },
    { goType: '*jwk.ecdsaPrivateKey', kty: 'EC', bytes: ['d', 'x', 'y'], required: ['crv', 'd', 'x', 'y'] },
  ],
  OKP: [
    { goType: '*jwk.okpPublicKey', kty: 'OKP', bytes: ['x'], required: ['crv', 'x'] },
    { goType: '*jwk.okpPrivateKey', kty: 'OKP', bytes: ['d', 'x'], required: ['crv', 'd', 'x'] },
  ],
};
const SYMMETRIC: KeyType = { goType: '*jwk.symmetricKey', kty: 'oct', bytes: ['k'], required: ['k'] };
const STRING_MEMBERS = new Set(['alg', 'kid', 'use', 'x5t', 'x5t#S256', 'x5u']);

const HINT_TYPE = 'struct { Kty string "json:\\"kty\\""; D json.RawMessage "json:\\"d\\"" }';

/** x5c: a list of base64 DER certificates (jwk.CertificateChain). */
function certificateChain(v: Json): void {
  if (v.t === 'null') return;
  if (v.t !== 'array') throw new JsonError(`failed to unmarshal JSON into []string: json: cannot unmarshal ${goKind(v)} into Go value of type []string`);
  const list = v.items.map((item) => {
    try {
      return asString(item);
    } catch (e) {
      throw new JsonError(`failed to unmarshal JSON into []string: ${(e as Error).message}`);
    }
  });
  for (const s of list) {
    const b = jwxBase64(s);
    if ('corruptAt' in b)
      throw new JsonError(`failed to base64 decode list element: failed to decode source: illegal base64 data at input byte ${b.corruptAt}`);
    try {
      new X509Certificate(b.bytes);
    } catch {
      throw new JsonError('failed to parse certificate: x509: malformed certificate');
    }
  }
}

/** jwk.ParseKey on one member of "keys" (or the whole document). */
function parseKey(v: Json): void {
  // The type hint: {Kty string; D json.RawMessage}, member names matched case-insensitively, the last one winning.
  if (v.t !== 'object' && v.t !== 'null')
    throw new JsonError(`failed to unmarshal JSON into key hint: json: cannot unmarshal ${goKind(v)} into Go value of type ${HINT_TYPE}`);
  let kty = '';
  let hasD = false;
  for (const [k, m] of v.t === 'object' ? v.entries : []) {
    const lower = k.toLowerCase();
    if (lower === 'kty') {
      if (m.t !== 'string' && m.t !== 'null') {
        throw new JsonError(`failed to unmarshal JSON into key hint: json: cannot unmarshal ${goKind(m)} into Go struct field .kty of type string`);
      }
      if (m.t === 'string') kty = m.value;
    } else if (lower === 'd') hasD = true;
  }
  const type = kty === 'oct' ? SYMMETRIC : KEY_TYPES[kty]?.[hasD ? 1 : 0];
  if (!type || v.t !== 'object') throw new JsonError(`invalid key type from JSON (${kty})`);
  const fail = (message: string): never => {
    throw new JsonError(`failed to unmarshal JSON into key (${type.goType}): ${message}`);
  };
  const seen = new Set<string>();
  for (const [k, m] of v.entries) {
    seen.add(k);
    try {
      if (k === 'kty') {
        let value;
        try {
          value = asString(m);
        } catch (e) {
          throw new JsonError(`error reading token: error reading next value: ${(e as Error).message}`);
        }
        if (value !== type.kty) fail(`invalid kty value for RSAPublicKey (${value})`);
      } else if (STRING_MEMBERS.has(k)) {
        try {
          asString(m);
        } catch (e) {
          throw new JsonError(`failed to decode value for key ${k}: error reading next value: ${(e as Error).message}`);
        }
      } else if (type.bytes.includes(k)) {
        let s;
        try {
          s = asString(m);
        } catch (e) {
          throw new JsonError(`failed to decode value for key ${k}: error reading next value: ${(e as Error).message}`);
        }
        if ('corruptAt' in jwxBase64(s)) throw new JsonError(`failed to decode value for key ${k}: expected base64 encoded []byte (string)`);
      } else if (k === 'crv' && type !== SYMMETRIC && type.kty !== 'RSA') {
        try {
          asString(m, 'jwa.EllipticCurveAlgorithm');
        } catch (e) {
          throw new JsonError(`failed to decode value for key crv: ${(e as Error).message}`);
        }
      } else if (k === 'key_ops') {
        if (m.t === 'array') {
          for (const op of m.items) {
            try {
              asString(op, 'jwk.KeyOperation');
            } catch (e) {
              throw new JsonError(`failed to decode value for key key_ops: ${(e as Error).message}`);
            }
          }
        } else if (m.t !== 'null')
          throw new JsonError(`failed to decode value for key key_ops: json: cannot unmarshal ${goKind(m)} into Go value of type jwk.KeyOperationList`);
      } else if (k === 'x5c') {
        try {
          certificateChain(m);
        } catch (e) {
          throw new JsonError(`failed to decode value for key x5c: ${(e as Error).message}`);
        }
      }
      // Any other member is kept as whatever JSON it holds.
    } catch (e) {
      if (e instanceof JsonError && !e.message.startsWith('failed to unmarshal JSON into key (')) fail(e.message);
      throw e;
    }
  }
  for (const r of type.required) if (!seen.has(r)) fail(`required field ${r} is missing`);
}

/** jwk.Parse's set.UnmarshalJSON on the first value. */
function parseSet(v: Json): void {
  switch (v.t) {
    case 'array':
      throw new JsonError("expected '{', but got '['");
    case 'string':
      // The value is read as the first member name, whose value never comes.
      throw new JsonError(v.value === 'keys' ? 'failed to decode "keys": EOF' : `failed to decode value for key ${goQuote(v.value)}: EOF`);
    case 'object':
      break;
    default:
      throw new JsonError('error reading token: EOF');
  }
  let sawKeys = false;
  for (const [k, m] of v.entries) {
    if (k !== 'keys') continue;
    sawKeys = true;
    if (m.t === 'null') continue;
    if (m.t !== 'array') throw new JsonError(`failed to decode "keys": json: cannot unmarshal ${goKind(m)} into Go value of type []json.RawMessage`);
    m.items.forEach((key, i) => {
      try {
        parseKey(key);
      } catch (e) {
        throw new JsonError(`failed to decode key #${i} in "keys": ${(e as Error).message}`);
      }
    });
  }
  if (!sawKeys) {
    try {
      parseKey(v);
    } catch (e) {
      throw new JsonError(`failed to parse sole key in key set: ${(e as Error).message}`);
    }
  }
}

/** jwk.Parse: undefined when the JWKS is taken, else its error (`failed to unmarshal JWK set: ...`). */
export function jwksParseError(jwks: string): string | undefined {
  try {
    parseSet(firstValue(Buffer.from(jwks, 'utf8')));
    return undefined;
  } catch (e) {
    if (!(e instanceof JsonError)) throw e;
    return `failed to unmarshal JWK set: ${e.message}`;
  }
}
