// The proxy's secrets, as Envoy's secret manager plus Istio's pilot-agent SDS server hold them:
// - SDS over ADS (`kubernetes://<name>`, from credentialName Secrets): state of the world per subscription,
//   each new version replacing the old one. A TLS context looks its secrets up at every handshake, so a
//   rotated certificate is used by new handshakes at once while established connections keep theirs
//   (Envoy's SDS rotation: no listener drain, no restart).
// - Files (`file-cert:<cert>~<key>`, `file-root:<ca>`, `file-root:system`): what Istio's agent serves to
//   Envoy over the `sds-grpc` cluster from the gateway pod's file system. meshgate's proxy reads the files
//   itself and re-reads them when they change (polled), which is what the agent's file watcher does.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, type Json } from '../xds/json.ts';
import { SECRET_TYPE } from '../../xds/type-urls.ts';
import { T } from '../admin/config-dump.ts';
import { FILE_CERT_PREFIX, FILE_ROOT_PREFIX, SYSTEM_ROOT } from '../../xds/sds-names.ts';

interface CertificateSecret {
  kind: 'certificate';
  cert: string;
  key: string;
}

interface ValidationSecret {
  kind: 'validation';
  /** PEM bundle of trusted CAs. */
  ca: string;
}

export type SecretValue = CertificateSecret | ValidationSecret;

export interface SecretEntry {
  name: string;
  value: SecretValue;
  /** Bumps on every change: TLS contexts are cached by the versions they were built from. */
  version: number;
  versionInfo: string;
  lastUpdated: string;
  /** The resource as received (config_dump, with private keys redacted there). */
  json: Secret;
}

type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;

/** Envoy's redaction of sensitive fields in config_dump (bytes of `[redacted]`). */
const REDACTED = Buffer.from('[redacted]').toString('base64');

const ONLY_SOURCES = 'only inline_bytes, inline_string and filename data sources are supported';

const checkDataSource = fieldTable('envoy.config.core.v3.DataSource', {
  inline_bytes: true,
  inline_string: true,
  filename: true,
  watched_directory:
    'a filename is read once, when the resource is applied (certificates that rotate come by SDS name: file-cert: and file-root: files are re-read when they change)',
});
const checkTlsCertificate = fieldTable('envoy.extensions.transport_sockets.tls.v3.TlsCertificate', { certificate_chain: true, private_key: true });
const checkSecret = fieldTable('envoy.extensions.transport_sockets.tls.v3.Secret', { name: true, tls_certificate: true, validation_context: true });
const checkSecretValidation = fieldTable('envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext', { trusted_ca: true }, 'SDS secret');

/** config.core.v3.DataSource -> its content (inline bytes or string; a filename is read). */
export function dataSource(d: envoy.config.core.v3.DataSource, where: string): string {
  if (d.environment_variable !== undefined) throw new ConfigError(`${where}: ${ONLY_SOURCES}`);
  checkDataSource(d, where);
  if (d.inline_bytes !== undefined) return Buffer.from(d.inline_bytes, 'base64').toString('utf8');
  if (d.inline_string !== undefined) return d.inline_string;
  if (d.filename !== undefined) {
    try {
      return readFileSync(d.filename, 'utf8');
    } catch (e) {
      throw new ConfigError(`${where}: cannot read ${d.filename}: ${(e as Error).message}`);
    }
  }
  throw new ConfigError(`${where}: ${ONLY_SOURCES}`);
}

/** A certificate chain and its private key, as PEM (a Secret's, or inline in a CommonTlsContext). */
export function tlsCertificate(c: envoy.extensions.transport_sockets.tls.v3.TlsCertificate, where: string): { cert: string; key: string } {
  checkTlsCertificate(c, where);
  return { cert: dataSource(c.certificate_chain ?? {}, `${where}.certificate_chain`), key: dataSource(c.private_key ?? {}, `${where}.private_key`) };
}

function checkCertificate(pem: string, where: string): void {
  try {
    new X509Certificate(pem);
  } catch (e) {
    throw new ConfigError(`${where}: not a PEM certificate: ${(e as Error).message}`);
  }
}

function checkKey(pem: string, where: string): void {
  try {
    createPrivateKey(pem);
  } catch (e) {
    throw new ConfigError(`${where}: not a PEM private key: ${(e as Error).message}`);
  }
}

