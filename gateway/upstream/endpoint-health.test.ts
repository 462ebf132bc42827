// EDS health_status and healthy_panic_threshold through the proxy, as Envoy applies them: HEALTHY and UNKNOWN
// hosts take requests, DEGRADED ones only when no host of their priority is healthy, UNHEALTHY and TIMEOUT never
// (they count against the panic threshold), DRAINING never (excluded: not counted at all). istiod sends a
// not-ready pod as UNHEALTHY and `healthy_panic_threshold: {}` (0%: no panic mode). /clusters and the
// membership_* gauges show each host's state with Envoy's flags.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get, rawRequest } from '../../e2e/lib/http.ts';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE } from '../test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, eventually, routeOneHost, startEchoBackend } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';

const HOST = 'httpbin.example.com';
const GW = '127.0.0.1';
const HEALTHS = ['HEALTHY', 'UNKNOWN', 'DEGRADED', 'UNHEALTHY', 'TIMEOUT', 'DRAINING'] as const;
type Health = (typeof HEALTHS)[number];

describe('endpoint health_status and the panic threshold, through the proxy', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port = 0;
  // One backend per health status, each on its own address (127.0.0.10 + i), named after the status.
  const backends = new Map<Health, Awaited<ReturnType<typeof startEchoBackend>>>();
  const ip = (h: Health): string => `127.0.0.${10 + HEALTHS.indexOf(h)}`;
  const endpoints = (hs: Health[]): { ip: string; port: number; health: string }[] =>
    hs.map((h) => ({ ip: ip(h), port: backends.get(h)?.port ?? 0, health: h }));
  const admin = async (path: string): Promise<string> =>
    (await rawRequest('127.0.0.1', proxy.ports.admin, `GET ${path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n`)).body.toString();
  const stat = async (name: string): Promise<number> => {
    const text = await admin(`/stats?filter=${encodeURIComponent(`^${name.replace(/[.|;]/g, '\\$&')}$`)}`);
    const m = /: (\d+)\n$/.exec(text);
    if (!m) throw new Error(`no stat ${name}: ${text}`);
    return Number(m[1]);
  };
  /** Which backends answer `n` requests (503 answers as '503'). */
  const spread = async (n = 24): Promise<string[]> => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await get(GW, port, '/h', HOST);
      seen.add(r.statusLine === 'HTTP/1.1 200 OK' ? (r.header('x-instance') ?? '?') : `${r.statusLine.split(' ')[1]} ${r.body.toString()}`);
    }
    return [...seen].sort();
  };
  const setCluster = async (extra: Record<string, unknown>): Promise<void> => {
    const before = ads.requestsOf(CLUSTER_TYPE).length;
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN, { lb_policy: 'ROUND_ROBIN', ...extra })]);
    await eventually('the CDS ACK', () => (ads.requestsOf(CLUSTER_TYPE).length > before ? true : undefined));
  };
  const setEndpoints = async (hs: Health[]): Promise<void> => {
    ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, endpoints(hs))]);
    await eventually('the assignment', async () => ((await stat(`cluster.${HTTPBIN};.membership_total`)) === hs.length ? true : undefined));
  };

  before(async () => {
    await ads.start();
    port = await freePort();
    for (const h of HEALTHS) backends.set(h, await startEchoBackend(ip(h), h));
    // What istiod sends: healthy_panic_threshold {} on every outbound cluster.
    routeOneHost(ads, {
      port,
      host: HOST,
      cluster: edsCluster(HTTPBIN, { lb_policy: 'ROUND_ROBIN', common_lb_config: { healthy_panic_threshold: {} } }),
      endpoints: endpoints([...HEALTHS]),
    });
    proxy = await startTestProxy(ads);
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    for (const b of backends.values()) {
      b.server.close();
      b.server.closeAllConnections();
    }
  });

  test('HEALTHY and UNKNOWN hosts take requests; DEGRADED waits, UNHEALTHY, TIMEOUT and DRAINING get none', async () => {
    await eventually('the listener', async () => ((await get(GW, port, '/h', HOST)).statusLine === 'HTTP/1.1 200 OK' ? true : undefined));
    assert.deepEqual(await spread(), ['HEALTHY', 'UNKNOWN']);
    for (const h of ['DEGRADED', 'UNHEALTHY', 'TIMEOUT', 'DRAINING'] as const) assert.equal(backends.get(h)?.seen.length, 0, h);
  });

  test("/clusters shows Envoy's health flags and eds_health_status; the membership gauges partition the hosts", async () => {
    const text = await admin('/clusters');
    const flags = (h: Health): string | undefined =>
      new RegExp(`^${HTTPBIN.replace(/[.|]/g, '\\$&')}::${ip(h).replace(/\./g, '\\.')}:\\d+::health_flags::(.*)$`, 'm').exec(text)?.[1];
    assert.deepEqual(
      HEALTHS.map((h) => [h, flags(h)]),
      [
        ['HEALTHY', 'healthy'],
        ['UNKNOWN', 'healthy'],
        ['DEGRADED', '/degraded_eds_health'],
        ['UNHEALTHY', '/failed_eds_health'],
        ['TIMEOUT', '/failed_eds_health'],
        ['DRAINING', '/eds_status_draining'],
      ],
    );
    const json = JSON.parse(await admin('/clusters?format=json')) as {
      cluster_statuses: { name: string; host_statuses: { address: { socket_address: { address: string } }; health_status: Record<string, unknown> }[] }[];
    };
    const hosts = json.cluster_statuses.find((c) => c.name === HTTPBIN)?.host_statuses ?? [];
    assert.deepEqual(
      HEALTHS.map((h) => [h, hosts.find((s) => s.address.socket_address.address === ip(h))?.health_status]),
      [
        ['HEALTHY', { eds_health_status: 'HEALTHY' }],
        ['UNKNOWN', { eds_health_status: 'HEALTHY' }],
        ['DEGRADED', { eds_health_status: 'DEGRADED' }],
        ['UNHEALTHY', { eds_health_status: 'UNHEALTHY' }],
        ['TIMEOUT', { eds_health_status: 'UNHEALTHY' }],
        ['DRAINING', { eds_health_status: 'DRAINING' }],
      ],
    );
    const c = `cluster.${HTTPBIN};`;
    assert.deepEqual(
      [
        await stat(`${c}.membership_total`),
        await stat(`${c}.membership_healthy`),
        await stat(`${c}.membership_degraded`),
        await stat(`${c}.membership_excluded`),
      ],
      [6, 2, 1, 1],
    );
  });

  test('no healthy host: the DEGRADED one takes every request', async () => {
    await setEndpoints(['DEGRADED', 'UNHEALTHY', 'DRAINING']);
    assert.deepEqual(await spread(), ['DEGRADED']);
  });

  test("istiod's threshold {} (0%): only UNHEALTHY and DRAINING hosts left gives 503 no healthy upstream, no panic", async () => {
    await setEndpoints(['UNHEALTHY', 'TIMEOUT', 'DRAINING']);
    const before = backends.get('UNHEALTHY')?.seen.length;
    assert.deepEqual(await spread(6), ['503 no healthy upstream']);
    assert.equal(backends.get('UNHEALTHY')?.seen.length, before);
    assert.equal(await stat(`cluster.${HTTPBIN};.lb_healthy_panic`), 0);
  });

  test("Envoy's default threshold (50%, no common_lb_config): 1 healthy of 3 counted hosts panics over all hosts", async () => {
    await setCluster({});
    // DRAINING is not counted: 1 of 3 is 33% < 50%. In panic Envoy balances over every host of the level.
    await setEndpoints(['HEALTHY', 'UNHEALTHY', 'TIMEOUT', 'DRAINING']);
    assert.deepEqual(await spread(), ['DRAINING', 'HEALTHY', 'TIMEOUT', 'UNHEALTHY']);
    assert.ok((await stat(`cluster.${HTTPBIN};.lb_healthy_panic`)) > 0);
  });

  test('threshold 30%: 1 healthy of 3 counted hosts (the DRAINING one left out) is enough, no panic', async () => {
    await setCluster({ common_lb_config: { healthy_panic_threshold: { value: 30 } } });
    const before = await stat(`cluster.${HTTPBIN};.lb_healthy_panic`);
    assert.deepEqual(await spread(), ['HEALTHY']);
    assert.equal(await stat(`cluster.${HTTPBIN};.lb_healthy_panic`), before);
  });
});
