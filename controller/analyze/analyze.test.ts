// Each analyzer with a case it reports (code, message, and the line of the field: the line marked `#<-`) and
// one it accepts; istiod's validation messages as validate prints them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigFile } from '../sources/local-dir.ts';
import { indexPositions } from '../sources/positions.ts';
import { ObjectStore } from '../model/store.ts';
import { analyze } from './analyze.ts';
import type { Finding } from './messages.ts';

// The gateway workload, its Service (80 -> 8080) and a backend Service with a DestinationRule: valid on their own.
const BASE = `apiVersion: v1
kind: Pod
metadata: {name: gw, namespace: istio-system, labels: {istio: ingressgateway}}
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: default}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 8000}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: default}
spec:
  host: shop
  subsets: [{name: v1, labels: {version: v1}}]
---
`;

const GATEWAY = (servers = `  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [shop.example.com]`, selector = '{istio: ingressgateway}'): string =>
  `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop, namespace: default}
spec:
  selector: ${selector}
  servers:
${servers}
---
`;

const VS = (body: string, gateways = '[shop]', name = 'shop', hosts = '[shop.example.com]'): string =>
  `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: ${hosts}
  gateways: ${gateways}
  http:
${body}
---
`;

const ROUTE = `  - route: [{destination: {host: shop}}]`;

function findings(yaml: string): Finding[] {
  const parsed = parseConfigFile(yaml, 't.yaml');
  assert.deepEqual(parsed.errors, []);
  const store = new ObjectStore();
  for (const o of parsed.objects) store.upsert(o.kind, o.obj, o.origin);
  return analyze(store.snapshot(), indexPositions([{ file: 't.yaml', text: yaml }]));
}

const markedLine = (yaml: string): number => yaml.split('\n').findIndex((l) => l.includes('#<-')) + 1;

interface Case {
  name: string;
  yaml: string;
  /** The one finding expected (its line is the line marked #<-), or none. */
  want?: { code: string; message: string };
}

