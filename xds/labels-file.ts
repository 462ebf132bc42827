// The Downward API labels file (/etc/istio/pod/labels), read by the controller (the gateway's identity) and
// by `meshgate proxy --labels-file` (its node metadata). The kubelet writes it with fieldpath.FormatMap:
// `key=%q` per label, sorted by key, joined by newlines without a trailing one (FormatMap in Kubernetes'
// pkg/fieldpath); Istio's agent reads it back with strconv.Unquote (ParseDownwardAPI in pkg/bootstrap).

/** Go's single-character escapes in a double-quoted string (strconv.UnquoteChar). */
const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { a: 0x07, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b, '\\': 0x5c, '"': 0x22 };

const HEX_DIGITS: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };

/**
 * strconv.Unquote of a double-quoted Go string literal, as `%q` writes it: `\a \b \f \n \r \t \v \\ \"`,
 * `\xHH` and `\OOO` (one byte each), `\uHHHH` and `\UHHHHHHHH` (a Unicode code point); a raw newline, a bare
 * `"` or any other escape is an error. The bytes are read as UTF-8 (an invalid sequence becomes U+FFFD). Returns undefined
 * when `quoted` is not such a literal.
 */
export function unquoteGo(quoted: string): string | undefined {
  if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) return undefined;
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  const pushRune = (cp: number): void => void bytes.push(...encoder.encode(String.fromCodePoint(cp)));
  for (let i = 0; i < body.length;) {
    const cp = body.codePointAt(i) ?? 0;
    const ch = String.fromCodePoint(cp);
    if (ch === '"' || ch === '\n') return undefined;
    if (ch !== '\\') {
      pushRune(cp);
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    const simple = SIMPLE_ESCAPES[e];
    const hexLength = HEX_DIGITS[e];
    if (simple !== undefined) {
      bytes.push(simple);
      i += 2;
    } else if (hexLength !== undefined) {
      const digits = body.slice(i + 2, i + 2 + hexLength);
      if (digits.length !== hexLength || !/^[0-9A-Fa-f]+$/.test(digits)) return undefined;
      const v = parseInt(digits, 16);
      if (e === 'x') bytes.push(v);
      // A Unicode escape must name a valid code point: not a surrogate, not beyond U+10FFFF (utf8.ValidRune).
      else if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      else pushRune(v);
      i += 2 + hexLength;
    } else if (e >= '0' && e <= '7') {
      const digits = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(digits)) return undefined;
      const v = parseInt(digits, 8);
      if (v > 255) return undefined;
      bytes.push(v);
      i += 4;
    } else {
      return undefined;
    }
  }
  // ignoreBOM: a value that starts with U+FEFF keeps it, as in Go (TextDecoder would drop it).
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array(bytes));
}

/**
 * Parses a Downward API labels file: one `key="value"` per line, the value quoted as Go's %q does. Blank
 * lines and whitespace around a line are ignored; anything else throws with the file and line.
 */
export function parseLabelsFile(text: string, file = 'labels file'): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const quoted = line.slice(eq + 1);
    if (eq <= 0 || !quoted.startsWith('"') || !quoted.endsWith('"') || quoted.length < 2) {
      throw new Error(`${file}:${i + 1}: expected key="value" (the Downward API labels format), got '${line}'`);
    }
    const value = unquoteGo(quoted);
    if (value === undefined) throw new Error(`${file}:${i + 1}: the value of ${key} is not a valid quoted string: ${quoted}`);
    out[key] = value;
  });
  return out;
}
