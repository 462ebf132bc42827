#!/usr/bin/env node
// Writes a `meshgate local --config` directory for the benchmark: the gateway's own Service (port 80 ->
// targetPort LISTEN, so Istio names the listener <bind>_<LISTEN>), one Gateway for bench.example.com and
// *.bench.example.com, the real backend (nginx on 127.0.0.1:9001) as Service `bench-backend`, and as many
// generated VirtualServices, hosts, routes, Services and endpoints as asked.
//
// The measured host is always `bench.example.com`: it is the LAST host of the LAST generated VirtualService,
// and that VirtualService carries `--routes` HTTP routes of which only the last (prefix `/`) matches GET /,
// so a request to it pays the whole host lookup and the whole route scan.
//
// usage: node bench/tools/gen-config.ts --out DIR --listen-port N [--hosts 1] [--virtual-services 1]
//          [--routes 1] [--services 0] [--endpoints 0] [--push] [--authz] [--jwt] [--bind 127.0.0.1]
//          [--backend 127.0.0.1:9001]
//   --services S --endpoints E: S extra Services sharing E endpoints on 127.1.x.y (never contacted; they only
//     make the cluster/endpoint tables big); without --endpoints each extra Service points at the backend.
//   --push: add the VirtualService `bench-push` (host push.bench.example.com; counted in --virtual-services)
//     and the Service `bench-eds`, whose files tools/push-latency.ts rewrites.
//   --authz: one DENY and one ALLOW AuthorizationPolicy on the gateway (issue 13's cost row); the benchmark's
//     requests (from 127.0.0.1, to / and /16k) pass both.
//   --jwt: a RequestAuthentication with an inline RS256 key; the summary line carries `token`, a valid JWT for it
//     (a day long) that the harness sends with every request to that target (issue 13's JWT cost row).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

export const HOST = 'bench.example.com';
export const PUSH_HOST = 'push.bench.example.com';
export const PUSH_VS_FILE = '40-vs-push.yaml';
export const EDS_SLICE_FILE = '41-eds-endpointslice.yaml';

export interface Options {
  out: string;
  listenPort: number;
  hosts: number;
  virtualServices: number;
  routes: number;
  services: number;
  endpoints: number;
  push: boolean;
  authz: boolean;
  /** --jwt: the key set and a token signed with its key. */
  jwt: { jwks: string; token: string } | undefined;
  bind: string;
  backend: { address: string; port: number };
}

const gatewayService = (o: Options): string => `# The gateway's own Service: port 80 -> targetPort ${o.listenPort}, so the Gateway's port-80 server
# becomes the listener ${o.bind || '0.0.0.0'}_${o.listenPort}.
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
  labels: {app: istio-ingressgateway, istio: ingressgateway}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
    - {name: http2, port: 80, targetPort: ${o.listenPort}, protocol: TCP}
`;

const gateway = (o: Options): string => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bench-gateway
  namespace: default
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
${o.bind ? `      bind: ${o.bind}\n` : ''}      hosts: ["${HOST}", "*.${HOST}"]
`;

const serviceDoc = (name: string, port: number): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: default
  labels: {app: ${name}}
spec:
  selector: {app: ${name}}
  ports:
    - {name: http, port: ${port}, targetPort: ${port}, protocol: TCP}
`;

const podDoc = (name: string, app: string, ip: string): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: default
  labels: {app: ${app}}
status:
  podIP: ${ip}
  conditions: [{type: Ready, status: "True"}]
`;

/** A Service, its EndpointSlice (all endpoints ready) and, with `withPods`, a Pod per endpoint. */
function service(name: string, port: number, addresses: string[], withPods = false): string {
  const eps = addresses
    .map(
      (a, i) =>
        `  - addresses: ["${a}"]\n    conditions: {ready: true}${withPods ? `\n    targetRef: {kind: Pod, name: ${name}-${i}, namespace: default}` : ''}`,
    )
    .join('\n');
  const docs = [serviceDoc(name, port), endpointSlice(name, port, eps)];
  if (withPods) addresses.forEach((a, i) => docs.push(podDoc(`${name}-${i}`, name, a)));
  return docs.join('---\n');
}

const endpointSlice = (service: string, port: number, endpointsYaml: string): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${service}-slice
  namespace: default
  labels: {kubernetes.io/service-name: ${service}}
addressType: IPv4
ports:
  - {name: http, port: ${port}, protocol: TCP}
endpoints:
${endpointsYaml || '  []'}
`;

