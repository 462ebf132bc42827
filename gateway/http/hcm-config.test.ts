import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { envoy } from '../../xds/envoy.ts';
import { ConfigError } from '../xds/json.ts';
import { parseHcm } from './hcm-config.ts';

type Hcm = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
// What the controller sends for a gateway server (controller/translate/testdata/*.out.yaml).
const istio: Hcm = {
  stat_prefix: 'outbound_0.0.0.0_80',
  rds: { config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, route_config_name: 'http.80' },
  http_filters: [ROUTER],
  tracing: { client_sampling: { value: 100 }, random_sampling: { value: 1 }, overall_sampling: { value: 100 } },
  http_protocol_options: {},
  server_name: 'istio-envoy',
  stream_idle_timeout: '0s',
  use_remote_address: true,
  forward_client_cert_details: 'SANITIZE_SET',
  upgrade_configs: [{ upgrade_type: 'websocket' }],
  normalize_path: true,
  path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
};

test("Istio's gateway HttpConnectionManager is accepted and read", () => {
  const s = parseHcm(istio, 'hcm');
  assert.equal(s.rdsName, 'http.80');
  assert.equal(s.serverName, 'istio-envoy');
  assert.equal(s.useRemoteAddress, true);
  assert.equal(s.websocket, true);
  assert.equal(s.tracing?.randomSampling, 100, "Istio's 1 % as Envoy keeps it: 100 of 10000");
  assert.equal(s.tracing?.tracer, undefined, 'no provider: sampling and stats only');
  assert.equal(s.normalizePath, true);
});

const rejected: { name: string; hcm: Hcm; error: RegExp }[] = [
  {
    name: 'always_set_request_id_in_response (responses carry no x-request-id here)',
    hcm: { ...istio, always_set_request_id_in_response: true },
    error: /^hcm: field 'always_set_request_id_in_response' is not supported/,
  },
  {
    name: 'a downstream max_connection_duration (not enforced)',
    hcm: { ...istio, common_http_protocol_options: { max_connection_duration: '60s' } },
    error: /^hcm\.common_http_protocol_options: field 'max_connection_duration' is not supported/,
  },
  {
    name: 'allow_chunked_length (Content-Length with chunked is always a 400)',
    hcm: { ...istio, http_protocol_options: { allow_chunked_length: true } },
    error: /^hcm\.http_protocol_options: field 'allow_chunked_length' is not supported/,
  },
  {
    name: 'an access logger other than the file logger',
    hcm: {
      ...istio,
      access_log: [
        { name: 'envoy.access_loggers.stdout', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' } },
      ],
    },
    error: /^hcm\.access_log\[0\]: access logger type\.googleapis\.com\/envoy\.extensions\.access_loggers\.stream\.v3\.StdoutAccessLog is not supported/,
  },
  {
    name: 'header case preservation, with its own message',
    hcm: { ...istio, http_protocol_options: { header_key_format: { proper_case_words: {} } } },
    error: /^hcm\.http_protocol_options\.header_key_format \(header case preservation\) is not supported/,
  },
  { name: 'a stream idle timeout', hcm: { ...istio, stream_idle_timeout: '300s' }, error: /^hcm\.stream_idle_timeout is not supported by this proxy yet/ },
  {
    name: 'an upgrade type other than websocket',
    hcm: { ...istio, upgrade_configs: [{ upgrade_type: 'CONNECT' }] },
    error: /^hcm\.upgrade_configs\[0\]: upgrade type 'CONNECT' is not supported/,
  },
  { name: 'a router that is not last', hcm: { ...istio, http_filters: [ROUTER, ROUTER] }, error: /the router filter must be the last HTTP filter/ },
];

for (const c of rejected) {
  test(`HttpConnectionManager NACKed: ${c.name}`, () => {
    assert.throws(
      () => parseHcm(c.hcm, 'hcm'),
      (e: unknown) => e instanceof ConfigError && c.error.test(e.message),
    );
  });
}
