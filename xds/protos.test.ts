import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeToJson, encodeJson, packJson, unpackToJson, normalizeJson } from './protos.ts';
import { CLUSTER_TYPE, HCM_TYPE, LISTENER_TYPE } from './type-urls.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './ads-service.ts';

test('a Listener with an HCM packed in Any round-trips through binary as Envoy JSON', () => {
  const hcm = packJson(HCM_TYPE, {
    stat_prefix: 'outbound_0.0.0.0_8080;',
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'http.8080' },
  });
  const listener = {
    name: '0.0.0.0_8080',
    address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM_TYPE, ...unpackToJson(hcm) } }] }],
  };
  const json = decodeToJson(LISTENER_TYPE, encodeJson(LISTENER_TYPE, listener));
  assert.equal(json.name, '0.0.0.0_8080');
  const chains = json.filter_chains as { filters: { typed_config: Record<string, unknown> }[] }[];
  assert.equal(chains[0]?.filters[0]?.typed_config['@type'], HCM_TYPE);
  assert.equal(chains[0]?.filters[0]?.typed_config.stat_prefix, 'outbound_0.0.0.0_8080;');
});

test('unknown fields are rejected with the field name', () => {
  assert.throws(() => encodeJson(CLUSTER_TYPE, { name: 'x', bogus_field: 1 }), /bogus_field/);
});

test('durations and uint32 wrappers print as Envoy prints them', () => {
  const c = normalizeJson(CLUSTER_TYPE, {
    name: 'outbound|8000||httpbin.default.svc.cluster.local',
    connect_timeout: '10s',
    circuit_breakers: { thresholds: [{ max_connections: 4294967295 }] },
  });
  assert.equal(c.connect_timeout, '10s');
  assert.deepEqual(c.circuit_breakers, { thresholds: [{ max_connections: 4294967295 }] });
});

test('DiscoveryRequest and DiscoveryResponse survive the wire, including node metadata and NACK detail', () => {
  const req = decodeRequest(
    encodeRequest({
      version_info: 'v1',
      type_url: LISTENER_TYPE,
      resource_names: [],
      response_nonce: 'n1',
      node: { id: 'router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local', cluster: 'gw', metadata: { LABELS: { istio: 'ingressgateway' } } },
      error_detail: { code: 3, message: 'bad listener' },
    }),
  );
  assert.equal(req.node?.id.split('~')[0], 'router');
  assert.deepEqual(req.node?.metadata, { LABELS: { istio: 'ingressgateway' } });
  assert.equal(req.error_detail?.message, 'bad listener');
  const any = packJson(CLUSTER_TYPE, { name: 'c1' });
  const resp = decodeResponse(encodeResponse({ version_info: 'v2', type_url: CLUSTER_TYPE, nonce: 'n2', resources: [any] }));
  assert.equal(resp.nonce, 'n2');
  assert.deepEqual(unpackToJson(resp.resources[0]!), { name: 'c1' });
});
