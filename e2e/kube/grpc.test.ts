// gRPC through the installed istio-ingressgateway against a real kube-apiserver: a gRPC pod behind a Service
// whose port is named `grpc` (so the cluster speaks HTTP/2 upstream), a Gateway and a VirtualService as a user
// writes them, and @grpc/grpc-js clients speaking h2c to the gateway pod. Unary with metadata and trailers,
// server streaming, a server error, a gRPC retry by Istio's default policy, and Envoy's gRPC local reply for
// a subset without pods.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { KubeObject } from '../../controller/model/objects.ts';
import { EchoClient, type Echo } from '../lib/grpc-echo.ts';
import { eventually } from '../lib/process.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { gateway, setupSuite, startIngressPod, type Suite } from './suite.ts';

const GRPC_HOST = 'grpc.example.com';
const GRPC_PORT = 50051;
const PORT = 8080;

describe('kubernetes: gRPC through the ingress gateway (h2c downstream, HTTP/2 upstream)', () => {
  let s: Suite;
  let gw: GatewayPod;
  const clients: grpc.Client[] = [];
  const client = (): Echo => {
    const c = new EchoClient(`127.0.0.1:${PORT}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': GRPC_HOST }) as Echo;
    clients.push(c);
    return c;
  };
  const unary = (body: string, md = new grpc.Metadata()) =>
    new Promise<{ err: grpc.ServiceError | null; reply?: Buffer; trailers?: grpc.Metadata }>((resolve) => {
      let trailers: grpc.Metadata | undefined;
      const call = client().unary(Buffer.from(body), md, {}, (err, reply) => setImmediate(() => resolve({ err, reply, trailers })));
      call.on('status', (st: grpc.StatusObject) => (trailers = st.metadata));
    });

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.grpcBackend('grpc-echo-v1', s.ns.app, { app: 'grpc-echo', version: 'v1' }, GRPC_PORT);
      await s.service('grpc-echo', s.ns.app, [pod], { app: 'grpc-echo' }, [{ name: 'grpc', port: GRPC_PORT, targetPort: GRPC_PORT }]);
      await s.kube.apply(gateway('grpc-gateway', s.ns.gw, { istio: 'ingressgateway' }, [GRPC_HOST]));
      const vs: KubeObject = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'grpc-echo', namespace: s.ns.app },
        spec: {
          hosts: [GRPC_HOST],
          gateways: [`${s.ns.gw}/grpc-gateway`],
          http: [
            // A method on a subset no pod has: no healthy upstream.
            { match: [{ uri: { exact: '/meshgate.test.Echo/Sum' } }], route: [{ destination: { host: 'grpc-echo', subset: 'v9' } }] },
            { route: [{ destination: { host: 'grpc-echo', port: { number: GRPC_PORT } } }] },
          ],
        },
      };
      await s.kube.apply(vs);
      await s.kube.apply({
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'grpc-echo', namespace: s.ns.app },
        spec: { host: 'grpc-echo', subsets: [{ name: 'v9', labels: { version: 'v9' } }] },
      });
      gw = await startIngressPod(s);
      await eventually('the gRPC route', async () => ((await unary('ping')).err === null ? true : undefined), 30_000, 200);
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      for (const c of clients) c.close();
      await gw?.stop();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('unary: metadata reaches the pod, the reply and its trailing metadata come back', async () => {
    const md = new grpc.Metadata();
    md.set('x-custom', 'from-kube');
    const r = await unary('ping', md);
    assert.equal(r.err, null);
    const seen = JSON.parse(String(r.reply)) as { head: string; custom: string; xfp: string; requestId: boolean };
    assert.deepEqual(seen, { size: 4, head: 'ping', xfp: 'http', requestId: true, custom: 'from-kube' });
    assert.deepEqual(r.trailers?.get('x-echo-trailer'), ['bye']);
  });

  test('server streaming: 20 messages in order', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const st = client().count(Buffer.from('20'));
      st.on('data', (b: Buffer) => got.push(b.toString()));
      st.on('end', () => resolve());
      st.on('error', reject);
    });
    assert.deepEqual(
      got,
      Array.from({ length: 20 }, (_, i) => `#${i}`),
    );
  });

  test("a server error passes through; UNAVAILABLE is retried by Istio's default policy", async () => {
    const fail = await unary('fail');
    assert.equal(fail.err?.code, grpc.status.NOT_FOUND);
    assert.equal(fail.err?.details, 'no such thing');
    const flaky = await unary('flaky');
    assert.equal(flaky.err, null, String(flaky.err));
    assert.equal(String(flaky.reply), 'attempt 2');
  });

  test('a subset without pods: UNAVAILABLE `no healthy upstream` from the gateway', async () => {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const w = client().sum((e) => resolve(e));
      w.write(Buffer.from('x'));
      w.end();
    });
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
    assert.equal(err?.details, 'no healthy upstream');
  });
});
