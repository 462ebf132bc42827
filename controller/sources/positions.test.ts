import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indexPositions, parseFieldPath } from './positions.ts';

const VS = `# a comment
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
  namespace: web
spec:
  hosts: [shop.example.com]
  gateways:
  - shop
  http:
  - match:
    - uri:
        regex: "[a-"
    route:
    - destination: {host: shop, subset: v9}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop}
spec:
  selector: {istio: ingressgateway}
`;

const LIST = `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "namespace": "istio-system"}},
  {"apiVersion": "v1", "kind": "Secret",
   "metadata": {"name": "b", "namespace": "istio-system"}, "data": {"tls.crt": ""}}
]}
`;

// A Gateway API Gateway of the same namespace and name as an Istio one: stored (and located) as KubernetesGateway.
const GWAPI = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shop}
spec:
  gatewayClassName: istio
`;

const index = indexPositions([
  { file: 'gwapi.yaml', text: GWAPI },
  { file: 'vs.yaml', text: VS },
  { file: 'list.json', text: LIST },
  { file: 'bad.yaml', text: 'kind: [\n' },
]);

const cases: { name: string; at: [string, string, string, string?]; want: { file: string; line: number } | undefined }[] = [
  { name: 'an object without a path: its first line', at: ['VirtualService', 'web', 'shop'], want: { file: 'vs.yaml', line: 2 } },
  { name: 'a map key', at: ['VirtualService', 'web', 'shop', 'spec.hosts'], want: { file: 'vs.yaml', line: 8 } },
  { name: 'a list item', at: ['VirtualService', 'web', 'shop', 'spec.gateways[0]'], want: { file: 'vs.yaml', line: 10 } },
  { name: 'a deep field', at: ['VirtualService', 'web', 'shop', 'spec.http[0].match[0].uri.regex'], want: { file: 'vs.yaml', line: 14 } },
  { name: 'a flow mapping field', at: ['VirtualService', 'web', 'shop', 'spec.http[0].route[0].destination.subset'], want: { file: 'vs.yaml', line: 16 } },
  { name: 'a missing field: its deepest present parent', at: ['VirtualService', 'web', 'shop', 'spec.http[0].timeout'], want: { file: 'vs.yaml', line: 12 } },
  { name: 'an index past the end: the list', at: ['VirtualService', 'web', 'shop', 'spec.gateways[3]'], want: { file: 'vs.yaml', line: 9 } },
  { name: 'no namespace is default', at: ['Gateway', 'default', 'shop', 'spec.selector.istio'], want: { file: 'vs.yaml', line: 22 } },
  { name: 'a List item in JSON', at: ['Secret', 'istio-system', 'b', 'data["tls.crt"]'], want: { file: 'list.json', line: 4 } },
  {
    name: 'a Gateway API Gateway by its store kind',
    at: ['KubernetesGateway', 'default', 'shop', 'spec.gatewayClassName'],
    want: { file: 'gwapi.yaml', line: 5 },
  },
  { name: 'an object not in the files', at: ['Gateway', 'web', 'shop'], want: undefined },
];

for (const c of cases) {
  test(`locate: ${c.name}`, () => {
    assert.deepEqual(index.locate(...c.at), c.want);
  });
}

test('parseFieldPath reads indexes and quoted keys', () => {
  assert.deepEqual(parseFieldPath('spec.http[0].headers.request.set["x.y"]'), ['spec', 'http', 0, 'headers', 'request', 'set', 'x.y']);
});
