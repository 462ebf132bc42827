// The kubelet's rules that gateway-pod.ts reproduces: $(VAR) expansion (cases from Kubernetes'
// third_party/forked/golang/expansion tests) and resourceFieldRef values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expand, remountArg, resourceFieldValue, type Container } from './gateway-pod.ts';

const vars = { VAR_A: 'A', VAR_B: 'B', VAR_EMPTY: '', CPU: '2' };
const expansions: [string, string][] = [
  ['--concurrency=$(CPU)', '--concurrency=2'],
  ['$(VAR_A)$(VAR_B)', 'AB'],
  ['$(VAR_EMPTY)x', 'x'],
  ['$(UNDEFINED)', '$(UNDEFINED)'],
  ['$$(VAR_A)', '$(VAR_A)'],
  ['$$$(VAR_A)', '$A'],
  ['$VAR_A', '$VAR_A'],
  ['$(VAR_A', '$(VAR_A'],
  ['trailing $', 'trailing $'],
  ['', ''],
];
for (const [input, want] of expansions) {
  test(`$(VAR) expansion: '${input}' -> '${want}'`, () => assert.equal(expand(input, vars), want));
}

const proxy = (cpu?: string, memory?: string): Container => ({
  name: 'istio-proxy',
  resources: { limits: { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) } },
});
const fields: [string, Container, string, string | undefined, string][] = [
  ['2000m / 1 (the chart: ISTIO_CPU_LIMIT)', proxy('2000m'), 'limits.cpu', '1', '2'],
  ['1500m / 1 rounds up', proxy('1500m'), 'limits.cpu', '1', '2'],
  ['100m / 1 rounds up to 1', proxy('100m'), 'limits.cpu', '1', '1'],
  ['2 / 1m', proxy('2'), 'limits.cpu', '1m', '2000'],
  ['1Gi / 1Mi', proxy(undefined, '1Gi'), 'limits.memory', '1Mi', '1024'],
  ['1024Mi without a divisor: bytes', proxy(undefined, '1024Mi'), 'limits.memory', undefined, String(2 ** 30)],
];
for (const [name, c, resource, divisor, want] of fields) {
  test(`resourceFieldRef ${resource}: ${name} -> ${want}`, () => assert.equal(resourceFieldValue(c, resource, divisor), want));
}

const mounts = [
  { mountPath: '/etc/istio/pod', dir: '/tmp/s/pod-1/istio-podinfo' },
  { mountPath: '/etc/istio/proxy/', dir: '/tmp/s/pod-1/istio-envoy' },
  { mountPath: '/tmp', dir: '/tmp/s/pod-1/istio-proxy-tmp' },
];
const remounts: [string, string][] = [
  ['--labels-file=/etc/istio/pod/labels', '--labels-file=/tmp/s/pod-1/istio-podinfo/labels'],
  ['--xds-socket=/etc/istio/proxy/XDS', '--xds-socket=/tmp/s/pod-1/istio-envoy/XDS'],
  ['--kubeconfig=/tmp/s/kubeconfig', '--kubeconfig=/tmp/s/pod-1/istio-proxy-tmp/s/kubeconfig'],
  ['--xds-socket=/etc/istio/proxyXDS', '--xds-socket=/etc/istio/proxyXDS'],
  ['--admin-port=15000', '--admin-port=15000'],
  ['proxy', 'proxy'],
];
for (const [input, want] of remounts) {
  test(`an arg under a mount path moves with the volume: '${input}' -> '${want}'`, () => assert.equal(remountArg(input, mounts), want));
}
