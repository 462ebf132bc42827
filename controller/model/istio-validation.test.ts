// Bad input is rejected with the field path and a message saying what to fix; good input passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateDestinationRule, validateGateway, validateServiceEntry, validateVirtualService } from './istio-validation.ts';

const server = { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] };
const route = [{ destination: { host: 'httpbin' } }];

const cases: { name: string; check: () => ReturnType<typeof validateGateway>; field?: string; message?: RegExp }[] = [
  { name: 'a valid Gateway', check: () => validateGateway('gw', { selector: { istio: 'ingressgateway' }, servers: [server] }) },
  { name: 'a Gateway without servers', check: () => validateGateway('gw', { servers: [] }), field: 'spec.servers', message: /at least one server/ },
  { name: 'a Gateway name with a dot', check: () => validateGateway('gw.x', { servers: [server] }), field: 'metadata.name', message: /DNS-1123/ },
  {
    name: 'a server without hosts',
    check: () => validateGateway('gw', { servers: [{ port: server.port, hosts: [] }] }),
    field: 'spec.servers[0].hosts',
    message: /at least one host/,
  },
  {
    name: 'a server without a port',
    check: () => validateGateway('gw', { servers: [{ hosts: ['*'] }] }),
    field: 'spec.servers[0].port',
    message: /port is required/,
  },
  {
    name: 'an unknown protocol',
    check: () => validateGateway('gw', { servers: [{ ...server, port: { number: 80, name: 'x', protocol: 'QUIC' } }] }),
    field: 'spec.servers[0].port.protocol',
    message: /invalid protocol/,
  },
  {
    name: 'a bad host form',
    check: () => validateGateway('gw', { servers: [{ ...server, hosts: ['a/b/c'] }] }),
    field: 'spec.servers[0].hosts[0]',
    message: /namespace\/\]dnsName|form/,
  },
  {
    name: 'a wildcard in the middle of a host',
    check: () => validateGateway('gw', { servers: [{ ...server, hosts: ['ns/a.*.com'] }] }),
    field: 'spec.servers[0].hosts[0]',
    message: /leftmost/,
  },
  {
    name: 'an HTTPS server without tls',
    check: () => validateGateway('gw', { servers: [{ ...server, port: { number: 443, name: 'https', protocol: 'HTTPS' } }] }),
    field: 'spec.servers[0].tls',
    message: /must have TLS settings/,
  },
  {
    name: 'SIMPLE TLS without certificate',
    check: () => validateGateway('gw', { servers: [{ ...server, port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls: { mode: 'SIMPLE' } }] }),
    field: 'spec.servers[0].tls.serverCertificate',
    message: /credentialName/,
  },
  {
    name: 'duplicate port names',
    check: () => validateGateway('gw', { servers: [server, { ...server, port: { ...server.port, number: 81 } }] }),
    field: 'spec.servers[1].port.name',
    message: /unique/,
  },
  {
    name: 'a targetPort on a Gateway',
    check: () => validateGateway('gw', { servers: [{ ...server, port: { ...server.port, targetPort: 8080 } }] }),
    field: 'spec.servers[0].port.targetPort',
    message: /no impact/,
  },
  { name: 'a valid VirtualService', check: () => validateVirtualService({ hosts: ['a.com'], gateways: ['gw'], http: [{ route }] }) },
  {
    name: 'a bad URI regex',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ uri: { regex: '(?=x)' } }], route }] }),
    field: 'spec.http[0].match[0].uri.regex',
    message: /RE2/,
  },
  {
    name: 'a bad header regex',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ headers: { 'x-a': { regex: '([' } } }], route }] }),
    field: 'spec.http[0].match[0].headers.x-a.regex',
    message: /invalid regex/,
  },
  {
    name: 'all weights zero',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route: [...route, { destination: { host: 'b' } }] }] }),
    field: 'spec.http[0].route',
    message: /total destination weight = 0/,
  },
  {
    name: 'a rule without an action',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ uri: { prefix: '/' } }] }] }),
    field: 'spec.http[0]',
    message: /route, redirect, direct response or delegate/,
  },
  {
    name: 'route and redirect together',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, redirect: { uri: '/x' } }] }),
    field: 'spec.http[0].redirect',
    message: /both route and redirect/,
  },
  {
    name: 'an unsupported redirect code',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ redirect: { uri: '/x', redirectCode: 304 } }] }),
    field: 'spec.http[0].redirect.redirectCode',
    message: /301, 302/,
  },
  {
    name: 'a bad timeout',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, timeout: '5 seconds' }] }),
    field: 'spec.http[0].timeout',
    message: /invalid duration/,
  },
  {
    name: 'a fault abort status out of range',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, fault: { abort: { httpStatus: 99 } } }] }),
    field: 'spec.http[0].fault.abort.httpStatus',
    message: /200-599/,
  },
  { name: 'no http, tcp or tls', check: () => validateVirtualService({ hosts: ['a.com'] }), field: 'spec', message: /http, tcp or tls/ },
  {
    name: 'exportTo mixing ~ with namespaces',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route }], exportTo: ['~', 'a'] }),
    field: 'spec.exportTo',
    message: /cannot be combined/,
  },
  { name: 'a valid DestinationRule', check: () => validateDestinationRule({ host: 'httpbin', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }) },
  {
    name: 'duplicate subset names',
    check: () => validateDestinationRule({ host: 'h', subsets: [{ name: 'v1' }, { name: 'v1' }] }),
    field: 'spec.subsets[1].name',
    message: /duplicate/,
  },
  {
    name: 'an unknown load balancer',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } }),
    field: 'spec.trafficPolicy.loadBalancer.simple',
    message: /unknown load balancer/,
  },
  { name: 'a DestinationRule without host', check: () => validateDestinationRule({}), field: 'spec.host', message: /required/ },
  {
    name: 'a valid ServiceEntry',
    check: () => validateServiceEntry({ hosts: ['x.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' }),
  },
  {
    name: 'a STATIC ServiceEntry endpoint that is not an IP',
    check: () => validateServiceEntry({ hosts: ['x.com'], ports: [{ number: 80, name: 'http' }], resolution: 'STATIC', endpoints: [{ address: 'x.com' }] }),
    field: 'spec.endpoints[0].address',
    message: /IP address/,
  },
];

for (const c of cases) {
  test(`validation: ${c.name}${c.field ? ` is reported at ${c.field}` : ' passes'}`, () => {
    const errs = c.check();
    if (!c.field) {
      assert.deepEqual(errs, []);
      return;
    }
    const hit = errs.find((e) => e.field === c.field);
    assert.ok(hit, `no error at ${c.field}; got ${JSON.stringify(errs)}`);
    if (c.message) assert.match(hit.message, c.message);
  });
}
