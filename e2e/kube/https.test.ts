// Istio's "Secure Gateways" task against a real kube-apiserver: the certificate comes from a kubernetes.io/tls
// Secret in the gateway's namespace (credentialName), reaches the proxy over SDS, rotates when the Secret is
// updated (same processes), and a deleted Secret takes its server out of service while plain HTTP keeps
// working. Then the MUTUAL variant with the `<credentialName>-cacert` Secret. Clients are curl-like TLS
// clients with SNI (e2e/lib/tls-client.ts), certificates made by the test (e2e/lib/certs.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { KubeObject } from '../../controller/model/objects.ts';
import { CertFactory, type Ca, type KeyPair } from '../lib/certs.ts';
import { get } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import { httpsGet, requestOn, tlsConnect, type TlsTarget } from '../lib/tls-client.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const GW = '127.0.0.1';
// The chart's Service maps 80 -> 8080 and 443 -> 8443 (as Istio's install): the listeners 0.0.0.0_8080 and
// 0.0.0.0_8443.
const PORT = 8080;
const HTTPS_PORT = 8443;
const CREDENTIAL = 'httpbin-credential';
const HELLO = 'helloworld.example.com';
const HANDSHAKE_CLOSED = /closed|ECONNRESET|socket hang up|disconnected/;

/** `kubectl create -n <ns> secret tls|generic <name> --from-file=...`: data base64-encoded. */
const secret = (name: string, namespace: string, data: Record<string, string>, type = 'Opaque'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace },
  type,
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});
const tlsSecret = (namespace: string, pair: KeyPair): KubeObject =>
  secret(CREDENTIAL, namespace, { 'tls.crt': pair.cert, 'tls.key': pair.key }, 'kubernetes.io/tls');

/**
 * The task's Gateway: HTTPS 443 with credentialName for httpbin.example.com, a second HTTPS server on the same
 * port for helloworld.example.com with its own Secret (the task's "multiple hosts"), and plain HTTP 80.
 */
const mygateway = (namespace: string, mode: 'SIMPLE' | 'MUTUAL'): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'mygateway', namespace },
  spec: {
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls: { mode, credentialName: CREDENTIAL }, hosts: [HOST] },
      { port: { number: 443, name: 'https-helloworld', protocol: 'HTTPS' }, tls: { mode: 'SIMPLE', credentialName: 'helloworld-credential' }, hosts: [HELLO] },
      { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: [HOST] },
    ],
  },
});

