// Istio's "Secure Gateways" task (https://istio.io/latest/docs/tasks/traffic-management/ingress/secure-ingress/)
// against real processes: `meshgate local` with credentialName Secrets in the config directory, an httpbin
// "pod" on loopback, and curl-like TLS clients. Certificates are made by the test (e2e/lib/certs.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { X509Certificate, createHash } from 'node:crypto';
import { join } from 'node:path';
import { eventually, freePort, meshgate, type Proc } from '../lib/process.ts';
import { meshgateLocal } from '../lib/gateway.ts';
import { rawRequest } from '../lib/http.ts';
import { CertFactory, secretYaml, type Ca, type KeyPair } from '../lib/certs.ts';
import { httpsGet, requestOn, tlsConnect } from '../lib/tls-client.ts';

const POD_IP = '127.0.0.31';

describe('local mode: secure ingress (SIMPLE, several hosts by SNI, MUTUAL, httpsRedirect, rotation)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-tls-'));
  const certs = new CertFactory();
  const procs: Proc[] = [];
  let ca: Ca;
  let otherCa: Ca;
  let httpbinCert: KeyPair;
  let helloCert: KeyPair;
  let clientCert: KeyPair;
  let wrongClient: KeyPair;
  let expiredClient: KeyPair;
  let https = 0;
  let http = 0;
  let admin = 0;
  let tcpTls = 0;

  const write = (file: string, text: string): void => {
    // Atomic replace, as a Kubernetes Secret update lands at once.
    writeFileSync(join(dir, `.${file}.tmp`), text);
    renameSync(join(dir, `.${file}.tmp`), join(dir, file));
  };
  const gw = (servername: string | undefined, extra: { cert?: string; key?: string } = {}) => ({
    port: https,
    ca: ca.cert,
    ...(servername ? { servername } : {}),
    ...extra,
  });

  before(async () => {
    ca = certs.ca('example.com');
    otherCa = certs.ca('not-example.com');
    httpbinCert = certs.leaf(ca, 'httpbin.example.com', { dns: ['httpbin.example.com'] });
    helloCert = certs.leaf(ca, 'helloworld.example.com', { dns: ['helloworld.example.com'] });
    clientCert = certs.leaf(ca, 'client.example.com', { dns: ['client.example.com'], client: true });
    wrongClient = certs.leaf(otherCa, 'client.example.com', { dns: ['client.example.com'], client: true });
    expiredClient = certs.leaf(ca, 'client.example.com', { dns: ['client.example.com'], client: true, days: -1 });
    [https, http, tcpTls] = [await freePort(), await freePort(), await freePort()];
    const podPort = await freePort();

    const pod = meshgate(['httpbin', '--host', POD_IP, '--port', String(podPort), '--name', 'httpbin-1']);
    procs.push(pod);
    await pod.waitForOutput(/httpbin listening/);

    write(
      '00-gateway-service.yaml',
      `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${http}}
  - {name: https, port: 443, targetPort: ${https}}
  - {name: tcp, port: 31400, targetPort: ${tcpTls}}
`,
    );
    write(
      '10-httpbin.yaml',
      `apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: ${podPort}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: httpbin-abc, namespace: default, labels: {kubernetes.io/service-name: httpbin}}
addressType: IPv4
ports: [{name: http, port: ${podPort}}]
endpoints:
- addresses: ["${POD_IP}"]
  conditions: {ready: true}
`,
    );
    // kubectl create -n istio-system secret tls httpbin-credential --key=... --cert=...
    write(
      '20-httpbin-credential.yaml',
      secretYaml('httpbin-credential', 'istio-system', { 'tls.crt': httpbinCert.cert, 'tls.key': httpbinCert.key }, 'kubernetes.io/tls'),
    );
    // The generic form: cert/key keys.
    write('21-helloworld-credential.yaml', secretYaml('helloworld-credential', 'istio-system', { cert: helloCert.cert, key: helloCert.key }));
    // MUTUAL: the CA in a separate `<name>-cacert` Secret (key ca.crt).
    write(
      '22-mtls-credential.yaml',
      secretYaml('mtls-credential', 'istio-system', { 'tls.crt': httpbinCert.cert, 'tls.key': httpbinCert.key }, 'kubernetes.io/tls') +
        '---\n' +
        secretYaml('mtls-credential-cacert', 'istio-system', { 'ca.crt': ca.cert }),
    );
    write(
      '30-gateway.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: httpbin-credential}
    hosts: [httpbin.example.com]
  - port: {number: 443, name: https-helloworld, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: helloworld-credential}
    hosts: [helloworld.example.com]
  - port: {number: 443, name: https-mtls, protocol: HTTPS}
    tls: {mode: MUTUAL, credentialName: mtls-credential, subjectAltNames: [client.example.com]}
    hosts: [mtls.example.com]
  - port: {number: 443, name: https-missing, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: no-such-credential}
    hosts: [missing.example.com]
  - port: {number: 80, name: http, protocol: HTTP}
    tls: {httpsRedirect: true}
    hosts: [httpbin.example.com]
  - port: {number: 31400, name: tls-tcp, protocol: TLS}
    tls: {mode: SIMPLE, credentialName: httpbin-credential}
    hosts: [tcp.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp.example.com]
  gateways: [istio-system/mygateway]
  tcp:
  - match: [{port: 31400}]
    route:
    - destination: {host: httpbin, port: {number: 8000}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.example.com, helloworld.example.com, mtls.example.com, missing.example.com]
  gateways: [istio-system/mygateway]
  http:
  - route:
    - destination: {host: httpbin, port: {number: 8000}}
`,
    );
    const g = await meshgateLocal(dir);
    admin = g.admin;
    procs.push(g.proc);
    await eventually(
      'an HTTPS answer for httpbin.example.com',
      async () => ((await httpsGet(gw('httpbin.example.com'), '/status/200')).status === 200 ? true : undefined),
      20_000,
      100,
    );
  });

  after(async () => {
    for (const p of procs) await p.stop();
    rmSync(dir, { recursive: true, force: true });
    certs.cleanup();
  });

  test('SIMPLE: curl --resolve httpbin.example.com --cacert example.com.crt gets 200 with the httpbin certificate, x-forwarded-proto https', async () => {
    const r = await httpsGet(gw('httpbin.example.com'), '/headers');
    assert.equal(r.status, 200);
    assert.equal(r.headers.server, 'istio-envoy');
    assert.equal(r.peer.subject.CN, 'httpbin.example.com');
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers['X-Forwarded-Proto'], 'https');
    // A client cannot forge x-forwarded-client-cert: without a client certificate it is removed.
    const s = await tlsConnect(gw('httpbin.example.com'));
    const forged = JSON.parse((await requestOn(s, 'httpbin.example.com', '/headers', 'X-Forwarded-Client-Cert: Hash=forged\r\n')).body) as {
      headers: Record<string, string>;
    };
    s.destroy();
    assert.equal(forged.headers['X-Forwarded-Client-Cert'], undefined);
    // A client offering only HTTP/1.1 by ALPN gets it.
    const h1 = await httpsGet({ ...gw('httpbin.example.com'), alpn: ['http/1.1'] }, '/status/200');
    assert.equal(h1.alpn, 'http/1.1');
  });

  test('SIMPLE with ALPN h2: the gateway picks h2 (istiod offers h2, http/1.1) and serves the request over HTTP/2', async () => {
    const sock = await tlsConnect({ ...gw('httpbin.example.com'), alpn: ['h2', 'http/1.1'] });
    assert.equal(sock.alpnProtocol, 'h2');
    const session = h2connect('https://httpbin.example.com', { createConnection: () => sock });
    try {
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/headers', ':authority': 'httpbin.example.com' });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        req.end();
      });
      assert.equal(r.status, 200, r.body);
      const seen = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.equal(seen.headers['X-Forwarded-Proto'], 'https');
      assert.equal(seen.headers['Host'], 'httpbin.example.com');
    } finally {
      session.close();
    }
  });

  test('several hosts on one port: the certificate is chosen by SNI (helloworld gets its own)', async () => {
    const r = await httpsGet(gw('helloworld.example.com'), '/status/418');
    assert.equal(r.status, 418);
    assert.equal(r.peer.subject.CN, 'helloworld.example.com');
  });

  test('an unknown SNI, no SNI, or a server whose Secret is missing: the handshake is closed, no HTTP answer', async () => {
    await assert.rejects(httpsGet(gw('nope.example.com'), '/status/200'), /closed|ECONNRESET|socket hang up|disconnected/);
    await assert.rejects(httpsGet(gw(undefined), '/status/200'), /closed|ECONNRESET|socket hang up|disconnected/);
    await assert.rejects(httpsGet(gw('missing.example.com'), '/status/200'), /closed|ECONNRESET|socket hang up|disconnected/);
    // The other servers keep working.
    assert.equal((await httpsGet(gw('httpbin.example.com'), '/status/200')).status, 200);
  });

  test('MUTUAL: a client certificate from the CA in mtls-credential-cacert is required and verified', async () => {
    const ok = await httpsGet(gw('mtls.example.com', { cert: clientCert.cert, key: clientCert.key }), '/status/200');
    assert.equal(ok.status, 200);
    // forward_client_cert_details SANITIZE_SET: the backend sees the client certificate in x-forwarded-client-cert.
    const seen = JSON.parse((await httpsGet(gw('mtls.example.com', { cert: clientCert.cert, key: clientCert.key }), '/headers')).body) as {
      headers: Record<string, string>;
    };
    const x = new X509Certificate(clientCert.cert);
    const hash = createHash('sha256').update(x.raw).digest('hex');
    assert.equal(
      seen.headers['X-Forwarded-Client-Cert'],
      `Hash=${hash};Cert="${encodeURIComponent(x.toString())}";Subject="CN=client.example.com,O=meshgate-e2e";URI=;DNS=client.example.com`,
    );
    // No client certificate: TLS 1.3 reports the server's alert on the first read.
    await assert.rejects(httpsGet(gw('mtls.example.com'), '/status/200'), /certificate required|alert|closed|ECONNRESET|socket hang up/i);
    await assert.rejects(
      httpsGet(gw('mtls.example.com', { cert: wrongClient.cert, key: wrongClient.key }), '/status/200'),
      /unknown ca|alert|closed|ECONNRESET|socket hang up/i,
    );
    await assert.rejects(
      httpsGet(gw('mtls.example.com', { cert: expiredClient.cert, key: expiredClient.key }), '/status/200'),
      /expired|alert|closed|ECONNRESET|socket hang up/i,
    );
  });

  test('TLS server with SIMPLE termination in front of tcp_proxy: bytes after the handshake reach the backend as is', async () => {
    const s = await tlsConnect({ port: tcpTls, ca: ca.cert, servername: 'tcp.example.com' });
    const r = await requestOn(s, 'anything.example', '/status/202');
    s.destroy();
    assert.equal(r.status, 202);
    // No HTTP processing on a tcp_proxy chain: the backend's own answer, not Envoy's server header.
    assert.notEqual(r.headers.server, 'istio-envoy');
    await assert.rejects(tlsConnect({ port: tcpTls, ca: ca.cert, servername: 'other.example.com' }), /closed|ECONNRESET|socket hang up|disconnected/);
  });

  test('httpsRedirect: plain HTTP to port 80 answers 301 to https://<host><path>', async () => {
    const r = await rawRequest('127.0.0.1', http, 'GET /status/200?x=1 HTTP/1.1\r\nHost: httpbin.example.com\r\n\r\n');
    assert.equal(r.status, 301);
    assert.equal(r.header('location'), 'https://httpbin.example.com/status/200?x=1');
    assert.equal(r.header('content-length'), '0');
  });

  test('certificate rotation: a changed Secret is served to new handshakes, no request fails, open connections stay', async () => {
    const before = await httpsGet(gw('httpbin.example.com'), '/status/200');
    const kept = await tlsConnect(gw('httpbin.example.com'));
    assert.equal((await requestOn(kept, 'httpbin.example.com', '/status/200')).status, 200);
    const fresh = certs.leaf(ca, 'httpbin.example.com', { dns: ['httpbin.example.com'] });
    let failures = 0;
    let done = 0;
    let stop = false;
    const seen = new Set<string>();
    // Bounded load: 4 clients, new connection per request, until the new certificate has been seen 20 times.
    const worker = async (): Promise<void> => {
      let newSeen = 0;
      while (!stop && done < 5000) {
        try {
          const r = await httpsGet(gw('httpbin.example.com'), '/status/200');
          if (r.status !== 200) failures++;
          seen.add(r.peer.fingerprint256);
          if (r.peer.fingerprint256 !== before.peer.fingerprint256 && ++newSeen >= 20) stop = true;
        } catch {
          failures++;
        }
        done++;
      }
    };
    const load = Promise.all([worker(), worker(), worker(), worker()]);
    await new Promise((r) => setTimeout(r, 300));
    write('20-httpbin-credential.yaml', secretYaml('httpbin-credential', 'istio-system', { 'tls.crt': fresh.cert, 'tls.key': fresh.key }, 'kubernetes.io/tls'));
    const deadline = setTimeout(() => (stop = true), 15_000);
    await load;
    clearTimeout(deadline);
    assert.equal(failures, 0, `${failures} of ${done} requests failed during rotation`);
    assert.ok(seen.has(before.peer.fingerprint256) && seen.size === 2, `both certificates were served (${seen.size} seen in ${done} requests)`);
    const after = await httpsGet(gw('httpbin.example.com'), '/status/200');
    assert.notEqual(after.peer.fingerprint256, before.peer.fingerprint256);
    // The connection opened before the rotation keeps its session and serves requests.
    assert.equal((await requestOn(kept, 'httpbin.example.com', '/status/200')).status, 200);
    kept.destroy();
  });

  test('listener stats count handshakes, verification failures and unmatched SNI as Envoy names them', async () => {
    const r = await rawRequest(
      '127.0.0.1',
      admin,
      `GET /stats?filter=${encodeURIComponent(`^listener\\.0\\.0\\.0\\.0_${https}\\.`)} HTTP/1.1\r\nHost: admin\r\n\r\n`,
    );
    const stat = (n: string): number =>
      Number(new RegExp(`^listener\\.0\\.0\\.0\\.0_${https}\\.${n.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(r.body.toString())?.[1] ?? -1);
    assert.ok(stat('ssl.handshake') > 10, r.body.toString());
    assert.ok(stat('ssl.no_certificate') > 10);
    assert.ok(stat('ssl.fail_verify_no_cert') >= 1);
    assert.ok(stat('ssl.fail_verify_error') >= 2, 'wrong CA and expired client certificates');
    assert.ok(stat('no_filter_chain_match') >= 3, 'unknown SNI, no SNI, missing Secret');
  });

  test('config_dump lists the SDS secrets with the private key redacted', async () => {
    const r = await rawRequest('127.0.0.1', admin, 'GET /config_dump HTTP/1.1\r\nHost: admin\r\n\r\n');
    const dump = JSON.parse(r.body.toString()) as {
      configs: { '@type': string; dynamic_active_secrets?: { name: string; secret: { tls_certificate?: { private_key: { inline_bytes: string } } } }[] }[];
    };
    const secrets = dump.configs.find((c) => c['@type'].endsWith('SecretsConfigDump'))?.dynamic_active_secrets ?? [];
    const names = secrets.map((s) => s.name).sort();
    assert.deepEqual(names, [
      'kubernetes://helloworld-credential',
      'kubernetes://httpbin-credential',
      'kubernetes://mtls-credential',
      'kubernetes://mtls-credential-cacert',
    ]);
    for (const s of secrets)
      if (s.secret.tls_certificate) assert.equal(Buffer.from(s.secret.tls_certificate.private_key.inline_bytes, 'base64').toString(), '[redacted]');
  });
});