export function edsSlice(o: Options, ready: boolean): string {
  return `# Rewritten by tools/push-latency.ts: ready false -> 503 no healthy upstream, true -> 200.
${endpointSlice('bench-eds', o.backend.port, `  - addresses: ["${o.backend.address}"]\n    conditions: {ready: ${ready}}`)}`;
}

const route = (match: string, dest: string, port: number): string =>
  `    - ${match ? `match: [{uri: {prefix: "${match}"}}]\n      ` : ''}route: [{destination: {host: ${dest}, port: {number: ${port}}}}]\n`;

function virtualService(name: string, hosts: string[], routes: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: default
spec:
  hosts: [${hosts.map((h) => `"${h}"`).join(', ')}]
  gateways: [bench-gateway]
  http:
${routes}`;
}

/** The push VirtualService; `generation` changes the prefix of its second route (`/push-<generation>`). */
export function pushVirtualService(o: Options, generation: number): string {
  return `# Rewritten by tools/push-latency.ts: each push moves the second route to /push-<n>.
${virtualService('bench-push', [PUSH_HOST], route('/eds', 'bench-eds', o.backend.port) + route(`/push-${generation}`, 'bench-backend', o.backend.port))}`;
}

/** A DENY the benchmark's requests never match and an ALLOW they always match: both filters run for each request. */
const AUTHZ_POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bench-deny, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]
    to: [{operation: {paths: ["/admin/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bench-allow, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {ipBlocks: ["127.0.0.0/8"]}}]
    to: [{operation: {methods: ["GET", "POST"], paths: ["/*"]}}]
`;

const JWT_ISSUER = 'bench@meshgate.example';

/** An RS256 key set and a token of it, valid for a day. */
async function benchJwt(): Promise<{ jwks: string; token: string }> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const { kty, n, e } = await exportJWK(publicKey);
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
    .setIssuer(JWT_ISSUER)
    .setSubject('bench')
    .setExpirationTime('1d')
    .sign(privateKey);
  return { jwks: JSON.stringify({ keys: [{ kty, n, e, kid: 'bench', alg: 'RS256' }] }), token };
}

const requestAuthentication = (jwks: string): string => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: bench-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: ${JWT_ISSUER}
    jwks: '${jwks}'
