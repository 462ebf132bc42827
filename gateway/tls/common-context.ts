// envoy.extensions.transport_sockets.tls.v3.CommonTlsContext, shared by downstream (listener) and upstream
// (cluster) TLS: certificates (SDS names or inline), the validation context (CA by SDS name or inline,
// subject-alt-name matchers), protocol versions, ciphers, curves and ALPN. A node:tls SecureContext is built
// from the secrets' current values and cached by their versions, so a rotated secret yields a new context for
// new handshakes and nothing else changes.
import { createSecureContext, type SecureContext } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { unpackAny, type TypeUrls, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { regexMatcher } from '../xds/regex-matcher.ts';
import { TYPE_PREFIX, type DOWNSTREAM_TLS_TYPE, type UPSTREAM_TLS_TYPE } from '../../xds/type-urls.ts';
import { dataSource, tlsCertificate, type SecretStore } from './secrets.ts';

type TransportSocket = envoy.config.core.v3.TransportSocket;
type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
type CertificateValidationContext = envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
type SanType = envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.SanType;

/** A subject alt name matcher: `type` undefined matches names of every type. */
export interface SanMatcher {
  type: string | undefined;
  match: (value: string) => boolean;
}

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

const RAW_BUFFER_NAME = 'envoy.transport_sockets.raw_buffer';

const checkTransportSocket = fieldTable('envoy.config.core.v3.TransportSocket', { name: true, typed_config: true });
const checkCommon = fieldTable('envoy.extensions.transport_sockets.tls.v3.CommonTlsContext', {
  tls_params: true,
  tls_certificates: true,
  tls_certificate_sds_secret_configs: true,
  validation_context: true,
  validation_context_sds_secret_config: true,
  combined_validation_context: true,
  alpn_protocols: true,
});
const checkParams = fieldTable('envoy.extensions.transport_sockets.tls.v3.TlsParameters', {
  tls_minimum_protocol_version: true,
  tls_maximum_protocol_version: true,
  cipher_suites: true,
  ecdh_curves: true,
  signature_algorithms: "not restricted: the handshake offers OpenSSL's default signature algorithms (Istio does not set this field)",
});
const checkSds = fieldTable('envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig', { name: true, sds_config: true });
const checkValidation = fieldTable(
  'envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext',
  { match_subject_alt_names: true, match_typed_subject_alt_names: true, trusted_ca: true, trust_chain_verification: true },
  'TLS context',
);
const checkCombined = fieldTable('envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext', {
  default_validation_context: true,
  validation_context_sds_secret_config: true,
});
const checkSanMatcher = fieldTable('envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher', { san_type: true, matcher: true });
const checkStringMatcher = fieldTable(
  'envoy.type.matcher.v3.StringMatcher',
  { exact: true, prefix: true, suffix: true, contains: true, safe_regex: true, ignore_case: true },
  'subject alt names',
);

/** A transport_socket that leaves the bytes as they are (raw_buffer), by its config's type or, without one, its name. */
export function isRawBuffer(ts: TransportSocket): boolean {
  const t = ts.typed_config === undefined ? '' : anyType(ts.typed_config);
  return t.endsWith('RawBuffer') || (t === '' && ts.name === RAW_BUFFER_NAME);
}

/**
 * A filter chain's or cluster's transport_socket: undefined for raw_buffer (plaintext), else its TLS context of
 * type `typeUrl` (DownstreamTlsContext or UpstreamTlsContext). Any other transport socket is a ConfigError.
 */
export function tlsTransportSocket<U extends typeof DOWNSTREAM_TLS_TYPE | typeof UPSTREAM_TLS_TYPE>(
  ts: TransportSocket,
  where: string,
  typeUrl: U,
): TypeUrls[U] | undefined {
  checkTransportSocket(ts, where);
  if (isRawBuffer(ts)) return undefined;
  const cfg = ts.typed_config;
  const t = cfg === undefined ? '' : anyType(cfg);
  if (cfg === undefined || t !== typeUrl.slice(TYPE_PREFIX.length))
    throw new ConfigError(`${where}: transport socket ${t || (ts.name ?? '')} is not supported by this proxy`);
  return unpackAny(cfg, typeUrl);
}

function sdsName(s: envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig, where: string): string {
  checkSds(s, where);
  const name = s.name ?? '';
  if (!name) throw new ConfigError(`${where}: SDS secret config without a name`);
  return name;
}

/** type.matcher.v3.StringMatcher -> predicate. */
function stringMatcher(m: envoy.type.matcher.v3.StringMatcher, where: string): (value: string) => boolean {
  checkStringMatcher(m, where);
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const e = norm(m.exact);
    return (v) => norm(v) === e;
  }
  if (m.prefix !== undefined) {
    const p = norm(m.prefix);
    return (v) => norm(v).startsWith(p);
  }
  if (m.suffix !== undefined) {
    const p = norm(m.suffix);
    return (v) => norm(v).endsWith(p);
  }
  if (m.contains !== undefined) {
    const p = norm(m.contains);
    return (v) => norm(v).includes(p);
  }
  if (m.safe_regex !== undefined) {
    const re = regexMatcher(m.safe_regex, where);
    return (v) => re.fullMatch(v);
  }
  throw new ConfigError(`${where}: empty string matcher`);
}

