// envoy.extensions.transport_sockets.tls.v3.CommonTlsContext, shared by downstream (listener) and upstream
// (cluster) TLS: certificates (SDS names or inline), the validation context (CA by SDS name or inline,
// subject-alt-name matchers), protocol versions, ciphers, curves and ALPN. A node:tls SecureContext is built
// from the secrets' current values and cached by their versions, so a rotated secret yields a new context for
// new handshakes and nothing else changes.
import { createSecureContext, type SecureContext } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { ConfigError, arr, checkFields, compileRe2, obj, str, strArr, type Json } from '../xds/json.ts';
import { dataSource, type SecretStore } from './secrets.ts';

export type SanMatcher = (value: string) => boolean;

export interface CommonTlsSpec {
  /** SDS names of certificate secrets (several: RSA + ECDSA; node uses all of them). */
  certNames: string[];
  inlineCerts: { cert: string; key: string }[];
  /** A validation context is configured (peer certificates are verified). */
  validate: boolean;
  caName: string | undefined;
  inlineCa: string | undefined;
  sanMatchers: SanMatcher[];
  /** trust_chain_verification ACCEPT_UNTRUSTED (insecureSkipVerify on servers). */
  acceptUntrusted: boolean;
  minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' | undefined;
  maxVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' | undefined;
  ciphers: string | undefined;
  ecdhCurve: string | undefined;
  alpn: string[];
}

const VERSIONS: Readonly<Record<string, CommonTlsSpec['minVersion']>> = {
  TLS_AUTO: undefined,
  TLSv1_0: 'TLSv1',
  TLSv1_1: 'TLSv1.1',
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};

/** TLS 1.3 suites stay enabled when cipher_suites lists only TLS 1.2 ones (Envoy's cipher_suites apply to <= 1.2). */
const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

function sdsName(v: unknown, where: string): string {
  const s = obj(v, where);
  checkFields(s, where, ['name', 'sds_config']);
  const name = str(s.name, `${where}.name`);
  if (!name) throw new ConfigError(`${where}: SDS secret config without a name`);
  return name;
}

