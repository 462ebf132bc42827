// The proxy.istio.io/config annotation against Istio's own code: for each annotation, the oracle applies it as
// pilot-agent does (mesh.ApplyProxyConfig over the mesh defaultConfig) and istiod builds the gateway's HTTP
// connection manager from it; meshgate's translator gets the same annotation. Both must agree on
// xff_num_trusted_hops and the XFCC settings, and on which annotations cannot be applied at all (the oracle
// exits, as pilot-agent does not start; meshgate serves no listener and reports the annotation).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ObjectStore } from '../../controller/model/store.ts';
import { parseMeshConfig } from '../../controller/model/mesh-config.ts';
import { translate } from '../../controller/translate/translate.ts';
import { unpackAny } from '../../xds/envoy.ts';
import { HCM_TYPE } from '../../xds/type-urls.ts';

const run = promisify(execFile);

function oracle(): string {
  if (process.env.ISTIOD_ORACLE) return process.env.ISTIOD_ORACLE;
  const out = execFileSync('bash', [join(import.meta.dirname, 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

const GATEWAY = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'gw', namespace: 'default' },
  spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
};

/** The mesh default under every case: a gatewayTopology the annotation must replace or keep. */
const MESH = 'defaultConfig:\n  gatewayTopology: {numTrustedProxies: 9, forwardClientCertDetails: APPEND_FORWARD}\n';

/** What the gateway's HCM says about trusted hops and XFCC, or that there is none (the annotation was refused). */
type Hcm = { xff: number; xfcc: string; current: boolean } | 'refused';

const ANNOTATIONS = [
  '{"gatewayTopology":{"numTrustedProxies":2}}',
  'gatewayTopology:\n  numTrustedProxies: 2\n',
  '{"gateway_topology":{"num_trusted_proxies":3}}',
  '{"gatewayTopology":{"numTrustedProxies":"4"}}',
  '{"gatewayTopology":{"numTrustedProxies":2,"num_trusted_proxies":5}}',
  '{"gatewayTopology":{"num_trusted_proxies":5,"numTrustedProxies":2}}',
  '{"gatewayTopology":{"numTrustedProxies":2.0}}',
  '{"gatewayTopology":{"numTrustedProxies":null}}',
  '{"gatewayTopology":null,"concurrency":2}',
  '{"gatewayTopology":{}}',
  '{"gatewayTopology":{"numTrustedProxies":1},"unknownField":{"a":1}}',
  '{"gatewayTopology":{"numTrustedProxies":1,"unknownField":true}}',
  'null',
  '{"gatewayTopology":{"forwardClientCertDetails":"SANITIZE"}}',
  '{"gatewayTopology":{"forwardClientCertDetails":"FORWARD_ONLY"}}',
  '{"gatewayTopology":{"forwardClientCertDetails":"SANITIZE_SET"}}',
  '{"gatewayTopology":{"forwardClientCertDetails":"ALWAYS_FORWARD_ONLY"}}',
  '{"gatewayTopology":{"forwardClientCertDetails":"UNDEFINED","numTrustedProxies":1}}',
  '{"gatewayTopology":{"forwardClientCertDetails":3}}',
  // Refused by both.
  '{"gatewayTopology":{"numTrustedProxies":1.5}}',
  '{"gatewayTopology":{"numTrustedProxies":-1}}',
  '{"gatewayTopology":{"numTrustedProxies":"two"}}',
  '{"gatewayTopology":{"numTrustedProxies":"007"}}',
  '{"gatewayTopology":{"numTrustedProxies":4294967296}}',
  'gatewayTopology: {numTrustedProxies: yes}',
  '{"gatewayTopology":{"forwardClientCertDetails":"sanitize"}}',
  '{"gatewayTopology":{"forwardClientCertDetails":"3"}}',
  '{"gatewayTopology":2}',
  '{"gatewayTopology":{"proxyProtocol":true}}',
  '{"gatewayTopology": {',
  '[1]',
  'hello',
];

function meshgateHcm(annotation: string): Hcm {
  const parsed = parseMeshConfig(MESH);
  assert.ok(parsed.ok);
  const store = new ObjectStore();
  store.upsert('Gateway', structuredClone(GATEWAY));
  const identity = {
    namespace: 'istio-system',
    podName: 'istio-ingressgateway-0',
    labels: { istio: 'ingressgateway' },
    annotations: { 'proxy.istio.io/config': annotation },
  };
  const { resources } = translate(store.snapshot(), identity, undefined, parsed.mesh);
  const f = resources.listeners[0]?.filter_chains?.[0]?.filters?.[0]?.typed_config;
  if (!f) return 'refused';
  const h = unpackAny(f, HCM_TYPE);
  return {
    xff: h.xff_num_trusted_hops ?? 0,
    xfcc: String(h.forward_client_cert_details ?? 'SANITIZE'),
    current: h.set_current_client_cert_details !== undefined,
  };
}

async function istiodHcm(bin: string, dir: string, annotation: string): Promise<Hcm> {
  try {
    const { stdout } = await run(bin, ['--config', join(dir, 'gateway.json'), '--mesh', join(dir, 'mesh.yaml'), '--proxy-config', annotation], {
      timeout: 120_000,
    });
    const out = JSON.parse(stdout) as { listeners: { filter_chains?: { filters?: { typed_config?: Record<string, unknown> }[] }[] }[] };
    const h = out.listeners[0]?.filter_chains?.[0]?.filters?.[0]?.typed_config;
    assert.ok(h, 'istiod built a listener');
    return {
      xff: (h.xff_num_trusted_hops as number | undefined) ?? 0,
      xfcc: typeof h.forward_client_cert_details === 'string' ? h.forward_client_cert_details : 'SANITIZE',
      current: h.set_current_client_cert_details !== undefined,
    };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    if (e.code === 2 && /--proxy-config: /.test(e.stderr ?? '')) return 'refused';
    throw err;
  }
}

describe('istiod differential: the proxy.istio.io/config annotation over the mesh defaultConfig', () => {
  const bin = oracle();
  const dir = mkdtempSync(join(tmpdir(), 'istiod-proxy-config-'));
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify(GATEWAY));
  writeFileSync(join(dir, 'mesh.yaml'), MESH);

  for (const annotation of ANNOTATIONS) {
    test(JSON.stringify(annotation), async () => {
      assert.deepEqual(meshgateHcm(annotation), await istiodHcm(bin, dir, annotation));
    });
  }

  // Where meshgate refuses what istiod sends on: it cannot serve what istiod would generate.
  const REFUSED_BY_MESHGATE_ONLY = [
    // istiod adds Envoy's PROXY protocol listener filter, which meshgate's proxy does not implement.
    '{"gatewayTopology":{"numTrustedProxies":1,"proxyProtocol":{}}}',
    // istiod sends forward_client_cert_details 6, a value Envoy's enum does not have (Envoy rejects the listener).
    '{"gatewayTopology":{"forwardClientCertDetails":7}}',
  ];
  for (const annotation of REFUSED_BY_MESHGATE_ONLY) {
    test(`refused by meshgate only: ${JSON.stringify(annotation)}`, async () => {
      assert.equal(meshgateHcm(annotation), 'refused');
      assert.notEqual(await istiodHcm(bin, dir, annotation), 'refused');
    });
  }

  test('cleanup', () => rmSync(dir, { recursive: true, force: true }));
});
