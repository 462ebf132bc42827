// DownstreamTlsContext (a filter chain's transport_socket): TLS termination for HTTPS and terminated TLS
// gateway servers. The certificate comes from SDS at each handshake (rotation without restart), client
// certificates are requested when a validation context is configured (MUTUAL, OPTIONAL_MUTUAL) and required
// with require_client_certificate (MUTUAL), subject alt names are matched after the handshake, and a
// handshake that does not finish within transport_socket_connect_timeout is closed.
import type { X509Certificate } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { envoy } from '../../xds/envoy.ts';
import { DOWNSTREAM_TLS_TYPE } from '../../xds/type-urls.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { parseCommonTlsContext, sanMatches, secretNames, tlsTransportSocket, TlsContextCache, type CommonTlsSpec } from './common-context.ts';
import type { SecretStore } from './secrets.ts';

export interface DownstreamTlsSpec {
  common: CommonTlsSpec;
  requireClientCertificate: boolean;
  /** require_sni: a ClientHello without a server name fails the handshake. */
  requireSni: boolean;
}

const checkDownstreamTls = fieldTable('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', {
  common_tls_context: true,
  require_client_certificate: true,
  require_sni: true,
  session_timeout: "sessions resume for OpenSSL's default lifetime (and not across secret rotations, which build a new context)",
  disable_stateless_session_resumption: "session tickets stay enabled, OpenSSL's default",
  full_scan_certs_on_sni_mismatch: 'a filter chain is selected by SNI first; its certificates are then offered by key type, never by name',
});

/** A filter chain's transport_socket: undefined for raw_buffer (plaintext), the TLS spec otherwise. */
export function parseDownstreamTransportSocket(ts: envoy.config.core.v3.TransportSocket, where: string): DownstreamTlsSpec | undefined {
  const cfg = tlsTransportSocket(ts, where, DOWNSTREAM_TLS_TYPE);
  if (cfg === undefined) return undefined;
  checkDownstreamTls(cfg, where);
  const common = parseCommonTlsContext(cfg.common_tls_context ?? {}, `${where}.common_tls_context`);
  if (common.certNames.length === 0 && common.inlineCerts.length === 0) throw new ConfigError(`${where}: a DownstreamTlsContext needs a certificate`);
  return { common, requireClientCertificate: cfg.require_client_certificate === true, requireSni: cfg.require_sni === true };
}

/** Envoy's listener ssl.* counter a failed handshake is charged to. */
type HandshakeFailure = 'connection_error' | 'fail_verify_no_cert' | 'fail_verify_error' | 'fail_verify_san';

export interface HandshakeOutcome {
  ok: boolean;
  failure?: HandshakeFailure;
  /** Why the connection was closed (debug log; Envoy counts ssl.connection_error / ssl.fail_verify_*). */
  reason?: string;
}

export class DownstreamTls {
  readonly spec: DownstreamTlsSpec;
  private readonly cache: TlsContextCache;
  private readonly secrets: SecretStore;
  private readonly alpn: string[];

  /** `alpn`: what this proxy can serve behind the handshake (h2 and HTTP/1.1 for HCM chains). */
  constructor(spec: DownstreamTlsSpec, secrets: SecretStore, alpn: readonly string[] | undefined) {
    this.spec = spec;
    this.secrets = secrets;
    this.cache = new TlsContextCache(spec.common, secrets);
    const configured = spec.common.alpn;
    this.alpn = alpn ? configured.filter((p) => alpn.includes(p)) : configured;
  }

