// HTTP/2 conformance: h2spec (github.com/summerwind/h2spec, built by build.sh, or $H2SPEC as run.sh passes it)
// against `meshgate local` on h2c (prior knowledge) and on TLS with ALPN h2, routing to an HTTP/1.1 backend.
// Every h2spec case passes except the ones in EXCEPTIONS, each with the reason; an exception that passes
// fails the test too, so the list cannot go stale.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';
import { CertFactory, secretYaml } from '../lib/certs.ts';
import { get } from '../lib/http.ts';

/** The h2spec binary: $H2SPEC, else built (or found in the cache) by build.sh. */
function h2spec(): string {
  if (process.env.H2SPEC) return process.env.H2SPEC;
  const out = execFileSync('bash', [join(import.meta.dirname, 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}
const BACKEND_IP = '127.0.30.1';

const CLOSED_STREAMS =
  "node's HTTP/2 stack (nghttp2 with RFC 7540 priorities off) keeps no state for closed streams: a frame on a stream that has closed, or a new stream below the highest one seen, is ignored instead of answered with STREAM_CLOSED / PROTOCOL_ERROR; the session goes on, and nothing on it is routed. Not reachable from JavaScript";

/**
 * h2spec cases (`package: title`) meshgate fails, and why: where Envoy behaves the same, or where node's HTTP/2
 * implementation (nghttp2 inside) decides. docs/grpc.md lists them for users.
 */
const EXCEPTIONS: Record<string, string> = {
  'http2/5.3.1: Sends PRIORITY frame that depend on itself':
    'PRIORITY frames are ignored (RFC 9113 deprecates the priority scheme; node disables RFC 7540 priorities, as Envoy oghttp2 does)',
  'http2/6.3: Sends a PRIORITY frame with 0x0 stream identifier': 'PRIORITY frames are ignored (see above)',
  'http2/6.7: Sends a PING frame with ACK':
    'node treats an unsolicited PING ACK as a connection error (stricter than RFC 9113, which says to ignore it); the connection closes',
  'http2/5.1: closed: Sends a DATA frame after sending RST_STREAM frame': CLOSED_STREAMS,
  'http2/5.1: closed: Sends a HEADERS frame after sending RST_STREAM frame': CLOSED_STREAMS,
  'http2/5.1: closed: Sends a DATA frame': CLOSED_STREAMS,
  'http2/5.1: closed: Sends a HEADERS frame': CLOSED_STREAMS,
  'http2/5.1.1: Sends stream identifier that is numerically smaller than previous': CLOSED_STREAMS,
  'http2/6.9.1: Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream':
    'nghttp2 (inside node) answers a stream window overflow with a connection error (GOAWAY FLOW_CONTROL_ERROR) instead of RST_STREAM',
};

/** Only on h2c: with ALPN h2 the connection is HTTP/2 from its first byte, and an invalid preface closes it. */
const H2C_ONLY: Record<string, string> = {
  'http2/3.5: Sends invalid connection preface':
    'codec AUTO: bytes that are not the HTTP/2 preface are HTTP/1.1 to the gateway, which answers 400 and closes, as Envoy does on a port serving both',
};

interface Case {
  id: string;
  failure: string | undefined;
  skipped: boolean;
}

const unescape = (s: string): string =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

/** The cases of an h2spec JUnit report. */
function parseReport(xml: string): Case[] {
  const out: Case[] = [];
  const re = /<testcase package="([^"]*)" classname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const body = m[4] ?? '';
    const err = /<(?:error|failure)[^>]*>([\s\S]*?)<\/(?:error|failure)>/.exec(body);
    out.push({
      id: `${unescape(m[1] as string)}: ${unescape(m[2] as string)}`,
      failure: err ? unescape(err[1] as string) : undefined,
      skipped: /<skipped/.test(body),
    });
  }
  return out;
}

describe('h2spec (HTTP/2 conformance) against the gateway', () => {
  const bin = h2spec();
  let gw: Gateway;
  let backend: Backend;
  let tlsPort = 0;
  const certs = new CertFactory();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-h2spec-'));

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'h2spec-backend');
    tlsPort = await freePort();
    gw = await startGateway();
    const ca = certs.ca('h2spec-ca');
    const leaf = certs.leaf(ca, 'h2spec.example.com', { dns: ['h2spec.example.com', 'localhost'] });
    gw.write(
      '00-gateway-service.yaml',
      `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system, labels: {app: istio-ingressgateway, istio: ingressgateway}}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${gw.port}, protocol: TCP}
  - {name: https, port: 443, targetPort: ${tlsPort}, protocol: TCP}
`,
    );
    gw.write('10-secret.yaml', secretYaml('h2spec-cert', 'istio-system', { 'tls.crt': leaf.cert, 'tls.key': leaf.key }, 'kubernetes.io/tls'));
    gw.write('20-backend.yaml', serviceYaml('backend', backend.port, [{ ip: BACKEND_IP }]));
    gw.write(
      '30-gateway.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: h2spec, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: h2spec-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [h2spec]
  http:
  - route: [{destination: {host: backend.default.svc.cluster.local}}]
`,
    );
    await eventually(
      'the route to the backend',
      async () => ((await get('127.0.0.1', gw.port, '/', 'any.example.com')).status === 200 ? true : undefined),
      20_000,
      100,
    );
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    certs.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(name: string, args: string[]): Promise<Case[]> {
    const report = join(dir, `${name}.xml`);
    // h2spec exits non-zero when a case fails: the report says which.
    await promisify(execFile)(bin, ['-h', '127.0.0.1', '-o', '2', '-j', report, ...args], { maxBuffer: 16 << 20 }).catch(() => undefined);
    return parseReport(readFileSync(report, 'latin1'));
  }

  function check(cases: Case[], exceptions: Record<string, string>): void {
    assert.ok(cases.length >= 140, `h2spec ran ${cases.length} cases`);
    const failed = cases.filter((c) => c.failure !== undefined);
    const unexpected = failed.filter((c) => !(c.id in exceptions)).map((c) => `${c.id}\n    ${c.failure?.replace(/\n/g, '\n    ') ?? ''}`);
    assert.deepEqual(unexpected, [], 'h2spec cases failed that are not documented exceptions');
    const stale = Object.keys(exceptions).filter((id) => !failed.some((c) => c.id === id));
    assert.deepEqual(stale, [], 'documented exceptions that now pass: remove them from EXCEPTIONS');
  }

  test('h2c with prior knowledge: every case passes but the documented exceptions', async () => {
    check(await run('h2c', ['-p', String(gw.port)]), { ...EXCEPTIONS, ...H2C_ONLY });
  });

  test('TLS with ALPN h2: every case passes but the documented exceptions', async () => {
    check(await run('tls', ['-p', String(tlsPort), '-t', '-k']), EXCEPTIONS);
  });
});
