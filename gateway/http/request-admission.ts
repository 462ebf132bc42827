// One way in. Every downstream path (gateway/fast for plaintext HTTP/1.1; node:http for TLS, upgrades and
// whatever the fast path hands off) turns a parsed request head into the request the connection manager
// serves through admitRequest, so the rules Envoy's HTTP/1 codec and ConnectionManagerUtility apply before
// routing live once and the paths cannot drift:
// - more than max_headers_count headers: 431 (http1.too_many_headers);
// - Content-Length together with Transfer-Encoding: 400 (http1.content_length_and_chunked_not_allowed);
// - a Transfer-Encoding other than exactly `chunked`, or any on CONNECT: 501 (http1.invalid_transfer_encoding),
//   never a guess at what the client meant (`identity`, `xchunked`, `chunked;q=1`, `gzip, chunked` ...);
// - CONNECT with a body: 400 (http1.body_disallowed);
// - absolute-form targets (ServerConnectionImpl::handlePath): :authority and scheme from the URL, only http and
//   https (400 http1.invalid_scheme), `https://` on a plaintext connection refused with 403 when the HCM
//   validates schemes (use_remote_address with xff_num_trusted_hops 0, as Istio's gateways are configured:
//   http1.https_url_on_plaintext_connection); any other target that is not origin-form (or `*` for OPTIONS)
//   is 400 (http1.invalid_url);
// - the #fragment is dropped from the path before anything matches on it (maybeNormalizePath; the
//   CVE-2021-39156 class: `/secret#x` must not slip past an exact `/secret` rule);
// - x-forwarded-client-cert: what the client sent is sanitised or kept, and set from a mutual-TLS client
//   certificate, as forward_client_cert_details says (ConnectionManagerUtility::mutateXfccRequestHeader).
// - `Expect: 100-continue` (the value compared case-insensitively, repeated Expect headers joined with ','):
//   without proxy_100_continue the HCM answers `100 Continue` itself and removes Expect before routing
//   (ActiveStream::decodeHeaders); with it the header goes upstream and the upstream's 100 is relayed.
//   Any other expectation is an ordinary header (no 417).
// Header values are kept as binary (latin1) strings: one char per byte received, written back the same way.
import type { Socket } from 'node:net';
import type { HttpConnectionManager } from './connection-manager.ts';
import { applyXfcc } from '../tls/xfcc.ts';

/** A codec-level refusal: Envoy's sendProtocolError, a local reply whose body is the reason phrase. */
export interface CodecRejection {
  status: number;
  /** The response code details Envoy logs. */
  details: string;
}

export interface AdmittedHead {
  /** Origin-form path with query, fragment removed (`*` for `OPTIONS *`). */
  path: string;
  /** :authority from an absolute-form target (it replaces Host, RFC 9112 3.2.2); undefined otherwise. */
  authority: string | undefined;
  rawHeaders: readonly string[];
  reject: CodecRejection | undefined;
  /** Answer `100 Continue` before anything else (Expect: 100-continue without proxy_100_continue). */
  sendContinue: boolean;
}

const reject = (status: number, details: string, rawHeaders: readonly string[]): AdmittedHead => ({
  path: '/',
  authority: undefined,
  rawHeaders,
  reject: { status, details },
  sendContinue: false,
});

/** Lowercase-insensitive equality with an ASCII literal, without allocating. */
function eqLower(s: string, lower: string): boolean {
  if (s.length !== lower.length) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The path with any `#fragment` removed. */
function stripFragment(path: string): string {
  const f = path.indexOf('#');
  return f < 0 ? path : path.slice(0, f);
}

/**
 * Checks a request head as Envoy's HTTP/1 codec and connection manager do before routing and returns what the
 * router sees, or the codec error to answer with. `sock` is the downstream connection (its TLS state decides
 * x-forwarded-client-cert and the https-in-plaintext check).
 */
export function admitRequest(hcm: HttpConnectionManager, method: string, target: string, rawHeaders: readonly string[], sock: Socket): AdmittedHead {
  const spec = hcm.spec;
  if (rawHeaders.length / 2 > spec.maxHeadersCount) return reject(431, 'http1.too_many_headers', rawHeaders);
  let te: string | undefined;
  let hasLength = false;
  let expect: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 17 && eqLower(name, 'transfer-encoding')) {
      const v = rawHeaders[i + 1] as string;
      te = te === undefined ? v : `${te},${v}`;
    } else if (name.length === 14 && eqLower(name, 'content-length')) hasLength = true;
    else if (name.length === 6 && eqLower(name, 'expect')) {
      const v = rawHeaders[i + 1] as string;
      expect = expect === undefined ? v : `${expect},${v}`;
    }
  }
  const connect = method === 'CONNECT';
  if (te !== undefined) {
    if (hasLength) return reject(400, 'http1.content_length_and_chunked_not_allowed', rawHeaders);
    if (connect || !eqLower(te, 'chunked')) return reject(501, 'http1.invalid_transfer_encoding', rawHeaders);
  }
  const tls = (sock as { encrypted?: boolean }).encrypted === true;
  let path = target;
  let authority: string | undefined;
  if (connect) {
    if (hasLength && contentLengthOf(rawHeaders) !== '0') return reject(400, 'http1.body_disallowed', rawHeaders);
  } else if (!(target.charCodeAt(0) === 0x2f || (target === '*' && method === 'OPTIONS'))) {
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(target);
    if (!m) return reject(400, 'http1.invalid_url', rawHeaders);
    const scheme = (m[1] as string).toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return reject(400, 'http1.invalid_scheme', rawHeaders);
    if (scheme === 'https' && !tls && spec.useRemoteAddress && spec.xffNumTrustedHops === 0) {
      return reject(403, 'http1.https_url_on_plaintext_connection', rawHeaders);
    }
    authority = m[2];
    const rest = m[3] as string;
    path = rest === '' || rest.charCodeAt(0) !== 0x2f ? `/${rest}` : rest;
  }
  let headers = rawHeaders;
  const sendContinue = expect !== undefined && !spec.proxy100Continue && eqLower(expect, '100-continue');
  if (sendContinue) headers = withoutExpect(headers);
  return { path: stripFragment(path), authority, rawHeaders: applyXfcc(headers, sock, spec.xfcc), reject: undefined, sendContinue };
}

function withoutExpect(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!(name.length === 6 && eqLower(name, 'expect'))) out.push(name, raw[i + 1] as string);
  }
  return out;
}

function contentLengthOf(raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) if (eqLower(raw[i] as string, 'content-length')) return (raw[i + 1] as string).trim();
  return '';
}
