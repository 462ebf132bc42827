// What Envoy's tls_inspector listener filter reads: the SNI and ALPN of a TLS ClientHello, from the bytes
// at the start of a connection, without terminating TLS. Used to pick a filter chain by server_names
// (terminating or passthrough) before any handshake.

export type ClientHelloResult =
  /** Not enough bytes yet: read more. */
  | { state: 'incomplete' }
  /** Not TLS (plaintext, or garbage): filter chains without server names may still match. */
  | { state: 'not-tls' }
  | { state: 'tls'; sni: string | undefined; alpn: string[] };

/** Envoy's tls_inspector gives up after 64 KiB (max_client_hello_size). */
export const MAX_CLIENT_HELLO = 64 * 1024;

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/**
 * Parses the first TLS record(s) in `buf`. A ClientHello may span several records; the handshake message
 * is reassembled from consecutive handshake records.
 */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length < 1) return { state: 'incomplete' };
  if (buf[0] !== HANDSHAKE) return { state: 'not-tls' };
  if (buf.length < 3) return { state: 'incomplete' };
  if (buf[1] !== 3) return { state: 'not-tls' };
  // Reassemble the handshake payload from records.
  const parts: Buffer[] = [];
  let off = 0;
  let have = 0;
  let need = -1;
  while (need < 0 || have < need) {
    if (buf.length < off + 5) return buf.length > MAX_CLIENT_HELLO ? { state: 'not-tls' } : { state: 'incomplete' };
    if (buf[off] !== HANDSHAKE) return { state: 'not-tls' };
    const len = buf.readUInt16BE(off + 3);
    if (buf.length < off + 5 + len) return buf.length > MAX_CLIENT_HELLO ? { state: 'not-tls' } : { state: 'incomplete' };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const first = Buffer.concat(parts);
      if (first[0] !== CLIENT_HELLO) return { state: 'not-tls' };
      need = 4 + ((first[1] ?? 0) << 16) + ((first[2] ?? 0) << 8) + (first[3] ?? 0);
      if (need > MAX_CLIENT_HELLO) return { state: 'not-tls' };
    }
  }
  const hs = Buffer.concat(parts).subarray(4, need);
  try {
    return { state: 'tls', ...readExtensions(hs) };
  } catch {
    return { state: 'not-tls' };
  }
}

function readExtensions(b: Buffer): { sni: string | undefined; alpn: string[] } {
  let p = 2 + 32; // client_version, random
  const sessionIdLen = b.readUInt8(p);
  p += 1 + sessionIdLen;
  const cipherLen = b.readUInt16BE(p);
  p += 2 + cipherLen;
  const compLen = b.readUInt8(p);
  p += 1 + compLen;
  let sni: string | undefined;
  const alpn: string[] = [];
  if (p + 2 > b.length) return { sni, alpn };
  const extEnd = p + 2 + b.readUInt16BE(p);
  p += 2;
  while (p + 4 <= extEnd) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const body = b.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    if (type === EXT_SERVER_NAME && body.length >= 2) {
      let q = 2;
      while (q + 3 <= body.length) {
        const nameType = body.readUInt8(q);
        const nameLen = body.readUInt16BE(q + 1);
        if (nameType === 0) {
          sni = body
            .subarray(q + 3, q + 3 + nameLen)
            .toString('latin1')
            .toLowerCase();
          break;
        }
        q += 3 + nameLen;
      }
    } else if (type === EXT_ALPN && body.length >= 2) {
      let q = 2;
      while (q < body.length) {
        const l = body.readUInt8(q);
        alpn.push(body.subarray(q + 1, q + 1 + l).toString('latin1'));
        q += 1 + l;
      }
    }
  }
  return { sni, alpn };
}
