// `meshgate validate` against `istioctl analyze --use-kube=false` (built by istioctl.sh from the Istio commit the
// oracle is built from): on the repo's example and on configs with one kind of mistake each, the findings with the
// codes both report (code, object, message) are the same set. istioctl reads no Pod, Service or Secret from files
// (kuberesource.DefaultExcludedSchemas), so its analyzers that need them (a Gateway's workload, ports, Secrets and
// conflicts; destination hosts) skip; e2e/kube/validate.test.ts compares those against a real API server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigFile } from '../../controller/sources/local-dir.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import { analyze } from '../../controller/analyze/analyze.ts';
import { MESSAGES } from '../../controller/analyze/messages.ts';

/** The Istio codes meshgate validate reports: istioctl's other messages (sidecar injection, port names ...) are not compared. */
const COMPARED = new Set<string>(
  Object.values(MESSAGES)
    .map((m) => m.code)
    .filter((c) => c.startsWith('IST')),
);

const WORKLOAD = `apiVersion: v1
kind: Pod
metadata: {name: istio-ingressgateway-0, namespace: istio-system, labels: {istio: ingressgateway, app: istio-ingressgateway}}
spec:
  containers: [{name: istio-proxy, image: istio/proxyv2}]
---
`;
const GATEWAY_SERVICE = `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080, protocol: TCP}
  - {name: https, port: 443, targetPort: 8443, protocol: TCP}
---
`;
// The backends the routes name.
const BACKENDS = ['shop', 'other']
  .map(
    (n) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${n}, namespace: default}\nspec:\n  selector: {app: ${n}}\n  ports: [{name: http, port: 8000, protocol: TCP}]\n---\n`,
  )
  .join('');
/** The gateway's Service and the backends. */
const SERVICE = GATEWAY_SERVICE + BACKENDS;
const GATEWAY = (name: string, servers: string, selector = '{istio: ingressgateway}'): string => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: default}
spec:
  selector: ${selector}
  servers:
${servers}
---
`;
const HTTP80 = (hosts = '[shop.example.com]'): string => `  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ${hosts}`;
const VS = (name: string, spec: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
${spec}
---
`;
const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: default}
spec:
  host: shop
  subsets: [{name: v1, labels: {version: v1}}]
---
`;

const cases: { name: string; yaml: string; expectCodes: string[] }[] = [
  {
    name: 'a VirtualService bound to a missing Gateway and to hosts its Gateway lacks',
    yaml:
      WORKLOAD +
      SERVICE +
      GATEWAY('shop', HTTP80()) +
      VS('shop', `  hosts: [shop.example.com]\n  gateways: [shop, istio-system/missing]\n  http:\n  - route: [{destination: {host: shop}}]`) +
      VS('api', `  hosts: [api.example.com]\n  gateways: [shop]\n  http:\n  - route: [{destination: {host: shop}}]`),
    expectCodes: ['IST0101', 'IST0132', 'IST0132'],
  },
  {
    name: 'routes and mirrors to subsets no DestinationRule defines',
    yaml:
      WORKLOAD +
      SERVICE +
      DR +
      GATEWAY('shop', HTTP80()) +
      VS(
        'shop',
        `  hosts: [shop.example.com]\n  gateways: [shop]\n  http:\n  - route: [{destination: {host: shop, subset: v2}}]\n    mirror: {host: shop.default.svc.cluster.local, subset: v3}\n  tcp:\n  - route: [{destination: {host: other, subset: v1}}]`,
      ),
    expectCodes: ['IST0101', 'IST0101', 'IST0101'],
  },

  {
    name: 'two Gateways serving one certificate',
    yaml:
      WORKLOAD +
      SERVICE +
      ['shop', 'api']
        .map((n) =>
          GATEWAY(
            n,
            `  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [${n}.example.com]\n    tls: {mode: SIMPLE, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key}`,
          ),
        )
        .join(''),
    expectCodes: ['IST0138', 'IST0138'],
  },
  {
    name: 'DestinationRules originating TLS without a CA',
    yaml:
      WORKLOAD +
      SERVICE +
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext, namespace: default}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE}\n    portLevelSettings:\n    - port: {number: 8443}\n      tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}\n---\n`,
    expectCodes: ['IST0128', 'IST0129'],
  },
  {
    name: 'unreachable rules and covered matches',
    yaml:
      WORKLOAD +
      SERVICE +
      GATEWAY('shop', HTTP80()) +
      VS(
        'shop',
        `  hosts: [shop.example.com]\n  gateways: [shop]\n  http:\n  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: shop}}]\n  - name: v2\n    match: [{uri: {prefix: /api/v2}}, {uri: {prefix: /api}, name: again}]\n    route: [{destination: {host: shop}}]\n  - route: [{destination: {host: shop}}]\n  - match: [{uri: {exact: /late}}]\n    route: [{destination: {host: shop}}]`,
      ),
    expectCodes: ['IST0130', 'IST0131', 'IST0131'],
  },
  {
    name: 'a Gateway istiod refuses',
    yaml: WORKLOAD + SERVICE + GATEWAY('shop', `  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: []`),
    expectCodes: ['IST0106'],
  },
];

// Objects istiod refuses, one problem each: IST0106 with istiod's message.
for (const [name, yaml] of [
  ['a Gateway port out of range', GATEWAY('gp', `  - port: {number: 70000, name: http, protocol: HTTP}\n    hosts: [a.example.com]`)],
  ['an HTTPS server without TLS settings', GATEWAY('tls', `  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]`)],
  ['negative retry attempts', VS('rt', `  hosts: [a.example.com]\n  http:\n  - route: [{destination: {host: shop}}]\n    retries: {attempts: -1}`)],
  [
    'a ServiceEntry without hosts',
    `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se, namespace: default}\nspec:\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n---\n`,
  ],
] as const) {
  cases.push({ name: `refused: ${name}`, yaml: WORKLOAD + SERVICE + yaml, expectCodes: ['IST0106'] });
}

/** A binary from $<env>, else built (or found in the cache) by <script>, whose progress goes to stderr. */
function built(env: string, script: string): string {
  const fromEnv = process.env[env];
  if (fromEnv) return fromEnv;
  const out = execFileSync('bash', [join(import.meta.dirname, script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

/** PortSelector's text form: Go's prototext puts one or two spaces after the colon at random. */
const normalize = (s: string): string => s.replace(/number:\s+/g, 'number:');

function istioctlAnalyze(istioctl: string, files: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(istioctl, ['analyze', '--use-kube=false', '--all-namespaces', '-o', 'json', ...files], { timeout: 120_000 }, (err, stdout, stderr) => {
      // istioctl exits non-zero when it finds errors: the output is what counts, unless there is none.
      if (err && !stdout.trim().startsWith('[')) {
        reject(new Error(`istioctl analyze failed: ${err.message}\n${stderr}`));
        return;
      }
      const rows = JSON.parse(stdout) as { code: string; origin: string; message: string; level: string }[];
      resolve(rows.filter((r) => COMPARED.has(r.code)).map((r) => normalize(`${r.level} [${r.code}] (${r.origin}) ${r.message}`)));
    });
  });
}

function meshgateAnalyze(files: string[]): string[] {
  const store = new ObjectStore();
  for (const f of files) {
    const parsed = parseConfigFile(readFileSync(f, 'utf8'), f);
    assert.deepEqual(parsed.errors, [], `${f} must parse`);
    for (const o of parsed.objects) store.upsert(o.kind, o.obj, o.origin);
  }
  return analyze(store.snapshot())
    .filter((f) => COMPARED.has(f.code))
    .map((f) => normalize(`${f.level} [${f.code}] (${f.kind} ${f.namespace}/${f.name}) ${f.message}`));
}

describe('meshgate validate against istioctl analyze', () => {
  let istioctl: string;
  let dir: string;
  before(
    () => {
      istioctl = built('ISTIOCTL', 'istioctl.sh');
      dir = mkdtempSync(join(tmpdir(), 'meshgate-analyze-'));
    },
    { timeout: 60 * 60_000 },
  );
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('examples/quickstart with its gateway workload: the same (no) findings', async () => {
    const examples = join(import.meta.dirname, '../../examples/quickstart');
    const workload = join(dir, 'workload.yaml');
    writeFileSync(workload, WORKLOAD);
    const files = [...readdirSync(examples).map((f) => join(examples, f)), workload];
    const ours = meshgateAnalyze(files);
    assert.deepEqual(ours.sort(), (await istioctlAnalyze(istioctl, files)).sort());
    assert.deepEqual(ours, []);
  });

  for (const c of cases) {
    test(`${c.name}: the same findings`, async () => {
      const file = join(dir, `${c.name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, c.yaml);
      const ours = meshgateAnalyze([file]).sort();
      assert.deepEqual(ours, (await istioctlAnalyze(istioctl, [file])).sort());
      // The case shows what it is about (not an empty agreement).
      assert.deepEqual(ours.map((l) => /\[(IST\d+)\]/.exec(l)?.[1]).sort(), [...c.expectCodes].sort(), ours.join('\n'));
    });
  }
});