const cases: Case[] = [
  // gateway-workload.ts
  {
    name: 'a Gateway whose selector no Pod has: IST0101 selector',
    yaml: BASE + GATEWAY(undefined, '\n    app: nothing #<-') + VS(ROUTE),
    want: { code: 'IST0101', message: 'Referenced selector not found: "app=nothing"' },
  },
  {
    name: 'a server port the gateway Service lacks: IST0162',
    yaml:
      BASE +
      GATEWAY(
        `  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [shop.example.com]\n  - port:\n      number: 9090 #<-\n      name: http2\n      protocol: HTTP\n    hosts: [shop.example.com]`,
      ) +
      VS(ROUTE),
    want: {
      code: 'IST0162',
      message:
        'The gateway is listening on a target port (port 9090) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.',
    },
  },
  {
    name: 'no Service selects the gateway pods (a directory without it): no port is reported',
    yaml:
      BASE.replace('selector: {istio: ingressgateway}\n  ports: [{name: http2', 'selector: {istio: other}\n  ports: [{name: http2') +
      GATEWAY(`  - port: {number: 9090, name: http, protocol: HTTP}\n    hosts: [shop.example.com]`) +
      VS(ROUTE),
  },
  {
    name: 'a server on the Service target port (8080) is reachable',
    yaml: BASE + GATEWAY(`  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: [shop.example.com]`) + VS(ROUTE),
  },
  // gateway-secrets.ts
  {
    name: 'a credentialName Secret not in the gateway namespace: IST0101 credentialName',
    yaml:
      BASE +
      GATEWAY(
        `  - port: {number: 80, name: https, protocol: HTTPS}\n    hosts: [shop.example.com]\n    tls:\n      mode: SIMPLE\n      credentialName: shop-cert #<-`,
      ) +
      `apiVersion: v1\nkind: Secret\nmetadata: {name: shop-cert, namespace: default}\ntype: kubernetes.io/tls\nstringData: {tls.crt: x, tls.key: y}\n---\n` +
      VS(ROUTE),
    want: { code: 'IST0101', message: 'Referenced credentialName not found: "shop-cert"' },
  },
  {
    name: 'a credentialName Secret without a certificate: IST0161',
    yaml:
      BASE +
      GATEWAY(`  - port: {number: 80, name: https, protocol: HTTPS}\n    hosts: [shop.example.com]\n    tls: {mode: SIMPLE, credentialName: shop-cert} #<-`) +
      `apiVersion: v1\nkind: Secret\nmetadata: {name: shop-cert, namespace: istio-system}\nstringData: {password: x}\n---\n` +
      VS(ROUTE),
    want: {
      code: 'IST0161',
      message: 'The credential referenced by the Gateway shop in namespace istio-system is invalid, which can cause the traffic not to work as expected.',
    },
  },
  // conflicting-gateways.ts
  {
    name: 'two Gateways with one host on one port of one workload: IST0145 on each',
    yaml:
      BASE +
      GATEWAY() +
      `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: shop2, namespace: default}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [shop.example.com] #<-\n---\n` +
      VS(ROUTE),
    want: { code: 'IST0145', message: 'Conflict with gateways default/shop (workload selector istio=ingressgateway, port 80, hosts shop.example.com).' },
  },
  // duplicate-certificates.ts
  {
    name: 'two Gateways of one workload with one credentialName: IST0138 on each',
    yaml:
      BASE +
      GATEWAY(`  - port: {number: 80, name: https, protocol: HTTPS}\n    hosts: [shop.example.com]\n    tls: {mode: SIMPLE, credentialName: shared}`).replace(
        'name: shop, namespace: default}',
        'name: shop, namespace: default} #<-',
      ) +
      GATEWAY(`  - port: {number: 80, name: https, protocol: HTTPS}\n    hosts: [api.example.com]\n    tls: {mode: SIMPLE, credentialName: shared}`).replace(
        'name: shop,',
        'name: api,',
      ) +
      `apiVersion: v1\nkind: Secret\nmetadata: {name: shared, namespace: istio-system}\nstringData: {tls.crt: x, tls.key: y}\n---\n`,
    want: {
      code: 'IST0138',
      message: 'Duplicate certificate in multiple gateways [default/shop default/api] may cause 404s if clients re-use HTTP2 connections.',
    },
  },
  // virtual-service-gateways.ts
  {
    name: 'a VirtualService bound to a missing Gateway: IST0101 gateway (and IST0132)',
    yaml: BASE + GATEWAY() + VS(ROUTE, '\n  - shop\n  - istio-system/missing #<-'),
    want: { code: 'IST0101', message: 'Referenced gateway not found: "istio-system/missing"' },
  },
  {
    name: 'a VirtualService host no server of its Gateway has: IST0132',
    yaml: BASE + GATEWAY() + VS(ROUTE, '\n  - shop #<-', 'shop', '[api.example.com]'),
    want: { code: 'IST0132', message: 'one or more host [api.example.com] defined in VirtualService default/shop not found in Gateway default/shop.' },
  },
  {
    name: 'a wildcard server host covers the VirtualService host',
    yaml:
      BASE +
      GATEWAY(`  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*/*.example.com"]`) +
      VS(ROUTE, '[default/shop]', 'shop', '[api.example.com]'),
  },
  // destination-hosts.ts
  {
    name: 'a route to a host without a Service: IST0101 host',
    yaml: BASE + GATEWAY() + VS(`  - route:\n    - destination:\n        host: shopp #<-`),
    want: { code: 'IST0101', message: 'Referenced host not found: "shopp"' },
  },
  {
    name: 'a mirror to a Service exported only to its own namespace: IST0101 mirror host',
    yaml:
      BASE +
      GATEWAY() +
      `apiVersion: v1\nkind: Service\nmetadata: {name: audit, namespace: ops, annotations: {networking.istio.io/exportTo: .}}\nspec:\n  ports: [{name: http, port: 80}]\n---\n` +
      VS(`  - route: [{destination: {host: shop}}]\n    mirror:\n      host: audit.ops.svc.cluster.local #<-`),
    want: { code: 'IST0101', message: 'Referenced mirror host not found: "audit.ops.svc.cluster.local"' },
  },
  {
    name: 'a route without a port to a Service with several: IST0112',
    yaml:
      BASE +
      GATEWAY() +
      `apiVersion: v1\nkind: Service\nmetadata: {name: multi, namespace: default}\nspec:\n  ports: [{name: http, port: 80}, {name: grpc, port: 9000}]\n---\n` +
      VS(`  - route:\n    - destination:\n        host: multi #<-`),
    want: {
      code: 'IST0112',
      message:
        'This VirtualService routes to a service "multi" that exposes multiple ports [80 9000]. Specifying a port in the destination is required to disambiguate.',
    },
  },
  {
    name: 'a route to a port the Service does not have: IST0101 host:port',
    yaml: BASE + GATEWAY() + VS(`  - route:\n    - destination:\n        host: shop\n        port:\n          number: 80 #<-`),
    want: { code: 'IST0101', message: 'Referenced host:port not found: "shop:80"' },
  },
  {
    name: 'a host a wildcard ServiceEntry covers',
    yaml:
      BASE +
      GATEWAY() +
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext, namespace: istio-system}\nspec:\n  hosts: ["*.example.org"]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: NONE\n---\n` +
      VS(`  - route: [{destination: {host: api.example.org}}]`),
  },
  // destination-subsets.ts
  {
    name: 'a route to a subset no DestinationRule defines: IST0101 host+subset',
    yaml: BASE + GATEWAY() + VS(`  - route:\n    - destination:\n        host: shop\n        subset: v2 #<-`),
    want: { code: 'IST0101', message: 'Referenced host+subset in destinationrule not found: "shop+v2"' },
  },
  {
    name: 'a mirror to an undefined subset: IST0101 mirror+subset',
    yaml:
      BASE +
      GATEWAY() +
      VS(`  - route: [{destination: {host: shop, subset: v1}}]\n    mirror:\n      host: shop.default.svc.cluster.local\n      subset: v3 #<-`),
    want: { code: 'IST0101', message: 'Referenced mirror+subset in destinationrule not found: "shop.default.svc.cluster.local+v3"' },
  },
  {
    name: 'a subset defined for the FQDN of the short host',
    yaml: BASE + GATEWAY() + VS(`  - route: [{destination: {host: shop.default.svc.cluster.local, subset: v1}}]`),
  },
  // server-certificate-verification.ts
  {
    name: 'a DestinationRule originating TLS without caCertificates: IST0128',
    yaml:
      BASE +
      GATEWAY() +
      VS(ROUTE) +
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext, namespace: default}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE} #<-\n---\n`,
    want: {
      code: 'IST0128',
      message:
        'DestinationRule default/ext in namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: api.example.com',
    },
  },
  {
    name: 'a port-level TLS setting without caCertificates: IST0129',
    yaml:
      BASE +
      GATEWAY() +
      VS(ROUTE) +
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext, namespace: default}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n      tls: {mode: SIMPLE} #<-\n---\n`,
    want: {
      code: 'IST0129',
      message:
        'DestinationRule default/ext in namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: api.example.com at port number:443',
    },
  },
  {
    name: 'TLS with caCertificates is verified',
    yaml:
      BASE +
      GATEWAY() +
      VS(ROUTE) +
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext, namespace: default}\nspec:\n  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /etc/ca.pem}\n---\n`,
  },
  // unreachable-rules.ts
  {
    name: 'a rule after a rule without matches: IST0130',
    yaml: BASE + GATEWAY() + VS(`${ROUTE}\n  - name: late #<-\n    match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: shop}}]`),
    want: { code: 'IST0130', message: 'VirtualService rule "late" not used (route without matches defined before).' },
  },
  {
    name: 'a match repeating an earlier one: IST0131 (and the rule IST0130)',
    yaml:
      BASE +
      GATEWAY() +
      VS(
        `  - match: [{uri: {exact: /a}}]\n    route: [{destination: {host: shop}}]\n  - match:\n    - {uri: {exact: /a}, name: again} #<-\n    route: [{destination: {host: shop}}]`,
      ),
    want: { code: 'IST0131', message: 'VirtualService rule #1 match "again" is not used (duplicate/overlapping match in rule #0).' },
  },
  {
    name: 'a prefix covered by an earlier shorter prefix: IST0131',
    yaml:
      BASE +
      GATEWAY() +
      VS(
        `  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: shop}}]\n  - match:\n    - uri: {prefix: /api/v2} #<-\n    route: [{destination: {host: shop}}]\n${ROUTE}`,
      ),
    want: {
      code: 'IST0131',
      message: 'VirtualService rule #1 match #0 of prefix /api/v2 is not used (duplicate/overlapping match in rule #0 of prefix /api on #0).',
    },
  },
  {
    name: 'the longer prefix first is fine',
    yaml:
      BASE +
      GATEWAY() +
      VS(
        `  - match: [{uri: {prefix: /api/v2}}]\n    route: [{destination: {host: shop}}]\n  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: shop}}]\n${ROUTE}`,
      ),
  },
  // shadowed-catch-all.ts
  {
    name: "a later VirtualService's catch-all for the same host and Gateway: MG0101",
    yaml:
      BASE +
      GATEWAY() +
      VS(ROUTE, '[shop]', 'a-first') +
      VS(`  - match: [{uri: {prefix: /}}] #<-\n    route: [{destination: {host: shop}}]`, '[shop]', 'b-later'),
    want: {
      code: 'MG0101',
      message:
        'VirtualService rule #0 is a catch-all for host shop.example.com on Gateway default/shop, where VirtualService default/a-first (older) has one too (rule #0): only the older one is used',
    },
  },
  {
    name: 'VirtualServices of one host, one catch-all',
    yaml:
      BASE + GATEWAY() + VS(ROUTE, '[shop]', 'a-first') + VS(`  - match: [{uri: {prefix: /b}}]\n    route: [{destination: {host: shop}}]`, '[shop]', 'b-later'),
  },
  // schema.ts
  {
    name: 'an object istiod refuses: IST0106 with its message, at the field',
    yaml: BASE + GATEWAY() + VS(`  - route: [{destination: {host: shop}}]\n    timeout: 1x #<-`),
    want: { code: 'IST0106', message: 'Schema validation error: invalid duration "1x" (use e.g. "5s", "0.5s", "100ms", "1m")' },
  },
  {
    name: 'a kind meshgate does not implement: MG0005',
    yaml:
      BASE +
      GATEWAY() +
      VS(ROUTE) +
      `apiVersion: networking.istio.io/v1alpha3 #<-\nkind: EnvoyFilter\nmetadata: {name: lua, namespace: istio-system}\nspec: {}\n---\n`,
    want: { code: 'MG0005', message: 'EnvoyFilter is not implemented by meshgate: this gateway ignores it' },
  },
  { name: 'the base config, a Gateway and a VirtualService: nothing', yaml: BASE + GATEWAY() + VS(ROUTE) },
];

