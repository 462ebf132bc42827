// Kubernetes Secrets as istiod reads them for credentialName (pilot/pkg/credentials/kube/secrets.go):
// a server/client certificate from `cert`+`key` (generic, checked first) or `tls.crt`+`tls.key`; a CA from
// `cacert` (checked first) or `ca.crt`; for the CA resource `<name>-cacert` a Secret literally named so,
// else the CA keys of Secret `<name>` (GetCaCert). Secrets are read in the gateway pod's namespace only.
//
// The PEM blocks are parsed here (node:crypto, no I/O, no clock) so that a Secret that exists but holds
// garbage is reported once, at translation, naming the Secret and the key, instead of failing every
// handshake at the proxy. Expiry is not checked: Envoy serves expired certificates too.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { StoredObject } from './objects.ts';
import { metaOf } from './config.ts';

/** SDS resource name suffix of the CA of a credential (credentials.SdsCaSuffix). */
export const SDS_CA_SUFFIX = '-cacert';
export const KUBERNETES_PREFIX = 'kubernetes://';

interface CertificateCredential {
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
}

type Lookup<T> = { ok: true; value: T; secret: StoredObject } | { ok: false; reason: string; secret?: StoredObject };

export interface CredentialIndex {
  /** The certificate and key of credential `name` (bare name or `kubernetes://name`). */
  certificate(name: string): Lookup<CertificateCredential>;
  /** The CA bundle for credential `name` (`<name>-cacert` Secret first, then the CA keys of `<name>`). */
  ca(name: string): Lookup<string>;
}

/** A Gateway API listener's certificateRef (credentials.ToKubernetesGatewayResource): `kubernetes-gateway://<ns>/<name>`. */
export const KUBERNETES_GATEWAY_PREFIX = 'kubernetes-gateway://';

/**
 * A bare credentialName, `kubernetes://<name>`, or `kubernetes-gateway://<ns>/<name>` of the gateway's namespace: the
 * Secret name (other schemes, and Secrets of other namespaces, are not read).
 */
function secretNameOf(credential: string, namespace: string): string | undefined {
  if (credential.startsWith(KUBERNETES_PREFIX)) return credential.slice(KUBERNETES_PREFIX.length);
  if (credential.startsWith(KUBERNETES_GATEWAY_PREFIX)) {
    const [ns, name] = credential.slice(KUBERNETES_GATEWAY_PREFIX.length).split('/', 2);
    return ns === namespace ? name : undefined;
  }
  if (credential.includes('://')) return undefined;
  return credential;
}

/** Secret data: `data` (base64, as the API server returns it) overlaid by `stringData` (local YAML convenience). */
function secretData(o: StoredObject): Map<string, string> {
  const out = new Map<string, string>();
  const data = (o.obj as { data?: unknown }).data;
  if (data && typeof data === 'object') {
    for (const [k, v] of Object.entries(data)) if (typeof v === 'string') out.set(k, Buffer.from(v, 'base64').toString('utf8'));
  }
  const stringData = (o.obj as { stringData?: unknown }).stringData;
  if (stringData && typeof stringData === 'object') {
    for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') out.set(k, v);
  }
  return out;
}

function checkCertificates(pem: string, where: string): string | undefined {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return `${where} holds no PEM certificate`;
  try {
    new X509Certificate(pem);
  } catch (err) {
    return `${where} is not a valid PEM certificate: ${(err as Error).message}`;
  }
  return undefined;
}

function checkKeyPair(cert: string, key: string, secret: string, certKey: string, keyKey: string): string | undefined {
  const bad = checkCertificates(cert, `key ${certKey} of Secret ${secret}`);
  if (bad) return bad;
  let pk;
  try {
    pk = createPrivateKey(key);
  } catch (err) {
    return `key ${keyKey} of Secret ${secret} is not a valid PEM private key: ${(err as Error).message}`;
  }
  if (!new X509Certificate(cert).checkPrivateKey(pk)) return `the private key in ${keyKey} of Secret ${secret} does not match the certificate in ${certKey}`;
  return undefined;
}

export function indexCredentials(secrets: readonly StoredObject[], namespace: string): CredentialIndex {
  const byName = new Map<string, StoredObject>();
  for (const s of secrets) {
    const m = metaOf(s);
    if (m.namespace === namespace) byName.set(m.name, s);
  }
  const missing = (name: string): string =>
    `Secret ${namespace}/${name} not found (credentialName Secrets are read in the gateway's namespace ${namespace}; create it there)`;
  const caFrom = (s: StoredObject, name: string): Lookup<string> => {
    const d = secretData(s);
    const key = d.has('cacert') ? 'cacert' : d.has('ca.crt') ? 'ca.crt' : undefined;
    if (!key) return { ok: false, reason: `Secret ${namespace}/${name} has no CA certificate (expected key cacert or ca.crt)`, secret: s };
    const pem = d.get(key) ?? '';
    const bad = checkCertificates(pem, `key ${key} of Secret ${namespace}/${name}`);
    return bad ? { ok: false, reason: bad, secret: s } : { ok: true, value: pem, secret: s };
  };
  return {
    certificate(credential) {
      const name = secretNameOf(credential, namespace);
      if (name === undefined)
        return {
          ok: false,
          reason: `credential ${credential}: only Kubernetes Secrets of the gateway's namespace (a name, kubernetes://<name> or kubernetes-gateway://<namespace>/<name>) are supported`,
        };
      const s = byName.get(name);
      if (!s) return { ok: false, reason: missing(name) };
      const d = secretData(s);
      const [certKey, keyKey] = d.has('cert') && d.has('key') ? ['cert', 'key'] : ['tls.crt', 'tls.key'];
      const cert = d.get(certKey);
      const key = d.get(keyKey);
      if (!cert || !key)
        return { ok: false, reason: `Secret ${namespace}/${name} has no certificate and key (expected keys tls.crt and tls.key, or cert and key)`, secret: s };
      const bad = checkKeyPair(cert, key, `${namespace}/${name}`, certKey, keyKey);
      return bad ? { ok: false, reason: bad, secret: s } : { ok: true, value: { cert, key }, secret: s };
    },
    ca(credential) {
      const name = secretNameOf(credential, namespace);
      if (name === undefined)
        return {
          ok: false,
          reason: `credential ${credential}: only Kubernetes Secrets of the gateway's namespace (a name, kubernetes://<name> or kubernetes-gateway://<namespace>/<name>) are supported`,
        };
      const base = name.endsWith(SDS_CA_SUFFIX) ? name.slice(0, -SDS_CA_SUFFIX.length) : name;
      const dedicated = byName.get(`${base}${SDS_CA_SUFFIX}`);
      if (dedicated) return caFrom(dedicated, `${base}${SDS_CA_SUFFIX}`);
      const s = byName.get(base);
      if (!s)
        return {
          ok: false,
          reason: `neither Secret ${namespace}/${base}${SDS_CA_SUFFIX} nor ${namespace}/${base} exists (the CA is read from key cacert or ca.crt)`,
        };
      return caFrom(s, base);
    },
  };
}