  /**
   * Terminates TLS on `sock` (whose ClientHello bytes may already be buffered in it). Calls `onSecure` with the
   * decrypted socket once the handshake and the client certificate checks passed; otherwise closes it.
   */
  async accept(
    sock: Socket,
    o: { timeoutMs: number; warmMs: number; log: Logger; sni: string | undefined },
    onSecure: (t: TLSSocket) => void,
  ): Promise<HandshakeOutcome> {
    if (this.spec.requireSni && !o.sni) {
      sock.destroy();
      return { ok: false, reason: 'require_sni: the ClientHello names no server', failure: 'connection_error' };
    }
    const started = Date.now();
    const needed = secretNames(this.spec.common);
    // Envoy's listener warming waits for SDS: a connection arriving before the secret waits for it too.
    if (needed.some((n) => this.secrets.get(n) === undefined)) await this.secrets.waitFor(needed, o.warmMs);
    const r = this.cache.get();
    if ('error' in r) {
      o.log.warn({ err: r.error }, 'TLS handshake refused: no usable certificate for this filter chain');
      sock.destroy();
      return { ok: false, reason: r.error, failure: 'connection_error' };
    }
    const validate = this.spec.common.validate;
    const require = this.spec.requireClientCertificate;
    const untrusted = this.spec.common.acceptUntrusted;
    const t = new TLSSocket(sock, {
      isServer: true,
      secureContext: r.ctx,
      requestCert: validate,
      rejectUnauthorized: validate && require && !untrusted,
      ...(this.alpn.length > 0 ? { ALPNProtocols: this.alpn } : {}),
    });
    return new Promise<HandshakeOutcome>((resolve) => {
      const remaining = Math.max(1, o.timeoutMs - (Date.now() - started));
      const timer = o.timeoutMs > 0 ? setTimeout(() => fail('transport_socket_connect_timeout: handshake not finished'), remaining) : undefined;
      const fail = (reason: string, failure: HandshakeFailure = 'connection_error'): void => {
        if (timer) clearTimeout(timer);
        t.destroy();
        sock.destroy();
        resolve({ ok: false, reason, failure });
      };
      t.once('error', (e: Error) => {
        // OpenSSL refuses a missing certificate itself when one is required (MUTUAL).
        const m = e.message;
        fail(
          `TLS error: ${m}`,
          /did not return a certificate|certificate required/i.test(m)
            ? 'fail_verify_no_cert'
            : /certificate verify failed|unknown ca|expired/i.test(m)
              ? 'fail_verify_error'
              : 'connection_error',
        );
      });
      t.once('secure', () => {
        if (timer) clearTimeout(timer);
        if (validate) {
          const peer = t.getPeerCertificate();
          const presented = peer !== undefined && Object.keys(peer).length > 0;
          if (!presented && require) return fail('client certificate required', 'fail_verify_no_cert');
          const verifyError = peerVerifyError(t);
          if (presented && verifyError && !untrusted) return fail(`client certificate not trusted: ${verifyError}`, 'fail_verify_error');
          if (presented && !sanMatches(this.spec.common.sanMatchers, peer)) return fail('client certificate subject alt names do not match', 'fail_verify_san');
        }
        t.removeAllListeners('error');
        t.on('error', () => t.destroy());
        onSecure(t);
        resolve({ ok: true });
      });
    });
  }
}

/**
 * The chain verification result of the peer certificate. A TLSSocket made outside tls.Server never gets
 * `authorized` set (tls.Server does that in its 'secure' handler by calling the handle's verifyError());
 * this does the same. Fails closed if the handle does not offer it.
 */
/** The client certificate when one was presented and its chain verified (what RBAC may take as an identity). */
export function verifiedPeerCertificate(t: TLSSocket): X509Certificate | undefined {
  const cert = t.getPeerX509Certificate();
  return cert && peerVerifyError(t) === undefined ? cert : undefined;
}

function peerVerifyError(t: TLSSocket): string | undefined {
  const ssl = (t as unknown as { ssl?: { verifyError?: () => (Error & { code?: string }) | null } }).ssl;
  if (typeof ssl?.verifyError !== 'function') return 'cannot verify the client certificate (no verifyError on the TLS handle)';
  const e = ssl.verifyError();
  return e ? (e.code ?? e.message) : undefined;
}
