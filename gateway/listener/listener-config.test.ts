// parseListener's listener filters: the inspectors are accepted, their settings classified by the field table
// (istiod's tls_inspector initial_read_buffer_size has no effect here), anything else NACKed with its path.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { envoy } from '../../xds/envoy.ts';
import { parseListener } from './listener-config.ts';

const INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';

function listener(filters: envoy.config.listener.v3.ListenerFilter[]): envoy.config.listener.v3.Listener {
  return {
    name: 'l',
    address: { socket_address: { address: '0.0.0.0', port_value: 8443 } },
    listener_filters: filters,
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 's',
              rds: { config_source: { ads: {} }, route_config_name: 'r' },
              http_filters: [
                { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
              ],
            },
          },
        ],
      },
    ],
  };
}

describe('listener filters', () => {
  test("istiod's tls_inspector with initial_read_buffer_size 512 is accepted", () => {
    const l = parseListener(listener([{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': INSPECTOR, initial_read_buffer_size: 512 } }]));
    assert.equal(l.port, 8443);
  });

  test('a tls_inspector field the table does not list is NACKed with its path', () => {
    const f = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': INSPECTOR, max_client_hello_size: 1024 } };
    assert.throws(() => parseListener(listener([f])), {
      message: "listener 'l'.listener_filters[0].typed_config: field 'max_client_hello_size' is not supported by this proxy",
    });
  });

  test('another listener filter is NACKed', () => {
    assert.throws(() => parseListener(listener([{ name: 'envoy.filters.listener.proxy_protocol' }])), {
      message: "listener 'l'.listener_filters[0]: listener filter 'envoy.filters.listener.proxy_protocol' is not supported by this proxy",
    });
  });
});