/** type.matcher.v3.StringMatcher -> predicate. */
function stringMatcher(m: Json, where: string): SanMatcher {
  checkFields(m, where, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  if (typeof m.exact === 'string') {
    const e = norm(m.exact);
    return (v) => norm(v) === e;
  }
  if (typeof m.prefix === 'string') {
    const p = norm(m.prefix);
    return (v) => norm(v).startsWith(p);
  }
  if (typeof m.suffix === 'string') {
    const p = norm(m.suffix);
    return (v) => norm(v).endsWith(p);
  }
  if (typeof m.contains === 'string') {
    const p = norm(m.contains);
    return (v) => norm(v).includes(p);
  }
  if (m.safe_regex !== undefined) {
    const re = compileRe2(str(obj(m.safe_regex, where).regex, `${where}.safe_regex.regex`), where);
    return (v) => re.fullMatch(v);
  }
  throw new ConfigError(`${where}: empty string matcher`);
}

function parseValidation(v: Json, where: string, out: CommonTlsSpec): void {
  checkFields(v, where, [
    'match_subject_alt_names',
    'match_typed_subject_alt_names',
    'trusted_ca',
    'trust_chain_verification',
    'verify_certificate_spki',
    'verify_certificate_hash',
  ]);
  if (strArr(v.verify_certificate_spki, where).length > 0 || strArr(v.verify_certificate_hash, where).length > 0) {
    throw new ConfigError(`${where}: verify_certificate_spki / verify_certificate_hash are not supported by this proxy`);
  }
  for (const [i, m] of arr(v.match_subject_alt_names, `${where}.match_subject_alt_names`).entries())
    out.sanMatchers.push(stringMatcher(m, `${where}.match_subject_alt_names[${i}]`));
  for (const [i, m] of arr(v.match_typed_subject_alt_names, `${where}.match_typed_subject_alt_names`).entries()) {
    out.sanMatchers.push(stringMatcher(obj(m.matcher, `${where}.match_typed_subject_alt_names[${i}].matcher`), `${where}.match_typed_subject_alt_names[${i}]`));
  }
  if (v.trusted_ca !== undefined) out.inlineCa = dataSource(v.trusted_ca, `${where}.trusted_ca`);
  out.acceptUntrusted = v.trust_chain_verification === 'ACCEPT_UNTRUSTED';
}

export function parseCommonTlsContext(c: Json, where: string): CommonTlsSpec {
  checkFields(c, where, [
    'tls_params',
    'tls_certificates',
    'tls_certificate_sds_secret_configs',
    'validation_context',
    'validation_context_sds_secret_config',
    'combined_validation_context',
    'alpn_protocols',
  ]);
  const out: CommonTlsSpec = {
    certNames: arr(c.tls_certificate_sds_secret_configs, `${where}.tls_certificate_sds_secret_configs`).map((s, i) =>
      sdsName(s, `${where}.tls_certificate_sds_secret_configs[${i}]`),
    ),
    inlineCerts: arr(c.tls_certificates, `${where}.tls_certificates`).map((t, i) => ({
      cert: dataSource(t.certificate_chain, `${where}.tls_certificates[${i}].certificate_chain`),
      key: dataSource(t.private_key, `${where}.tls_certificates[${i}].private_key`),
    })),
    validate: false,
    caName: undefined,
    inlineCa: undefined,
    sanMatchers: [],
    acceptUntrusted: false,
    minVersion: undefined,
    maxVersion: undefined,
    ciphers: undefined,
    ecdhCurve: undefined,
    alpn: strArr(c.alpn_protocols, `${where}.alpn_protocols`),
  };
  if (c.tls_params !== undefined) {
    const p = obj(c.tls_params, `${where}.tls_params`);
    checkFields(p, `${where}.tls_params`, [
      'tls_minimum_protocol_version',
      'tls_maximum_protocol_version',
      'cipher_suites',
      'ecdh_curves',
      'signature_algorithms',
    ]);
    for (const [k, f] of [
      ['tls_minimum_protocol_version', 'minVersion'],
      ['tls_maximum_protocol_version', 'maxVersion'],
    ] as const) {
      const v = str(p[k], `${where}.tls_params.${k}`, 'TLS_AUTO');
      if (!(v in VERSIONS)) throw new ConfigError(`${where}.tls_params.${k}: unknown version ${v}`);
      out[f] = VERSIONS[v];
    }
    const ciphers = strArr(p.cipher_suites, `${where}.tls_params.cipher_suites`);
    // Envoy's "[A|B]" equal-preference groups are a BoringSSL feature: flatten them.
    if (ciphers.length > 0) out.ciphers = [...ciphers.flatMap((s) => s.replace(/^\[|\]$/g, '').split('|')), TLS13_SUITES].join(':');
    const curves = strArr(p.ecdh_curves, `${where}.tls_params.ecdh_curves`);
    if (curves.length > 0) out.ecdhCurve = curves.join(':');
  }
  if (c.validation_context !== undefined) {
    out.validate = true;
    parseValidation(obj(c.validation_context, `${where}.validation_context`), `${where}.validation_context`, out);
    // An empty validation context (Istio's insecureSkipVerify upstream) verifies nothing.
    if (out.inlineCa === undefined && out.sanMatchers.length === 0) out.validate = false;
  }
  if (c.validation_context_sds_secret_config !== undefined) {
    out.validate = true;
    out.caName = sdsName(c.validation_context_sds_secret_config, `${where}.validation_context_sds_secret_config`);
  }
  if (c.combined_validation_context !== undefined) {
    const cv = obj(c.combined_validation_context, `${where}.combined_validation_context`);
    checkFields(cv, `${where}.combined_validation_context`, ['default_validation_context', 'validation_context_sds_secret_config']);
    out.validate = true;
    parseValidation(
      obj(cv.default_validation_context, `${where}.combined_validation_context.default_validation_context`),
      `${where}.combined_validation_context.default_validation_context`,
      out,
    );
    out.caName = sdsName(cv.validation_context_sds_secret_config, `${where}.combined_validation_context.validation_context_sds_secret_config`);
  }
  return out;
}

/** The SDS names a context needs (certificates, then the CA). */
export function secretNames(spec: CommonTlsSpec): string[] {
  return spec.caName ? [...spec.certNames, spec.caName] : [...spec.certNames];
}

/**
 * Builds (or returns the cached) SecureContext from the secrets' current values. An error names the secret
 * that is missing or of the wrong kind.
 */
export class TlsContextCache {
  private key = '';
  private ctx: SecureContext | undefined;
  private readonly spec: CommonTlsSpec;
  private readonly secrets: SecretStore;

  constructor(spec: CommonTlsSpec, secrets: SecretStore) {
    this.spec = spec;
    this.secrets = secrets;
  }

  /** The CA bundle in use, or undefined when not verifying. */
  ca(): string | undefined {
    if (this.spec.inlineCa !== undefined) return this.spec.inlineCa;
    if (!this.spec.caName) return undefined;
    const e = this.secrets.get(this.spec.caName);
    return e?.value.kind === 'validation' ? e.value.ca : undefined;
  }

  get(): { ctx: SecureContext } | { error: string } {
    const s = this.spec;
    const certs: { cert: string; key: string }[] = [...s.inlineCerts];
    const versions: number[] = [];
    for (const n of s.certNames) {
      const e = this.secrets.get(n);
      if (!e) return { error: `secret ${n} is not available (not sent by the control plane yet, or the Secret is missing)` };
      if (e.value.kind !== 'certificate') return { error: `secret ${n} holds a CA, not a certificate and key` };
      certs.push({ cert: e.value.cert, key: e.value.key });
      versions.push(e.version);
    }
    let ca: string | undefined = s.inlineCa;
    if (s.caName) {
      const e = this.secrets.get(s.caName);
      if (!e) return { error: `validation secret ${s.caName} is not available (not sent by the control plane yet, or the Secret is missing)` };
      if (e.value.kind !== 'validation') return { error: `secret ${s.caName} holds a certificate, not a CA` };
      ca = e.value.ca;
      versions.push(e.version);
    }
    const key = versions.join(',');
    if (this.ctx && key === this.key) return { ctx: this.ctx };
    try {
      this.ctx = createSecureContext({
        ...(certs.length > 0 ? { cert: certs.map((c) => c.cert), key: certs.map((c) => c.key) } : {}),
        ...(ca !== undefined ? { ca } : {}),
        ...(s.minVersion ? { minVersion: s.minVersion } : { minVersion: 'TLSv1.2' }),
        ...(s.maxVersion ? { maxVersion: s.maxVersion } : {}),
        ...(s.ciphers ? { ciphers: s.ciphers } : {}),
        ...(s.ecdhCurve ? { ecdhCurve: s.ecdhCurve } : {}),
      });
    } catch (e) {
      return { error: `cannot build a TLS context: ${(e as Error).message}` };
    }
    this.key = key;
    return { ctx: this.ctx };
  }
}

/** Subject alt names of a peer certificate as plain values (DNS, URI, IP, email). */
export function peerSans(cert: PeerCertificate | undefined): string[] {
  const raw = cert?.subjectaltname;
  if (!raw) return [];
  return raw.split(', ').map((e) => e.slice(e.indexOf(':') + 1));
}

export function sanMatches(matchers: readonly SanMatcher[], cert: PeerCertificate | undefined): boolean {
  if (matchers.length === 0) return true;
  const sans = peerSans(cert);
  return sans.some((v) => matchers.some((m) => m(v)));
}