/** SubjectAltNameMatcher.san_type -> the prefix node gives names of that type in `subjectaltname`. */
const SAN_PREFIX: Partial<Record<SanType, string>> = { DNS: 'DNS', URI: 'URI', EMAIL: 'email', IP_ADDRESS: 'IP Address' };

function sanMatcher(m: envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher, where: string): SanMatcher {
  checkSanMatcher(m, where);
  let type: string | undefined;
  if (m.san_type !== undefined && m.san_type !== 'SAN_TYPE_UNSPECIFIED') {
    type = SAN_PREFIX[m.san_type];
    if (type === undefined) throw new ConfigError(`${where}.san_type: ${m.san_type} is not supported by this proxy`);
  }
  return { type, match: stringMatcher(m.matcher ?? {}, where) };
}

function parseValidation(v: CertificateValidationContext, where: string, out: CommonTlsSpec): void {
  if ((v.verify_certificate_spki ?? []).length > 0 || (v.verify_certificate_hash ?? []).length > 0) {
    throw new ConfigError(`${where}: verify_certificate_spki / verify_certificate_hash are not supported by this proxy`);
  }
  checkValidation(v, where);
  for (const [i, m] of (v.match_subject_alt_names ?? []).entries())
    out.sanMatchers.push({ type: undefined, match: stringMatcher(m, `${where}.match_subject_alt_names[${i}]`) });
  for (const [i, m] of (v.match_typed_subject_alt_names ?? []).entries()) out.sanMatchers.push(sanMatcher(m, `${where}.match_typed_subject_alt_names[${i}]`));
  if (v.trusted_ca !== undefined) out.inlineCa = dataSource(v.trusted_ca, `${where}.trusted_ca`);
  out.acceptUntrusted = v.trust_chain_verification === 'ACCEPT_UNTRUSTED';
}

export function parseCommonTlsContext(c: CommonTlsContext, where: string): CommonTlsSpec {
  checkCommon(c, where);
  const out: CommonTlsSpec = {
    certNames: (c.tls_certificate_sds_secret_configs ?? []).map((s, i) => sdsName(s, `${where}.tls_certificate_sds_secret_configs[${i}]`)),
    inlineCerts: (c.tls_certificates ?? []).map((t, i) => tlsCertificate(t, `${where}.tls_certificates[${i}]`)),
    validate: false,
    caName: undefined,
    inlineCa: undefined,
    sanMatchers: [],
    acceptUntrusted: false,
    minVersion: undefined,
    maxVersion: undefined,
    ciphers: undefined,
    ecdhCurve: undefined,
    alpn: c.alpn_protocols ?? [],
  };
  if (c.tls_params !== undefined) {
    const p = c.tls_params;
    checkParams(p, `${where}.tls_params`);
    for (const [k, f] of [
      ['tls_minimum_protocol_version', 'minVersion'],
      ['tls_maximum_protocol_version', 'maxVersion'],
    ] as const) {
      const v = p[k] ?? 'TLS_AUTO';
      if (!(v in VERSIONS)) throw new ConfigError(`${where}.tls_params.${k}: unknown version ${v}`);
      out[f] = VERSIONS[v];
    }
    const ciphers = p.cipher_suites ?? [];
    // Envoy's "[A|B]" equal-preference groups are a BoringSSL feature: flatten them.
    if (ciphers.length > 0) out.ciphers = [...ciphers.flatMap((s) => s.replace(/^\[|\]$/g, '').split('|')), TLS13_SUITES].join(':');
    const curves = p.ecdh_curves ?? [];
    if (curves.length > 0) out.ecdhCurve = curves.join(':');
  }
  if (c.validation_context !== undefined) {
    out.validate = true;
    parseValidation(c.validation_context, `${where}.validation_context`, out);
    // An empty validation context (Istio's insecureSkipVerify upstream) verifies nothing.
    if (out.inlineCa === undefined && out.sanMatchers.length === 0) out.validate = false;
  }
  if (c.validation_context_sds_secret_config !== undefined) {
    out.validate = true;
    out.caName = sdsName(c.validation_context_sds_secret_config, `${where}.validation_context_sds_secret_config`);
  }
  if (c.combined_validation_context !== undefined) {
    const cv = c.combined_validation_context;
    checkCombined(cv, `${where}.combined_validation_context`);
    out.validate = true;
    parseValidation(cv.default_validation_context ?? {}, `${where}.combined_validation_context.default_validation_context`, out);
    out.caName = sdsName(cv.validation_context_sds_secret_config ?? {}, `${where}.combined_validation_context.validation_context_sds_secret_config`);
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

/** Subject alt names of a peer certificate: node's `subjectaltname` entries (`DNS:a.example.com`, `IP Address:10.0.0.1`) split into type and value. */
function peerSans(cert: PeerCertificate | undefined): { type: string; value: string }[] {
  const raw = cert?.subjectaltname;
  if (!raw) return [];
  return raw.split(', ').map((e) => {
    const i = e.indexOf(':');
    return { type: e.slice(0, i), value: e.slice(i + 1) };
  });
}

export function sanMatches(matchers: readonly SanMatcher[], cert: PeerCertificate | undefined): boolean {
  if (matchers.length === 0) return true;
  const sans = peerSans(cert);
  return sans.some((s) => matchers.some((m) => (m.type === undefined || m.type === s.type) && m.match(s.value)));
}
