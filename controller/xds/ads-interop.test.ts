// An independent xDS client against our ADS server: @grpc/grpc-js-xds (proxyless gRPC) resolves
// `xds:///echo.test:8000` through LDS -> RDS -> CDS -> EDS served by AdsServer and reaches a real backend.
// gRPC subscribes by name for every type and validates differently from Envoy, so this catches protocol
// mistakes the project's own proxy might share with the server. It also NACKs what it does not support.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../cli/logger.ts';
import { HCM_TYPE, ROUTER_TYPE } from '../../xds/type-urls.ts';
import { AdsServer } from './ads-server.ts';
import type { XdsResources } from './snapshot.ts';

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString()) as unknown,
};
const EchoService = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(EchoService, 'Echo');

const TARGET = 'echo.test:8000';
const CLUSTER = 'outbound|8000||echo.test';

function resources(backendPort: number, clusterType: 'EDS' | 'STATIC' = 'EDS'): XdsResources {
  return {
    listeners: [
      {
        name: TARGET,
        api_listener: {
          api_listener: {
            '@type': HCM_TYPE,
            rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'echo-route' },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
          },
        },
      },
    ],
    routes: [{ name: 'echo-route', virtual_hosts: [{ name: 'echo', domains: [TARGET], routes: [{ match: { prefix: '' }, route: { cluster: CLUSTER } }] }] }],
    clusters: [
      clusterType === 'EDS'
        ? {
            name: CLUSTER,
            type: 'EDS',
            eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: CLUSTER },
            lb_policy: 'ROUND_ROBIN',
          }
        : { name: CLUSTER, type: 'STATIC', lb_policy: 'ROUND_ROBIN' },
    ],
    endpoints: [
      {
        cluster_name: CLUSTER,
        endpoints: [
          {
            locality: {},
            load_balancing_weight: 1,
            lb_endpoints: [
              {
                endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } },
                health_status: 'HEALTHY',
                load_balancing_weight: 1,
              },
            ],
          },
        ],
      },
    ],
    secrets: [],
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function backend(): Promise<number> {
  const server = new grpc.Server();
  server.addService(EchoService, {
    Echo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { echo: call.request, from: 'backend' }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));
  return port;
}

async function call(client: grpc.Client, deadlineMs: number): Promise<unknown> {
  const method = (client as unknown as Record<string, (req: unknown, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => void>)
    .Echo!;
  return new Promise((resolve, reject) => {
    method.call(client, { msg: 'hi' }, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

test('a proxyless gRPC client (@grpc/grpc-js-xds) resolves a target through our LDS/RDS/CDS/EDS and reaches the backend; a cluster it cannot use is NACKed and recorded', async () => {
  const ads = await AdsServer.start({ host: '127.0.0.1', port: 0, log: silentLogger() });
  cleanups.push(() => ads.close());
  const port = await backend();
  ads.setResources(resources(port));
  ads.markSynced();

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${ads.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'interop~127.0.0.1~echo.default~default.svc.cluster.local', cluster: 'interop', locality: {} },
  });
  const xds = await import('@grpc/grpc-js-xds');
  xds.register();
  const client = new EchoClient(`xds:///${TARGET}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());

  assert.deepEqual(await call(client, 10000), { echo: { msg: 'hi' }, from: 'backend' });
  const status = ads.proxies()[0];
  assert.equal(status?.nodeId, 'interop~127.0.0.1~echo.default~default.svc.cluster.local');
  for (const t of ['lds', 'rds', 'cds', 'eds']) {
    assert.equal(status?.types[t]?.wildcard, false, `${t} is subscribed by name`);
  }

  // gRPC supports only EDS/LOGICAL_DNS/aggregate clusters: a STATIC one is rejected (NACK) with a reason.
  ads.setResources(resources(port, 'STATIC'));
  const deadline = Date.now() + 5000;
  while (!ads.proxies()[0]?.types.cds?.lastNack && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const nack = ads.proxies()[0]?.types.cds?.lastNack;
  assert.ok(nack, 'the client NACKed the STATIC cluster');
  assert.match(nack.message, /STATIC/);
  assert.equal(ads.rejects.cds, 1);
});
