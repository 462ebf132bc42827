// Istio's egress gateway tasks (https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway/,
// .../egress-gateway-tls-origination/) on the gateway side, in local mode: `meshgate local` as
// istio-egressgateway, "external" services on loopback addresses that the gateway finds through a DNS server
// of the test's own (ServiceEntry resolution DNS -> STRICT_DNS clusters), reached over plain HTTP, with TLS
// origination (SIMPLE with a CA file, auto_sni and SAN validation) to HTTP/1.1 and to HTTP/2 (ALPN h2) services,
// with mutual TLS origination (credentialName client certificate) and by SNI passthrough.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort, type Proc } from '../lib/process.ts';
import { adminClient, meshgateLocal } from '../lib/gateway.ts';
import { get, rawRequest } from '../lib/http.ts';
import { CertFactory, secretYaml, type Ca, type KeyPair } from '../lib/certs.ts';
import { TestDnsServer } from '../lib/dns-server.ts';
import { httpsGet } from '../lib/tls-client.ts';
import { httpbinHandler } from '../../cli/commands/httpbin.ts';

const PLAIN_IP = '127.0.0.41';
const PLAIN2_IP = '127.0.0.44';
const TLS_IP = '127.0.0.42';
const MTLS_IP = '127.0.0.43';
const H2_IP = '127.0.0.45';
const VERIFY_FAILED_BODY =
  'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, ' +
  'transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end';

interface Seen {
  sni: string | false;
  host: string;
  path: string;
  client: string;
}

/** What the HTTP/2 service saw of a request: the connection's ALPN and SNI, the request's pseudo-headers. */
interface SeenH2 {
  alpn: string | false;
  sni: string | false;
  version: string;
  scheme: string;
  authority: string;
  path: string;
  body: string;
}

function listen(s: HttpServer | HttpsServer | Http2SecureServer, host: string, port: number): Promise<void> {
  return new Promise((resolve) => s.listen(port, host, () => resolve()));
}

