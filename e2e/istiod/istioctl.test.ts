// istioctl against meshgate: `istioctl proxy-config` (built from the Istio commit the oracle is built from,
// by istioctl.sh) reads a running `meshgate local`'s /config_dump?include_eds and /clusters?format=json, as
// it reads an Istio gateway's. Every view that works from files must parse them and show what the config
// holds; and the listeners, routes, clusters and eds views must show the same rows for meshgate's dump as
// for the dump of istiod's own translation of the same config (the oracle's --format config_dump), and
// the endpoints meshgate applied (/clusters) the endpoints istiod sent. The proxy's live configuration is
// also held to the differential: what it dumps differs from istiod only as allowlist.ts allows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { adminClient, meshgateLocal } from '../lib/gateway.ts';
import { CertFactory, secretYaml } from '../lib/certs.ts';
import { eventually, freePort, type Proc } from '../lib/process.ts';
import { allowedBy } from './allowlist.ts';
import type { DiffCase } from './cases.ts';
import { istiodResources } from './istiod-side.ts';
import { compare, formatDifference, type Difference, type Resources } from './normalize.ts';

const run = promisify(execFile);
type Json = Record<string, unknown>;

/** A binary from $<env>, else built (or found in the cache) by <script>, whose progress goes to stderr. */
function built(env: string, script: string): string {
  const fromEnv = process.env[env];
  if (fromEnv) return fromEnv;
  const out = execFileSync('bash', [join(import.meta.dirname, script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

/** The gateway's objects: HTTP, HTTPS (a Secret's certificate) and TCP servers, subsets, a ready and a not-ready pod, a ServiceEntry. */
function configYaml(ports: { http: number; https: number; tcp: number }, cert: { cert: string; key: string }): string {
  return `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system, labels: {app: istio-ingressgateway, istio: ingressgateway}}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${ports.http}, protocol: TCP}
  - {name: https, port: 443, targetPort: ${ports.https}, protocol: TCP}
  - {name: tcp, port: 31400, targetPort: ${ports.tcp}, protocol: TCP}
---
${secretYaml('shop-cert', 'istio-system', { 'tls.crt': cert.cert, 'tls.key': cert.key }, 'kubernetes.io/tls')}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [shop.example.com]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop-cert}
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: default, labels: {app: shop}}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 8000, targetPort: 9000}]
---
apiVersion: v1
kind: Pod
metadata: {name: shop-v1, namespace: default, labels: {app: shop, version: v1}}
status: {podIP: 127.0.0.2, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: shop-v2, namespace: default, labels: {app: shop, version: v2}}
status: {podIP: 127.0.0.3, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shop-slice, namespace: default, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 9000, protocol: TCP}]
endpoints:
- {addresses: ["127.0.0.2"], conditions: {ready: true}, targetRef: {kind: Pod, name: shop-v1, namespace: default}}
- {addresses: ["127.0.0.3"], conditions: {ready: false, terminating: false}, targetRef: {kind: Pod, name: shop-v2, namespace: default}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: default}
spec:
  host: shop.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [shop]
  http:
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: shop, subset: v2}}]
  - route: [{destination: {host: shop, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-tcp, namespace: default}
spec:
  hosts: ["*"]
  gateways: [shop]
  tcp:
  - route: [{destination: {host: shop.default.svc.cluster.local, port: {number: 8000}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: default}
spec:
  hosts: [payments.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.4}]
`;
}

/** A tabular view as a sorted list of rows, each cell separated by one space (the column widths differ between dumps). */
function rows(table: string): string[] {
  return table
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/).join(' '))
    .filter((l) => l !== '')
    .sort();
}

/** What istiod sends, out of meshgate's config dump: the dynamic resources, without the bootstrap's or the secrets. */
function dynamicOnly(dump: { configs: Json[] }): { configs: Json[] } {
  const keep: Record<string, string> = {
    'type.googleapis.com/envoy.admin.v3.ClustersConfigDump': 'dynamic_active_clusters',
    'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump': 'dynamic_endpoint_configs',
    'type.googleapis.com/envoy.admin.v3.ListenersConfigDump': 'dynamic_listeners',
    'type.googleapis.com/envoy.admin.v3.RoutesConfigDump': 'dynamic_route_configs',
  };
  return {
    configs: dump.configs.flatMap((c) => {
      const field = keep[String(c['@type'])];
      return field ? [{ '@type': c['@type'], [field]: c[field] ?? [] }] : [];
    }),
  };
}

/** The resources of a config dump's dynamic part, as the differential compares them. */
function dumpResources(dump: { configs: Json[] }): Resources {
  const dyn = dynamicOnly(dump).configs;
  const list = (field: string, inner: (e: Json) => unknown): Json[] =>
    dyn.flatMap((c) => ((c[field] as Json[] | undefined) ?? []).map((e) => inner(e) as Json)).map(({ ['@type']: _, ...r }) => r);
  return {
    listeners: list('dynamic_listeners', (e) => (e.active_state as Json).listener),
    routes: list('dynamic_route_configs', (e) => e.route_config),
    clusters: list('dynamic_active_clusters', (e) => e.cluster),
    endpoints: list('dynamic_endpoint_configs', (e) => e.endpoint_config),
    rejected: [],
  };
}

/**
 * Drops from a dump the resources an allowlisted difference has on one side only (a cluster meshgate
 * deliberately does not build): their rows are not compared.
 */
function withoutAllowedAbsences(dump: { configs: Json[] }, diffs: Difference[], side: 'istiod' | 'meshgate'): { configs: Json[] } {
  const gone = new Set(
    diffs.filter((d) => d.path === '' && d[side] !== undefined && (side === 'istiod' ? d.meshgate : d.istiod) === undefined).map((d) => d.resource),
  );
  const name = (e: Json): string => {
    const inner = (e.cluster ?? e.route_config ?? e.endpoint_config ?? (e.active_state as Json | undefined)?.listener) as Json | undefined;
    const n = inner?.name ?? inner?.cluster_name;
    return typeof n === 'string' ? n : '';
  };
  return {
    configs: dump.configs.map((c) => {
      const out: Json = { ...c };
      for (const [k, v] of Object.entries(c)) if (Array.isArray(v)) out[k] = (v as Json[]).filter((e) => !gone.has(name(e)));
      return out;
    }),
  };
}

/** Envoy's admin shows a host's EDS health as setHealthFlag derives it: UNKNOWN is HEALTHY, TIMEOUT is UNHEALTHY. */
const ADMIN_HEALTH: Readonly<Record<string, string>> = { UNKNOWN: 'HEALTHY', TIMEOUT: 'UNHEALTHY' };

/** INSTALLED_MESH_CONFIG as a mesh config file. */
const INSTALLED_MESH_YAML = 'defaultProviders:\n  metrics: [prometheus]\n';

describe('istioctl proxy-config on a running meshgate, against istiod', () => {
  const istioctl = built('ISTIOCTL', 'istioctl.sh');
  const oracle = built('ISTIOD_ORACLE', 'build.sh');
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-istioctl-'));
  const certs = new CertFactory();
  const files = {
    dump: join(dir, 'config_dump.json'),
    clusters: join(dir, 'clusters.json'),
    dynamic: join(dir, 'dynamic.json'),
    istiod: join(dir, 'istiod.json'),
  };
  const config = join(dir, 'config');
  let proc: Proc | undefined;
  let ports = { http: 0, https: 0, tcp: 0 };
  let meshgateDump: { configs: Json[] } = { configs: [] };
  let istiodDump: { configs: Json[] } = { configs: [] };
  let differences: Difference[] = [];
  let serial = '';

  const pc = async (view: string, file: string, ...flags: string[]): Promise<string> => {
    const { stdout } = await run(istioctl, ['proxy-config', view, '--file', file, ...flags], { timeout: 60_000, maxBuffer: 64 << 20 });
    return stdout;
  };

  before(async () => {
    ports = { http: await freePort(), https: await freePort(), tcp: await freePort() };
    const ca = certs.ca('istioctl-ca');
    const leaf = certs.leaf(ca, 'shop.example.com', { dns: ['shop.example.com'] });
    // istioctl prints the serial as Go's %x of a big.Int: no leading zeros, where openssl pads to whole bytes
    // (a serial starting with a 0 nibble, one certificate in 16, failed here before).
    serial = execFileSync('openssl', ['x509', '-noout', '-serial', '-in', leaf.certFile], { encoding: 'utf8' })
      .trim()
      .replace(/^serial=/, '')
      .toLowerCase()
      .replace(/^0+(?=.)/, '');
    const yaml = configYaml(ports, leaf);
    mkdirSync(config);
    writeFileSync(join(config, 'objects.yaml'), yaml);

    const gw = await meshgateLocal(config);
    proc = gw.proc;
    const { adminGet } = adminClient(gw.admin);
    // Applied: every listener, the endpoints of both subsets, and the certificate.
    const live = await eventually(
      'the config to apply',
      async () => {
        const dump = await adminGet('/config_dump?include_eds');
        const clusters = await adminGet('/clusters?format=json');
        const ready =
          [ports.http, ports.https, ports.tcp].every((p) => dump.includes(`"0.0.0.0_${p}"`)) &&
          dump.includes('kubernetes://shop-cert') &&
          clusters.includes('"127.0.0.2"') &&
          clusters.includes('"127.0.0.3"') &&
          clusters.includes('"127.0.0.4"');
        return ready ? { dump, clusters } : undefined;
      },
      30_000,
      200,
    );
    writeFileSync(files.dump, live.dump);
    writeFileSync(files.clusters, live.clusters);
    meshgateDump = JSON.parse(live.dump) as { configs: Json[] };

    const c: DiffCase = {
      name: 'istioctl',
      identity: { namespace: 'istio-system', podName: 'istio-ingressgateway', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' } },
      yaml,
      // meshgate local without --mesh-config runs with an Istio install's mesh (INSTALLED_MESH_CONFIG: istiod's
      // chart turns Istio's standard metrics on); istiod gets the same.
      mesh: INSTALLED_MESH_YAML,
    };
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, INSTALLED_MESH_YAML);
    const [istiod, { stdout }] = await Promise.all([
      istiodResources(oracle, c),
      run(oracle, ['--config', config, '--mesh', meshFile, '--format', 'config_dump'], { timeout: 120_000, maxBuffer: 256 << 20 }),
    ]);
    assert.deepEqual(istiod.rejections, [], 'istiod accepts every object');
    istiodDump = JSON.parse(stdout) as { configs: Json[] };
    differences = compare(istiod, dumpResources(meshgateDump));
    writeFileSync(files.dynamic, JSON.stringify(withoutAllowedAbsences(dynamicOnly(meshgateDump), differences, 'meshgate')));
    writeFileSync(files.istiod, JSON.stringify(withoutAllowedAbsences(istiodDump, differences, 'istiod')));
  });

  after(async () => {
    await proc?.stop();
    certs.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the proxy's live configuration differs from istiod's only as allowlist.ts allows", () => {
    const unexpected = differences.filter((d) => !allowedBy(d, 'istioctl')).map(formatDifference);
    assert.deepEqual(unexpected, []);
  });

  test('listeners: the HTTP, HTTPS (by SNI) and TCP listeners with their routes, and the bootstrap listeners', async () => {
    const r = rows(await pc('listeners', files.dump));
    for (const want of [
      `0.0.0.0 ${ports.http} ALL Route: http.${ports.http}`,
      `0.0.0.0 ${ports.https} SNI: shop.example.com Route: https.443.https.shop.default`,
      `0.0.0.0 ${ports.tcp} ALL Cluster: outbound|8000||shop.default.svc.cluster.local`,
    ])
      assert.ok(r.includes(want), `${want}\nin:\n${r.join('\n')}`);
    assert.ok(
      r.some((l) => l.endsWith('Inline Route: /healthz/ready*')),
      'the readiness listener of the bootstrap',
    );
  });

  test('routes: both route tables with the VirtualService', async () => {
    const r = rows(await pc('routes', files.dump));
    for (const table of [`http.${ports.http} shop.example.com:80`, 'https.443.https.shop.default shop.example.com:443'])
      for (const match of ['/v2*', '/*']) assert.ok(r.includes(`${table} shop.example.com ${match} shop.default`), `${table} ${match}\nin:\n${r.join('\n')}`);
  });

  test('clusters: outbound clusters per subset with the DestinationRule, the ServiceEntry, the bootstrap clusters', async () => {
    const r = rows(await pc('clusters', files.dump));
    for (const want of [
      'shop.default.svc.cluster.local 8000 - outbound EDS shop.default',
      'shop.default.svc.cluster.local 8000 v1 outbound EDS shop.default',
      'shop.default.svc.cluster.local 8000 v2 outbound EDS shop.default',
      'payments.example.com 8080 - outbound EDS',
      'xds-grpc - - - STATIC',
      'sds-grpc - - - STATIC',
    ])
      assert.ok(r.includes(want), `${want}\nin:\n${r.join('\n')}`);
  });

  test('endpoints (/clusters?format=json): addresses with their health, and the pipe hosts of the bootstrap', async () => {
    const r = rows(await pc('endpoints', files.clusters));
    for (const want of [
      '127.0.0.2:9000 HEALTHY OK outbound|8000|v1|shop.default.svc.cluster.local',
      '127.0.0.2:9000 HEALTHY OK outbound|8000||shop.default.svc.cluster.local',
      '127.0.0.3:9000 UNHEALTHY OK outbound|8000|v2|shop.default.svc.cluster.local',
      '127.0.0.4:8080 HEALTHY OK outbound|8080||payments.example.com',
      'unix://./var/run/secrets/workload-spiffe-uds/socket HEALTHY OK sds-grpc',
    ])
      assert.ok(r.includes(want), `${want}\nin:\n${r.join('\n')}`);
    const json = JSON.parse(await pc('endpoints', files.clusters, '-o', 'json', '--cluster', 'outbound|8000|v1|shop.default.svc.cluster.local')) as {
      name: string;
      hostStatuses: { address: { socketAddress: { address: string } }; healthStatus: { edsHealthStatus: string } }[];
    }[];
    assert.deepEqual(
      json.map((c) => [c.name, c.hostStatuses.map((h) => `${h.address.socketAddress.address} ${h.healthStatus.edsHealthStatus}`)]),
      [['outbound|8000|v1|shop.default.svc.cluster.local', ['127.0.0.2 HEALTHY']]],
    );
  });

  test('eds (config_dump include_eds): the assignments as received', async () => {
    const r = rows(await pc('eds', files.dump));
    assert.ok(r.includes('127.0.0.3:9000 UNHEALTHY outbound|8000|v2|shop.default.svc.cluster.local'), r.join('\n'));
    assert.ok(r.includes('127.0.0.2:9000 HEALTHY outbound|8000|v1|shop.default.svc.cluster.local'), r.join('\n'));
  });

  test("secret: the Gateway's certificate, active and valid", async () => {
    const r = rows(await pc('secret', files.dump));
    assert.equal(r.length, 1, r.join('\n'));
    assert.match(r[0] ?? '', new RegExp(`^kubernetes://shop-cert Cert Chain ACTIVE true ${serial} \\S+ \\S+$`));
  });

  test('bootstrap and all: the node, and every section', async () => {
    const boot = JSON.parse(await pc('bootstrap', files.dump, '-o', 'json')) as { bootstrap: { node: { id: string } } };
    assert.match(boot.bootstrap.node.id, /^router~/);
    const all = await pc('all', files.dump);
    for (const kind of ['cluster', 'listener', 'route', 'secret', 'endpoint']) assert.match(all, new RegExp(`^${kind}/`, 'm'), `${kind} section in:\n${all}`);
    assert.match(all, new RegExp(`^listener/0\\.0\\.0\\.0_${ports.http} `, 'm'));
  });

  for (const view of ['listeners', 'routes', 'clusters', 'eds']) {
    test(`${view}: the same rows as for istiod's own translation`, async () => {
      const [mine, theirs] = await Promise.all([pc(view, files.dynamic), pc(view, files.istiod)]);
      assert.ok(rows(theirs).length > 0, `istiod's ${view}:\n${theirs}`);
      assert.deepEqual(rows(mine), rows(theirs));
    });
  }

  test('endpoints: the hosts meshgate applied are the endpoints istiod sent, with the health Envoy shows', async () => {
    const applied = rows(await pc('endpoints', files.clusters))
      .map((l) => l.split(' '))
      .filter(([, , , cluster]) => cluster?.startsWith('outbound|'))
      .map(([ep, status, , cluster]) => `${ep} ${status} ${cluster}`)
      .sort();
    const sent = rows(await pc('eds', files.istiod))
      .map((l) => l.split(' '))
      .map(([ep, status, ...rest]) => `${ep} ${ADMIN_HEALTH[status ?? ''] ?? status} ${rest.at(-1)}`)
      .sort();
    assert.ok(sent.length > 0);
    assert.deepEqual(applied, sent);
  });
});
