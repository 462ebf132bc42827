// TLS contexts as istiod builds them for gateways: DownstreamTlsContext for terminating servers
// (pilot/pkg/networking/core/listener.go BuildListenerTLSContext, pilot/pkg/security/model/authentication.go)
// and UpstreamTlsContext for DestinationRule `tls` (pilot/pkg/networking/core/cluster_tls.go
// constructUpstreamTLS). Certificates are never inlined: they are SDS references.
//
// Two kinds of SDS names, as in Istio:
// - `kubernetes://<name>` (credentialName): served by the controller over ADS from the Secret, with
//   `sds_config {ads {}}` and deliberately no `initial_fetch_timeout` (SDSAdsConfig), so a missing Secret
//   does not block the listener.
// - `file-cert:<cert>~<key>` / `file-root:<ca>` (file paths in the Gateway or DestinationRule; `file-root:system`
//   is the OS trust store): Istio's pilot-agent serves these from the gateway pod's own file system over the
//   `sds-grpc` cluster. meshgate's proxy plays the agent: it resolves these names itself, reading (and
//   watching) the files locally. The controller never reads them, which keeps translation pure and matches
//   where the files live (mounted into the gateway pod, not into istiod).
import type { Any, envoy } from '../../xds/envoy.ts';
import type { ClientTLSSettings, ServerTLSSettings } from '../model/istio-types.ts';
import { KUBERNETES_PREFIX, SDS_CA_SUFFIX } from '../model/credentials.ts';
import { FILE_CERT_PREFIX, FILE_ROOT_PREFIX } from '../../xds/sds-names.ts';

const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
/** Istio's bootstrap cluster for the agent's SDS server (file certificates, workload certificates). */
const SDS_GRPC_CLUSTER = 'sds-grpc';

/** ALPN of HTTPS gateway servers over TCP (util.ALPNHttp). */
const ALPN_HTTP = ['h2', 'http/1.1'];

type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
type CertificateValidationContext = envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
type SdsSecretConfig = envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
type TlsProtocol = envoy.extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol;

/** credentials.ToResourceName: bare names get `kubernetes://`; other schemes pass through. */
function toResourceName(credential: string): string {
  return credential.includes('://') ? credential : `${KUBERNETES_PREFIX}${credential}`;
}

/** SDSAdsConfig: over the ADS stream, no initial_fetch_timeout (so a missing Secret does not block the listener). */
function adsSdsConfig(): envoy.config.core.v3.ConfigSource {
  return { ads: {}, resource_api_version: 'V3' };
}

/** ConstructSdsSecretConfig: the agent's SDS server over the `sds-grpc` bootstrap cluster (no initial_fetch_timeout either). */
function agentSdsConfig(): envoy.config.core.v3.ConfigSource {
  return {
    api_config_source: {
      api_type: 'GRPC',
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: SDS_GRPC_CLUSTER } }],
    },
    resource_api_version: 'V3',
  };
}

function credentialSdsSecret(credential: string): SdsSecretConfig {
  return { name: toResourceName(credential), sds_config: adsSdsConfig() };
}

function fileSdsSecret(name: string): SdsSecretConfig {
  return { name, sds_config: agentSdsConfig() };
}

/** SdsCertificateConfig.GetResourceName / GetRootResourceName. */
const fileCertName = (cert: string, key: string): string => `${FILE_CERT_PREFIX}${cert}~${key}`;
const fileRootName = (ca: string): string => `${FILE_ROOT_PREFIX}${ca}`;

/**
 * convertTLSProtocol: TLSV1_2 -> TLSv1_2, TLS_AUTO stays. A value outside Istio's enum (no CRD schema checks
 * it in local mode) is passed on as given and refused by the encoder, which leaves the listener out.
 */
function tlsProtocol(v: string | undefined): TlsProtocol {
  if (!v || v === 'TLS_AUTO') return 'TLS_AUTO';
  return v.replace(/^TLSV/, 'TLSv') as TlsProtocol;
}

function exactMatchers(sans: readonly string[] | undefined): envoy.type.matcher.v3.StringMatcher[] {
  return (sans ?? []).map((s) => ({ exact: s }));
}

export interface ServerTlsContextResult {
  context: envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
  /** The SDS names the server needs from Kubernetes Secrets: certificates and CAs. */
  credentials: { certificate: string[]; ca: string[] };
}

/**
 * BuildListenerTLSContext for SIMPLE, MUTUAL and OPTIONAL_MUTUAL (ISTIO_MUTUAL needs the mesh CA and is
 * rejected before this is called).
 */