for (const c of cases) {
  test(`analyze: ${c.name}`, () => {
    const got = findings(c.yaml);
    if (!c.want) {
      assert.deepEqual(got, []);
      return;
    }
    const f = got.find((x) => x.code === c.want?.code && x.message === c.want.message);
    assert.ok(f, `expected ${c.want.code} ${c.want.message}; got:\n${got.map((x) => `${x.code} ${x.message}`).join('\n')}`);
    assert.deepEqual(f.position, { file: 't.yaml', line: markedLine(c.yaml) });
    assert.ok(f.hint.length > 0);
  });
}

// istiod's messages for refused objects, as validate prints them (the messages are the controller's, which the
// istiod differential holds to istiod's own).
const invalid: { name: string; yaml: string; field: string; message: string }[] = [
  {
    name: 'Gateway server without hosts',
    yaml: `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n`,
    field: 'spec.servers[0].hosts',
    message: 'Schema validation error: server config must contain at least one host',
  },
  {
    name: 'ServiceEntry without hosts',
    yaml: `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n`,
    field: 'spec.hosts',
    message: 'Schema validation error: service entry must have at least one host',
  },
  {
    name: 'an apiVersion meshgate does not serve',
    yaml: `apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n`,
    field: 'apiVersion',
    message: 'unsupported apiVersion "networking.istio.io/v2" for Gateway',
  },
];

for (const c of invalid) {
  test(`analyze: istiod refuses ${c.name}`, () => {
    const got = findings(c.yaml);
    const f = got.find((x) => x.field === c.field);
    assert.ok(f, `no finding at ${c.field}; got:\n${got.map((x) => `${x.code} ${x.field} ${x.message}`).join('\n')}`);
    assert.equal(f.message, c.message);
    assert.equal(f.level, 'Error');
  });
}
