// Mesh config input against istiod: which MeshConfig files istiod's own reader (mesh.ReadMeshConfig, run by the
// oracle's --mesh) accepts or refuses, and meshgate's parseMeshConfig on the same text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseMeshConfig } from '../../controller/model/mesh-config.ts';

const run = promisify(execFile);

/** The oracle binary: $ISTIOD_ORACLE, else built (or found in the cache) by build.sh. */
function oracle(): string {
  if (process.env.ISTIOD_ORACLE) return process.env.ISTIOD_ORACLE;
  const out = execFileSync('bash', [join(import.meta.dirname, 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

const CASES: string[] = [
  'rootNamespace: x',
  'root_namespace: x',
  'notAField: 1',
  'rootNamespace: [a]',
  'enableTracing: "yes please"',
  'enableTracing: yes',
  'trustDomain: "Not_Valid"',
  'trustDomain: "a.b."',
  'trustDomainAliases: ["Bad_Alias"]',
  'connectTimeout: 10',
  'connectTimeout: 1m',
  'connectTimeout: 0.5ms',
  'protocolDetectionTimeout: 100us',
  'proxyListenPort: 0',
  'accessLogEncoding: XML',
  'h2UpgradePolicy: UPGRADE',
  'ingressControllerMode: 7',
  '- a',
  'extensionProviders: [null]',
  'extensionProviders: {a: 1}',
  'extensionProviders:\n- name: x\n  envoyExtAuthzHttp: {}\n  envoyExtAuthzGrpc: {}',
  'extensionProviders:\n- name: x\n  zipkin: 1\n  envoyExtAuthzGrpc: {}',
  'extensionProviders:\n- name: x\n  envoyExtAuthzHttp: {port: -1}',
  'extensionProviders:\n- name: x\n  envoyExtAuthzHttp: {port: "80"}',
  'extensionProviders:\n- name: x\n  envoyExtAuthzHttp: {timeout: 5}',
  'extensionProviders:\n- name: x\n  envoyExtAuthzHttp: {failOpen: "true"}',
  'extensionProviders:\n- name: Bad_Name\n  envoyExtAuthzHttp: {service: "", port: 0, statusOnError: "999", pathPrefix: "x"}',
  'defaultConfig:\n  gatewayTopology:\n    numTrustedProxies: -1',
  'defaultConfig:\n  gatewayTopology:\n    numTrustedProxies: "2"',
  'defaultConfig:\n  gatewayTopology:\n    forwardClientCertDetails: NOPE',
  'defaultConfig:\n  drainDuration: 1.5s',
  'defaultConfig:\n  discoveryAddress: ""',
];

describe('mesh config: accepted or refused as istiod reads it', () => {
  const bin = oracle();
  const dir = mkdtempSync(join(tmpdir(), 'istiod-mesh-'));
  const identity = join(dir, 'objects.yaml');
  writeFileSync(identity, 'kind: Identity\nidentity: {namespace: istio-system, podName: gw-0, labels: {istio: ingressgateway}}\n');
  for (const [i, text] of CASES.entries()) {
    test(JSON.stringify(text), async () => {
      const file = join(dir, `mesh-${i}.yaml`);
      writeFileSync(file, `${text}\n`);
      const istiod = await run(bin, ['--config', identity, '--mesh', file]).then(
        () => 'accepted',
        (e: { stderr?: string }) => `refused (${String(e.stderr).trim()})`,
      );
      const mine = parseMeshConfig(`${text}\n`, file);
      assert.equal(
        mine.ok ? 'accepted' : 'refused',
        istiod.replace(/ \(.*/s, ''),
        `istiod ${istiod}; meshgate ${mine.ok ? 'accepted' : mine.errors.join('; ')}`,
      );
    });
  }
  test('cleanup', () => rmSync(dir, { recursive: true, force: true }));
});
