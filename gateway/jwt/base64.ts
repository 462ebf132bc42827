// The base64 codecs Envoy's JWT code uses, on binary strings (one char per byte, as the proxy carries header
// values). Decoding is absl::WebSafeBase64Unescape, which is more lenient than RFC 4648: ASCII whitespace is
// skipped anywhere before the padding, the padding may be '=' or '.', and it may be absent or complete but
// never partial; the unused bits of the last character are not checked.

// The web-safe alphabet's values, -1 for every other byte.
const UNBASE64URL = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) UNBASE64URL['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i;

/** absl::ascii_isspace: space, \t, \n, \v, \f, \r. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** absl::WebSafeBase64Unescape; undefined when Envoy's decoder rejects the input. */
export function webSafeBase64Decode(s: string): Buffer | undefined {
  const out = Buffer.allocUnsafe(((s.length * 3) >> 2) + 3);
  let n = 0;
  let acc = 0;
  let state = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d = c < 256 ? (UNBASE64URL[c] as number) : -1;
    if (d < 0) {
      if (isSpace(c)) continue;
      if (c === 0x3d || c === 0x2e) break; // '=' or '.': the padding starts
      return undefined;
    }
    acc = (acc << 6) | d;
    if (++state === 4) {
      out[n++] = (acc >> 16) & 0xff;
      out[n++] = (acc >> 8) & 0xff;
      out[n++] = acc & 0xff;
      acc = 0;
      state = 0;
    }
  }
  let expected = 0;
  if (state === 1) return undefined;
  if (state === 2) {
    out[n++] = (acc >> 4) & 0xff;
    expected = 2;
  } else if (state === 3) {
    out[n++] = (acc >> 10) & 0xff;
    out[n++] = (acc >> 2) & 0xff;
    expected = 1;
  }
  // What follows is whitespace mixed with exactly 0 or exactly `expected` padding characters.
  let pads = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3d || c === 0x2e) pads++;
    else if (!isSpace(c)) return undefined;
  }
  if (pads !== 0 && pads !== expected) return undefined;
  return out.subarray(0, n);
}

/** Base64url without padding (what a JWT's sections are). */
export function base64UrlEncode(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/** Envoy Base64::encode: the standard alphabet, padded. */
export function base64Encode(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** Envoy Base64::completePadding: '=' appended up to a multiple of 4 characters. */
export function completePadding(s: string): string {
  const r = s.length % 4;
  return r === 0 ? s : s + '='.repeat(4 - r);
}
