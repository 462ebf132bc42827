// UpstreamTlsContext (a cluster's transport_socket): TLS origination to upstream hosts. SNI is the
// configured `sni`, else with `auto_sni` the host name the request is for (Envoy uses the request's
// :authority; meshgate uses the endpoint's DNS name, which for ServiceEntry DNS clusters is the same host);
// the server certificate is verified against the CA from SDS (`file-root:system` = the OS trust store),
// then against `match_subject_alt_names`, or with `auto_san_validation` against the SNI. An empty
// validation context (insecureSkipVerify) verifies nothing. Client certificates come from SDS (MUTUAL).
// Secrets are looked up per connection, so rotation applies to new connections.
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { envoy } from '../../xds/envoy.ts';
import { UPSTREAM_TLS_TYPE } from '../../xds/type-urls.ts';
import { fieldTable } from '../xds/fields.ts';
import { parseCommonTlsContext, sanMatches, tlsTransportSocket, TlsContextCache, type CommonTlsSpec } from './common-context.ts';
import type { SecretStore } from './secrets.ts';
import { awaitConnect } from './await-connect.ts';

export interface UpstreamTlsSpec {
  common: CommonTlsSpec;
  sni: string;
  /** From the cluster's HttpProtocolOptions.upstream_http_protocol_options. */
  autoSni: boolean;
  autoSanValidation: boolean;
}

const checkUpstreamTls = fieldTable('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
  common_tls_context: true,
  sni: true,
  allow_renegotiation: 'node (OpenSSL) answers a renegotiation the upstream asks for whether or not this is set',
  max_session_keys: 'upstream TLS sessions are not resumed: every connection makes a full handshake',
});

/** A cluster's transport_socket: undefined for raw_buffer, the TLS spec otherwise. */
export function parseUpstreamTransportSocket(ts: envoy.config.core.v3.TransportSocket, where: string): UpstreamTlsSpec | undefined {
  const cfg = tlsTransportSocket(ts, where, UPSTREAM_TLS_TYPE);
  if (cfg === undefined) return undefined;
  checkUpstreamTls(cfg, where);
  return {
    common: parseCommonTlsContext(cfg.common_tls_context ?? {}, `${where}.common_tls_context`),
    sni: cfg.sni ?? '',
    autoSni: false,
    autoSanValidation: false,
  };
}

export interface UpstreamConnectOptions {
  host: string;
  port: number;
  /** The name the endpoint was resolved from (auto_sni), or ''. */
  hostname: string;
  timeoutMs: number;
}

export class UpstreamTls {
  readonly spec: UpstreamTlsSpec;
  private readonly cache: TlsContextCache;

  constructor(spec: UpstreamTlsSpec, secrets: SecretStore) {
    this.spec = spec;
    this.cache = new TlsContextCache(spec.common, secrets);
  }

  /** The SNI sent to a host. */
  serverName(hostname: string): string | undefined {
    if (this.spec.sni) return this.spec.sni;
    if (this.spec.autoSni && hostname) return hostname;
    return undefined;
  }

  /** Opens a TLS connection; `cb` gets the socket once the handshake and certificate checks passed. */
  connect(o: UpstreamConnectOptions, alpn: readonly string[], cb: (err: Error | null, sock: TLSSocket | null) => void): void {
    let sock: TLSSocket;
    try {
      sock = this.open(o, alpn);
    } catch (e) {
      cb(e as Error, null);
      return;
    }
    awaitConnect(sock, 'secureConnect', o.timeoutMs, cb);
  }

  /**
   * Starts a TLS connection and returns the socket before the handshake (node:http2 takes it that way and waits
   * for 'secureConnect' itself); a failed certificate check surfaces as the socket's 'error'. `alpn`: what the
   * cluster's protocol offers when the context names none (Envoy's ALPN fallback: h2 for HTTP/2 clusters).
   * Throws (code MESHGATE_TLS_SECRET) while a secret the context needs is missing or invalid.
   */
  open(o: UpstreamConnectOptions, alpn: readonly string[]): TLSSocket {
    const r = this.cache.get();
    if ('error' in r) throw Object.assign(new Error(`TLS_error: ${r.error}`), { code: 'MESHGATE_TLS_SECRET' });
    const validate = this.spec.common.validate;
    const servername = this.serverName(o.hostname);
    const sanMatchers = this.spec.common.sanMatchers;
    const autoSan = this.spec.autoSanValidation && servername !== undefined;
    const sock = tlsConnect({
      host: o.host,
      port: o.port,
      secureContext: r.ctx,
      ...(servername !== undefined && !/^[\d.]+$|:/.test(servername) ? { servername } : {}),
      rejectUnauthorized: validate,
      ...(alpn.length > 0 || this.spec.common.alpn.length > 0 ? { ALPNProtocols: this.spec.common.alpn.length > 0 ? this.spec.common.alpn : [...alpn] } : {}),
      // Envoy checks names only when told to: SAN matchers, or auto_san_validation against the SNI.
      checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined => {
        if (!validate) return undefined;
        if (sanMatchers.length > 0) return sanMatches(sanMatchers, cert) ? undefined : new Error('TLS_error: certificate subject alt names do not match');
        if (autoSan && servername) return checkServerIdentity(servername, cert);
        return undefined;
      },
    });
    sock.setNoDelay(true);
    // A handshake that fails after the TCP connect carries Envoy's transport failure reason, so the router
    // answers `remote connection failure, transport failure reason: TLS_error:...` (UF, a connect failure
    // that retry_on connect-failure retries) on both the HTTP/1.1 and the HTTP/2 pool.
    let tcpUp = false;
    let secured = false;
    sock.once('connect', () => (tcpUp = true));
    sock.once('secureConnect', () => (secured = true));
    sock.on('error', (e: HandshakeError) => {
      if (tcpUp && !secured && e.code !== 'ECONNRESET' && e.code !== 'EPIPE') e.transportFailure = handshakeFailure(e);
    });
    return sock;
  }
}

/** An error of an upstream TLS connection; `transportFailure` is set when the handshake failed. */
export type HandshakeError = Error & { code?: string; transportFailure?: string };

/**
 * Envoy's transport failure reason for a failed upstream handshake: BoringSSL's error queue as
 * `TLS_error:|<packed code>:<library>:<function>:<reason>:TLS_error_end`. A certificate that fails verification
 * (chain, expiry, SAN or SNI name) is CERTIFICATE_VERIFY_FAILED in Envoy whichever check failed, so that string
 * is exact; other OpenSSL failures carry OpenSSL's reason without BoringSSL's packed code, which node does not have.
 */
function handshakeFailure(e: HandshakeError): string {
  if (e.code?.startsWith('ERR_SSL_')) return `TLS_error:|SSL routines:OPENSSL_internal:${e.code.slice('ERR_SSL_'.length)}:TLS_error_end`;
  return 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end';
}
