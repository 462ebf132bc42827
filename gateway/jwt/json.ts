// JSON the way Envoy's JWT code reads and writes it: through protobuf's JSON parser into a
// google.protobuf.Struct (JsonStringToMessage, which Envoy calls with the legacy syntax enabled) and its
// printer (MessageToJsonString). The differences from JSON.parse/JSON.stringify are what decide whether a
// token is "an invalid JSON" and what a structured claim copied into a header looks like:
//   - the top level is an object, or `null` (an empty Struct);
//   - a key repeated in an object is an error (JSON.parse keeps the last);
//   - legacy syntax: strings may be single-quoted, may hold raw control characters and the escapes \' and
//     \U; keys may be bare words; a trailing comma is allowed in objects and arrays;
//   - numbers: no leading '+', no leading zeros, no trailing '.', finite; at most 100 nested containers;
//   - strings are checked to be UTF-8 in structure only.
// The printer writes no whitespace, escapes '<', '>', the C0/C1 controls and a few invisible characters as
// \u00xx, and numbers as protobuf's SimpleDtoa (%.15g, %.17g when that does not round-trip).

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [k: string]: JsonValue;
}

const MAX_DEPTH = 100;
const utf8 = new TextDecoder('utf-8');

class Fail extends Error {}

/** Sets `o[k]`, as an own property even for '__proto__'. */
export function setOwn(o: JsonObject, k: string, v: JsonValue): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

class Parser {
  private i = 0;
  private depth = MAX_DEPTH;
  private readonly b: Uint8Array;
  constructor(b: Uint8Array) {
    this.b = b;
  }

  private ws(): void {
    const b = this.b;
    while (this.i < b.length) {
      const c = b[this.i] as number;
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else return;
    }
  }

  /** The next byte after whitespace; a failure at the end of the input. */
  private peek(): number {
    this.ws();
    if (this.i >= this.b.length) throw new Fail();
    return this.b[this.i] as number;
  }

  private peekIs(c: number): boolean {
    this.ws();
    if (this.i < this.b.length && this.b[this.i] === c) {
      this.i++;
      return true;
    }
    return false;
  }

  private expect(lit: string): void {
    this.ws();
    for (let k = 0; k < lit.length; k++) if (this.b[this.i + k] !== lit.charCodeAt(k)) throw new Fail();
    this.i += lit.length;
  }

  /** A Struct: an object, or `null` for an empty one; nothing may follow. */
  struct(): JsonObject {
    let o: JsonObject;
    if (this.peek() === 0x6e) {
      this.expect('null');
      o = {};
    } else o = this.object();
    this.ws();
    if (this.i !== this.b.length) throw new Fail();
    return o;
  }

  private value(): JsonValue {
    const c = this.peek();
    switch (c) {
      case 0x7b:
        return this.object();
      case 0x5b:
        return this.array();
      case 0x22:
      case 0x27:
        return this.string();
      case 0x74:
        this.expect('true');
        return true;
      case 0x66:
        this.expect('false');
        return false;
      case 0x6e:
        this.expect('null');
        return null;
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        throw new Fail();
    }
  }

  private push(): void {
    if (this.depth === 0) throw new Fail();
    this.depth--;
  }

  private object(): JsonObject {
    this.expect('{');
    this.push();
    const o: JsonObject = {};
    if (!this.peekIs(0x7d)) {
      const seen = new Set<string>();
      let comma = true;
      do {
        if (!comma) throw new Fail();
        const c = this.peek();
        const key = c === 0x22 || c === 0x27 ? this.string() : this.bareWord();
        if (seen.has(key)) throw new Fail();
        seen.add(key);
        this.expect(':');
        setOwn(o, key, this.value());
        comma = this.peekIs(0x2c);
      } while (!this.peekIs(0x7d));
    }
    this.depth++;
    return o;
  }

