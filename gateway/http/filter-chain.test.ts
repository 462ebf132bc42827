// The HCM's http_filters as the proxy builds its chain from them: every filter it runs kept in the listener's order,
// telemetry filters Istio adds accepted without effect, an unknown filter NACKed unless it is optional, a disabled
// one skipped, and filter-level configs that would act on every request refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { envoy } from '../../xds/envoy.ts';
import { ConfigError } from '../xds/json.ts';
import { parseHcm } from './hcm-config.ts';

type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type HttpFilter = NonNullable<Hcm['http_filters']>[number];

const typed = (type: string, extra: Record<string, unknown> = {}): HttpFilter['typed_config'] => ({ '@type': `type.googleapis.com/${type}`, ...extra });
const ROUTER: HttpFilter = { name: 'envoy.filters.http.router', typed_config: typed('envoy.extensions.filters.http.router.v3.Router') };
const FAULT: HttpFilter = { name: 'envoy.filters.http.fault', typed_config: typed('envoy.extensions.filters.http.fault.v3.HTTPFault') };
const CORS: HttpFilter = { name: 'envoy.filters.http.cors', typed_config: typed('envoy.extensions.filters.http.cors.v3.Cors') };
const RBAC: HttpFilter = { name: 'envoy.filters.http.rbac', typed_config: typed('envoy.extensions.filters.http.rbac.v3.RBAC', { rules: { action: 'DENY' } }) };
const STATS: HttpFilter = { name: 'istio.stats', typed_config: typed('stats.PluginConfig') };
const LUA: HttpFilter = { name: 'envoy.filters.http.lua', typed_config: typed('envoy.extensions.filters.http.lua.v3.Lua') };

const hcm = (filters: HttpFilter[]): Hcm => ({
  stat_prefix: 'outbound_0.0.0.0_80',
  rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'http.80' },
  http_filters: filters,
});
const kinds = (filters: HttpFilter[]): string[] => parseHcm(hcm(filters), 'hcm').filters.map((f) => f.kind);

test('the filters the proxy runs keep the listener order; an RBAC filter may come after fault and CORS', () => {
  assert.deepEqual(kinds([FAULT, RBAC, CORS, ROUTER]), ['fault', 'rbac', 'cors']);
  assert.deepEqual(kinds([RBAC, FAULT, CORS, ROUTER]), ['rbac', 'fault', 'cors']);
});

test("Istio's stats filter (stats.PluginConfig) and grpc_stats are filters of the chain; the peer metadata filter takes no place in it", () => {
  assert.deepEqual(kinds([FAULT, CORS, STATS, ROUTER]), ['fault', 'cors', 'istio_stats']);
  const MX: HttpFilter = {
    name: 'istio.metadata_exchange',
    typed_config: typed('udpa.type.v1.TypedStruct', { type_url: 'type.googleapis.com/io.istio.http.peer_metadata.Config', value: {} }),
  };
  const GRPC_STATS: HttpFilter = { name: 'envoy.filters.http.grpc_stats', typed_config: typed('envoy.extensions.filters.http.grpc_stats.v3.FilterConfig') };
  assert.deepEqual(kinds([MX, GRPC_STATS, FAULT, CORS, ROUTER]), ['grpc_stats', 'fault', 'cors']);
});

test('an istio.stats config the proxy cannot apply is NACKed: waypoint reporting, custom metric definitions', () => {
  const stats = (extra: Record<string, unknown>): HttpFilter => ({ name: 'istio.stats', typed_config: typed('stats.PluginConfig', extra) });
  assert.throws(() => kinds([stats({ reporter: 'SERVER_GATEWAY' }), ROUTER]), /reporter: SERVER_GATEWAY \(waypoint reporting\) is not supported/);
  assert.throws(() => kinds([stats({ definitions: [{ name: 'custom', value: '1' }] }), ROUTER]), /field 'definitions' is not supported/);
});

test('a filter the proxy does not run is NACKed, unless it is optional (then skipped, as Envoy skips it)', () => {
  assert.throws(
    () => kinds([LUA, ROUTER]),
    (e: unknown) => e instanceof ConfigError && /hcm\.http_filters\[0\]: HTTP filter 'envoy\.filters\.http\.lua'/.test(e.message),
  );
  assert.deepEqual(kinds([{ ...LUA, is_optional: true }, CORS, ROUTER]), ['cors']);
});

test('a disabled filter is skipped', () => {
  assert.deepEqual(kinds([{ ...RBAC, disabled: true }, CORS, ROUTER]), ['cors']);
});

test('a fault filter with its own abort or delay would act on every request: refused', () => {
  const abort = { name: FAULT.name, typed_config: typed('envoy.extensions.filters.http.fault.v3.HTTPFault', { abort: { http_status: 503 } }) };
  assert.throws(() => kinds([abort, ROUTER]), /listener-level fault injection is not supported/);
});

test('the router must be present and last', () => {
  assert.throws(() => kinds([FAULT]), /the last HTTP filter must be the router/);
  assert.throws(() => kinds([ROUTER, FAULT]), /the router filter must be the last HTTP filter/);
});
