// A `meshgate local` gateway for black-box tests: a config directory the test writes Kubernetes/Istio YAML
// into, the gateway's own Service mapping port 80 to a free target port (so suites do not collide on
// 8080), admin/status/metrics on free ports (xDS on the private Unix socket `meshgate local` makes), and
// helpers for /stats and waiting until config applies.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminPorts, eventually, freePort, meshgate, type Proc } from './process.ts';
import { rawRequest } from './http.ts';

export interface Gateway {
  dir: string;
  /** The listener port (the gateway Service's targetPort for port 80). */
  port: number;
  admin: number;
  /** Readiness, /healthz/ready (Istio's 15021). */
  status: number;
  /** The Prometheus listener (Istio's 15090). */
  metrics: number;
  proc: Proc;
  write(file: string, yaml: string): void;
  adminGet(path: string): Promise<string>;
  /** A counter or gauge from /stats (throws when the stat does not exist). */
  stat(name: string): Promise<number>;
  /** The access log written so far (empty unless started with `accessLog: true`). */
  accessLog(): string;
  stop(): Promise<void>;
}

const esc = (s: string): string => s.replace(/[.|*+?()[\]{}^$\\]/g, '\\$&');

/**
 * `env` is added to the process environment (e.g. MESHGATE_FAST_PATH=0 for the node:http path only); `port`
 * is the listener port (default: a free one); `args` are more `meshgate local` flags.
 */
export async function startGateway(
  o: { accessLog?: boolean; concurrency?: number; env?: NodeJS.ProcessEnv; port?: number; args?: string[] } = {},
): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-tm-'));
  const port = o.port ?? (await freePort());
  writeFileSync(
    join(dir, '00-gateway-service.yaml'),
    `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system, labels: {app: istio-ingressgateway, istio: ingressgateway}}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${port}, protocol: TCP}
`,
  );
  const logFile = join(dir, 'access.log');
  const { proc, admin, status, metrics } = await meshgateLocal(
    dir,
    [...(o.accessLog ? ['--access-log', logFile] : []), ...(o.concurrency !== undefined ? ['--concurrency', String(o.concurrency)] : []), ...(o.args ?? [])],
    o.env,
  );
  const { adminGet, stat } = adminClient(admin);
  try {
    await eventually(
      'the gateway admin to answer',
      async () => ((await rawRequest('127.0.0.1', admin, 'GET /ready HTTP/1.1\r\nHost: x\r\n\r\n')).status > 0 ? true : undefined),
      20_000,
      100,
    );
  } catch (e) {
    await proc.stop();
    throw new Error(`${(e as Error).message}\n${proc.output()}`, { cause: e });
  }
  return {
    dir,
    port,
    admin,
    status,
    metrics,
    proc,
    write: (file, yaml) => writeFileSync(join(dir, file), yaml),
    accessLog: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    adminGet,
    stat,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `meshgate local --config dir` on free admin, status and metrics ports, not waiting to drain on stop; `args` are more flags. */
export async function meshgateLocal(
  dir: string,
  args: string[] = [],
  env?: NodeJS.ProcessEnv,
): Promise<{ proc: Proc; admin: number; status: number; metrics: number }> {
  const { admin, status, metrics, flags } = await adminPorts();
  const proc = meshgate(['local', '--config', dir, ...flags, '--drain-seconds', '0', ...args], env);
  return { proc, admin, status, metrics };
}

/** GET on a gateway's admin port, and a counter or gauge from its /stats (throws when the stat does not exist). */
export function adminClient(admin: number): { adminGet: (path: string) => Promise<string>; stat: (name: string) => Promise<number> } {
  const adminGet = async (path: string): Promise<string> =>
    (await rawRequest('127.0.0.1', admin, `GET ${path} HTTP/1.1\r\nHost: admin\r\n\r\n`)).body.toString();
  return {
    adminGet,
    stat: async (name) => {
      const text = await adminGet(`/stats?filter=${encodeURIComponent(`^${esc(name)}$`)}`);
      const m = new RegExp(`^${esc(name)}: (\\d+)$`, 'm').exec(text);
      if (!m) throw new Error(`stat ${name} not in /stats output:\n${text}`);
      return Number(m[1]);
    },
  };
}

/** A Service, its Pods and an EndpointSlice for backends on loopback addresses (one "pod" per address). */
export function serviceYaml(name: string, port: number, pods: { ip: string; version?: string }[], ns = 'default'): string {
  const docs = [
    `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${name}}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: ${port}, targetPort: ${port}}]`,
  ];
  pods.forEach((p, i) => {
    docs.push(`apiVersion: v1
kind: Pod
metadata: {name: ${name}-${i}, namespace: ${ns}, labels: {app: ${name}${p.version ? `, version: ${p.version}` : ''}}}
status: {podIP: ${p.ip}, conditions: [{type: Ready, status: "True"}]}`);
  });
  docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-slice, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http, port: ${port}, protocol: TCP}]
endpoints:
${pods.map((p, i) => `- {addresses: ["${p.ip}"], conditions: {ready: true}, targetRef: {kind: Pod, name: ${name}-${i}, namespace: ${ns}}}`).join('\n')}`);
  return docs.join('\n---\n') + '\n';
}

export function gatewayYaml(name: string, hosts: string[], ns = 'default'): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}]
`;
}

/** A VirtualService on `gateway` sending every request for `host` to the Service `dest`. */
export function virtualServiceYaml(name: string, host: string, gateway: string, dest: string, ns = 'default'): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${host}]
  gateways: [${gateway}]
  http:
  - route: [{destination: {host: ${dest}}}]
`;
}
