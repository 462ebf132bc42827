// What the RBAC filters (gateway/rbac/) see of a request: the request as the connection manager has it (path after
// normalization, headers after x-forwarded-for handling) and its connection: peer, local address, TLS SNI and the
// validated client certificate.
import type { TLSSocket } from 'node:tls';
import type { RbacRequest } from '../rbac/engine.ts';
import { plainIp } from './request-headers.ts';
import { verifiedPeerCertificate } from '../tls/server-context.ts';

/** Envoy's body for a request an RBAC filter denies (403). */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

export interface RbacConnection {
  remoteAddress: string;
  localAddress: string;
  localPort: number;
  /** The TLS connection, when TLS ends here. */
  tlsSocket?: TLSSocket | undefined;
}

interface TlsFacts {
  sni: string | undefined;
  peer: RbacRequest['peerCertificate'];
}

// Once per connection: every request on it has the same SNI and certificate.
const tlsFacts = new WeakMap<TLSSocket, TlsFacts>();

function factsOf(sock: TLSSocket): TlsFacts {
  let f = tlsFacts.get(sock);
  if (f) return f;
  const servername = (sock as TLSSocket & { servername?: string | false }).servername;
  const cert = verifiedPeerCertificate(sock);
  let peer: RbacRequest['peerCertificate'];
  if (cert) {
    const sans = (cert.subjectAltName ?? '').split(', ').filter((s) => s !== '');
    peer = {
      uriSans: sans.filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)),
      dnsSans: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
      // RFC 2253 order (most specific first), as Envoy prints a subject.
      subject: cert.subject.split('\n').reverse().join(','),
    };
  }
  f = { sni: typeof servername === 'string' && servername !== '' ? servername : undefined, peer };
  tlsFacts.set(sock, f);
  return f;
}

const noMetadata = (): undefined => undefined;

export function rbacRequest(
  conn: RbacConnection,
  r: Pick<RbacRequest, 'method' | 'authority' | 'path' | 'scheme' | 'headers' | 'remoteIp'> & { metadata?: RbacRequest['metadata'] | undefined },
): RbacRequest {
  const tls = conn.tlsSocket ? factsOf(conn.tlsSocket) : undefined;
  return {
    ...r,
    directRemoteIp: plainIp(conn.remoteAddress),
    destinationIp: plainIp(conn.localAddress),
    destinationPort: conn.localPort,
    sni: tls?.sni,
    peerCertificate: tls?.peer,
    tls: tls !== undefined,
    // Without dynamic metadata (no jwt_authn filter verified a token) a `request.auth.*` condition never matches.
    metadata: r.metadata ?? noMetadata,
  };
}

/**
 * A connection as the network RBAC filter sees it: no request (method, path and headers empty), the remote
 * address is the peer's, and the SNI is the ClientHello's (TLS passthrough has no TLSSocket here).
 */
export function connectionRbacRequest(conn: RbacConnection, sni: string | undefined): RbacRequest {
  const r = rbacRequest(conn, { method: '', authority: '', path: '', scheme: '', headers: [], remoteIp: plainIp(conn.remoteAddress) });
  return sni !== undefined ? { ...r, sni } : r;
}
