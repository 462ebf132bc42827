// gatewayTopology on the gateway's listeners (the goldens gateway-topology-* hold the happy paths, compared with
// istiod): what the translation does when the ProxyConfig cannot be honoured. The gateway serves no listener and
// says why, rather than trusting the wrong client address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectStore } from '../model/store.ts';
import { formatError } from '../model/validation.ts';
import { parseMeshConfig } from '../model/mesh-config.ts';
import { unpackAny } from '../../xds/envoy.ts';
import { HCM_TYPE } from '../../xds/type-urls.ts';
import type { GatewayIdentity } from '../xds/snapshot.ts';
import { translate } from './translate.ts';

function store(): ObjectStore {
  const s = new ObjectStore();
  s.upsert('Gateway', {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: 'default' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
  });
  return s;
}

const identity = (proxyConfig?: string): GatewayIdentity => ({
  namespace: 'istio-system',
  podName: 'istio-ingressgateway-0',
  labels: { istio: 'ingressgateway' },
  ...(proxyConfig === undefined ? {} : { annotations: { 'proxy.istio.io/config': proxyConfig } }),
});

const refusals = [
  {
    name: 'an annotation of the wrong type',
    annotation: '{"gatewayTopology":{"numTrustedProxies":"many"}}',
    error:
      /^Pod istio-system\/istio-ingressgateway-0 at metadata\.annotations\[proxy\.istio\.io\/config\]: annotation proxy\.istio\.io\/config: proxyConfig\.gatewayTopology\.numTrustedProxies: must be an unsigned 32-bit integer.*serves no listener/,
  },
  { name: 'an annotation that is not YAML', annotation: '{', error: /not valid YAML or JSON.*serves no listener/ },
  {
    name: 'proxyProtocol, which the proxy cannot read',
    annotation: 'gatewayTopology: {numTrustedProxies: 1, proxyProtocol: {}}',
    error: /gatewayTopology\.proxyProtocol: meshgate's proxy does not implement the PROXY protocol listener filter/,
  },
];

for (const c of refusals) {
  test(`gateway topology: ${c.name} serves no listener, with an error on the gateway pod`, () => {
    const { resources, errors } = translate(store().snapshot(), identity(c.annotation));
    assert.deepEqual(resources.listeners, []);
    assert.equal(errors.length, 1);
    assert.match(formatError(errors[0] as (typeof errors)[number]), c.error);
  });
}

test('gateway topology: the mesh defaultConfig applies when the pod has no annotation, and the annotation over it', () => {
  const parsed = parseMeshConfig('defaultConfig:\n  gatewayTopology: {numTrustedProxies: 3}\n');
  assert.ok(parsed.ok);
  const hops = (id: GatewayIdentity): number | undefined => {
    const { resources, errors } = translate(store().snapshot(), id, undefined, parsed.mesh);
    assert.deepEqual(errors, []);
    const f = resources.listeners[0]?.filter_chains?.[0]?.filters?.[0]?.typed_config;
    assert.ok(f);
    return unpackAny(f, HCM_TYPE).xff_num_trusted_hops;
  };
  assert.equal(hops(identity()), 3);
  assert.equal(hops(identity('{"gatewayTopology":{"numTrustedProxies":1}}')), 1);
});