  private array(): JsonValue[] {
    this.expect('[');
    this.push();
    const a: JsonValue[] = [];
    if (!this.peekIs(0x5d)) {
      let comma = true;
      do {
        if (!comma) throw new Fail();
        a.push(this.value());
        comma = this.peekIs(0x2c);
      } while (!this.peekIs(0x5d));
    }
    this.depth++;
    return a;
  }

  private bareWord(): string {
    const b = this.b;
    const start = this.i;
    while (this.i < b.length) {
      const c = b[this.i] as number;
      if (c === 0x5f || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) this.i++;
      else break;
    }
    const w = latin1(b, start, this.i);
    if (w === '' || (w.charCodeAt(0) >= 0x30 && w.charCodeAt(0) <= 0x39) || w === 'null' || w === 'true' || w === 'false') throw new Fail();
    return w;
  }

  private number(): number {
    const b = this.b;
    const start = this.i;
    let state = 0; // 0 integer, 1 fraction, 2 exponent
    let prev = 0;
    while (this.i < b.length) {
      const c = b[this.i] as number;
      const p = prev;
      const lastDigit = p >= 0x30 && p <= 0x39;
      let ok: boolean;
      if (c >= 0x30 && c <= 0x39) ok = true;
      else if (state === 0 && c === 0x2d) ok = !lastDigit;
      else if (state === 0 && lastDigit && c === 0x2e) {
        state = 1;
        ok = true;
      } else if (state !== 2 && lastDigit && (c === 0x65 || c === 0x45)) {
        state = 2;
        ok = true;
      } else ok = (p === 0x65 || p === 0x45) && (c === 0x2d || c === 0x2b);
      if (!ok) break;
      prev = c;
      this.i++;
    }
    const text = latin1(b, start, this.i);
    if (text === '' || text === '-') throw new Fail();
    const digits = text.charCodeAt(0) === 0x2d ? text.slice(1) : text;
    if (digits.length > 1 && digits[0] === '0' && digits.charCodeAt(1) >= 0x30 && digits.charCodeAt(1) <= 0x39) throw new Fail();
    if (text.endsWith('.')) throw new Fail();
    if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) throw new Fail();
    const d = Number(text);
    if (!Number.isFinite(d)) throw new Fail();
    this.ws();
    if (this.i < b.length) {
      const c = b[this.i];
      if (c !== 0x2c && c !== 0x5d && c !== 0x7d) throw new Fail();
    }
    return d;
  }

  private hex4(): number {
    const b = this.b;
    if (this.i + 4 > b.length) throw new Fail();
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = b[this.i++] as number;
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else throw new Fail();
      v = (v << 4) | d;
    }
    return v;
  }

  private string(): string {
    const b = this.b;
    const quote = b[this.i] as number;
    this.i++;
    const start = this.i;
    let ascii = true;
    // Bytes of the decoded string, once an escape makes it differ from the input.
    let bytes: number[] | undefined;
    for (;;) {
      if (this.i >= b.length) throw new Fail();
      const at = this.i;
      const c = b[this.i++] as number;
      if (c === quote) {
        if (bytes === undefined) return ascii ? latin1(b, start, at) : utf8.decode(b.subarray(start, at));
        return utf8.decode(Uint8Array.from(bytes));
      }
      if (c === 0x5c) {
        bytes ??= Array.from(b.subarray(start, at));
        if (this.i >= b.length) throw new Fail();
        const e = b[this.i++] as number;
        if (e === 0x75 || e === 0x55) {
          let rune = this.hex4();
          if (rune >= 0xd800 && rune <= 0xdbff) {
            if (b[this.i] !== 0x5c || b[this.i + 1] !== 0x75) throw new Fail();
            this.i += 2;
            const low = this.hex4();
            if (low < 0xdc00 || low > 0xdfff) throw new Fail();
            rune = (((rune & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
          } else if (rune >= 0xdc00 && rune <= 0xdfff) throw new Fail();
          if (rune >= 0x10ffff) throw new Fail();
          for (const x of Buffer.from(String.fromCodePoint(rune), 'utf8')) bytes.push(x);
          continue;
        }
        const simple = SIMPLE_ESCAPES.get(e);
        if (simple === undefined) throw new Fail();
        bytes.push(simple);
        continue;
      }
      bytes?.push(c);
      if (c < 0x80) continue;
      // UTF-8, checked in structure only: a lead byte and its continuation bytes.
      ascii = false;
      const ones = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 5;
      if (ones === 1 || ones === 5) throw new Fail();
      for (let k = 1; k < ones; k++) {
        const n = b[this.i++];
        if (n === undefined || n >> 6 !== 2) throw new Fail();
        bytes?.push(n);
      }
    }
  }
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

const SIMPLE_ESCAPES = new Map<number, number>([
  [0x22, 0x22],
  [0x5c, 0x5c],
  [0x2f, 0x2f],
  [0x62, 0x08],
  [0x66, 0x0c],
  [0x6e, 0x0a],
  [0x72, 0x0d],
  [0x74, 0x09],
  [0x27, 0x27],
]);

/** protobuf JsonStringToMessage into a google.protobuf.Struct; undefined when protobuf rejects the text. */
export function parseStruct(bytes: Uint8Array): JsonObject | undefined {
  try {
    return new Parser(bytes).struct();
  } catch (e) {
    if (e instanceof Fail) return undefined;
    throw e;
  }
}

// ---- printing ----

/** C's "%.{p}g". */
function formatG(x: number, p: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = x.toExponential(p - 1);
  const ePos = exp.indexOf('e');
  const e = Number(exp.slice(ePos + 1));
  if (e < -4 || e >= p) {
    let mant = exp.slice(0, ePos);
    if (mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
    const ae = Math.abs(e);
    return `${mant}e${e < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
  }
  let fixed = x.toFixed(p - 1 - e);
  if (fixed.includes('.')) fixed = fixed.replace(/0+$/, '').replace(/\.$/, '');
  return fixed;
}

/** protobuf io::SimpleDtoa. */
export function simpleDtoa(x: number): string {
  const s = formatG(x, 15);
  return Number(s) === x ? s : formatG(x, 17);
}

function mustEscape(cp: number): string | undefined {
  switch (cp) {
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x22:
      return '\\"';
    case 0x0c:
      return '\\f';
    case 0x08:
      return '\\b';
    case 0x5c:
      return '\\\\';
    case 0x3c:
    case 0x3e:
    case 0xfeff:
    case 0xfff9:
    case 0xfffa:
    case 0xfffb:
    case 0x00ad:
    case 0x06dd:
    case 0x070f:
    case 0x17b4:
    case 0x17b5:
    case 0xe0001:
      return '';
  }
  if (
    cp <= 0x1f ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0x600 && cp <= 0x603) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x2064) ||
    (cp >= 0x206a && cp <= 0x206f) ||
    (cp >= 0x1d173 && cp <= 0x1d17a) ||
    (cp >= 0xe0020 && cp <= 0xe007f)
  )
    return '';
  return undefined;
}

function uEscape(u: number): string {
  return '\\u' + u.toString(16).padStart(4, '0');
}

function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    const esc = mustEscape(cp);
    if (esc === undefined) out += ch;
    else if (esc !== '') out += esc;
    else if (cp < 0x10000) out += uEscape(cp);
    else out += uEscape(0xd800 + ((cp - 0x10000) >> 10)) + uEscape(0xdc00 + ((cp - 0x10000) & 0x3ff));
  }
  return out + '"';
}

/** protobuf MessageToJsonString of a google.protobuf.Value (a Struct or ListValue at the top). */
export function printJson(v: JsonValue): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return Number.isFinite(v) ? simpleDtoa(v) : Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
    case 'string':
      return quote(v);
  }
  if (Array.isArray(v)) return '[' + v.map(printJson).join(',') + ']';
  return (
    '{' +
    Object.entries(v)
      .map(([k, x]) => quote(k) + ':' + printJson(x))
      .join(',') +
    '}'
  );
}
