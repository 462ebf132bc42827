// Header values as the proxy holds them: binary strings, one char per byte (both HTTP/1 paths decode what a
// client or backend sent as latin1 and write it back as latin1, so bytes pass unchanged). A string from
// config is text, and Envoy puts its UTF-8 bytes on the wire and compares against them: this turns it into the
// same binary form once, when the config is compiled.

/** The binary (latin1) string of `s`'s UTF-8 bytes; ASCII strings come back as they are. */
export function wireString(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.from(s, 'utf8').toString('latin1');
  return s;
}
