// Runs helm for the chart tests: the binary from scripts/fetch-helm.sh (or $MESHGATE_HELM), with its cache,
// config and data directories in a temporary directory so tests never read or write the user's helm state.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const GATEWAY_CHART = join(REPO, 'charts/gateway');
export const BASE_CHART = join(REPO, 'charts/base');

interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

let helmPath: string | undefined;
let helmHome: string | undefined;

function helmBinary(): string {
  if (helmPath) return helmPath;
  const override = process.env.MESHGATE_HELM;
  if (override) {
    helmPath = override;
    return helmPath;
  }
  const script = join(REPO, 'scripts/fetch-helm.sh');
  if (!existsSync(script)) throw new Error(`${script} is missing: the chart tests get helm from it`);
  // The script prints the directory holding helm and kubectl on its last line of stdout.
  const out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  const dir = out.trim().split('\n').at(-1) ?? '';
  const bin = join(dir, 'helm');
  if (!existsSync(bin)) throw new Error(`scripts/fetch-helm.sh printed '${dir}', which holds no helm binary`);
  helmPath = bin;
  return helmPath;
}

function helmEnv(): NodeJS.ProcessEnv {
  if (!helmHome) {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-helm-'));
    helmHome = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return {
    PATH: process.env.PATH,
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    // No cluster: helm must not pick up the user's kubeconfig.
    KUBECONFIG: join(helmHome, 'no-kubeconfig'),
  };
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmResult {
  const r = spawnSync(helmBinary(), args, { encoding: 'utf8', env: helmEnv(), timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface RenderOptions {
  namespace?: string;
  /** --set name=value pairs (helm's type inference applies). */
  set?: Record<string, string | number | boolean>;
  /** --set-json name=JSON pairs. */
  setJson?: Record<string, unknown>;
  /** -f files, relative to the repository. */
  values?: string[];
}

export function renderArgs(chart: string, release: string, o: RenderOptions = {}): string[] {
  const args = [release, chart, '--namespace', o.namespace ?? 'istio-system'];
  for (const f of o.values ?? []) args.push('--values', join(REPO, f));
  for (const [k, v] of Object.entries(o.set ?? {})) args.push('--set', `${k}=${String(v)}`);
  for (const [k, v] of Object.entries(o.setJson ?? {})) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
  return args;
}

/** `helm template`, parsed into objects; throws with helm's message when rendering fails. */
export function template(chart: string, release: string, o: RenderOptions = {}): K8sObject[] {
  const r = helm(['template', ...renderArgs(chart, release, o)]);
  if (r.status !== 0) throw new Error(`helm template ${release} failed: ${r.stderr}`);
  return parseManifests(r.stdout);
}

/** `helm template` that must fail: returns helm's error output. */
export function templateError(chart: string, release: string, o: RenderOptions = {}): string {
  const r = helm(['template', ...renderArgs(chart, release, o)]);
  if (r.status === 0) throw new Error(`helm template ${release} succeeded, expected a failure`);
  return r.stderr;
}

export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`invalid YAML from helm: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    out.push(value as K8sObject);
  }
  return out;
}

export function only<T extends K8sObject>(objects: K8sObject[], kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as T;
}

export function ofKind<T extends K8sObject>(objects: K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}
