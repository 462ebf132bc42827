// /clusters?format=json as Envoy's writeClustersAsJson prints envoy.admin.v3.Clusters (what `istioctl
// proxy-config endpoints` reads): canonical proto3 JSON checked against the proto itself (defaults left out,
// uint64 as strings), fields in field-number order as protobuf's printer writes them, host stats counters
// first, the bootstrap's pipe endpoints as hosts. And the text form's lines for those hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { silentLogger } from '../../cli/logger.ts';
import type { envoy } from '../../xds/envoy.ts';
import { envoyRoot, lookupType, normalizeJson } from '../../xds/protos.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';
import { renderClustersJson, renderClustersText, type HostStatTotals } from './clusters.ts';

const NAME = 'outbound|80||shop.default.svc.cluster.local';

function clusters(): ClusterManager {
  const m = new ClusterManager(new StatsStore(), silentLogger());
  m.addStatic({
    name: 'sds-grpc',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'sds-grpc',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } } } }] }],
    },
  });
  assert.deepEqual(
    m.applyCds(
      [{ name: NAME, type: 'EDS', connect_timeout: '10s', alt_stat_name: `${NAME};`, eds_cluster_config: { eds_config: { ads: {} }, service_name: NAME } }],
      'v1',
    ).errors,
    [],
  );
  const cla: envoy.config.endpoint.v3.ClusterLoadAssignment = {
    cluster_name: NAME,
    endpoints: [
      {
        locality: { region: 'eu', zone: 'eu-1' },
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 9000 } } }, health_status: 'HEALTHY', load_balancing_weight: 3 },
          { endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 9000 } } }, health_status: 'UNHEALTHY' },
        ],
      },
      { priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.3', port_value: 9000 } } } }] },
    ],
  };
  assert.deepEqual(m.applyEds([cla]).errors, []);
  return m;
}

/** Keys of every message in `json` are in field-number order, recursively (protobuf's JSON printer). */
function assertFieldOrder(t: protobuf.Type, json: Record<string, unknown>, path: string): void {
  const ids = Object.keys(json).map((k) => {
    const f = t.fields[k];
    assert.ok(f, `${path}.${k} is a field of ${t.fullName}`);
    return f.id;
  });
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
    `${path}: ${Object.keys(json).join(', ')} in field-number order`,
  );
  for (const [k, v] of Object.entries(json)) {
    const f = t.fields[k]?.resolve();
    const sub = f?.resolvedType;
    if (!(sub instanceof protobuf.Type)) continue;
    if (Array.isArray(v)) v.forEach((item, i) => assertFieldOrder(sub, item as Record<string, unknown>, `${path}.${k}[${i}]`));
    else assertFieldOrder(sub, v as Record<string, unknown>, `${path}.${k}`);
  }
}

test('/clusters?format=json is canonical envoy.admin.v3.Clusters JSON, fields in field-number order', () => {
  envoyRoot().resolveAll();
  const m = clusters();
  const h = m.get(NAME)?.hosts[0];
  assert.ok(h);
  h.outlierEjected = true;
  h.rqTotal = 1;
  const body = renderClustersJson([...m.active.values()]);
  const json = JSON.parse(body) as envoy.admin.v3.Clusters;
  assert.deepEqual(normalizeJson('envoy.admin.v3.Clusters', json), json, 'what the proto says, nothing more or less');
  assertFieldOrder(lookupType('envoy.admin.v3.Clusters'), json as Record<string, unknown>, '');
  assert.ok(body.startsWith('{\n "cluster_statuses": [\n  {\n   "name": '), 'indented by one space, as Envoy pretty-prints');
});

test('a host: counters then gauges as Envoy lists them, health, weight, priority and locality', () => {
  const m = clusters();
  const c = m.get(NAME);
  assert.ok(c);
  const h = c.hosts.find((x) => x.address === '10.0.0.1');
  assert.ok(h);
  h.cxActive = 1;
  h.cxTotal = 2;
  h.rqTotal = 5;
  h.outlierEjected = true;
  // Another worker's stats for the same host add up.
  const others: HostStatTotals = new Map([[`${NAME}::10.0.0.1:9000`, [0, 0, 1, 0, 0, 0, 0, 2]]]);
  const json = JSON.parse(renderClustersJson([c], others)) as envoy.admin.v3.Clusters;
  const [status] = json.cluster_statuses ?? [];
  assert.deepEqual(Object.keys(status ?? {}), ['name', 'added_via_api', 'host_statuses', 'circuit_breakers', 'observability_name', 'eds_service_name']);
  assert.equal(status?.observability_name, `${NAME};`);
  const [healthy, unhealthy, second] = status?.host_statuses ?? [];
  assert.deepEqual(healthy, {
    address: { socket_address: { address: '10.0.0.1', port_value: 9000 } },
    stats: [
      { name: 'cx_connect_fail' },
      { value: '3', name: 'cx_total' },
      { name: 'rq_error' },
      { name: 'rq_success' },
      { name: 'rq_timeout' },
      { value: '7', name: 'rq_total' },
      { type: 'GAUGE', value: '1', name: 'cx_active' },
      { type: 'GAUGE', name: 'rq_active' },
    ],
    health_status: { failed_outlier_check: true, eds_health_status: 'HEALTHY' },
    weight: 3,
    locality: { region: 'eu', zone: 'eu-1' },
  });
  assert.deepEqual(unhealthy?.health_status, { eds_health_status: 'UNHEALTHY' });
  assert.deepEqual([second?.priority, second?.locality], [1, {}], 'locality is always set, empty or not');
});

test("the bootstrap's pipe endpoints are hosts, in both forms (istioctl shows unix://...)", () => {
  const sds = clusters().get('sds-grpc');
  assert.ok(sds);
  const json = JSON.parse(renderClustersJson([sds])) as envoy.admin.v3.Clusters;
  const [status] = json.cluster_statuses ?? [];
  assert.deepEqual(Object.keys(status ?? {}), ['name', 'host_statuses', 'circuit_breakers', 'observability_name']);
  const [pipe] = status?.host_statuses ?? [];
  assert.deepEqual(pipe?.address, { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } });
  assert.deepEqual(pipe?.health_status, { eds_health_status: 'HEALTHY' });
  assert.equal(pipe?.weight, 1);
  const text = renderClustersText([sds]);
  const p = 'sds-grpc::./var/run/secrets/workload-spiffe-uds/socket::';
  for (const line of ['cx_active::0', 'rq_total::0', 'hostname::', 'health_flags::healthy', 'weight::1', 'priority::0', 'success_rate::-1'])
    assert.ok(text.includes(`\n${p}${line}\n`), `${p}${line}`);
});

test('no clusters: an empty Clusters message', () => {
  assert.equal(renderClustersJson([]), '{}\n');
});
