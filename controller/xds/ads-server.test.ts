// The ADS server against a real grpc-js client over 127.0.0.1: SotW handshake, ACK/NACK, named
// subscriptions, pushes on change, push order, stale nonces and reconnects.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { AdsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse } from '../../xds/ads-service.ts';
import { unpackToJson } from '../../xds/protos.ts';
import type { envoy } from '../../xds/envoy.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import { silentLogger } from '../../cli/logger.ts';
import { AdsServer } from './ads-server.ts';
import type { XdsResources } from './snapshot.ts';

const AdsClient = grpc.makeGenericClientConstructor(AdsServiceDefinition, 'AggregatedDiscoveryService');
const NODE = { id: 'router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local', cluster: 'gw', metadata: {} };

function resources(clusterNames: string[], routeVhost = 'a.example.com:80'): XdsResources {
  return {
    listeners: [{ name: '0.0.0.0_8080', address: { socket_address: { address: '0.0.0.0', port_value: 8080 } } }],
    routes: [{ name: 'http.8080', virtual_hosts: [{ name: routeVhost, domains: ['*'] }] }],
    clusters: clusterNames.map((name) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: name } })),
    endpoints: clusterNames.map((name) => ({ cluster_name: name })),
    secrets: [],
  };
}

/** A minimal ADS client: a queue of responses with a timed wait. */
class TestStream {
  readonly received: DiscoveryResponse[] = [];
  /** Every response type in arrival order (never consumed). */
  readonly arrivals: string[] = [];
  private waiters: (() => void)[] = [];
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  private sentNode = false;
  constructor(client: grpc.Client) {
    const method = (client as unknown as Record<string, () => grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>>).StreamAggregatedResources;
    this.call = method!.call(client);
    this.call.on('data', (r: DiscoveryResponse) => {
      this.received.push(r);
      this.arrivals.push(r.type_url);
      for (const w of this.waiters.splice(0)) w();
    });
    this.call.on('error', () => undefined);
  }
  send(type: string, names: string[] = [], ack?: DiscoveryResponse, error?: string): void {
    const req: DiscoveryRequest = { version_info: ack?.version_info ?? '', resource_names: names, type_url: type, response_nonce: ack?.nonce ?? '' };
    if (!this.sentNode) {
      req.node = NODE;
      this.sentNode = true;
    }
    if (error) req.error_detail = { code: 3, message: error };
    this.call.write(req);
  }
  /** Next response of a type (consumes it), or fails after a timeout. */
  async next(type: string, timeoutMs = 2000): Promise<DiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((r) => r.type_url === type);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  /** Asserts nothing of that type arrives for a while. */
  async none(type: string, ms = 200): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    assert.equal(this.received.filter((r) => r.type_url === type).length, 0, `unexpected ${type} response`);
  }
  close(): void {
    this.call.end();
  }
}

const servers: AdsServer[] = [];
const clients: grpc.Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

async function setup(opts: { synced?: boolean; registry?: Registry } = {}): Promise<{ server: AdsServer; open: () => TestStream }> {
  const server = await AdsServer.start({ host: '127.0.0.1', port: 0, log: silentLogger(), ...(opts.registry ? { registry: opts.registry } : {}) });
  servers.push(server);
  if (opts.synced !== false) server.markSynced();
  const client = new AdsClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  clients.push(client);
  return { server, open: () => new TestStream(client) };
}

const names = (r: DiscoveryResponse): string[] => r.resources.map((a) => String(unpackToJson(a).name ?? unpackToJson(a).cluster_name));

test('wildcard CDS and LDS get every resource, with an istiod-style version and a nonce', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['outbound|80||a.default.svc.cluster.local', 'BlackHoleCluster']));
  const s = open();
  s.send(CLUSTER_TYPE);
  const cds = await s.next(CLUSTER_TYPE);
  assert.deepEqual(names(cds), ['outbound|80||a.default.svc.cluster.local', 'BlackHoleCluster']);
  assert.match(cds.version_info, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\/\d+$/);
  assert.ok(cds.nonce.length > cds.version_info.length);
  s.send(LISTENER_TYPE);
  assert.deepEqual(names(await s.next(LISTENER_TYPE)), ['0.0.0.0_8080']);
  s.close();
});

