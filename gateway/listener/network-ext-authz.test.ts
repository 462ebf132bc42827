// The network ext_authz filter before tcp_proxy (a CUSTOM AuthorizationPolicy with a gRPC provider on a TCP
// server), in a running proxy fed istiod-shaped config over ADS, with a real gRPC authorization service: the
// RBAC shadow rules pick the connections to check, an allowed one is proxied, a denied one is closed without a
// byte and never opened upstream, an unchecked one counts `disabled`, a service that cannot be reached closes
// the connection unless failure_mode_allow, and the counters are Envoy's (`ext_authz.tcp..*`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE } from '../test/ads-server.ts';
import { assignment, edsCluster, eventually } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';
import { adminClient } from '../../e2e/lib/gateway.ts';
import { GrpcAuthServer, staticCluster } from '../extauthz/test-auth-servers.ts';

const CLUSTER = 'outbound|9000||tcp-echo.default.svc.cluster.local';
const AUTHZ = 'outbound|9001||ext-authz.foo.svc.cluster.local';

/** What istiod emits for a CUSTOM policy on a TCP server: RBAC shadow rules, then ext_authz (gRPC provider). */
function customFilters(authzCluster: string, failOpen: boolean): Record<string, unknown>[] {
  return [
    {
      name: 'envoy.filters.network.rbac',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
        shadow_rules: {
          policies: {
            'istio-ext-authz-ns[istio-system]-policy[ext]-rule[0]': {
              permissions: [{ and_rules: { rules: [{ any: true }] } }],
              principals: [{ and_ids: { ids: [{ or_ids: { ids: [{ direct_remote_ip: { address_prefix: '127.0.42.0', prefix_len: 24 } }] } }] } }],
            },
          },
        },
        stat_prefix: 'tcp.',
        shadow_rules_stat_prefix: 'istio_ext_authz_',
      },
    },
    {
      name: 'envoy.filters.network.ext_authz',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
        stat_prefix: 'tcp.',
        failure_mode_allow: failOpen,
        transport_api_version: 'V3',
        grpc_service: { envoy_grpc: { cluster_name: authzCluster, authority: 'ext-authz.foo.svc.cluster.local' }, timeout: '2s' },
        filter_enabled_metadata: {
          filter: 'envoy.filters.network.rbac',
          path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
          value: { string_match: { prefix: 'istio-ext-authz' } },
        },
      },
    },
  ];
}

function tcpListener(port: number, filters: Record<string, unknown>[]): Record<string, unknown> {
  return {
    name: `0.0.0.0_${port}`,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          ...filters,
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: CLUSTER, cluster: CLUSTER },
          },
        ],
      },
    ],
    traffic_direction: 'OUTBOUND',
  };
}

/** Connects from `from`, sends `ping`, and resolves with what came back before the connection closed. */
function exchange(port: number, from: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: from });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping') s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
    s.write('ping');
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

describe('network ext_authz (CUSTOM AuthorizationPolicy on a TCP server) in the proxy', () => {
  const ads = new TestAdsServer();
  const auth = new GrpcAuthServer();
  let proxy: Proxy;
  let port: number;
  let echo: Server;
  const peers: string[] = [];
  const stat = (name: string): Promise<number> => adminClient(proxy.ports.admin).stat(name);

  before(async () => {
    await auth.start();
    // Allows 127.0.42.1 only, from the CheckRequest's source address.
    auth.answer = (q, cb) => {
      const src = (q.request.attributes as { source?: { address?: { socket_address?: { address?: string } } } }).source?.address?.socket_address?.address;
      cb(null, { status: { code: src === '127.0.42.1' ? 0 : 7 } });
    };
    echo = createServer((s: Socket) => {
      peers.push(s.remoteAddress ?? '');
      s.pipe(s);
    });
    const echoPort = await new Promise<number>((r) => echo.listen(0, '127.0.0.4', () => r((echo.address() as { port: number }).port)));
    await ads.start();
    port = await freePort();
    ads.set(CLUSTER_TYPE, [edsCluster(CLUSTER), { ...staticCluster(AUTHZ, auth.port, true) }, { ...staticCluster('dead', await freePort(), true) }]);
    ads.set(ENDPOINT_TYPE, [assignment(CLUSTER, [{ ip: '127.0.0.4', port: echoPort }])]);
    ads.set(LISTENER_TYPE, [tcpListener(port, customFilters(AUTHZ, false))]);
    proxy = await startTestProxy(ads);
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    await auth.close();
    echo.close();
  });

  test('checked connections: allowed is proxied, denied is closed without a byte and never reaches the backend', async () => {
    const ok = await stat('ext_authz.tcp..ok');
    assert.equal(await exchange(port, '127.0.42.1'), 'ping');
    assert.equal(await stat('ext_authz.tcp..ok'), ok + 1);
    const before = peers.length;
    assert.equal(await exchange(port, '127.0.42.2'), '');
    assert.equal(peers.length, before, 'no upstream connection for the denied client');
    assert.equal(await stat('ext_authz.tcp..denied'), 1);
    assert.equal(await stat('ext_authz.tcp..cx_closed'), 1);
    assert.equal(await stat('ext_authz.tcp..total'), 2);
    assert.equal(await stat('ext_authz.tcp..active'), 0);
    const req = auth.seen.at(-1)?.request.attributes as { destination?: { address?: { socket_address?: { port_value?: number } } } };
    assert.equal(req.destination?.address?.socket_address?.port_value, port, 'destination is the listener');
  });

  test('a connection the CUSTOM policy does not select is not checked (disabled)', async () => {
    const seen = auth.seen.length;
    assert.equal(await exchange(port, '127.0.43.1'), 'ping');
    assert.equal(auth.seen.length, seen);
    assert.equal(await stat('ext_authz.tcp..disabled'), 1);
  });

  test('an unreachable service closes the connection; with failure_mode_allow it goes through', async () => {
    ads.set(LISTENER_TYPE, [tcpListener(port, customFilters('dead', false))]);
    await eventually('the new listener', async () => ((await exchange(port, '127.0.42.1')) === '' ? true : undefined));
    assert.ok((await stat('ext_authz.tcp..error')) >= 1);
    ads.set(LISTENER_TYPE, [tcpListener(port, customFilters('dead', true))]);
    await eventually('failure_mode_allow', async () => ((await exchange(port, '127.0.42.1')) === 'ping' ? true : undefined));
    assert.ok((await stat('ext_authz.tcp..failure_mode_allowed')) >= 1);
  });
});
