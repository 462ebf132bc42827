// The Istio config every adversarial case and the fuzzer run against: one Gateway for `raw.test`, one
// Service whose only pod is the recording backend, and a VirtualService whose forbidden routes answer 403
// themselves (an exact path, a regex and a prefix), so a request that slips around a route shows up as a
// request at the backend. `/delay` has a fault delay; everything else goes to the backend.
import { gatewayYaml, serviceYaml } from '../lib/gateway.ts';

export const HOST = 'raw.test';

export function adversarialConfig(backendIp: string, backendPort: number): Record<string, string> {
  return {
    '10-gateway.yaml': gatewayYaml('adv-gateway', [HOST]),
    '20-rec.yaml': serviceYaml('rec', backendPort, [{ ip: backendIp }]),
    '30-vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: adv, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [adv-gateway]
  http:
  - match: [{uri: {exact: /secret}}]
    directResponse: {status: 403, body: {string: denied}}
  - match: [{uri: {regex: "/regex-secret"}}]
    directResponse: {status: 403, body: {string: denied}}
  - match: [{uri: {prefix: /private}}]
    directResponse: {status: 403, body: {string: denied}}
  - match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 0.2s, percentage: {value: 100}}}
    route: [{destination: {host: rec}}]
  - route: [{destination: {host: rec}}]
`,
  };
}

/** A request that must always work: the health probe after every case and fuzz round. */
export const NORMAL_REQUEST = `GET /health HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