test('named EDS and RDS subscriptions get only the named resources', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1', 'c2', 'c3']));
  const s = open();
  s.send(ENDPOINT_TYPE, ['c2', 'c3', 'missing']);
  assert.deepEqual(names(await s.next(ENDPOINT_TYPE)), ['c2', 'c3']);
  s.send(ROUTE_TYPE, ['http.8080']);
  assert.deepEqual(names(await s.next(ROUTE_TYPE)), ['http.8080']);
  s.close();
});

test('named CDS (as gRPC xDS clients subscribe) gets only the named clusters', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1', 'c2']));
  const s = open();
  s.send(CLUSTER_TYPE, ['c2']);
  assert.deepEqual(names(await s.next(CLUSTER_TYPE)), ['c2']);
  s.close();
});

test('an ACK marks the type SYNCED and gets no answer; a change pushes only the changed type', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1']));
  const s = open();
  s.send(CLUSTER_TYPE);
  const cds = await s.next(CLUSTER_TYPE);
  s.send(ROUTE_TYPE, ['http.8080']);
  const rds = await s.next(ROUTE_TYPE);
  s.send(CLUSTER_TYPE, [], cds);
  s.send(ROUTE_TYPE, ['http.8080'], rds);
  await s.none(CLUSTER_TYPE);
  const status = server.proxies()[0]!;
  assert.equal(status.nodeId, NODE.id);
  assert.equal(status.types.cds?.status, 'SYNCED');
  assert.equal(status.types.rds?.status, 'SYNCED');
  // Only the route changes: RDS is pushed, CDS is not.
  server.setResources(resources(['c1'], 'b.example.com:80'));
  const rds2 = await s.next(ROUTE_TYPE);
  assert.notEqual(rds2.version_info, rds.version_info);
  assert.equal((unpackToJson(rds2.resources[0]!).virtual_hosts as { name: string }[])[0]?.name, 'b.example.com:80');
  await s.none(CLUSTER_TYPE);
  assert.equal(server.proxies()[0]?.types.rds?.status, 'STALE');
  s.close();
});

test('a NACK is recorded with its message and counted, and the server keeps serving the stream', async () => {
  const registry = new Registry();
  const { server, open } = await setup({ registry });
  server.setResources(resources(['c1']));
  const s = open();
  s.send(CLUSTER_TYPE);
  const cds = await s.next(CLUSTER_TYPE);
  s.send(CLUSTER_TYPE, [], cds, 'cluster c1: unsupported lb_policy');
  await s.none(CLUSTER_TYPE);
  const st = server.proxies()[0]?.types.cds;
  assert.equal(st?.status, 'ERROR');
  assert.equal(st?.lastNack?.message, 'cluster c1: unsupported lb_policy');
  assert.equal(st?.lastNack?.version, cds.version_info);
  assert.equal(server.rejects.cds, 1);
  assert.match(await registry.metrics(), /pilot_total_xds_rejects\{type="cds"\} 1/);
  // A fixed config is pushed and its ACK clears the error.
  server.setResources(resources(['c1', 'c2']));
  const cds2 = await s.next(CLUSTER_TYPE);
  assert.deepEqual(names(cds2), ['c1', 'c2']);
  s.send(CLUSTER_TYPE, [], cds2);
  await s.none(CLUSTER_TYPE, 100);
  assert.equal(server.proxies()[0]?.types.cds?.status, 'SYNCED');
  s.close();
});

test('an ACK carrying a stale nonce is ignored', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1']));
  const s = open();
  s.send(CLUSTER_TYPE);
  const first = await s.next(CLUSTER_TYPE);
  server.setResources(resources(['c1', 'c2']));
  const second = await s.next(CLUSTER_TYPE);
  s.send(CLUSTER_TYPE, [], first);
  await s.none(CLUSTER_TYPE, 100);
  assert.equal(server.proxies()[0]?.types.cds?.status, 'STALE');
  assert.equal(server.proxies()[0]?.types.cds?.nonceSent, second.nonce);
  s.close();
});

