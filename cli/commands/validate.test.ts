// `meshgate validate` as a user runs it: a child process on examples/ and on a directory of mistakes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', 'main.ts');
const REPO = join(import.meta.dirname, '..', '..');

function validate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'validate', ...args], { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'meshgate-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Beside the quick start (its Gateway and Service): its VirtualService redefined, naming a Gateway that does not exist and a subset
// nobody defines, and a DestinationRule originating TLS without a CA (a warning).
writeFileSync(
  join(dir, 'routes.yaml'),
  `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: default
spec:
  hosts: [httpbin.example.com]
  gateways:
  - httpbin-gateway
  - gateway-typo
  http:
  - route:
    - destination:
        host: httpbin
        subset: v2
`,
);
writeFileSync(
  join(dir, 'tls.yaml'),
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin
  trafficPolicy:
    tls: {mode: SIMPLE}
  subsets: [{name: v1, labels: {version: v1}}]
`,
);
const WARN_ONLY = mkdtempSync(join(tmpdir(), 'meshgate-validate-warn-'));
after(() => rmSync(WARN_ONLY, { recursive: true, force: true }));
writeFileSync(
  join(WARN_ONLY, 'tls.yaml'),
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE}\n`,
);

test('validate examples/quickstart: no findings, exit 0, istioctl-style success line', async () => {
  const r = await validate(['examples/quickstart']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^✔ No validation issues found when analyzing examples\/quickstart\.\n$/);
});

test('validate a directory of mistakes: istioctl lines with file:line and a hint, exit 1', async () => {
  const r = await validate(['examples/quickstart', '-f', dir]);
  assert.equal(r.code, 1, r.stderr);
  const rel = (f: string): string => join(dir, f);
  const lines = r.stdout.split('\n');
  const expect = [
    `Error [IST0101] (VirtualService default/httpbin ${rel('routes.yaml')}:10) Referenced gateway not found: "gateway-typo"`,
    `Error [IST0101] (VirtualService default/httpbin ${rel('routes.yaml')}:15) Referenced host+subset in destinationrule not found: "httpbin+v2"`,
    `Warning [IST0128] (DestinationRule default/httpbin ${rel('tls.yaml')}:7) DestinationRule default/httpbin in namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: httpbin`,
    `Warning [IST0132] (VirtualService default/httpbin ${rel('routes.yaml')}:10) one or more host [httpbin.example.com] defined in VirtualService default/httpbin not found in Gateway default/gateway-typo.`,
    // It replaces the quick start's VirtualService httpbin: said once, at the definition that wins.
    `Warning [MG0003] (VirtualService default/httpbin ${rel('routes.yaml')}:1) also defined in examples/quickstart/30-httpbin-virtualservice.yaml: this later definition wins`,
  ];
  for (const e of expect) {
    const i = lines.indexOf(e);
    assert.ok(i >= 0, `missing line:\n${e}\nin:\n${r.stdout}`);
    assert.match(lines[i + 1] ?? '', /^ {2}hint: \S/);
  }
  assert.equal(lines.filter((l) => /^(Error|Warning|Info) \[/.test(l)).length, expect.length, r.stdout);
  assert.match(r.stderr, /^2 error\(s\), 3 warning\(s\), 0 info\n$/);
});

test('validate -o json: istioctl fields plus field, file, line and hint', async () => {
  const r = await validate(['-o', 'json', 'examples/quickstart', dir]);
  assert.equal(r.code, 1);
  const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
  const gw = rows.find((x) => x.message === 'Referenced gateway not found: "gateway-typo"');
  assert.deepEqual(gw, {
    code: 'IST0101',
    level: 'Error',
    origin: 'VirtualService default/httpbin',
    reference: `${join(dir, 'routes.yaml')}:10`,
    message: 'Referenced gateway not found: "gateway-typo"',
    documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0101/',
    type: 'ReferencedResourceNotFound',
    kind: 'VirtualService',
    namespace: 'default',
    name: 'httpbin',
    field: 'spec.gateways[1]',
    file: join(dir, 'routes.yaml'),
    line: 10,
    hint: gw?.hint,
  });
  assert.equal(r.stderr, '');
});

test('warnings exit 0, and 1 with --fail-on warning (or istioctl --failure-threshold Warning)', async () => {
  assert.equal((await validate([WARN_ONLY])).code, 0);
  assert.equal((await validate(['--fail-on', 'warning', WARN_ONLY])).code, 1);
  assert.equal((await validate(['--failure-threshold', 'Warning', WARN_ONLY])).code, 1);
});

test('usage mistakes exit 2 with the reason', async () => {
  const r = await validate([]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nothing to validate: give a directory, -f FILE or --kubeconfig FILE/);
  const missing = await validate(['no/such/dir']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no\/such\/dir: no such file or directory/);
  assert.equal((await validate(['-o', 'xml', 'examples'])).code, 2);
});

test('a document that does not parse: MG0001 at its line, exit 1; a kind meshgate does not read: MG0002 (Info)', async () => {
  const d = mkdtempSync(join(tmpdir(), 'meshgate-validate-bad-yaml-'));
  try {
    writeFileSync(join(d, 'a.yaml'), 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\nkind: Gateway\nmetadata:\n  name: [x\n');
    const r = await validate([d]);
    assert.equal(r.code, 1);
    const lines = r.stdout.split('\n').filter((l) => /^(Error|Warning|Info) \[/.test(l));
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[0] ?? '', new RegExp(`^Error \\[MG0001\\] \\(document 1 ${join(d, 'a.yaml')}:\\d+\\) malformed YAML \\(line \\d+, column \\d+\\): `));
    assert.match(lines[1] ?? '', new RegExp(`^Info \\[MG0002\\] \\(Deployment default/web ${join(d, 'a.yaml')}:1\\) unknown kind "Deployment": skipped`));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