export function downstreamTlsContext(tls: ServerTLSSettings): ServerTlsContextResult {
  const mode = tls.mode ?? 'PASSTHROUGH';
  const validateClient = mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  const common: CommonTlsContext = { alpn_protocols: ALPN_HTTP };
  const credentials = { certificate: [] as string[], ca: [] as string[] };
  const names = tls.credentialNames?.length ? tls.credentialNames : tls.credentialName ? [tls.credentialName] : [];
  const defaultValidation: CertificateValidationContext = {};
  if (tls.subjectAltNames?.length) defaultValidation.match_subject_alt_names = exactMatchers(tls.subjectAltNames);
  if (tls.verifyCertificateSpki?.length) defaultValidation.verify_certificate_spki = tls.verifyCertificateSpki;
  if (tls.verifyCertificateHash?.length) defaultValidation.verify_certificate_hash = tls.verifyCertificateHash;
  if (names.length > 0) {
    // ApplyCredentialSDSToServerCommonTLSContext.
    common.tls_certificate_sds_secret_configs = names.map((n) => credentialSdsSecret(n));
    credentials.certificate.push(...names.map(toResourceName));
    if (validateClient) {
      const ca = tls.caCertCredentialName ? toResourceName(tls.caCertCredentialName) : `${toResourceName(names[0] ?? '')}${SDS_CA_SUFFIX}`;
      common.combined_validation_context = {
        default_validation_context: defaultValidation,
        validation_context_sds_secret_config: { name: ca, sds_config: adsSdsConfig() },
      };
      credentials.ca.push(ca);
    }
  } else {
    common.tls_certificate_sds_secret_configs = [fileSdsSecret(fileCertName(tls.serverCertificate ?? '', tls.privateKey ?? ''))];
    if (validateClient && tls.caCertificates) {
      common.combined_validation_context = {
        default_validation_context: defaultValidation,
        validation_context_sds_secret_config: fileSdsSecret(fileRootName(tls.caCertificates)),
      };
    }
  }
  // Only non-default parameters are set (TLS_AUTO leaves Envoy's defaults: TLS 1.2 minimum).
  if (tls.cipherSuites?.length || (tls.minProtocolVersion ?? 'TLS_AUTO') !== 'TLS_AUTO' || (tls.maxProtocolVersion ?? 'TLS_AUTO') !== 'TLS_AUTO') {
    const params: envoy.extensions.transport_sockets.tls.v3.TlsParameters = {
      tls_minimum_protocol_version: tlsProtocol(tls.minProtocolVersion),
      tls_maximum_protocol_version: tlsProtocol(tls.maxProtocolVersion),
    };
    if (tls.cipherSuites?.length) params.cipher_suites = tls.cipherSuites;
    if (tls.ecdhCurves?.length) params.ecdh_curves = tls.ecdhCurves;
    common.tls_params = params;
  }
  return {
    context: { common_tls_context: common, require_client_certificate: mode === 'MUTUAL' },
    credentials,
  };
}

/** envoy.transport_sockets.tls around a DownstreamTlsContext or UpstreamTlsContext (built with typedAny). */
export function tlsTransportSocket(typedConfig: Any): envoy.config.core.v3.TransportSocket {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: typedConfig };
}

export interface UpstreamTlsResult {
  context: envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
  /** HttpProtocolOptions.upstream_http_protocol_options (setAutoSniAndAutoSanValidation). */
  autoSni: boolean;
  autoSanValidation: boolean;
}

/**
 * constructUpstreamTLS for SIMPLE and MUTUAL. `serviceSans` are the ServiceEntry subjectAltNames, used when
 * the DestinationRule gives none. Returns an error message for settings Istio rejects.
 */
export function upstreamTlsContext(
  tls: ClientTLSSettings,
  http2: boolean,
  serviceSans: readonly string[],
  clusterName: string,
): UpstreamTlsResult | { error: string } {
  const mutual = tls.mode === 'MUTUAL';
  const common: CommonTlsContext = { tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' } };
  const ctx: envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext = { common_tls_context: common };
  if (tls.sni) ctx.sni = tls.sni;
  const autoSni = !tls.sni;
  const autoSanValidation = autoSni && !tls.subjectAltNames?.length && !tls.insecureSkipVerify;
  const sans = tls.subjectAltNames?.length ? tls.subjectAltNames : serviceSans;
  if (tls.credentialName) {
    // ApplyCustomSDSToClientCommonTLSContext: client certificate for MUTUAL, CA from `<cred>-cacert`.
    if (mutual) common.tls_certificate_sds_secret_configs = [credentialSdsSecret(tls.credentialName)];
    if (!tls.insecureSkipVerify) {
      common.combined_validation_context = {
        default_validation_context: sans.length ? { match_subject_alt_names: exactMatchers(sans) } : {},
        validation_context_sds_secret_config: { name: `${toResourceName(tls.credentialName)}${SDS_CA_SUFFIX}`, sds_config: adsSdsConfig() },
      };
    }
  } else {
    if (mutual) {
      if (!tls.clientCertificate || !tls.privateKey)
        return { error: `failed to apply tls setting for ${clusterName}: client certificate and private key must not be empty` };
      common.tls_certificate_sds_secret_configs = [fileSdsSecret(fileCertName(tls.clientCertificate, tls.privateKey))];
    }
    if (tls.insecureSkipVerify) common.validation_context = {};
    else {
      common.combined_validation_context = {
        default_validation_context: sans.length ? { match_subject_alt_names: exactMatchers(sans) } : {},
        // The CA defaults to the system trust store (file-root:system).
        validation_context_sds_secret_config: fileSdsSecret(fileRootName(tls.caCertificates || 'system')),
      };
    }
  }
  if (http2) common.alpn_protocols = ['h2'];
  return { context: ctx, autoSni, autoSanValidation };
}
