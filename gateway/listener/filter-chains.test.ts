// Filter chain selection (Envoy's order for the fields gateways use): an exact server name, then the longest
// matching wildcard, then chains without server names; transport_protocol must agree with the connection.
// tcp_proxy: what its config is reduced to, the source-IP hash it gives the load balancer, its access log line.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import type { envoy } from '../../xds/envoy.ts';
import { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { xxHash64 } from '../upstream/xxhash64.ts';
import { FilterChainMatcher, type FilterChainSpec } from './filter-chains.ts';
import { parseTcpProxy, TcpProxy } from './tcp-proxy.ts';
import { FILE_ACCESS_LOG_TYPE } from '../../xds/type-urls.ts';

describe('filter chain selection', () => {
  const chain = (index: number, serverNames: string[], transportProtocol = ''): { spec: FilterChainSpec } => ({
    spec: { index, serverNames, transportProtocol, tls: undefined, hcm: undefined, tcp: undefined, network: [], istioStats: undefined, handshakeTimeoutMs: 0 },
  });
  const m = new FilterChainMatcher([chain(0, ['*.example.com']), chain(1, ['a.example.com']), chain(2, ['*.b.example.com']), chain(3, [])]);
  const cases: [string | undefined, number | undefined][] = [
    ['a.example.com', 1], // exact beats wildcard
    ['x.example.com', 0],
    ['x.b.example.com', 2], // longest wildcard
    ['deep.x.example.com', 0], // wildcards match deeper names
    ['other.test', 3], // chains without names catch the rest
    [undefined, 3],
  ];
  for (const [sni, want] of cases) test(`SNI ${String(sni)} -> chain ${String(want)}`, () => assert.equal(m.select(sni, true)?.spec.index, want));
  test('no catch-all chain: an unknown SNI matches nothing; transport_protocol must agree', () => {
    const only = new FilterChainMatcher([chain(0, ['a.example.com']), chain(1, [], 'raw_buffer')]);
    assert.equal(only.select('nope.example.com', true), undefined);
    assert.equal(only.select(undefined, false)?.spec.index, 1);
  });
});

describe('tcp_proxy', () => {
  const log = pino({ level: 'silent' });

  test('hash_policy source_ip: the load balancer gets the hash of the client IP (IPv4-mapped addresses as IPv4); without it, none', () => {
    const store = new StatsStore();
    const hashes: (bigint | undefined)[] = [];
    const cluster = {
      chooseHost: (h?: bigint) => {
        hashes.push(h);
        return undefined;
      },
      stats: { upstream_cx_none_healthy: store.counter('none_healthy') },
      spec: {},
    };
    const clusters = { get: () => cluster } as unknown as ClusterManager;
    const connect = (hashPolicy: envoy.type.v3.HashPolicy[] | undefined): void => {
      const spec = parseTcpProxy({ stat_prefix: 's', cluster: 'c', ...(hashPolicy ? { hash_policy: hashPolicy } : {}) }, 'test');
      const down = Object.assign(new PassThrough(), { remoteAddress: '::ffff:10.1.2.3' });
      new TcpProxy(spec, { store, clusters, log }).handle(down);
    };
    connect([{ source_ip: {} }]);
    connect(undefined);
    assert.deepEqual(hashes, [xxHash64('10.1.2.3'), undefined]);
  });

  test('access_log: a connection without a healthy host is logged when it closes, with UH, its cluster and addresses; an unknown cluster with NC', async () => {
    const store = new StatsStore();
    const cluster = { chooseHost: () => undefined, stats: { upstream_cx_none_healthy: store.counter('none_healthy') }, spec: {} };
    const written: [string, string][] = [];
    const sinks = { write: (path: string, text: string) => void written.push([path, text]), close: () => undefined };
    const spec = parseTcpProxy(
      {
        stat_prefix: 's',
        cluster: 'outbound|5432||db.default.svc.cluster.local',
        access_log: [
          {
            name: 'envoy.access_loggers.file',
            typed_config: {
              '@type': FILE_ACCESS_LOG_TYPE,
              path: '/dev/stdout',
              log_format: {
                text_format_source: {
                  inline_string:
                    '%RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %REQUESTED_SERVER_NAME% %PROTOCOL% %RESPONSE_CODE%\n',
                },
              },
            },
          },
        ],
      },
      'test',
    );
    const connection = async (clusters: ClusterManager, sni?: string): Promise<void> => {
      const down = Object.assign(new PassThrough(), { remoteAddress: '::ffff:10.1.2.3', remotePort: 40000, localAddress: '10.0.0.1', localPort: 9000 });
      const closed = new Promise((resolve) => down.once('close', resolve));
      new TcpProxy(spec, { store, clusters, log, accessLogSinks: sinks }).handle(down, sni);
      await closed;
      await new Promise((resolve) => setImmediate(resolve));
    };
    await connection({ get: () => cluster } as unknown as ClusterManager, 'db.example.com');
    await connection({ get: () => undefined } as unknown as ClusterManager);
    assert.deepEqual(written, [
      ['/dev/stdout', 'UH outbound|5432||db.default.svc.cluster.local 10.1.2.3:40000 10.0.0.1:9000 db.example.com - 0\n'],
      ['/dev/stdout', 'NC - 10.1.2.3:40000 10.0.0.1:9000 - - 0\n'],
    ]);
  });

  const nacks: [string, envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, RegExp][] = [
    [
      'a hash policy other than source_ip',
      { stat_prefix: 's', cluster: 'c', hash_policy: [{ filter_state: { key: 'k' } }] },
      /hash_policy\[0\]: field 'filter_state'/,
    ],
    ['an empty hash policy', { stat_prefix: 's', cluster: 'c', hash_policy: [{}] }, /hash_policy\[0\]: a hash policy needs source_ip/],
    [
      'a weighted cluster with metadata_match (subset selection is not implemented)',
      { stat_prefix: 's', weighted_clusters: { clusters: [{ name: 'c', weight: 1, metadata_match: {} }] } },
      /clusters\[0\]: field 'metadata_match'/,
    ],
    ['no stat_prefix', { cluster: 'c' }, /tcp_proxy needs a stat_prefix/],
    [
      'an access logger other than the file logger',
      { stat_prefix: 's', cluster: 'c', access_log: [{ name: 'x' }] },
      /access_log\[0\]: access logger x is not supported/,
    ],
  ];
  for (const [name, cfg, re] of nacks) test(`NACKed: ${name}`, () => assert.throws(() => parseTcpProxy(cfg, 'test'), re));
});
