// `meshgate validate --kubeconfig` against a real kube-apiserver: objects with mistakes the API server accepts
// (no istiod webhook in front of it) are listed from the cluster and reported with Istio's codes; -n keeps
// one namespace's findings; a clean namespace exits 0. istioctl analyze (the oracle's Istio commit, istioctl.sh)
// on the same cluster reports the same findings for those codes: the gateway analyzers that need Pods, Services
// and Secrets, which istioctl skips on files (e2e/istiod/analyze.test.ts compares the others).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { KubeObject } from '../../controller/model/objects.ts';
import { MESSAGES } from '../../controller/analyze/messages.ts';
import { execFileSync } from 'node:child_process';
import { REPO } from '../lib/process.ts';
import { type Cluster, startCluster } from './cluster.ts';
import { Kube, createPod, createService } from './kube.ts';
import { installCrds } from './suite.ts';

interface Row {
  code: string;
  level: string;
  origin: string;
  message: string;
  field?: string;
  reference?: string;
}

/** istioctl as e2e/istiod/istioctl.sh builds it (cached; Go needed on a cold machine, as for the API server). */
function built(script: string): string {
  const out = execFileSync('bash', [join(REPO, script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

function validate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO, 'cli/main.ts'), 'validate', ...args], { cwd: REPO, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('kubernetes: meshgate validate --kubeconfig', () => {
  let cluster: Cluster;
  let kube: Kube;
  // On a shared cluster (E2E_KUBECONFIG) the test's namespaces are its own.
  const id = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const external = process.env.E2E_KUBECONFIG !== undefined;
  const ns = external
    ? { gw: `mgval-${id}-system`, app: `mgval-${id}-app`, bad: `mgval-${id}-bad`, clean: `mgval-${id}-clean` }
    : { gw: 'istio-system', app: 'shop', bad: 'bad', clean: 'clean' };

  before(
    async () => {
      cluster = await startCluster();
      kube = new Kube(cluster.kubeconfig);
      await installCrds(cluster, kube, ns.gw);
      for (const n of Object.values(ns)) await kube.ensureNamespace(n);
      // The gateway workload and its Service (80 -> 8080), as the chart makes them.
      await createPod(kube, {
        name: 'istio-ingressgateway-0',
        namespace: ns.gw,
        ip: '127.0.0.1',
        labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
      });
      await createService(kube, {
        name: 'istio-ingressgateway',
        namespace: ns.gw,
        ports: [{ name: 'http2', port: 80, targetPort: 8080 }],
        selector: { istio: 'ingressgateway' },
      });
      await createService(kube, { name: 'shop', namespace: ns.app, ports: [{ name: 'http', port: 8000, targetPort: 8000 }] });
      await createService(kube, {
        name: 'multi',
        namespace: ns.app,
        ports: [
          { name: 'http', port: 80, targetPort: 8080 },
          { name: 'grpc', port: 9000, targetPort: 9000 },
        ],
      });
      const gw = (name: string, selector: Record<string, string>, servers: unknown[]): KubeObject => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { name, namespace: ns.app },
        spec: { selector, servers },
      });
      const http = (hosts: string[], number = 80): unknown => ({ port: { number, name: `http-${number}`, protocol: 'HTTP' }, hosts });
      const https = (hosts: string[], credentialName: string): unknown => ({
        port: { number: 443, name: `https-${credentialName}`, protocol: 'HTTPS' },
        hosts,
        tls: { mode: 'SIMPLE', credentialName },
      });
      const vs = (namespace: string, name: string, spec: unknown): KubeObject => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name, namespace },
        spec,
      });
      const garbage = Buffer.from('-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n').toString('base64');
      const objects: KubeObject[] = [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'garbage-cert', namespace: ns.gw },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': garbage, 'tls.key': garbage },
        },
        gw('shop', { istio: 'ingressgateway' }, [http(['shop.example.com']), https(['shop.example.com'], 'shop-cert'), http(['shop.example.com'], 9090)]),
        gw('shop-copy', { istio: 'ingressgateway' }, [http(['shop.example.com', 'copy.example.com'])]),
        gw('garbage', { istio: 'ingressgateway' }, [https(['garbage.example.com'], 'garbage-cert')]),
        gw('nowhere', { app: 'nothing' }, [http(['nowhere.example.com'])]),
        vs(ns.app, 'shop-v2', { hosts: ['shop.example.com'], gateways: ['shop'], http: [{ route: [{ destination: { host: 'shop', subset: 'v2' } }] }] }),
        vs(ns.app, 'multi', { hosts: ['multi.example.com'], gateways: ['mesh'], http: [{ route: [{ destination: { host: 'multi' } }] }] }),
        vs(ns.app, 'badport', {
          hosts: ['badport.example.com'],
          gateways: ['mesh'],
          http: [{ route: [{ destination: { host: 'shop', port: { number: 80 } } }] }],
        }),
        vs(ns.app, 'typo', { hosts: ['copy.example.com'], gateways: ['shop-copy'], http: [{ route: [{ destination: { host: 'shopp' } }] }] }),
        vs(ns.bad, 'regex', {
          hosts: ['bad.example.com'],
          gateways: ['mesh'],
          http: [{ match: [{ uri: { regex: '[a-' } }], route: [{ destination: { host: 'shop.' + ns.app + '.svc.cluster.local' } }] }],
        }),
        vs(ns.clean, 'fine', {
          hosts: ['fine.example.com'],
          gateways: ['mesh'],
          http: [{ route: [{ destination: { host: 'shop.' + ns.app + '.svc.cluster.local' } }] }],
        }),
      ];
      for (const o of objects) await kube.apply(o);
      // A kind meshgate does not implement (e2e/kube/kube.ts's paths do not name it).
      await kube.client.json('POST', `/apis/networking.istio.io/v1alpha3/namespaces/${ns.bad}/envoyfilters`, {
        body: { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'lua', namespace: ns.bad }, spec: { configPatches: [] } },
      });
    },
    { timeout: 60 * 60_000 },
  );
  after(async () => {
    if (external) for (const n of Object.values(ns)) await kube.remove('Namespace', undefined, n).catch(() => undefined);
    await cluster.stop();
  });

  const line = (x: Row): string => `${x.level} [${x.code}] (${x.origin}) ${x.message.replace(/number:\s+/g, 'number:')}`;

  test('reports what the API server accepted but the gateway cannot serve, exit 1', async () => {
    const r = await validate(['--kubeconfig', cluster.kubeconfig, '-o', 'json', '-n', ns.app]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '');
    const rows = JSON.parse(r.stdout) as Row[];
    const a = ns.app;
    assert.deepEqual(rows.map(line), [
      `Error [IST0101] (Gateway ${a}/nowhere) Referenced selector not found: "app=nothing"`,
      `Error [IST0101] (Gateway ${a}/shop) Referenced credentialName not found: "shop-cert"`,
      `Error [IST0101] (VirtualService ${a}/badport) Referenced host:port not found: "shop:80"`,
      `Error [IST0101] (VirtualService ${a}/shop-v2) Referenced host+subset in destinationrule not found: "shop+v2"`,
      `Error [IST0101] (VirtualService ${a}/typo) Referenced host not found: "shopp"`,
      `Error [IST0112] (VirtualService ${a}/multi) This VirtualService routes to a service "multi" that exposes multiple ports [80 9000]. Specifying a port in the destination is required to disambiguate.`,
      // istioctl's order: kind/name/namespace as one string, so shop-copy ('-') sorts before shop ('/').
      `Error [IST0145] (Gateway ${a}/shop-copy) Conflict with gateways ${a}/shop (workload selector istio=ingressgateway, port 80, hosts shop.example.com,copy.example.com).`,
      `Error [IST0145] (Gateway ${a}/shop) Conflict with gateways ${a}/shop-copy (workload selector istio=ingressgateway, port 80, hosts shop.example.com).`,
      `Error [IST0161] (Gateway ${a}/garbage) The credential referenced by the Gateway garbage in namespace ${ns.gw} is invalid, which can cause the traffic not to work as expected.`,
      `Warning [IST0162] (Gateway ${a}/garbage) The gateway is listening on a target port (port 443) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.`,
      `Warning [IST0162] (Gateway ${a}/shop) The gateway is listening on a target port (port 443) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.`,
      `Warning [IST0162] (Gateway ${a}/shop) The gateway is listening on a target port (port 9090) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.`,
    ]);
    // Objects from the API server have no file: no reference.
    assert.ok(rows.every((x) => x.reference === undefined));
  });

  test('an object istiod would have refused (no webhook here): IST0106 at its field; a kind meshgate ignores: MG0005', async () => {
    const r = await validate(['--kubeconfig', cluster.kubeconfig, '-o', 'json', '-n', ns.bad]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '');
    const rows = JSON.parse(r.stdout) as Row[];
    assert.deepEqual(
      rows.map((x) => [x.code, x.origin, x.field]),
      [
        ['IST0106', `VirtualService ${ns.bad}/regex`, 'spec.http[0].match[0].uri.regex'],
        ['MG0005', `EnvoyFilter ${ns.bad}/lua`, undefined],
      ],
    );
  });

  test('istioctl analyze on the same cluster: the same findings for the codes validate reports', async () => {
    const istioctl = process.env.ISTIOCTL ?? built('e2e/istiod/istioctl.sh');
    const theirs = await new Promise<Row[]>((resolve, reject) => {
      execFile(istioctl, ['analyze', '--kubeconfig', cluster.kubeconfig, '--all-namespaces', '-o', 'json'], { timeout: 180_000 }, (err, stdout, stderr) => {
        if (err && !stdout.trim().startsWith('[')) reject(new Error(`istioctl analyze failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Row[]);
      });
    });
    const r = await validate(['--kubeconfig', cluster.kubeconfig, '-o', 'json']);
    const ours = JSON.parse(r.stdout) as Row[];
    const codes = new Set<string>(Object.values(MESSAGES).map((m) => m.code));
    // The namespace of objects istiod would have refused is left out: istioctl analyzes them further, validate does not.
    const compared = (rows: Row[]): string[] =>
      rows
        .filter((x) => codes.has(x.code) && x.origin.includes(` ${ns.app}/`))
        .map(line)
        .sort();
    assert.deepEqual(compared(ours), compared(theirs));
    assert.equal(compared(ours).length, 12);
  });

  test('a namespace without mistakes: exit 0 and the success line', async () => {
    const r = await validate(['--kubeconfig', cluster.kubeconfig, '-n', ns.clean]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`No validation issues found when analyzing namespace: ${ns.clean}\\.`));
  });

  test('a kubeconfig that does not exist: exit 1 naming it', async () => {
    const r = await validate(['--kubeconfig', join(REPO, 'no-such-kubeconfig')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kubeconfig .*no-such-kubeconfig does not exist/);
  });
});
