// `meshgate explain`: its flags, the offline path on the quick start's config directory (translated as meshgate
// local translates it), and the command's output and exit status as a user sees them.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { explainFor, parseExplainArgs } from './explain.ts';
import { UsageError } from '../usage-error.ts';

const REPO = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'meshgate-explain-'));
cpSync(join(REPO, 'examples/quickstart'), dir, { recursive: true });
// The walkthrough's step 3: a subset no pod has.
writeFileSync(
  join(dir, '40-subset.yaml'),
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin
  subsets: [{name: test-version, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-anything, namespace: default}
spec:
  hosts: [httpbin.example.com]
  gateways: [httpbin-gateway]
  http:
  - match: [{uri: {prefix: /anything}}]
    route: [{destination: {host: httpbin, port: {number: 8000}, subset: test-version}}]
`,
);
after(() => rmSync(dir, { recursive: true, force: true }));

test('flags: defaults, repeated headers, and the mistakes a user can make', () => {
  const o = parseExplainArgs(['--host', 'a.example.com', '--header', 'x-user=jason', '--header', 'X-Env: prod', '--method', 'post']);
  assert.deepEqual(o.request, {
    host: 'a.example.com',
    path: '/',
    method: 'POST',
    headers: [
      ['x-user', 'jason'],
      ['X-Env', 'prod'],
    ],
    tls: false,
  });
  assert.equal(o.admin, 'http://127.0.0.1:15000');
  assert.equal(o.config, undefined);
  for (const [argv, msg] of [
    [['--path', '/'], /--host HOST is required/],
    [['--host', 'a', '--path', 'x'], /--path must start with '\/'/],
    [['--host', 'a', '--port', '0'], /--port must be a port number/],
    [['--host', 'a', '--header', 'novalue'], /--header takes NAME=VALUE/],
    [['--host', 'a', '-o', 'yaml'], /-o must be text or json/],
    [['--host', 'a', '--admin', 'http://x', '--config', dir], /exclude each other/],
    [['--host', 'a', '--config', join(dir, 'missing')], /not a directory/],
  ] as const)
    assert.throws(
      () => parseExplainArgs([...argv]),
      (e: unknown) => e instanceof UsageError && msg.test(e.message),
      argv.join(' '),
    );
});

test('offline on the quick start: the route and cluster, and the 404 and 503 of the walkthrough in Istio terms', async () => {
  const base = parseExplainArgs(['--config', dir, '--host', 'httpbin.example.com']);
  const ok = (await explainFor({ ...base, request: { ...base.request, path: '/status/200' } })).explanation;
  assert.equal(ok.listener?.name, '0.0.0.0_8080');
  assert.equal(ok.route?.source?.name, 'httpbin');
  // file:line of the VirtualService (the example's line 1 is a comment), relative to the working directory.
  assert.match(ok.route?.source?.file ?? '', /(^|\/)30-httpbin-virtualservice\.yaml:2$/);
  assert.equal(ok.clusters[0]?.name, 'outbound|8000||httpbin.default.svc.cluster.local');
  assert.deepEqual(
    ok.clusters[0]?.endpoints.map((e) => e.address),
    ['127.0.0.1:8000'],
  );
  assert.equal(ok.served, true);
  const notFound = (await explainFor({ ...base, request: { ...base.request, host: 'unknown.example.com' } })).explanation;
  assert.equal(notFound.status, 404);
  assert.equal(notFound.why, 'no Gateway server on port 80 takes host unknown.example.com: Gateway default/httpbin-gateway takes httpbin.example.com');
  const empty = (await explainFor({ ...base, request: { ...base.request, path: '/anything' } })).explanation;
  assert.equal(empty.status, 503);
  assert.equal(empty.why, 'subset test-version selects no ready pod: it needs version=v3, pods with app=httpbin have version v1');
  // The subset's own line in the DestinationRule.
  assert.match(empty.clusters[0]?.source?.file ?? '', /(^|\/)40-subset\.yaml:6$/);
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, [join(REPO, 'cli/main.ts'), 'explain', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolveRun({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('the command: text and json output, exit 0 when served, 1 for a 404 or 503, 2 for a usage error, 3 when the admin cannot be reached', async () => {
  const served = await cli(['--config', dir, '--host', 'httpbin.example.com', '--path', '/status/200']);
  assert.equal(served.code, 0, served.stderr);
  assert.match(served.stdout, /^route {11}#0: path prefix \/status \(from VirtualService default\/httpbin, /m);
  assert.match(served.stdout, /^result {10}forwarded upstream$/m);
  const missing = await cli(['--config', dir, '--host', 'httpbin.example.com', '--path', '/nope', '-o', 'json']);
  assert.equal(missing.code, 1);
  const j = JSON.parse(missing.stdout) as { status: number; outcome: string; skippedRoutes: unknown[] };
  assert.equal(j.status, 404);
  assert.equal(j.outcome, 'no_route');
  assert.equal(j.skippedRoutes.length, 3);
  const unhealthy = await cli(['--config', dir, '--host', 'httpbin.example.com', '--path', '/anything']);
  assert.equal(unhealthy.code, 1);
  assert.match(unhealthy.stdout, /^result {10}503 no_healthy_upstream: subset test-version selects no ready pod/m);
  const usage = await cli(['--path', '/']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--host HOST is required/);
  // A port this test held and let go: nothing listens there.
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
  const down = await cli(['--admin', `http://127.0.0.1:${port}`, '--host', 'a']);
  assert.equal(down.code, 3);
  assert.match(down.stderr, /cannot reach the gateway's admin API at http:\/\/127\.0\.0\.1:\d+\/(config_dump|clusters).*ECONNREFUSED/);
});
