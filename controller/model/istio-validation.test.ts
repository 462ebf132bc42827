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
    message: /^domain name "\*\.com" invalid \(label "\*" invalid\)$/,
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
    message: /^error parsing regexp: missing closing \]: `\[`; Istio uses RE2/,
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
    message: /HTTP route, redirect or direct_response is required/,
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
  // istiod's webhook checks (pkg/config/validation), with its messages.
  {
    name: '* as a header regex',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ headers: { 'x-star': { regex: '*' } } }], route }] }),
    field: 'spec.http[0].match[0].headers.x-star.regex',
    message: /repetition operator.*Istio uses RE2/,
  },
  {
    name: '* as a withoutHeaders regex (a present match)',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ withoutHeaders: { 'x-star': { regex: '*' } } }], route }] }),
  },
  {
    name: 'an empty prefix in a header match',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ headers: { 'x-a': { prefix: '' } } }], route }] }),
    field: 'spec.http[0].match[0].headers.x-a.prefix',
    message: /prefix string match should not be empty/,
  },
  {
    name: 'a pseudo-header match',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ match: [{ headers: { ':path': { exact: '/' } } }], route }] }),
  },
  {
    name: 'removing the host header',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, headers: { request: { remove: ['Host'] } } }] }),
    field: 'spec.http[0].headers.request.remove[0]',
    message: /invalid header "Host": cannot set Host header/,
  },
  {
    name: 'setting the host header on a response',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, headers: { response: { set: { host: 'x' } } } }] }),
    field: 'spec.http[0].headers.response.set.host',
    message: /cannot set Host header/,
  },
  {
    name: 'setting host on the request (the authority)',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, headers: { request: { set: { host: 'b.com' } } } }] }),
  },
  {
    name: 'setting a pseudo-header other than :authority',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route: [{ ...route[0], headers: { request: { add: { ':path': '/x' } } } }] }] }),
    field: 'spec.http[0].route[0].headers.request.add.:path',
    message: /header cannot have ":" prefix/,
  },
  {
    name: 'the authority rewritten twice',
    check: () =>
      validateVirtualService({
        hosts: ['a.com'],
        http: [{ route, rewrite: { authority: 'b.com' }, headers: { request: { set: { ':authority': 'c.com' } } } }],
      }),
    field: 'spec.http[0].headers.request.set.:authority',
    message: /authority header cannot be set multiple times: have "b.com", attempting to set "c.com"/,
  },
  {
    name: 'an unescaped % in a header value',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, headers: { response: { add: { 'x-a': '100%' } } } }] }),
    field: 'spec.http[0].headers.response.add.x-a',
    message: /Un-escaped %/,
  },
  {
    name: 'Envoy variables and %% in a header value',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, headers: { response: { add: { 'x-a': '%HOSTNAME% 100%%' } } } }] }),
  },
  {
    name: 'a retryOn entry that is neither a policy nor an HTTP status',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, retries: { attempts: 2, retryOn: '5xx,99' } }] }),
    field: 'spec.http[0].retries.retryOn',
    message: /"99" is not a valid retryOn policy/,
  },
  {
    name: 'retryOn policies and status codes',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, retries: { attempts: 2, retryOn: 'gateway-error,418,retriable-status-codes' } }] }),
  },
  {
    name: 'a retry policy with attempts 0',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, retries: { retryOn: '5xx' } }] }),
    field: 'spec.http[0].retries',
    message: /http retry policy configured when attempts are set to 0 \(disabled\)/,
  },
  {
    name: 'a 0s timeout',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, timeout: '0s' }] }),
    field: 'spec.http[0].timeout',
    message: /duration must be greater than 1ms/,
  },
  {
    name: 'a timeout finer than a millisecond',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, timeout: '1.0005s' }] }),
    field: 'spec.http[0].timeout',
    message: /only durations to ms precision are supported/,
  },
  {
    name: 'an unknown CORS method',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, corsPolicy: { allowMethods: ['GET', 'FETCH'] } }] }),
    field: 'spec.http[0].corsPolicy.allowMethods[1]',
    message: /"FETCH" is not a supported HTTP method/,
  },
  {
    name: 'a CORS maxAge in fractions of a second',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, corsPolicy: { maxAge: '1.5s' } }] }),
    field: 'spec.http[0].corsPolicy.maxAge',
    message: /accurate only to seconds precision/,
  },
  {
    name: 'a fault percentage below 0.0001',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, fault: { abort: { httpStatus: 503, percentage: { value: 0.00001 } } } }] }),
    field: 'spec.http[0].fault.abort.percentage.value',
    message: /neither 0.0, nor in range \[0.0001, 100.0\]/,
  },
  {
    name: 'a redirect with a fault',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ redirect: { uri: '/x' }, fault: { abort: { httpStatus: 503 } } }] }),
    field: 'spec.http[0].fault',
    message: /both fault and redirect/,
  },
  {
    name: 'a redirect to an ftp scheme',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ redirect: { scheme: 'ftp' } }] }),
    field: 'spec.http[0].redirect.scheme',
    message: /must be "http" or "https"/,
  },
  {
    name: 'a regex rewrite with an empty rewrite',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, rewrite: { uriRegexRewrite: { match: '^/a', rewrite: '' } } }] }),
    field: 'spec.http[0].rewrite.uriRegexRewrite',
    message: /requires both Rewrite and Match/,
  },
  {
    name: 'mirror_percent (proto name) above 100',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, mirror: { host: 'm' }, mirror_percent: 150 }] }),
    field: 'spec.http[0].mirror_percent',
    message: /mirror_percent must have a max value of 100 \(it has 150\)/,
  },
  {
    name: 'mirror and mirrors together',
    check: () => validateVirtualService({ hosts: ['a.com'], http: [{ route, mirror: { host: 'm' }, mirrors: [{ destination: { host: 'n' } }] }] }),
    field: 'spec.http[0].mirrors',
    message: /both mirror and mirrors/,
  },
  {
    name: 'a delegate VirtualService with gateways',
    check: () => validateVirtualService({ gateways: ['gw'], http: [{ route }] }),
    field: 'spec.gateways',
    message: /delegate virtual service must have no gateways specified/,
  },
  {
    name: 'host * on a mesh VirtualService',
    check: () => validateVirtualService({ hosts: ['*'], http: [{ route }] }),
    field: 'spec.hosts[0]',
    message: /wildcard host \* is not allowed/,
  },
  { name: 'host * on a gateway VirtualService', check: () => validateVirtualService({ hosts: ['*'], gateways: ['gw'], http: [{ route }] }) },
  {
    name: 'overlapping hosts',
    check: () => validateVirtualService({ hosts: ['*.a.com', 'b.a.com'], gateways: ['gw'], http: [{ route }] }),
    field: 'spec.hosts[1]',
    message: /duplicate hosts in virtual service: \*.a.com & b.a.com/,
  },
  {
    name: 'an SNI host outside the VirtualService hosts',
    check: () => validateVirtualService({ hosts: ['a.com'], gateways: ['gw'], tls: [{ match: [{ sniHosts: ['b.com'] }], route }] }),
    field: 'spec.tls[0].match[0].sniHosts[0]',
    message: /SNI host "b.com" is not a compatible subset of any of the virtual service hosts: \[a.com\]/,
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
  {
    name: 'MUTUAL without a private key',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { tls: { mode: 'MUTUAL', clientCertificate: '/c.pem' } } }),
    field: 'spec.trafficPolicy.tls.privateKey',
    message: /private key required for mutual tls/,
  },
  {
    name: 'MUTUAL with a credentialName and file paths',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: 'c', clientCertificate: '/c.pem' } } }),
    field: 'spec.trafficPolicy.tls',
    message: /cannot specify client certificates or CA certificate or CA CRL If credentialName is set/,
  },
  {
    name: 'insecureSkipVerify with a CA',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { tls: { mode: 'SIMPLE', insecureSkipVerify: true, caCertificates: '/ca.pem' } } }),
    field: 'spec.trafficPolicy.tls',
    message: /when InsecureSkipVerify is set true/,
  },
  {
    name: 'an empty traffic policy',
    check: () => validateDestinationRule({ host: 'h', subsets: [{ name: 'v1', trafficPolicy: {} }] }),
    field: 'spec.subsets[0].trafficPolicy',
    message: /traffic policy must have at least one field/,
  },
  {
    name: 'an empty port traffic policy',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { portLevelSettings: [{ port: { number: 80 } }] } }),
    field: 'spec.trafficPolicy.portLevelSettings[0]',
    message: /port traffic policy must have at least one field/,
  },
  {
    name: 'an empty connection pool',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { connectionPool: {} } }),
    field: 'spec.trafficPolicy.connectionPool',
    message: /connection pool must have at least one field/,
  },
  {
    name: 'useClientProtocol with h2UpgradePolicy UPGRADE',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } } }),
    field: 'spec.trafficPolicy.connectionPool.http.useClientProtocol',
    message: /must not be true when H2UpgradePolicy is UPGRADE/,
  },
  {
    name: 'local origin failures without splitting them',
    check: () => validateDestinationRule({ host: 'h', trafficPolicy: { outlierDetection: { consecutiveLocalOriginFailures: 3 } } }),
    field: 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures',
    message: /split external local origin errors is set to false/,
  },
  {
    name: 'a maglev table size that is not prime',
    check: () =>
      validateDestinationRule({ host: 'h', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } } } }),
    field: 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize',
    message: /prime/,
  },
  {
    name: 'a subset label value Kubernetes refuses',
    check: () => validateDestinationRule({ host: 'h', subsets: [{ name: 'v1', labels: { version: 'v 1' } }] }),
    field: 'spec.subsets[0].labels.version',
    message: /invalid tag value: "v 1"/,
  },
  { name: 'a DestinationRule without host', check: () => validateDestinationRule({}), field: 'spec.host', message: /^empty domain name not allowed$/ },
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
