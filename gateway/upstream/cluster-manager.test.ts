// The cluster manager's EDS handling: a response carrying only some ClusterLoadAssignments (what the
// controller sends when only endpoints changed) updates those and keeps every other cluster's hosts, as
// Envoy does for SotW EDS; warming and the assignment cache behave the same with partial responses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../cli/logger.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from './cluster-manager.ts';
import type { envoy } from '../../xds/envoy.ts';

function cluster(name: string): envoy.config.cluster.v3.Cluster {
  return { name, type: 'EDS', connect_timeout: '10s', eds_cluster_config: { eds_config: { ads: {} }, service_name: name } };
}

function cla(name: string, ...addresses: string[]): envoy.config.endpoint.v3.ClusterLoadAssignment {
  return {
    cluster_name: name,
    endpoints: [{ lb_endpoints: addresses.map((address) => ({ endpoint: { address: { socket_address: { address, port_value: 80 } } } })) }],
  };
}

function manager(): ClusterManager {
  return new ClusterManager(new StatsStore(), silentLogger());
}

const hostsOf = (m: ClusterManager, name: string): string[] => (m.get(name)?.hosts ?? []).map((h) => h.key);

test('an EDS response with a subset of the assignments updates those and keeps the other clusters as they were', () => {
  const m = manager();
  assert.deepEqual(m.applyCds([cluster('a'), cluster('b'), cluster('c')], 'v1').errors, []);
  assert.deepEqual(m.applyEds([cla('a', '10.0.0.1'), cla('b', '10.0.0.2'), cla('c', '10.0.0.3')]).errors, []);
  const bHosts = m.get('b')?.hosts;
  const cHosts = m.get('c')?.hosts;
  const r = m.applyEds([cla('a', '10.0.0.1', '10.0.0.11')]);
  assert.deepEqual(r, { errors: [], changed: true });
  assert.deepEqual(hostsOf(m, 'a'), ['10.0.0.1:80', '10.0.0.11:80']);
  assert.deepEqual(hostsOf(m, 'b'), ['10.0.0.2:80']);
  assert.deepEqual(hostsOf(m, 'c'), ['10.0.0.3:80']);
  assert.equal(m.get('b')?.hosts, bHosts, 'b untouched');
  assert.equal(m.get('c')?.hosts, cHosts, 'c untouched');
  assert.deepEqual(m.edsNames(), ['a', 'b', 'c']);
});

test('an empty EDS response changes nothing', () => {
  const m = manager();
  m.applyCds([cluster('a')], 'v1');
  m.applyEds([cla('a', '10.0.0.1')]);
  assert.deepEqual(m.applyEds([]), { errors: [], changed: false });
  assert.deepEqual(hostsOf(m, 'a'), ['10.0.0.1:80']);
});

test('a warming cluster stays warming through EDS responses that leave it out, and activates with its own', () => {
  const m = manager();
  m.applyCds([cluster('a'), cluster('b')], 'v1');
  m.applyEds([cla('a', '10.0.0.1')]);
  assert.ok(m.get('a'));
  assert.ok(m.warming.has('b'));
  m.applyEds([cla('a', '10.0.0.9')]);
  assert.ok(m.warming.has('b'), 'still warming');
  m.applyEds([cla('b', '10.0.0.2')]);
  assert.equal(m.warming.size, 0);
  assert.deepEqual(hostsOf(m, 'a'), ['10.0.0.9:80']);
  assert.deepEqual(hostsOf(m, 'b'), ['10.0.0.2:80']);
});

test('a modified cluster warms from the cached assignment, so EDS need not resend it', () => {
  const m = manager();
  m.applyCds([cluster('a')], 'v1');
  m.applyEds([cla('a', '10.0.0.1')]);
  m.applyCds([{ ...cluster('a'), connect_timeout: '5s' }], 'v2');
  assert.equal(m.warming.size, 0);
  assert.deepEqual(hostsOf(m, 'a'), ['10.0.0.1:80']);
});

test('an invalid assignment in a partial response is rejected alone; the valid one applies', () => {
  const m = manager();
  m.applyCds([cluster('a'), cluster('b')], 'v1');
  m.applyEds([cla('a', '10.0.0.1'), cla('b', '10.0.0.2')]);
  const r = m.applyEds([cla('a', 'not an address'), cla('b', '10.0.0.22')]);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0] ?? '', /'a'/);
  assert.deepEqual(hostsOf(m, 'a'), ['10.0.0.1:80']);
  assert.deepEqual(hostsOf(m, 'b'), ['10.0.0.22:80']);
});
