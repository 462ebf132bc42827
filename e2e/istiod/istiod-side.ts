// istiod's side of the differential: the oracle program (e2e/istiod/oracle, built by e2e/istiod/build.sh)
// run on a case's objects.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DiffCase } from './cases.ts';
import { PROXY_CONFIG_ANNOTATION } from '../../controller/model/proxy-config.ts';
import type { Resources } from './normalize.ts';

const run = promisify(execFile);

interface OracleOutput {
  listeners: Record<string, unknown>[];
  routes: Record<string, unknown>[];
  clusters: Record<string, unknown>[];
  endpoints: Record<string, unknown>[];
  rejected: { kind: string; namespace: string; name: string; error: string }[];
}

export async function istiodResources(oracle: string, c: DiffCase): Promise<Resources & { rejections: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'istiod-case-'));
  try {
    const file = join(dir, 'objects.yaml');
    writeFileSync(file, c.yaml);
    const labels = Object.entries(c.identity.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const args = ['--config', file, '--namespace', c.identity.namespace, '--name', c.identity.podName, '--labels', labels];
    // The pod's proxy.istio.io/config annotation, which istiod gets from the agent (node metadata PROXY_CONFIG).
    const proxyConfig = c.identity.annotations?.[PROXY_CONFIG_ANNOTATION];
    if (proxyConfig !== undefined) args.push('--proxy-config', proxyConfig);
    if (c.mesh !== undefined) {
      writeFileSync(join(dir, 'mesh.yaml'), c.mesh);
      args.push('--mesh', join(dir, 'mesh.yaml'));
    }
    const { stdout } = await run(oracle, args, {
      maxBuffer: 256 << 20,
      timeout: 120_000,
    });
    const out = JSON.parse(stdout) as OracleOutput;
    return {
      listeners: out.listeners,
      routes: out.routes,
      clusters: out.clusters,
      endpoints: out.endpoints,
      rejected: [...new Set(out.rejected.map((r) => `${r.kind} ${r.namespace}/${r.name}`))].sort(),
      rejections: out.rejected.map((r) => `${r.kind} ${r.namespace}/${r.name}: ${r.error}`),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
