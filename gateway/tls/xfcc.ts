// x-forwarded-client-cert (HCM forward_client_cert_details + set_current_client_cert_details), as Envoy's
// ConnectionManagerUtility::mutateXfccRequestHeader builds it. Istio gateways use SANITIZE_SET: whatever the
// client sent is dropped, and on a mutual-TLS connection the header is set from the client certificate:
// `By=<our URI SAN>;Hash=<sha256 of the DER>;Cert="<url-encoded PEM>";Subject="<RFC 2253>";URI=<first URI SAN>;DNS=<each DNS SAN>`.
import { createHash, X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';

type XfccMode = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

export interface XfccConfig {
  mode: XfccMode;
  subject: boolean;
  cert: boolean;
  chain: boolean;
  dns: boolean;
  uri: boolean;
}

const MODES = new Set<string>(['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY']);

const checkDetails = fieldTable('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.SetCurrentClientCertDetails', {
  subject: true,
  cert: true,
  chain: true,
  dns: true,
  uri: true,
});

/** The HCM's forward_client_cert_details and set_current_client_cert_details. */
export function parseXfcc(h: envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, where: string): XfccConfig {
  const mode: string = h.forward_client_cert_details ?? 'SANITIZE';
  if (!MODES.has(mode)) throw new ConfigError(`${where}.forward_client_cert_details: unknown mode ${mode}`);
  const d = h.set_current_client_cert_details ?? {};
  checkDetails(d, `${where}.set_current_client_cert_details`);
  return {
    mode: mode as XfccMode,
    subject: d.subject === true,
    cert: d.cert === true,
    chain: d.chain === true,
    dns: d.dns === true,
    uri: d.uri === true,
  };
}

const NAME = 'x-forwarded-client-cert';
const cache = new WeakMap<object, string>();

function sans(x: X509Certificate | undefined, kind: 'URI' | 'DNS'): string[] {
  const raw = x?.subjectAltName;
  if (!raw) return [];
  return raw
    .split(', ')
    .filter((e) => e.startsWith(`${kind}:`))
    .map((e) => e.slice(kind.length + 1));
}

/** The value for this connection's client certificate, or undefined when the connection is not mutual TLS. */
function currentValue(sock: TLSSocket, c: XfccConfig): string | undefined {
  const hit = cache.get(sock);
  if (hit !== undefined) return hit || undefined;
  const peer = sock.getPeerX509Certificate();
  if (!peer) {
    cache.set(sock, '');
    return undefined;
  }
  const parts: string[] = [];
  for (const u of sans(sock.getX509Certificate(), 'URI')) parts.push(`By=${u}`);
  parts.push(`Hash=${createHash('sha256').update(peer.raw).digest('hex')}`);
  if (c.cert) parts.push(`Cert="${encodeURIComponent(peer.toString())}"`);
  if (c.chain) {
    let chain = '';
    let cur = sock.getPeerCertificate(true);
    const seen = new Set<string>();
    while (cur && !seen.has(cur.fingerprint256)) {
      seen.add(cur.fingerprint256);
      chain += new X509Certificate(cur.raw).toString();
      cur = cur.issuerCertificate;
    }
    parts.push(`Chain="${encodeURIComponent(chain)}"`);
  }
  // RFC 2253 order: most specific RDN first.
  if (c.subject) parts.push(`Subject="${peer.subject.split('\n').reverse().join(',')}"`);
  if (c.uri) parts.push(`URI=${sans(peer, 'URI')[0] ?? ''}`);
  if (c.dns) for (const d of sans(peer, 'DNS')) parts.push(`DNS=${d}`);
  const v = parts.join(';');
  cache.set(sock, v);
  return v;
}

/**
 * The request's raw headers with x-forwarded-client-cert handled per the HCM's mode. Returns the same array
 * when nothing changes (the common case: no such header, no client certificate).
 */
export function applyXfcc(raw: readonly string[], sock: Socket, c: XfccConfig): readonly string[] {
  if (c.mode === 'ALWAYS_FORWARD_ONLY') return raw;
  const tls = (sock as { encrypted?: boolean }).encrypted === true ? (sock as TLSSocket) : undefined;
  const mine = tls && c.mode !== 'SANITIZE' ? currentValue(tls, c) : undefined;
  let at = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string;
    if (n.length === NAME.length && n.toLowerCase() === NAME) {
      at = i;
      break;
    }
  }
  if (at < 0 && mine === undefined) return raw;
  const incoming: string[] = [];
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string;
    if (n.length === NAME.length && n.toLowerCase() === NAME) incoming.push(raw[i + 1] as string);
    else out.push(n, raw[i + 1] as string);
  }
  const mtls = mine !== undefined;
  switch (c.mode) {
    case 'FORWARD_ONLY':
      if (mtls && incoming.length) out.push(NAME, incoming.join(','));
      break;
    case 'APPEND_FORWARD':
      if (mtls) out.push(NAME, [...incoming, mine].join(','));
      break;
    case 'SANITIZE_SET':
      if (mtls) out.push(NAME, mine);
      break;
    default:
      break; // SANITIZE: dropped
  }
  return out;
}