describe('kubernetes: secure ingress with a credentialName Secret (SIMPLE, rotation, deletion, MUTUAL)', () => {
  const certs = new CertFactory();
  let s: Suite;
  let gw: GatewayPod;
  let pids: number[];
  let ca: Ca;
  let otherCa: Ca;
  let httpbinCert: KeyPair;
  let rotatedCert: KeyPair;
  let clientCert: KeyPair;
  let helloCert: KeyPair;

  const target = (servername: string | undefined, extra: Partial<TlsTarget> = {}): TlsTarget => ({
    host: GW,
    port: HTTPS_PORT,
    ca: ca.cert,
    ...(servername ? { servername } : {}),
    ...extra,
  });
  const sameProcesses = (): void => {
    assert.deepEqual([gw.proxy.pid, gw.controller?.pid], pids);
    assert.equal(gw.proxy.child.exitCode, null, 'the proxy was not restarted');
    assert.equal(gw.controller?.child.exitCode, null, 'the controller was not restarted');
  };

  before(
    async () => {
      ca = certs.ca('example.com');
      otherCa = certs.ca('rotated.example.com');
      httpbinCert = certs.leaf(ca, HOST, { dns: [HOST] });
      rotatedCert = certs.leaf(otherCa, HOST, { dns: [HOST] });
      helloCert = certs.leaf(ca, HELLO, { dns: [HELLO] });
      clientCert = certs.leaf(ca, 'client.example.com', { dns: ['client.example.com'], client: true });

      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      // kubectl create -n istio-system secret tls httpbin-credential --key=httpbin.example.com.key --cert=httpbin.example.com.crt
      await s.kube.apply(tlsSecret(s.ns.gw, httpbinCert));
      // The generic form: kubectl create secret generic helloworld-credential --from-file=cert=... --from-file=key=...
      await s.kube.apply(secret('helloworld-credential', s.ns.gw, { cert: helloCert.cert, key: helloCert.key }));
      await s.kube.apply(mygateway(s.ns.gw, 'SIMPLE'));
      await s.kube.apply(
        virtualService('httpbin', s.ns.app, {
          hosts: [HOST, HELLO],
          gateways: [`${s.ns.gw}/mygateway`],
          prefixes: ['/status', '/delay', '/headers'],
          host: 'httpbin',
        }),
      );
      // The installed istio-ingressgateway Deployment, its containers started as the kubelet would.
      gw = await startIngressPod(s);
      pids = [gw.proxy.pid, gw.controller?.pid ?? -1];
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await s?.cleanup();
      certs.cleanup();
    },
    { timeout: 120_000 },
  );

  test("SIMPLE: listener 0.0.0.0_8443 is served, and curl --resolve httpbin.example.com --cacert example.com.crt gets 200 from httpbin with the Secret's certificate", async () => {
    const r = await eventually(
      'an HTTPS 200 for httpbin.example.com',
      async () => {
        const res = await httpsGet(target(HOST), '/status/200');
        return res.status === 200 ? res : undefined;
      },
      20_000,
      100,
    );
    assert.match(await gw.adminGet('/listeners'), new RegExp(`^0\\.0\\.0\\.0_${HTTPS_PORT}::0\\.0\\.0\\.0:${HTTPS_PORT}$`, 'm'));
    assert.equal(r.headers.server, 'istio-envoy');
    assert.equal(r.peer.subject.CN, HOST);
    assert.equal(r.peer.fingerprint256, new X509Certificate(httpbinCert.cert).fingerprint256);
    const seen = JSON.parse((await httpsGet(target(HOST), '/headers')).body) as { headers: Record<string, string> };
    assert.equal(seen.headers['X-Forwarded-Proto'], 'https');
    assert.equal((await httpsGet(target(HOST), '/status/418')).status, 418);
    // Several hosts on one port: the certificate is chosen by SNI.
    const hello = await httpsGet(target(HELLO), '/status/200');
    assert.equal(hello.status, 200);
    assert.equal(hello.peer.subject.CN, HELLO);
    // The certificate reached the proxy as the SDS resource istiod names kubernetes://<credentialName>.
    assert.match(await gw.adminGet('/config_dump'), /"kubernetes:\/\/httpbin-credential"/);
    // Plain HTTP on the Gateway's port 80 serves the same VirtualService.
    assert.equal((await get(GW, PORT, '/status/200', HOST)).status, 200);
  });

  test('an unknown SNI, or none: the handshake is closed with no HTTP answer', async () => {
    await assert.rejects(httpsGet(target('nope.example.com'), '/status/200'), HANDSHAKE_CLOSED);
    await assert.rejects(httpsGet(target(undefined), '/status/200'), HANDSHAKE_CLOSED);
    assert.equal((await httpsGet(target(HOST), '/status/200')).status, 200, 'the known SNI still works');
  });

  test('rotation: updating the Secret with a certificate from another CA is presented to new handshakes, by the same processes; an open connection keeps working', async () => {
    const kept = await tlsConnect(target(HOST));
    assert.equal((await requestOn(kept, HOST, '/status/200')).status, 200);
    const rotated = new X509Certificate(rotatedCert.cert).fingerprint256;

    // kubectl create secret tls ... --dry-run=client -o yaml | kubectl replace -f -
    const changedAt = Date.now();
    await s.kube.apply(tlsSecret(s.ns.gw, rotatedCert));
    const r = await eventually(
      'the rotated certificate on a new handshake',
      async () => {
        const res = await httpsGet(target(HOST, { ca: [ca.cert, otherCa.cert] }), '/status/200');
        return res.peer.fingerprint256 === rotated ? res : undefined;
      },
      20_000,
      100,
    );
    const took = Date.now() - changedAt;
    assert.equal(r.status, 200);
    assert.equal(r.peer.issuer.CN, 'rotated.example.com');
    assert.ok(took < 10_000, `served ${took} ms after the Secret update`);
    // A client trusting only the old CA now fails verification: the old certificate is no longer presented.
    await assert.rejects(httpsGet(target(HOST), '/status/200'), /unable to (get local issuer|verify)|self.signed|certificate/i);
    assert.equal((await httpsGet(target(HOST, { ca: otherCa.cert }), '/status/200')).status, 200);
    assert.equal((await requestOn(kept, HOST, '/status/200')).status, 200, 'the connection opened before the rotation still serves');
    kept.destroy();
    sameProcesses();
  });

  test('deleting the Secret: its HTTPS server is no longer served (handshake closed), a Warning Event on the Gateway says why; the other HTTPS server and HTTP on port 80 keep working', async () => {
    await s.kube.remove('Secret', s.ns.gw, CREDENTIAL);
    await eventually(
      'the HTTPS server to stop serving',
      async () => {
        const r = await httpsGet(target(HOST, { ca: otherCa.cert }), '/status/200').catch((err: Error) => err);
        if (r instanceof Error && HANDSHAKE_CLOSED.test(r.message)) return true;
        throw new Error(
          r instanceof Error
            ? `handshake failed otherwise: ${r.message}`
            : `still served: ${r.status} with ${JSON.stringify(r.peer.subject)} issued by ${JSON.stringify(r.peer.issuer)}`,
        );
      },
      20_000,
      100,
    );
    const events = await eventually(
      'a Warning Event on Gateway mygateway naming the Secret',
      async () => {
        const evs = (await s.kube.eventsFor('Gateway', s.ns.gw, 'mygateway')) as (KubeObject & { type: string; reason: string; message: string })[];
        const mine = evs.filter((e) => e.message.includes(CREDENTIAL));
        return mine.length > 0 ? mine : undefined;
      },
      20_000,
      250,
    );
    const ev = events[events.length - 1];
    assert.equal(ev?.type, 'Warning');
    assert.match(ev?.message ?? '', new RegExp(`Secret ${s.ns.gw}/${CREDENTIAL} not found`));
    assert.match(ev?.message ?? '', /credentialName/);
    assert.match(gw.controller?.output() ?? '', new RegExp(`Secret ${s.ns.gw}/${CREDENTIAL} not found`), 'and the controller logs it');
    assert.match(await gw.adminGet('/listeners'), /^0\.0\.0\.0_8443::/m, 'the listener stays for the other server');
    assert.equal((await httpsGet(target(HELLO), '/status/200')).status, 200, 'the other server on 443 keeps working');
    const r = await get(GW, PORT, '/status/200', HOST);
    assert.equal(r.status, 200);
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(await gw.ready(), 200, 'the proxy stays ready');
    sameProcesses();
  });

  test('MUTUAL: with httpbin-credential-cacert, a client certificate from that CA is required', async () => {
    // As the task: a new Secret, the CA in `<credentialName>-cacert`, and the server switched to MUTUAL.
    await s.kube.apply(tlsSecret(s.ns.gw, httpbinCert));
    await s.kube.apply(secret(`${CREDENTIAL}-cacert`, s.ns.gw, { 'ca.crt': ca.cert }));
    await s.kube.apply(mygateway(s.ns.gw, 'MUTUAL'));
    const withCert = target(HOST, { cert: clientCert.cert, key: clientCert.key });
    const ok = await eventually(
      'an mTLS 200 for httpbin.example.com',
      async () => {
        const res = await httpsGet(withCert, '/headers');
        return res.status === 200 ? res : undefined;
      },
      20_000,
      100,
    );
    const seen = JSON.parse(ok.body) as { headers: Record<string, string> };
    assert.match(seen.headers['X-Forwarded-Client-Cert'] ?? '', /Subject="CN=client\.example\.com,O=meshgate-e2e"/);
    // No client certificate: TLS 1.3 reports the server's alert on the first read, or the connection closes.
    await assert.rejects(httpsGet(target(HOST), '/status/200'), /certificate required|alert|closed|ECONNRESET|socket hang up/i);
    // One from another CA is refused too.
    const stranger = certs.leaf(otherCa, 'client.example.com', { dns: ['client.example.com'], client: true });
    await assert.rejects(
      httpsGet(target(HOST, { cert: stranger.cert, key: stranger.key }), '/status/200'),
      /unknown ca|alert|closed|ECONNRESET|socket hang up/i,
    );
    assert.equal((await httpsGet(withCert, '/status/418')).status, 418);
    sameProcesses();
  });

  test("the controller read the Secrets with the chart's RBAC: no request was forbidden", () => {
    assert.doesNotMatch(gw.controller?.output() ?? '', /Forbidden|\b403\b/);
  });
});
