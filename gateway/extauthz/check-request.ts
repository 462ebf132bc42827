// What Envoy tells the authorization service about a request or a connection (CheckRequestUtils in
// source/extensions/filters/common/ext_authz/check_request_utils.cc): the peers' addresses and principals, and
// for HTTP the request attributes. One shape for both clients: the gRPC client encodes it as an
// envoy.service.auth.v3.CheckRequest, the HTTP client turns its headers and body into the check request.
//   - Principal: the certificate's first URI SAN, else its first DNS SAN, else its subject (RFC 2253).
//   - Headers: the request's, pseudo-headers first, filtered by the allow/deny lists; a repeated header is one
//     entry, values joined with ','; a client's own x-envoy-auth-partial-body is dropped.
//   - Body (with_request_body): at most max_request_bytes, and `x-envoy-auth-partial-body: true|false` says
//     whether that was all of it.
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { verifiedPeerCertificate } from '../tls/server-context.ts';
import { plainIp } from '../http/request-headers.ts';
import type { HeaderKeyMatch } from './config.ts';

const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body';

export interface CheckPeer {
  address: string;
  port: number;
  principal: string;
  /** The URL-encoded PEM certificate (include_peer_certificate), '' without. */
  certificate: string;
  /** The network filter's destination: the SNI the client asked for. */
  service?: string;
}

export interface CheckHttp {
  id: string;
  method: string;
  path: string;
  host: string;
  scheme: string;
  protocol: string;
  size: number;
  /** Name -> value, in the order the check request sends them. */
  headers: Map<string, string>;
  body: Buffer | undefined;
  packAsBytes: boolean;
}

export interface CheckInput {
  source: CheckPeer;
  destination: CheckPeer;
  /** Milliseconds since the epoch (the request's start). */
  timeMs: number;
  http: CheckHttp | undefined;
}

/** Envoy's principal of a certificate: first URI SAN, first DNS SAN, else the subject (RFC 2253 order). */
function certificatePrincipal(x: X509Certificate | undefined): string {
  if (!x) return '';
  const sans = (x.subjectAltName ?? '').split(', ');
  const uri = sans.find((s) => s.startsWith('URI:'));
  if (uri) return uri.slice(4);
  const dns = sans.find((s) => s.startsWith('DNS:'));
  if (dns) return dns.slice(4);
  return x.subject.split('\n').reverse().join(',');
}

/** The connection the check describes: its addresses and, when TLS ends here, its TLS socket. */
export interface CheckConnection {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  tlsSocket: TLSSocket | undefined;
}

interface TlsPeers {
  source: string;
  pem: string;
  destination: string;
}

// Once per connection: every request on it has the same certificates.
const tlsPeers = new WeakMap<TLSSocket, TlsPeers>();

function tlsPeersOf(t: TLSSocket): TlsPeers {
  let p = tlsPeers.get(t);
  if (p) return p;
  const peer = verifiedPeerCertificate(t);
  const local = t.getX509Certificate();
  // Envoy's urlEncodedPemEncodedPeerCertificate for the certificate field.
  p = { source: certificatePrincipal(peer), pem: peer ? encodeURIComponent(peer.toString()) : '', destination: certificatePrincipal(local) };
  tlsPeers.set(t, p);
  return p;
}

/** The two peers of a downstream connection: the client (source) and this listener (destination). */
export function connectionPeers(d: CheckConnection, includeCertificate: boolean): { source: CheckPeer; destination: CheckPeer } {
  const tls = d.tlsSocket ? tlsPeersOf(d.tlsSocket) : undefined;
  return {
    source: {
      address: plainIp(d.remoteAddress),
      port: d.remotePort,
      principal: tls?.source ?? '',
      certificate: includeCertificate ? (tls?.pem ?? '') : '',
    },
    destination: { address: plainIp(d.localAddress), port: d.localPort, principal: tls?.destination ?? '', certificate: '' },
  };
}

export interface HttpRequestFacts {
  method: string;
  path: string;
  authority: string;
  scheme: string;
  protocol: string;
  /** Flat [name, value, ...], lowercase names, without pseudo-headers. */
  headers: readonly string[];
  requestId: string;
}

