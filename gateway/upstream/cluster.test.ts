// parseCluster against its field tables: fields the proxy does not list are NACKed with a message naming the
// field and where it is; the checks that take a value apart keep their own messages; least-request
// active_request_bias is read as Envoy reads it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { envoy } from '../../xds/envoy.ts';
import { parseCluster, parseLoadAssignment } from './cluster.ts';

type EnvoyCluster = envoy.config.cluster.v3.Cluster;

const base = (extra: EnvoyCluster = {}): EnvoyCluster => ({ name: 'c', type: 'STATIC', connect_timeout: '1s', ...extra });
const httpOptions = (o: Record<string, unknown>): EnvoyCluster => ({
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', ...o },
  },
});
const W = "cluster 'c'";
const HPO = `${W}.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']`;

describe('parseCluster NACKs what it does not implement, naming the field', () => {
  const cases: [string, EnvoyCluster, string][] = [
    ['a Cluster field', base({ lb_subset_config: {} }), `${W}: field 'lb_subset_config' is not supported by this proxy`],
    ['per_host_thresholds (accepted without effect)', base({ circuit_breakers: { thresholds: [{ max_requests: 1 }], per_host_thresholds: [] } }), ''],
    [
      'an HttpProtocolOptions field (max_stream_duration)',
      base(httpOptions({ common_http_protocol_options: { max_stream_duration: '1s' } })),
      `${HPO}.common_http_protocol_options: field 'max_stream_duration' is not supported by this proxy`,
    ],
    [
      'override_auto_sni_header (accepted and never applied before)',
      base(httpOptions({ upstream_http_protocol_options: { auto_sni: true, override_auto_sni_header: 'x-sni' } })),
      `${HPO}.upstream_http_protocol_options: field 'override_auto_sni_header' is not supported by this proxy`,
    ],
    [
      'HTTP/3 upstreams, with their own message',
      base(httpOptions({ explicit_http_config: { http3_protocol_options: {} } })),
      `${HPO}: HTTP/3 upstreams are not supported by this proxy`,
    ],
    [
      'failure-percentage ejection, with its own message',
      base({ outlier_detection: { enforcing_failure_percentage: 100 } }),
      `${W}.outlier_detection.enforcing_failure_percentage: failure-percentage ejection is not supported by this proxy`,
    ],
    [
      'a ring hash function other than XX_HASH',
      base({ lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'MURMUR_HASH_2' } }),
      `${W}.ring_hash_lb_config.hash_function "MURMUR_HASH_2" is not supported by this proxy`,
    ],
    [
      "istiod's c-ares typed_dns_resolver_config on a DNS cluster (accepted without effect)",
      base({
        type: 'STRICT_DNS',
        typed_dns_resolver_config: {
          name: 'envoy.network.dns_resolver.cares',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig', udp_max_queries: 100 },
        },
      }),
      '',
    ],
    ['upstream network filters', base({ filters: [{ name: 'f' }] }), `${W}: upstream network filters are not supported by this proxy`],
  ];
  for (const [what, c, message] of cases) {
    test(message ? `NACK: ${what}` : `accepted: ${what}`, () => {
      if (message) assert.throws(() => parseCluster(c), { message });
      else parseCluster(c);
    });
  }

  test('an endpoint field is NACKed with its path', () => {
    const cla: envoy.config.endpoint.v3.ClusterLoadAssignment = {
      cluster_name: 'c',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80, named_port: 'http' } } } }] }],
    };
    assert.throws(() => parseLoadAssignment(cla, 'cla'), {
      message: "cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address: field 'named_port' is not supported by this proxy",
    });
  });
});

describe('least_request_lb_config.active_request_bias', () => {
  const bias = (b: envoy.config.core.v3.RuntimeDouble | undefined): number =>
    parseCluster(base({ lb_policy: 'LEAST_REQUEST', least_request_lb_config: b === undefined ? {} : { active_request_bias: b } })).activeRequestBias;
  test("Envoy's default 1.0; default_value applies (0 when omitted, proto3); a negative bias falls back to 1.0", () => {
    assert.deepEqual([bias(undefined), bias({ default_value: 2.5, runtime_key: 'k' }), bias({}), bias({ default_value: -1 })], [1, 2.5, 0, 1]);
  });
});