test('adding a name to a named subscription answers with the added resource; removing one does not answer', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1', 'c2']));
  const s = open();
  s.send(ENDPOINT_TYPE, ['c1']);
  const e1 = await s.next(ENDPOINT_TYPE);
  s.send(ENDPOINT_TYPE, ['c1', 'c2'], e1);
  const e2 = await s.next(ENDPOINT_TYPE);
  // c1 did not change since e1: EDS responses need not repeat it (the client keeps what a response leaves out).
  assert.deepEqual(names(e2), ['c2']);
  s.send(ENDPOINT_TYPE, ['c2'], e2);
  await s.none(ENDPOINT_TYPE);
  // Dropped and added back: sent again.
  s.send(ENDPOINT_TYPE, ['c1', 'c2'], e2);
  assert.deepEqual(names(await s.next(ENDPOINT_TYPE)), ['c1']);
  s.close();
});

/** A stream subscribed to CDS, EDS (c1..cN), LDS and RDS, every response ACKed; `got` records what arrives after. */
async function subscribedAll(server: AdsServer, open: () => TestStream, clusterNames: string[]): Promise<{ s: TestStream; got: () => DiscoveryResponse[] }> {
  const s = open();
  const subs = [
    [CLUSTER_TYPE, []],
    [ENDPOINT_TYPE, clusterNames],
    [LISTENER_TYPE, []],
    [ROUTE_TYPE, ['http.8080']],
  ] as const;
  for (const [t, n] of subs) {
    s.send(t, [...n]);
    s.send(t, [...n], await s.next(t));
  }
  await new Promise((r) => setTimeout(r, 50));
  s.received.length = 0;
  // Keep ACKing whatever comes, as a client does.
  const got: DiscoveryResponse[] = [];
  s.call.on('data', (r: DiscoveryResponse) => {
    got.push(r);
    const sub = subs.find(([t]) => t === r.type_url);
    s.send(r.type_url, [...(sub?.[1] ?? [])], r);
  });
  return { s, got: () => got };
}

test('an endpoints-only change pushes EDS alone, with only the changed ClusterLoadAssignment', async () => {
  const { server, open } = await setup();
  const base = resources(['c1', 'c2', 'c3']);
  server.setResources(base);
  const { s, got } = await subscribedAll(server, open, ['c1', 'c2', 'c3']);
  const next = resources(['c1', 'c2', 'c3']);
  next.endpoints[1] = {
    cluster_name: 'c2',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 80 } } } }] }],
  };
  server.setResources(next);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(
    got().map((r) => r.type_url),
    [ENDPOINT_TYPE],
  );
  assert.deepEqual(names(got()[0]!), ['c2']);
  s.close();
});

test('setting the same resources again pushes nothing; a route change pushes RDS alone', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1', 'c2']));
  const { s, got } = await subscribedAll(server, open, ['c1', 'c2']);
  const before = server.versions();
  server.setResources(resources(['c1', 'c2']));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(got().length, 0);
  assert.deepEqual(server.versions(), before, 'no new version for identical content');
  server.setResources(resources(['c1', 'c2'], 'new.example.com:80'));
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(
    got().map((r) => r.type_url),
    [ROUTE_TYPE],
  );
  assert.notEqual(server.versions().rds, before.rds);
  assert.equal(server.versions().cds, before.cds);
  s.close();
});

test('a cluster change sends every cluster (CDS is complete) but EDS only for the assignments that changed', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1', 'c2']));
  const { s, got } = await subscribedAll(server, open, ['c1', 'c2', 'c3']);
  server.setResources(resources(['c1', 'c2', 'c3']));
  await new Promise((r) => setTimeout(r, 200));
  const cds = got().filter((r) => r.type_url === CLUSTER_TYPE);
  const eds = got().filter((r) => r.type_url === ENDPOINT_TYPE);
  assert.equal(cds.length, 1);
  assert.deepEqual(names(cds[0]!), ['c1', 'c2', 'c3']);
  assert.deepEqual(eds.flatMap(names), ['c3']);
  s.close();
});

