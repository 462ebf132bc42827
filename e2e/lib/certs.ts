// Test certificates made with the openssl CLI (EC P-256, SHA-256): a CA, leaves signed by it with DNS/IP
// subject alt names, client certificates, and expired ones (`days: -1` gives notAfter in the past).
// Everything lives in a temporary directory the caller removes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
  /** Where the PEM files are (for file-path certificates in Gateways and DestinationRules). */
  certFile: string;
  keyFile: string;
}

export interface Ca extends KeyPair {
  name: string;
}

export class CertFactory {
  readonly dir = mkdtempSync(join(tmpdir(), 'meshgate-certs-'));
  private n = 0;

  private run(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  private read(base: string): KeyPair {
    return {
      cert: readFileSync(join(this.dir, `${base}.crt`), 'utf8'),
      key: readFileSync(join(this.dir, `${base}.key`), 'utf8'),
      certFile: join(this.dir, `${base}.crt`),
      keyFile: join(this.dir, `${base}.key`),
    };
  }

  ca(name: string): Ca {
    const base = `ca-${++this.n}`;
    this.run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-sha256',
      '-nodes',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.crt`,
      '-days',
      '30',
      '-subj',
      `/O=${name}/CN=${name}`,
    ]);
    return { name, ...this.read(base) };
  }

  /** A leaf signed by `ca`. `days: -1` makes it already expired; `uri`: URI SANs (SPIFFE identities). */
  leaf(ca: Ca, cn: string, o: { dns?: string[]; ip?: string[]; uri?: string[]; days?: number; client?: boolean } = {}): KeyPair {
    const base = `leaf-${++this.n}`;
    const sans = [...(o.dns ?? []).map((d) => `DNS:${d}`), ...(o.ip ?? []).map((i) => `IP:${i}`), ...(o.uri ?? []).map((u) => `URI:${u}`)];
    const ext = [`extendedKeyUsage=${o.client ? 'clientAuth' : 'serverAuth'}`, ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : [])].join('\n');
    writeFileSync(join(this.dir, `${base}.ext`), ext + '\n');
    this.run([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.csr`,
      '-subj',
      `/O=meshgate-e2e/CN=${cn}`,
    ]);
    this.run([
      'x509',
      '-req',
      '-sha256',
      '-in',
      `${base}.csr`,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-days',
      String(o.days ?? 30),
      '-extfile',
      `${base}.ext`,
      '-out',
      `${base}.crt`,
    ]);
    return this.read(base);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Secret data as `kubectl create secret` writes it (base64). */
export function secretYaml(name: string, namespace: string, data: Record<string, string>, type = 'Opaque'): string {
  const lines = Object.entries(data).map(([k, v]) => `  ${k}: ${Buffer.from(v).toString('base64')}`);
  return `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\ntype: ${type}\ndata:\n${lines.join('\n')}\n`;
}
