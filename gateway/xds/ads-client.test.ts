// The proxy's ADS client against the controller's ADS server over 127.0.0.1: what reaches the handler
// on incremental pushes (EDS-only, only the changed ClusterLoadAssignments) and that unchanged LDS/CDS
// resources are handed over as the objects decoded before.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../cli/logger.ts';
import { AdsServer } from '../../controller/xds/ads-server.ts';
import type { XdsResources } from '../../controller/xds/snapshot.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import { StatsStore } from '../stats/store.ts';
import { AdsClient } from './ads-client.ts';
import type { Json } from './json.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function cla(name: string, address: string): Json {
  return { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: 80 } } } }] }] };
}

function resources(addresses: Record<string, string>, routeVhost = 'a.example.com:80'): XdsResources {
  const names = Object.keys(addresses);
  return {
    listeners: [{ name: '0.0.0.0_8080', address: { socket_address: { address: '0.0.0.0', port_value: 8080 } } }],
    routes: [{ name: 'http.8080', virtual_hosts: [{ name: routeVhost, domains: ['*'] }] }],
    clusters: names.map((name) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: name } })),
    endpoints: names.map((name) => cla(name, addresses[name] ?? '')),
    secrets: [],
  };
}

interface Applied {
  typeUrl: string;
  resources: readonly { name?: string; cluster_name?: string }[];
}

async function setup(initial: XdsResources): Promise<{ server: AdsServer; client: AdsClient; applied: Applied[] }> {
  const server = await AdsServer.start({ host: '127.0.0.1', port: 0, log: silentLogger() });
  cleanups.push(() => server.close());
  server.setResources(initial);
  server.markSynced();
  const applied: Applied[] = [];
  const client: AdsClient = new AdsClient({
    address: `127.0.0.1:${server.port}`,
    node: { id: 'router~127.0.0.1~gw-0.istio-system~istio-system.svc.cluster.local', cluster: 'gw', metadata: {} },
    log: silentLogger(),
    store: new StatsStore(),
    handler: {
      apply: (typeUrl, resources, _version) => {
        applied.push({ typeUrl, resources });
        // Subscribe as the proxy does: EDS names from the clusters, RDS names from the listeners.
        if (typeUrl === CLUSTER_TYPE) client.setNames(ENDPOINT_TYPE, resources.map((r) => r.name ?? '').sort());
        if (typeUrl === LISTENER_TYPE) client.setNames(ROUTE_TYPE, ['http.8080']);
        return Promise.resolve([]);
      },
    },
  });
  cleanups.push(() => client.close());
  client.start();
  return { server, client, applied };
}

async function settled(applied: Applied[], ms = 150): Promise<void> {
  let n = -1;
  const deadline = Date.now() + 3000;
  while (n !== applied.length && Date.now() < deadline) {
    n = applied.length;
    await new Promise((r) => setTimeout(r, ms));
  }
}

const namesOf = (a: Applied): string[] => a.resources.map((r) => r.name ?? r.cluster_name ?? '');

test('an endpoints-only change reaches the handler as one EDS call with only the changed assignment', async () => {
  const { server, applied } = await setup(resources({ c1: '10.0.0.1', c2: '10.0.0.2', c3: '10.0.0.3' }));
  await settled(applied);
  assert.deepEqual(applied.map((a) => a.typeUrl).sort(), [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE].sort());
  applied.length = 0;
  server.setResources(resources({ c1: '10.0.0.1', c2: '10.0.0.22', c3: '10.0.0.3' }));
  await settled(applied);
  assert.deepEqual(
    applied.map((a) => a.typeUrl),
    [ENDPOINT_TYPE],
  );
  assert.deepEqual(namesOf(applied[0]!), ['c2']);
});

test('a route change reaches the handler as RDS alone; the same resources again reach it not at all', async () => {
  const { server, applied } = await setup(resources({ c1: '10.0.0.1' }));
  await settled(applied);
  applied.length = 0;
  server.setResources(resources({ c1: '10.0.0.1' }));
  await settled(applied);
  assert.equal(applied.length, 0);
  server.setResources(resources({ c1: '10.0.0.1' }, 'b.example.com:80'));
  await settled(applied);
  assert.deepEqual(
    applied.map((a) => a.typeUrl),
    [ROUTE_TYPE],
  );
});

test('CDS carries every cluster; the unchanged ones are the objects decoded before, new clusters get just their EDS', async () => {
  const { server, applied } = await setup(resources({ c1: '10.0.0.1', c2: '10.0.0.2' }));
  await settled(applied);
  const firstCds = applied.find((a) => a.typeUrl === CLUSTER_TYPE);
  assert.ok(firstCds);
  applied.length = 0;
  server.setResources(resources({ c1: '10.0.0.1', c2: '10.0.0.2', c3: '10.0.0.3' }));
  await settled(applied);
  const cds = applied.filter((a) => a.typeUrl === CLUSTER_TYPE);
  assert.equal(cds.length, 1);
  assert.deepEqual(namesOf(cds[0]!), ['c1', 'c2', 'c3']);
  assert.equal(cds[0]!.resources[0], firstCds.resources[0], 'c1 was not decoded again');
  assert.equal(cds[0]!.resources[1], firstCds.resources[1], 'c2 was not decoded again');
  assert.deepEqual(applied.filter((a) => a.typeUrl === ENDPOINT_TYPE).flatMap(namesOf), ['c3']);
});