/** envoy.extensions.transport_sockets.tls.v3.Secret -> its value; throws ConfigError on anything unusable. */
export function parseSecret(s: Secret): { name: string; value: SecretValue } {
  const name = s.name ?? '';
  const where = `secret '${name}'`;
  checkSecret(s, where);
  if (s.tls_certificate !== undefined) {
    const { cert, key } = tlsCertificate(s.tls_certificate, `${where}.tls_certificate`);
    checkCertificate(cert, `${where}.tls_certificate.certificate_chain`);
    checkKey(key, `${where}.tls_certificate.private_key`);
    return { name, value: { kind: 'certificate', cert, key } };
  }
  if (s.validation_context !== undefined) {
    const v = s.validation_context;
    checkSecretValidation(v, `${where}.validation_context`);
    const ca = dataSource(v.trusted_ca ?? {}, `${where}.validation_context.trusted_ca`);
    checkCertificate(ca, `${where}.validation_context.trusted_ca`);
    return { name, value: { kind: 'validation', ca } };
  }
  throw new ConfigError(`${where}: neither tls_certificate nor validation_context`);
}

interface FileWatch {
  paths: string[];
  mtimes: string;
}

export class SecretStore {
  private readonly ads = new Map<string, SecretEntry>();
  private readonly files = new Map<string, SecretEntry & { watch: FileWatch }>();
  private readonly waiters = new Set<() => void>();
  private readonly log: Logger;
  private version = 0;
  private poll: NodeJS.Timeout | undefined;

  constructor(log: Logger, o: { filePollMs?: number } = {}) {
    this.log = log;
    this.poll = setInterval(() => this.refreshFiles(), o.filePollMs ?? 2000);
    this.poll.unref();
  }

  /** SDS state of the world: every subscribed secret; invalid ones NACK the response and keep their old value. */
  applySds(resources: readonly Secret[], versionInfo: string): { errors: string[] } {
    const errors: string[] = [];
    const parsed: { name: string; value: SecretValue; json: Secret }[] = [];
    for (const r of resources) {
      try {
        parsed.push({ ...parseSecret(r), json: r });
      } catch (e) {
        errors.push(e instanceof ConfigError ? e.message : (e as Error).message);
      }
    }
    if (errors.length > 0) return { errors };
    const now = new Date().toISOString();
    for (const p of parsed) {
      const old = this.ads.get(p.name);
      if (old && JSON.stringify(old.json) === JSON.stringify(p.json)) continue;
      this.ads.set(p.name, { name: p.name, value: p.value, version: ++this.version, versionInfo, lastUpdated: now, json: p.json });
      this.log.info({ secret: p.name, kind: p.value.kind, rotated: old !== undefined }, old ? 'secret updated: new handshakes use it' : 'secret added');
    }
    // SDS is not a state-of-the-world type: a secret absent from a response is not deleted (Envoy keeps it
    // while something refers to it; `retain` drops the ones nothing refers to any more).
    this.wake();
    return { errors };
  }

  /** Forgets SDS secrets no listener or cluster refers to any more (and file secrets likewise). */
  retain(adsNames: readonly string[], fileNames: readonly string[] = []): void {
    const keep = new Set(adsNames);
    for (const name of [...this.ads.keys()]) if (!keep.has(name)) this.ads.delete(name);
    const keepFiles = new Set(fileNames);
    for (const name of [...this.files.keys()]) if (!keepFiles.has(name)) this.files.delete(name);
  }

  /** The SDS resources in use, as received (a new worker thread is given them). */
  adsResources(): Secret[] {
    return [...this.ads.values()].map((e) => e.json);
  }

  /** The current value of a secret, or undefined if not (yet) known. File secrets are read on first use. */
  get(name: string): SecretEntry | undefined {
    if (name.startsWith(FILE_CERT_PREFIX) || name.startsWith(FILE_ROOT_PREFIX)) return this.file(name);
    return this.ads.get(name);
  }