`;

/** 127.1.0.1, 127.1.0.2, ...: loopback addresses nobody listens on (never contacted in the benchmark). */
const fakeAddress = (i: number): string => `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255 || 1}`;

export function generate(o: Options): { files: number; virtualServices: number; hosts: number; routes: number; endpoints: number } {
  mkdirSync(o.out, { recursive: true });
  const write = (file: string, text: string): void => writeFileSync(join(o.out, file), text);
  write('00-gateway-service.yaml', gatewayService(o));
  write('10-gateway.yaml', gateway(o));
  write('20-backend.yaml', service('bench-backend', o.backend.port, [o.backend.address], true));
  let files = 3;
  if (o.authz) {
    write('15-authorization.yaml', AUTHZ_POLICIES);
    files++;
  }
  if (o.jwt) {
    write('16-request-authentication.yaml', requestAuthentication(o.jwt.jwks));
    files++;
  }

  // Extra Services: S of them, E fake endpoints spread over them (or the real backend when E = 0).
  const services: string[] = [];
  const svcDocs: string[] = [];
  let fake = 0;
  for (let s = 0; s < o.services; s++) {
    const name = `svc-${String(s).padStart(4, '0')}`;
    services.push(name);
    const n = Math.floor(o.endpoints / o.services) + (s < o.endpoints % o.services ? 1 : 0);
    const addrs = o.endpoints ? Array.from({ length: n }, () => fakeAddress(++fake)) : [o.backend.address];
    svcDocs.push(service(name, o.backend.port, addrs));
  }
  if (svcDocs.length) {
    write('21-services.yaml', svcDocs.join('---\n'));
    files++;
  }

  // VirtualServices: the push one (if any) is one of them; the last generated one holds bench.example.com.
  const generated = Math.max(1, o.virtualServices - (o.push ? 1 : 0));
  const hostsTotal = Math.max(generated, o.hosts);
  let hostNo = 0;
  let routesTotal = 0;
  const chunk: string[] = [];
  let chunkNo = 0;
  const flush = (): void => {
    if (!chunk.length) return;
    write(`30-virtualservices-${String(chunkNo++).padStart(3, '0')}.yaml`, chunk.join('---\n'));
    files++;
    chunk.length = 0;
  };
  for (let v = 0; v < generated; v++) {
    const last = v === generated - 1;
    const count = Math.floor(hostsTotal / generated) + (v < hostsTotal % generated ? 1 : 0);
    const hosts: string[] = [];
    for (let k = 0; k < count; k++) hosts.push(last && k === count - 1 ? HOST : `h${String(hostNo++).padStart(5, '0')}.${HOST}`);
    const dest = last || !services.length ? 'bench-backend' : (services[v % services.length] as string);
    let routes = '';
    if (last) {
      for (let r = 0; r < o.routes - 1; r++) routes += route(`/r${String(r).padStart(4, '0')}`, dest, o.backend.port);
      routes += route('', dest, o.backend.port);
      routesTotal += o.routes;
    } else {
      routes = route('', dest, o.backend.port);
      routesTotal++;
    }
    chunk.push(virtualService(`vs-${String(v).padStart(4, '0')}`, hosts, routes));
    if (chunk.length === 100) flush();
  }
  flush();

  if (o.push) {
    write('22-eds-service.yaml', serviceDoc('bench-eds', o.backend.port));
    write(EDS_SLICE_FILE, edsSlice(o, true));
    write(PUSH_VS_FILE, pushVirtualService(o, 0));
    files += 3;
    routesTotal += 2;
  }
  return {
    files,
    virtualServices: generated + (o.push ? 1 : 0),
    hosts: hostsTotal + (o.push ? 1 : 0),
    routes: routesTotal,
    endpoints: (o.endpoints || o.services) + 1 + (o.push ? 1 : 0),
  };
}

export function parseBackend(s: string): { address: string; port: number } {
  const i = s.lastIndexOf(':');
  return { address: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

export async function optionsFromArgv(argv: string[]): Promise<Options> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      'listen-port': { type: 'string' },
      hosts: { type: 'string', default: '1' },
      'virtual-services': { type: 'string', default: '1' },
      routes: { type: 'string', default: '1' },
      services: { type: 'string', default: '0' },
      endpoints: { type: 'string', default: '0' },
      push: { type: 'boolean', default: false },
      authz: { type: 'boolean', default: false },
      jwt: { type: 'boolean', default: false },
      bind: { type: 'string', default: '127.0.0.1' },
      backend: { type: 'string', default: '127.0.0.1:9001' },
    },
  });
  if (!values.out || !values['listen-port']) throw new Error('usage: gen-config.ts --out DIR --listen-port N [options]; see the header of this file');
  const int = (k: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} wants a non-negative integer, got '${v}'`);
    return n;
  };
  const o: Options = {
    out: values.out,
    listenPort: int('listen-port', values['listen-port']),
    hosts: int('hosts', values.hosts),
    virtualServices: int('virtual-services', values['virtual-services']),
    routes: Math.max(1, int('routes', values.routes)),
    services: int('services', values.services),
    endpoints: int('endpoints', values.endpoints),
    push: values.push,
    authz: values.authz,
    jwt: values.jwt ? await benchJwt() : undefined,
    bind: values.bind,
    backend: parseBackend(values.backend),
  };
  if (o.endpoints && !o.services) o.services = Math.max(1, Math.ceil(o.endpoints / 100));
  return o;
}

if (import.meta.main) {
  const o = await optionsFromArgv(process.argv.slice(2));
  const r = generate(o);
  process.stdout.write(`${JSON.stringify({ dir: o.out, ...r, ...(o.jwt ? { token: o.jwt.token } : {}) })}\n`);
}
