// SDS Secret resources for the `kubernetes://` names the listeners and clusters refer to, built from the
// credentialName Secrets as istiod's SDS generator does (pilot/pkg/xds/sds.go): a certificate name gets a
// `tls_certificate` (chain + key), a CA name (`<name>-cacert`, or any name used as a validation context)
// a `validation_context` with the trusted CA. Bytes are inlined; the proxy redacts keys in config_dump.
// `file-cert:`/`file-root:` names are not served here: the proxy resolves them from its own file system.
import { unpackAny, type envoy } from '../../xds/envoy.ts';
import { DOWNSTREAM_TLS_TYPE, UPSTREAM_TLS_TYPE } from '../../xds/type-urls.ts';
import type { CredentialIndex } from '../model/credentials.ts';
import { KUBERNETES_GATEWAY_PREFIX, KUBERNETES_PREFIX } from '../model/credentials.ts';

type Role = 'certificate' | 'ca';

type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
type SdsSecretConfig = envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;

/** The CommonTlsContext inside a TLS transport socket (downstream for listeners, upstream for clusters). */
function commonTlsContext(ts: envoy.config.core.v3.TransportSocket | undefined): CommonTlsContext | undefined {
  const any = ts?.typed_config;
  if (any?.['@type'] === DOWNSTREAM_TLS_TYPE) return unpackAny(any, DOWNSTREAM_TLS_TYPE).common_tls_context;
  if (any?.['@type'] === UPSTREAM_TLS_TYPE) return unpackAny(any, UPSTREAM_TLS_TYPE).common_tls_context;
  return undefined;
}

/**
 * Every ADS-served SDS name the listeners and clusters refer to, with the role it is used in (the first use
 * wins: listeners before clusters, a context's certificates before its CA).
 */
export function referencedSecrets(
  listeners: readonly envoy.config.listener.v3.Listener[],
  clusters: readonly envoy.config.cluster.v3.Cluster[],
): Map<string, Role> {
  const out = new Map<string, Role>();
  const add = (sds: SdsSecretConfig | undefined, role: Role): void => {
    const name = sds?.name;
    if ((name?.startsWith(KUBERNETES_PREFIX) || name?.startsWith(KUBERNETES_GATEWAY_PREFIX)) && sds?.sds_config?.ads !== undefined && !out.has(name))
      out.set(name, role);
  };
  const visit = (ts: envoy.config.core.v3.TransportSocket | undefined): void => {
    const common = commonTlsContext(ts);
    for (const sds of common?.tls_certificate_sds_secret_configs ?? []) add(sds, 'certificate');
    add(common?.combined_validation_context?.validation_context_sds_secret_config, 'ca');
    add(common?.validation_context_sds_secret_config, 'ca');
  };
  for (const l of listeners) for (const fc of l.filter_chains ?? []) visit(fc.transport_socket);
  for (const c of clusters) visit(c.transport_socket);
  return out;
}

const inline = (pem: string): envoy.config.core.v3.DataSource => ({ inline_bytes: Buffer.from(pem, 'utf8').toString('base64') });

/** The Secret resources that can be built; names whose Secret is missing or invalid are left out (reported elsewhere). */
export function buildSecrets(credentials: CredentialIndex, names: ReadonlyMap<string, Role>): envoy.extensions.transport_sockets.tls.v3.Secret[] {
  const out: envoy.extensions.transport_sockets.tls.v3.Secret[] = [];
  for (const name of [...names.keys()].sort()) {
    if (names.get(name) === 'certificate') {
      const r = credentials.certificate(name);
      if (r.ok) out.push({ name, tls_certificate: { certificate_chain: inline(r.value.cert), private_key: inline(r.value.key) } });
    } else {
      const r = credentials.ca(name);
      if (r.ok) out.push({ name, validation_context: { trusted_ca: inline(r.value) } });
    }
  }
  return out;
}