  /** Resolves when every name is known, or after timeoutMs (Envoy's listener warming waits for SDS, then gives up). */
  async waitFor(names: readonly string[], timeoutMs: number): Promise<boolean> {
    const ready = (): boolean => names.every((n) => this.get(n) !== undefined);
    if (ready()) return true;
    return new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (!ready()) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private file(name: string): SecretEntry | undefined {
    const cached = this.files.get(name);
    if (cached) return cached;
    const loaded = this.loadFile(name);
    if (loaded) this.files.set(name, loaded);
    return loaded;
  }

  private loadFile(name: string): (SecretEntry & { watch: FileWatch }) | undefined {
    try {
      let value: SecretValue;
      let paths: string[];
      if (name === SYSTEM_ROOT) {
        value = { kind: 'validation', ca: rootCertificates.join('\n') };
        paths = [];
      } else if (name.startsWith(FILE_ROOT_PREFIX)) {
        const path = name.slice(FILE_ROOT_PREFIX.length);
        const ca = readFileSync(path, 'utf8');
        checkCertificate(ca, `${name}: ${path}`);
        value = { kind: 'validation', ca };
        paths = [path];
      } else {
        const rest = name.slice(FILE_CERT_PREFIX.length);
        const i = rest.indexOf('~');
        if (i < 0) throw new Error(`expected file-cert:<cert>~<key>`);
        const certPath = rest.slice(0, i);
        const keyPath = rest.slice(i + 1);
        const cert = readFileSync(certPath, 'utf8');
        const key = readFileSync(keyPath, 'utf8');
        checkCertificate(cert, `${name}: ${certPath}`);
        checkKey(key, `${name}: ${keyPath}`);
        value = { kind: 'certificate', cert, key };
        paths = [certPath, keyPath];
      }
      const json: Secret = { name };
      return { name, value, version: ++this.version, versionInfo: '', lastUpdated: new Date().toISOString(), json, watch: { paths, mtimes: mtimes(paths) } };
    } catch (e) {
      this.log.warn(
        { secret: name, err: (e as Error).message },
        'cannot load the certificate files of this secret (mounted into the gateway pod?): handshakes using it fail until they are readable',
      );
      return undefined;
    }
  }

  /** Re-reads file secrets whose files changed (Kubernetes updates mounted Secrets in place). */
  refreshFiles(): void {
    for (const [name, e] of this.files) {
      if (e.watch.paths.length === 0 || mtimes(e.watch.paths) === e.watch.mtimes) continue;
      const next = this.loadFile(name);
      if (next) {
        this.files.set(name, next);
        this.log.info({ secret: name }, 'certificate files changed: new handshakes use them');
      }
    }
  }

  /** Envoy's SecretsConfigDump with private keys redacted. */
  configDump(): Json {
    const active = [...this.ads.values(), ...this.files.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      '@type': T.secrets,
      dynamic_active_secrets: active.map((e) => ({
        name: e.name,
        version_info: e.versionInfo,
        last_updated: e.lastUpdated,
        secret: { '@type': SECRET_TYPE, ...redact(e) },
      })),
    };
  }

  close(): void {
    if (this.poll) clearInterval(this.poll);
  }
}

function redact(e: SecretEntry): Secret {
  if (e.value.kind === 'certificate') {
    return {
      name: e.name,
      tls_certificate: { certificate_chain: { inline_bytes: Buffer.from(e.value.cert).toString('base64') }, private_key: { inline_bytes: REDACTED } },
    };
  }
  return { name: e.name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(e.value.ca).toString('base64') } } };
}

function mtimes(paths: readonly string[]): string {
  return paths
    .map((p) => {
      try {
        const s = statSync(p);
        return `${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

/** SDS names referenced in these resources: served over ADS, and resolved locally (file-cert / file-root). */
export function referencedSecretNames(resources: readonly unknown[]): { ads: string[]; files: string[] } {
  const files = new Set<string>();
  const out = new Set<string>();
  const visit = (v: unknown, inSds: boolean): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, inSds);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Json;
    if (inSds && typeof o.name === 'string') {
      const cfg = o.sds_config as Json | undefined;
      if (cfg?.ads !== undefined) out.add(o.name);
      else files.add(o.name);
      return;
    }
    for (const [k, x] of Object.entries(o)) visit(x, k === 'tls_certificate_sds_secret_configs' || k === 'validation_context_sds_secret_config');
  };
  visit(resources, false);
  return { ads: [...out].sort(), files: [...files].sort() };
}