/** The CheckRequest's http attributes for a request, its headers filtered as Envoy does. */
export function httpAttributes(
  r: HttpRequestFacts,
  o: {
    allowed: HeaderKeyMatch | undefined;
    disallowed: HeaderKeyMatch | undefined;
    body: { data: Buffer; partial: boolean } | undefined;
    packAsBytes: boolean;
    id: string;
  },
): CheckHttp {
  const headers = new Map<string, string>();
  const add = (k: string, v: string): void => {
    if (k === PARTIAL_BODY_HEADER) return;
    if (o.disallowed?.(k)) return;
    if (o.allowed && !o.allowed(k)) return;
    const prev = headers.get(k);
    headers.set(k, prev === undefined ? v : `${prev},${v}`);
  };
  // Envoy's header map holds the pseudo-headers first; host is :authority there.
  add(':authority', r.authority);
  add(':path', r.path);
  add(':method', r.method);
  add(':scheme', r.scheme);
  const h = r.headers;
  for (let i = 0; i < h.length; i += 2) {
    const k = h[i] as string;
    if (k === 'host') continue;
    add(k, h[i + 1] as string);
  }
  if (o.body) headers.set(PARTIAL_BODY_HEADER, o.body.partial ? 'true' : 'false');
  return {
    id: o.id,
    method: r.method,
    path: r.path,
    host: r.authority,
    scheme: r.scheme,
    protocol: r.protocol,
    size: o.body ? o.body.data.length : 0,
    headers,
    body: o.body?.data,
    packAsBytes: o.packAsBytes,
  };
}

function address(p: CheckPeer): Record<string, unknown> {
  return {
    address: { socket_address: { address: p.address, port_value: p.port } },
    ...(p.service ? { service: p.service } : {}),
    ...(p.principal ? { principal: p.principal } : {}),
    ...(p.certificate ? { certificate: p.certificate } : {}),
  };
}

/** The envoy.service.auth.v3.CheckRequest in proto3 JSON (field names as in the proto). */
export function checkRequestJson(c: CheckInput): Record<string, unknown> {
  const attributes: Record<string, unknown> = { source: address(c.source), destination: address(c.destination) };
  if (c.http) {
    const h = c.http;
    // Proto strings are UTF-8: the request's bytes go through Envoy's sanitizer (invalid bytes become '!').
    const headers: Record<string, string> = {};
    for (const [k, v] of h.headers) headers[k] = sanitizeUtf8(v);
    const http: Record<string, unknown> = {
      id: h.id,
      method: h.method,
      headers,
      path: sanitizeUtf8(h.path),
      host: sanitizeUtf8(h.host),
      scheme: h.scheme,
      size: h.size,
      protocol: h.protocol,
    };
    if (h.body) {
      if (h.packAsBytes) http.raw_body = h.body.toString('base64');
      else http.body = sanitizeUtf8(h.body.toString('latin1'));
    }
    attributes.request = { time: new Date(c.timeMs).toISOString(), http };
  }
  return { attributes };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Length of the valid UTF-8 sequence at `i` (1..4), or 0 when the byte there cannot start one. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  if (c < 0x80) return 1;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c === 0xe0) lo = 0xa0; // no overlong forms
    if (c === 0xed) hi = 0x9f; // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c === 0xf0) lo = 0x90;
    if (c === 0xf4) hi = 0x8f; // nothing past U+10FFFF
  } else return 0;
  if (i + n > b.length) return 0;
  for (let k = 1; k < n; k++) {
    const x = b[i + k] as number;
    if (x < (k === 1 ? lo : 0x80) || x > (k === 1 ? hi : 0xbf)) return 0;
  }
  return n;
}

/**
 * A header value (one char per byte, as the proxy holds them) as the text a CheckRequest string carries:
 * Envoy's MessageUtil::sanitizeUtf8String, which keeps valid UTF-8 and turns each byte that breaks it into '!'.
 */
export function sanitizeUtf8(binary: string): string {
  let ascii = true;
  for (let i = 0; i < binary.length; i++) {
    if (binary.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return binary;
  const b = Buffer.from(binary, 'latin1');
  try {
    return utf8.decode(b);
  } catch {
    // Invalid somewhere: replace the bytes that break it.
  }
  for (let i = 0; i < b.length;) {
    const n = sequenceLength(b, i);
    if (n === 0) {
      b[i] = 0x21;
      i++;
    } else i += n;
  }
  return b.toString('utf8');
}
