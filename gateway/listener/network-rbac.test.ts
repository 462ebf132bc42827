// The network RBAC filter before tcp_proxy (AuthorizationPolicy on a gateway TCP server), in a running proxy fed
// istiod-shaped config over ADS: an allowed client's bytes reach the backend, a denied client's connection is
// closed without a byte and never opened upstream, the counters are Envoy's (`tcp.rbac.*` with Istio's
// stat_prefix), and a network filter this proxy does not run is NACKed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE } from '../test/ads-server.ts';
import { assignment, edsCluster, eventually } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';
import { adminClient } from '../../e2e/lib/gateway.ts';

const CLUSTER = 'outbound|9000||tcp-echo.default.svc.cluster.local';
const RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

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

const ALLOW_BLOCK = {
  name: 'envoy.filters.network.rbac',
  typed_config: {
    '@type': RBAC,
    rules: {
      policies: {
        'ns[istio-system]-policy[tcp-allow]-rule[0]': {
          permissions: [{ and_rules: { rules: [{ any: true }] } }],
          principals: [{ and_ids: { ids: [{ or_ids: { ids: [{ direct_remote_ip: { address_prefix: '127.0.42.0', prefix_len: 24 } }] } }] } }],
        },
      },
    },
    shadow_rules_stat_prefix: 'istio_dry_run_allow_',
    stat_prefix: 'tcp.',
  },
};

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

describe('network RBAC (AuthorizationPolicy on a TCP server) in the proxy', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port: number;
  let echo: Server;
  const peers: string[] = [];
  const stat = (name: string): Promise<number> => adminClient(proxy.ports.admin).stat(name);

  before(async () => {
    echo = createServer((s: Socket) => {
      peers.push(s.remoteAddress ?? '');
      s.pipe(s);
    });
    const echoPort = await new Promise<number>((r) => echo.listen(0, '127.0.0.4', () => r((echo.address() as { port: number }).port)));
    await ads.start();
    port = await freePort();
    ads.set(CLUSTER_TYPE, [edsCluster(CLUSTER)]);
    ads.set(ENDPOINT_TYPE, [assignment(CLUSTER, [{ ip: '127.0.0.4', port: echoPort }])]);
    ads.set(LISTENER_TYPE, [tcpListener(port, [ALLOW_BLOCK])]);
    proxy = await startTestProxy(ads);
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    echo.close();
  });

  test('an allowed client is proxied; a denied one is closed without a byte and never reaches the backend', async () => {
    const allowed = await stat('tcp.rbac.allowed');
    const denied = await stat('tcp.rbac.denied');
    assert.equal(await exchange(port, '127.0.42.9'), 'ping');
    const before = peers.length;
    assert.equal(await exchange(port, '127.0.43.9'), '');
    assert.equal(peers.length, before, 'no upstream connection for the denied client');
    assert.equal(await stat('tcp.rbac.allowed'), allowed + 1);
    assert.equal(await stat('tcp.rbac.denied'), denied + 1);
  });

  test('a network filter other than RBAC, ext_authz or istio.stats before tcp_proxy is NACKed; the accepted listener keeps its policy', async () => {
    const tcpProxy = { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'x', cluster: CLUSTER };
    ads.set(LISTENER_TYPE, [tcpListener(port, [{ name: 'envoy.filters.network.tcp_proxy', typed_config: tcpProxy }])]);
    await eventually('the NACK', () =>
      ads
        .requestsOf(LISTENER_TYPE)
        .some((r) => /only envoy.filters.network.rbac, envoy.filters.network.ext_authz and istio.stats may precede/.test(r.error_detail?.message ?? ''))
        ? true
        : undefined,
    );
    assert.equal(await exchange(port, '127.0.43.9'), '');
    assert.equal(await exchange(port, '127.0.42.9'), 'ping');
  });
});
