// SDS Secret resources for the `kubernetes://` names the listeners and clusters refer to, built from the
// credentialName Secrets as istiod's SDS generator does (pilot/pkg/xds/sds.go): a certificate name gets a
// `tls_certificate` (chain + key), a CA name (`<name>-cacert`, or any name used as a validation context)
// a `validation_context` with the trusted CA. Bytes are inlined; the proxy redacts keys in config_dump.
// `file-cert:`/`file-root:` names are not served here: the proxy resolves them from its own file system.
import type { JsonObject } from '../../xds/protos.ts';
import type { CredentialIndex } from '../model/credentials.ts';
import { KUBERNETES_PREFIX } from '../model/credentials.ts';

type Role = 'certificate' | 'ca';

/** Every ADS-served SDS name in the resources, with the role it is used in. */
export function referencedSecrets(resources: readonly JsonObject[]): Map<string, Role> {
  const out = new Map<string, Role>();
  const visit = (v: unknown, role: Role | undefined): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, role);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as JsonObject;
    if (role && typeof o.name === 'string' && (o.sds_config as JsonObject | undefined)?.ads !== undefined) {
      if (o.name.startsWith(KUBERNETES_PREFIX) && !out.has(o.name)) out.set(o.name, role);
      return;
    }
    for (const [k, x] of Object.entries(o)) {
      if (k === 'tls_certificate_sds_secret_configs') visit(x, 'certificate');
      else if (k === 'validation_context_sds_secret_config') visit(x, 'ca');
      else visit(x, undefined);
    }
  };
  visit(resources, undefined);
  return out;
}

const inline = (pem: string): JsonObject => ({ inline_bytes: Buffer.from(pem, 'utf8').toString('base64') });

/** The Secret resources that can be built; names whose Secret is missing or invalid are left out (reported elsewhere). */
export function buildSecrets(credentials: CredentialIndex, names: ReadonlyMap<string, Role>): JsonObject[] {
  const out: JsonObject[] = [];
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
