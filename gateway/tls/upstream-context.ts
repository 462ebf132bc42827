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
    const r = this.cache.get();
    if ('error' in r) {
      cb(Object.assign(new Error(`TLS_error: ${r.error}`), { code: 'MESHGATE_TLS_SECRET' }), null);
      return;
    }
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
    awaitConnect(sock, 'secureConnect', o.timeoutMs, cb);
  }
}