describe('local mode: egress gateway (HTTP, TLS origination, mTLS origination, SNI passthrough, DNS)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-egress-'));
  const certs = new CertFactory();
  const dns = new TestDnsServer();
  const procs: Proc[] = [];
  const servers: (HttpServer | HttpsServer | Http2SecureServer)[] = [];
  let extCa: Ca;
  let passthroughCert: KeyPair;
  let g80 = 0;
  let g443 = 0;
  let stat: (name: string) => Promise<number> = () => Promise.reject(new Error('gateway not started'));

  /** An "external" HTTPS service answering with what it saw (SNI, Host, client certificate). */
  const external = (certsBySni: Record<string, KeyPair>, fallback: KeyPair, mtls: boolean): HttpsServer => {
    const ctx = Object.fromEntries(Object.entries(certsBySni).map(([n, kp]) => [n, createSecureContext({ cert: kp.cert, key: kp.key })]));
    const s = createHttpsServer(
      {
        cert: fallback.cert,
        key: fallback.key,
        SNICallback: (name, cb) => cb(null, ctx[name]),
        ...(mtls ? { requestCert: true, rejectUnauthorized: true, ca: extCa.cert } : {}),
      },
      (req, res) => {
        const sock = req.socket as TLSSocket;
        const seen: Seen = {
          sni: (sock as unknown as { servername: string | false }).servername,
          host: req.headers.host ?? '',
          path: req.url ?? '',
          client: mtls ? String(sock.getPeerCertificate().subject.CN) : '',
        };
        const body = JSON.stringify(seen);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    );
    servers.push(s);
    return s;
  };

  before(async () => {
    extCa = certs.ca('external-ca');
    const secureCert = certs.leaf(extCa, 'secure.example.com', { dns: ['secure.example.com'] });
    passthroughCert = certs.leaf(extCa, 'passthrough.example.com', { dns: ['passthrough.example.com'] });
    const mtlsServerCert = certs.leaf(extCa, 'mtls.example.com', { dns: ['mtls.example.com'] });
    const clientCert = certs.leaf(extCa, 'client.example.com', { dns: ['client.example.com'], client: true });
    const h2Cert = certs.leaf(extCa, 'h2.example.com', { dns: ['h2.example.com'] });

    const [pPlain, pTls, pMtls, pH2] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const h1 = httpbinHandler('plain-1');
    const h2 = httpbinHandler('plain-2');
    const plain1 = createHttpServer((req, res) => void h1(req, res));
    const plain2 = createHttpServer((req, res) => void h2(req, res));
    servers.push(plain1, plain2);
    await listen(plain1, PLAIN_IP, pPlain);
    await listen(plain2, PLAIN2_IP, pPlain);
    // secure.example.com and passthrough.example.com share an address, told apart by SNI; an unknown SNI
    // (wrongname.example.com) gets the secure.example.com certificate, which fails SAN validation.
    await listen(external({ 'secure.example.com': secureCert, 'passthrough.example.com': passthroughCert }, secureCert, false), TLS_IP, pTls);
    await listen(external({}, mtlsServerCert, true), MTLS_IP, pMtls);
    // An HTTP/2-only TLS service (no HTTP/1.1 fallback): it answers only a client that speaks h2 after ALPN.
    const h2Server = createSecureServer({ cert: h2Cert.cert, key: h2Cert.key, allowHTTP1: false }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const sock = req.stream.session?.socket as TLSSocket | undefined;
        const seen: SeenH2 = {
          alpn: sock?.alpnProtocol ?? false,
          sni: (sock as unknown as { servername: string | false } | undefined)?.servername ?? false,
          version: req.httpVersion,
          scheme: req.scheme,
          authority: req.authority,
          path: req.url,
          body: Buffer.concat(chunks).toString(),
        };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(seen));
      });
    });
    servers.push(h2Server);
    await listen(h2Server, H2_IP, pH2);

    await dns.start();
    dns.set('plain.example.com', PLAIN_IP);
    dns.set('secure.example.com', TLS_IP);
    dns.set('wrongname.example.com', TLS_IP);
    dns.set('passthrough.example.com', TLS_IP);
    dns.set('mtls.example.com', MTLS_IP);
    dns.set('h2.example.com', H2_IP);
    dns.set('h2-wrongname.example.com', H2_IP);

    [g80, g443] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'ca.pem'), extCa.cert);
    writeFileSync(
      join(dir, 'egress.yaml'),
      `apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${g80}}
  - {name: https, port: 443, targetPort: ${g443}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [plain.example.com]
  ports: [{number: 80, name: http-port, protocol: HTTP, targetPort: ${pPlain}}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com, wrongname.example.com]
  ports:
  - {number: 80, name: http-port, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS, targetPort: ${pTls}}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mtls, namespace: default}
spec:
  hosts: [mtls.example.com]
  ports:
  - {number: 443, name: https, protocol: HTTPS, targetPort: ${pMtls}}
  resolution: DNS
---
# An HTTP2 port: the cluster speaks HTTP/2 upstream; with the DestinationRule below, over TLS (ALPN h2).
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: h2, namespace: default}
spec:
  hosts: [h2.example.com, h2-wrongname.example.com]
  ports: [{number: 443, name: http2-tls, protocol: HTTP2, targetPort: ${pH2}}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [passthrough.example.com]
  ports: [{number: 443, name: tls, protocol: TLS, targetPort: ${pTls}}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [plain.example.com, secure.example.com, wrongname.example.com, mtls.example.com, h2.example.com, h2-wrongname.example.com]
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [passthrough.example.com]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-through-egress-gateway, namespace: default}
spec:
  hosts: [plain.example.com]
  gateways: [istio-system/istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route:
    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local, port: {number: 80}}
  - match: [{gateways: [istio-system/istio-egressgateway], port: 80}]
    route:
    - destination: {host: plain.example.com, port: {number: 80}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: originate-tls, namespace: default}
spec:
  hosts: [secure.example.com, wrongname.example.com]
  gateways: [istio-system/istio-egressgateway]
  http:
  - match: [{authority: {exact: wrongname.example.com}}]
    route:
    - destination: {host: wrongname.example.com, port: {number: 443}}
  - route:
    - destination: {host: secure.example.com, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: originate-tls-h2, namespace: default}
spec:
  hosts: [h2.example.com, h2-wrongname.example.com]
  gateways: [istio-system/istio-egressgateway]
  http:
  - match: [{authority: {exact: h2-wrongname.example.com}}]
    route:
    - destination: {host: h2-wrongname.example.com, port: {number: 443}}
  - route:
    - destination: {host: h2.example.com, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: originate-mtls, namespace: default}
spec:
  hosts: [mtls.example.com]
  gateways: [istio-system/istio-egressgateway]
  http:
  - route:
    - destination: {host: mtls.example.com, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [passthrough.example.com]
  gateways: [istio-system/istio-egressgateway]
  tls:
  - match: [{gateways: [istio-system/istio-egressgateway], port: 443, sniHosts: [passthrough.example.com]}]
    route:
    - destination: {host: passthrough.example.com, port: {number: 443}}
---
# TLS origination (SIMPLE): the CA from a file in the gateway pod (file-root:), no sni: auto_sni + auto_san_validation.
# (Not on passthrough.example.com: a DestinationRule tls there would wrap the client's own TLS in a second one.)
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls, namespace: istio-system}
spec:
  host: secure.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, caCertificates: ${join(dir, 'ca.pem')}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-wrongname, namespace: istio-system}
spec:
  host: wrongname.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, caCertificates: ${join(dir, 'ca.pem')}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-h2, namespace: istio-system}
spec:
  host: h2.example.com
  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: ${join(dir, 'ca.pem')}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-h2-wrongname, namespace: istio-system}
spec:
  host: h2-wrongname.example.com
  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: ${join(dir, 'ca.pem')}}
---
# Mutual TLS origination: client certificate and CA from the Secret client-credential.
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-mtls, namespace: istio-system}
spec:
  host: mtls.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: MUTUAL, credentialName: client-credential, sni: mtls.example.com}
---
${secretYaml('client-credential', 'istio-system', { 'tls.crt': clientCert.cert, 'tls.key': clientCert.key, 'ca.crt': extCa.cert })}`,
    );
    const g = await meshgateLocal(dir, [
      '--namespace',
      'istio-system',
      '--name',
      'istio-egressgateway-0',
      '--labels',
      'istio=egressgateway,app=istio-egressgateway',
      '--dns-server',
      dns.address,
    ]);
    procs.push(g.proc);
    stat = adminClient(g.admin).stat;
    await eventually(
      'plain.example.com through the egress gateway',
      async () => ((await get('127.0.0.1', g80, '/status/200', 'plain.example.com')).status === 200 ? true : undefined),
      20_000,
      100,
    );
  });

  after(async () => {
    for (const p of procs) await p.stop();
    for (const s of servers) s.close();
    dns.close();
    rmSync(dir, { recursive: true, force: true });
    certs.cleanup();
  });

  test('HTTP egress: the egress gateway routes plain.example.com to the address the DNS server gave (STRICT_DNS)', async () => {
    const r = await get('127.0.0.1', g80, '/headers', 'plain.example.com');
    assert.equal(r.status, 200);
    assert.equal(r.header('x-httpbin-instance'), 'plain-1');
    assert.equal(r.header('server'), 'istio-envoy');
    assert.ok(dns.queries.includes('plain.example.com'), `DNS queries seen: ${dns.queries.join(', ')}`);
  });

  test('TLS origination: plain HTTP in, HTTPS to secure.example.com with SNI from the host (auto_sni), CA from file-root', async () => {
    const r = await get('127.0.0.1', g80, '/some/path?q=1', 'secure.example.com');
    assert.equal(r.status, 200, r.body.toString());
    const seen = JSON.parse(r.body.toString()) as Seen;
    assert.equal(seen.sni, 'secure.example.com');
    assert.equal(seen.host, 'secure.example.com');
    assert.equal(seen.path, '/some/path?q=1');
  });

  test('TLS origination verifies the upstream name (auto_san_validation): a certificate for another host gives 503', async () => {
    const r = await get('127.0.0.1', g80, '/', 'wrongname.example.com');
    assert.equal(r.status, 503);
    // Envoy's words for any failed certificate check; a connect failure, so Istio's default retry policy retries it.
    assert.equal(r.body.toString(), VERIFY_FAILED_BODY);
  });

  test('TLS origination to an HTTP/2 service: h2 by ALPN, SNI and :authority from the host, body and status through', async () => {
    const cx = 'cluster.outbound|443||h2.example.com;.upstream_cx_http2_total';
    const before = await stat(cx).catch(() => 0);
    const r = await rawRequest('127.0.0.1', g80, 'POST /grpc-like/path?q=1 HTTP/1.1\r\nHost: h2.example.com\r\nContent-Length: 8\r\n\r\nhello h2');
    assert.equal(r.status, 200, r.body.toString());
    const seen = JSON.parse(r.body.toString()) as SeenH2;
    assert.deepEqual(seen, {
      alpn: 'h2',
      sni: 'h2.example.com',
      version: '2.0',
      scheme: 'http',
      authority: 'h2.example.com',
      path: '/grpc-like/path?q=1',
      body: 'hello h2',
    });
    assert.equal(await stat(cx), before + 1);
  });

  test('TLS origination to an HTTP/2 service verifies the name: a certificate for another host gives 503 (UF), counted as connect failures', async () => {
    const fail = 'cluster.outbound|443||h2-wrongname.example.com;.upstream_cx_connect_fail';
    const before = await stat(fail).catch(() => 0);
    const r = await get('127.0.0.1', g80, '/', 'h2-wrongname.example.com');
    assert.equal(r.status, 503);
    assert.equal(r.body.toString(), VERIFY_FAILED_BODY);
    assert.equal(await stat(fail), before + 3, 'the first try and the two retries of the default policy');
  });

  test('mutual TLS origination: the client certificate from the credentialName Secret is presented', async () => {
    const r = await get('127.0.0.1', g80, '/', 'mtls.example.com');
    assert.equal(r.status, 200, r.body.toString());
    const seen = JSON.parse(r.body.toString()) as Seen;
    assert.equal(seen.client, 'client.example.com');
    assert.equal(seen.sni, 'mtls.example.com');
  });

  test('SNI passthrough: TLS to the egress gateway reaches passthrough.example.com end to end, unknown SNI is closed', async () => {
    const r = await httpsGet({ port: g443, servername: 'passthrough.example.com', ca: extCa.cert }, '/through');
    assert.equal(r.status, 200);
    assert.equal(r.peer.subject.CN, 'passthrough.example.com');
    assert.equal(
      r.peer.fingerprint256,
      (await import('node:crypto'))
        .createHash('sha256')
        .update(Buffer.from(passthroughCert.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
        .digest('hex')
        .toUpperCase()
        .match(/../g)
        ?.join(':'),
    );
    const seen = JSON.parse(r.body) as Seen;
    assert.equal(seen.sni, 'passthrough.example.com');
    await assert.rejects(httpsGet({ port: g443, servername: 'other.example.com', ca: extCa.cert }, '/'), /closed|ECONNRESET|socket hang up|disconnected/);
  });

  test('DNS clusters are re-resolved: a changed answer moves traffic to the new address (respect_dns_ttl)', async () => {
    dns.set('plain.example.com', PLAIN2_IP);
    await eventually(
      'traffic on the new address',
      async () => ((await get('127.0.0.1', g80, '/status/200', 'plain.example.com')).header('x-httpbin-instance') === 'plain-2' ? true : undefined),
      20_000,
      200,
    );
  });
});