test('a reconnecting proxy gets every subscribed EDS resource again, changed or not', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1', 'c2']));
  const a = open();
  a.send(ENDPOINT_TYPE, ['c1', 'c2']);
  const e = await a.next(ENDPOINT_TYPE);
  a.close();
  const b = open();
  b.call.write({ version_info: e.version_info, resource_names: ['c1', 'c2'], type_url: ENDPOINT_TYPE, response_nonce: '', node: NODE });
  assert.deepEqual(names(await b.next(ENDPOINT_TYPE)), ['c1', 'c2']);
  b.close();
});

test('nothing is served before markSynced; everything requested is answered right after', async () => {
  const { server, open } = await setup({ synced: false });
  server.setResources(resources(['c1']));
  const s = open();
  s.send(CLUSTER_TYPE);
  s.send(LISTENER_TYPE);
  await s.none(CLUSTER_TYPE, 200);
  server.markSynced();
  assert.deepEqual(names(await s.next(CLUSTER_TYPE)), ['c1']);
  assert.deepEqual(names(await s.next(LISTENER_TYPE)), ['0.0.0.0_8080']);
  s.close();
});

test('a full push goes out in istiod order: CDS, EDS, LDS, RDS', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1']));
  const s = open();
  const acks: Record<string, DiscoveryResponse> = {};
  for (const [t, n] of [
    [LISTENER_TYPE, []],
    [ROUTE_TYPE, ['http.8080']],
    [CLUSTER_TYPE, []],
    [ENDPOINT_TYPE, ['c1', 'c9']],
  ] as const) {
    s.send(t, [...n]);
    acks[t] = await s.next(t);
    s.send(t, [...n], acks[t]);
  }
  await new Promise((r) => setTimeout(r, 100));
  s.received.length = 0;
  s.arrivals.length = 0;
  const next = resources(['c1', 'c9'], 'z.example.com:80');
  next.listeners[0]!.stat_prefix = 'changed';
  server.setResources(next);
  await s.next(ROUTE_TYPE);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.arrivals, [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]);
  s.close();
});

test('a reconnecting proxy gets the full state again, and a closed stream leaves the proxy list', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c1']));
  const a = open();
  a.send(CLUSTER_TYPE);
  const cds = await a.next(CLUSTER_TYPE);
  a.close();
  for (let i = 0; i < 50 && server.proxies().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(server.proxies().length, 0);
  const b = open();
  // Envoy reconnects with the version it has and an empty nonce: it must still be answered.
  b.call.write({ version_info: cds.version_info, resource_names: [], type_url: CLUSTER_TYPE, response_nonce: '', node: NODE });
  assert.deepEqual(names(await b.next(CLUSTER_TYPE)), ['c1']);
  b.close();
});

test('a resource the protos reject is left out and the rest is served', async () => {
  const { server, open } = await setup();
  const r = resources(['c1', 'c2']);
  // What a translator bug the compiler cannot see (a field set through a cast) would send.
  r.clusters[1] = { name: 'c2', bogus_field: true } as envoy.config.cluster.v3.Cluster;
  server.setResources(r);
  const s = open();
  s.send(CLUSTER_TYPE);
  assert.deepEqual(names(await s.next(CLUSTER_TYPE)), ['c1']);
  s.close();
});

test('many quick updates coalesce: the proxy ends on the last state', async () => {
  const { server, open } = await setup();
  server.setResources(resources(['c0']));
  const s = open();
  s.send(CLUSTER_TYPE);
  await s.next(CLUSTER_TYPE);
  for (let i = 1; i <= 200; i++) server.setResources(resources(Array.from({ length: 50 }, (_, j) => `c${i}-${j}`)));
  let last: DiscoveryResponse | undefined;
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    try {
      last = await s.next(CLUSTER_TYPE, 300);
    } catch {
      break;
    }
  }
  assert.ok(last);
  assert.equal(names(last)[0], 'c200-0');
  s.close();
});
