// Addresses for backend "pods". A real API server rejects loopback addresses in EndpointSlices
// ("may not be in the loopback range (127.0.0.0/8, ::1/128)"), so backends cannot sit on 127.0.0.x as in local
// mode. Two ways, both keeping every packet on this machine:
//   - inside e2e/kube/netns.sh (MESHGATE_E2E_NETNS=1): the whole suite runs in a private network namespace
//     where E2E_POD_CIDR is routed to `lo` as a local range; a pod process simply binds its address;
//   - otherwise each test file makes a network namespace of its own, joined to this one by a veth pair, and
//     gives every pod an address from 198.18.0.0/15 (RFC 2544, reserved for benchmark test networks) in it;
//     the proxy reaches the pods through the veth, and nothing routes further. This mode needs root
//     (CAP_NET_ADMIN); it also serves E2E_KUBECONFIG runs, where the external API server must stay reachable.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { MESHGATE, start, type Proc } from '../lib/process.ts';
import { startCollector, type Collector } from '../lib/otelcol.ts';

/** The gRPC echo server a gRPC pod runs (e2e/lib/grpc-echo.ts), with this test run's Node.js. */
const GRPC_ECHO = [process.execPath, join(import.meta.dirname, '..', 'lib', 'grpc-echo.ts')];
/** Istio's sample external authorizer (e2e/lib/ext-authz-sample.ts), HTTP and gRPC. */
const EXT_AUTHZ = [process.execPath, join(import.meta.dirname, '..', 'lib', 'ext-authz-sample.ts')];
const extAuthzArgs = (address: string, httpPort: number, grpcPort: number): string[] => [
  '--host',
  address,
  '--http-port',
  String(httpPort),
  '--grpc-port',
  String(grpcPort),
];

const PREFIX = 'mgk';

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Pod addresses from E2E_POD_CIDR inside e2e/kube/netns.sh, where that range is local. */
class LocalRangePodNetwork {
  private readonly base: number[];
  private next = 2;
  private readonly procs: Proc[] = [];
  private readonly collectors: Collector[] = [];

  constructor(cidr: string) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
    if (!m || Number(m[5]) > 24) throw new Error(`E2E_POD_CIDR must be an IPv4 range of /24 or larger, got '${cidr}'`);
    this.base = [Number(m[1]), Number(m[2]), Number(m[3])];
  }

  allocate(): string {
    if (this.next > 254) throw new Error('pod network: out of addresses');
    return `${this.base.join('.')}.${this.next++}`;
  }

  async httpbin(address: string, name: string, port = 8000): Promise<Proc> {
    const p = start(MESHGATE, ['httpbin', '--host', address, '--port', String(port), '--name', name]);
    this.procs.push(p);
    await p.waitForOutput(/httpbin listening/, 20_000);
    return p;
  }

  async grpcEcho(address: string, port: number): Promise<Proc> {
    const [node, script] = GRPC_ECHO as [string, string];
    const p = start(node, [script, '--host', address, '--port', String(port)]);
    this.procs.push(p);
    await p.waitForOutput(/grpc echo listening/, 20_000);
    return p;
  }

  async extAuthz(address: string, httpPort: number, grpcPort: number): Promise<Proc> {
    const [node, script] = EXT_AUTHZ as [string, string];
    const p = start(node, [script, ...extAuthzArgs(address, httpPort, grpcPort)]);
    this.procs.push(p);
    await p.waitForOutput(/ext-authz listening/, 20_000);
    return p;
  }

  async collector(address: string): Promise<Collector> {
    const c = await startCollector(address);
    this.collectors.push(c);
    return c;
  }

  async destroy(): Promise<void> {
    for (const c of this.collectors) await c.stop();
    for (const p of this.procs) await p.stop();
  }
}

export interface PodNetwork {
  /** A new pod address. */
  allocate(): string;
  /** Runs `meshgate httpbin` as the pod's process, on its address. */
  httpbin(address: string, name: string, port?: number): Promise<Proc>;
  /** Runs the gRPC echo server (e2e/lib/grpc-echo.ts) as the pod's process, on its address. */
  grpcEcho(address: string, port: number): Promise<Proc>;
  /** Runs Istio's sample external authorizer (e2e/lib/ext-authz-sample.ts) as the pod's process. */
  extAuthz(address: string, httpPort: number, grpcPort: number): Promise<Proc>;
  /** Runs a real OpenTelemetry Collector (e2e/lib/otelcol.ts) as the pod's process, on its address. */
  collector(address: string): Promise<Collector>;
  destroy(): Promise<void>;
}

export function createPodNetwork(): PodNetwork {
  if (process.env.MESHGATE_E2E_NETNS === '1') return new LocalRangePodNetwork(process.env.E2E_POD_CIDR ?? '10.244.0.0/16');
  return VethPodNetwork.create();
}

class VethPodNetwork implements PodNetwork {
  readonly name: string;
  /** The proxy's side of the veth: the pods' peer address. */
  readonly hostAddress: string;
  private readonly subnet: string;
  private next = 2;
  private readonly procs: Proc[] = [];
  private readonly collectors: Collector[] = [];

  private constructor(name: string, subnet: string) {
    this.name = name;
    this.subnet = subnet;
    this.hostAddress = `${subnet}.1`;
  }

  static create(): VethPodNetwork {
    if (process.getuid?.() !== 0) {
      throw new Error(
        'the Kubernetes e2e suite needs root (CAP_NET_ADMIN) to create a network namespace for backend pods: ' +
          'EndpointSlices cannot hold loopback addresses, so pods get 198.18.x.y addresses in a namespace of their own. ' +
          'Run it as root (CI does), or inside e2e/kube/netns.sh (which can use an unprivileged user namespace).',
      );
    }
    try {
      ip(['-V']);
    } catch {
      throw new Error("iproute2's `ip` is needed for the Kubernetes e2e suite (apt-get install iproute2)");
    }
    // Namespaces left by a test process that was killed: remove them (their veth goes with them).
    for (const line of ip(['netns', 'list']).split('\n')) {
      const m = new RegExp(`^${PREFIX}(\\d+)\\b`).exec(line.trim());
      if (m && !alive(Number(m[1]))) ip(['netns', 'delete', `${PREFIX}${m[1]}`]);
    }
    const name = `${PREFIX}${process.pid}`;
    // One /24 of 198.18.0.0/15 per test process, not used by any interface yet.
    const used = ip(['-4', '-o', 'addr', 'show']);
    let subnet = '';
    for (let i = 0; i < 512 && !subnet; i++) {
      const k = (process.pid + i) % 512;
      const candidate = `198.${18 + (k >> 8)}.${k & 255}`;
      if (!used.includes(` ${candidate}.`)) subnet = candidate;
    }
    if (!subnet) throw new Error('no free /24 in 198.18.0.0/15 for the pod network');
    const net = new VethPodNetwork(name, subnet);
    const host = `${name}h`;
    const peer = `${name}p`;
    try {
      ip(['netns', 'add', name]);
      ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      ip(['link', 'set', peer, 'netns', name]);
      ip(['addr', 'add', `${net.hostAddress}/24`, 'dev', host]);
      ip(['link', 'set', host, 'up']);
      ip(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      ip(['netns', 'exec', name, 'ip', 'link', 'set', peer, 'up']);
    } catch (err) {
      net.destroyNetwork();
      throw err;
    }
    return net;
  }

  /** A new pod address inside the namespace. */
  allocate(): string {
    if (this.next > 254) throw new Error('pod network: out of addresses');
    const addr = `${this.subnet}.${this.next++}`;
    ip(['netns', 'exec', this.name, 'ip', 'addr', 'add', `${addr}/24`, 'dev', `${this.name}p`]);
    return addr;
  }

  /** Runs `meshgate httpbin` as the pod's process, on its address. */
  async httpbin(address: string, name: string, port = 8000): Promise<Proc> {
    const p = start('ip', ['netns', 'exec', this.name, MESHGATE, 'httpbin', '--host', address, '--port', String(port), '--name', name]);
    this.procs.push(p);
    await p.waitForOutput(/httpbin listening/, 20_000);
    return p;
  }

  async grpcEcho(address: string, port: number): Promise<Proc> {
    const p = start('ip', ['netns', 'exec', this.name, ...GRPC_ECHO, '--host', address, '--port', String(port)]);
    this.procs.push(p);
    await p.waitForOutput(/grpc echo listening/, 20_000);
    return p;
  }

  async extAuthz(address: string, httpPort: number, grpcPort: number): Promise<Proc> {
    const p = start('ip', ['netns', 'exec', this.name, ...EXT_AUTHZ, ...extAuthzArgs(address, httpPort, grpcPort)]);
    this.procs.push(p);
    await p.waitForOutput(/ext-authz listening/, 20_000);
    return p;
  }

  async collector(address: string): Promise<Collector> {
    const c = await startCollector(address, { prefix: ['ip', 'netns', 'exec', this.name] });
    this.collectors.push(c);
    return c;
  }

  async destroy(): Promise<void> {
    for (const c of this.collectors) await c.stop();
    for (const p of this.procs) await p.stop();
    this.destroyNetwork();
  }

  private destroyNetwork(): void {
    try {
      ip(['netns', 'delete', this.name]);
    } catch {
      /* not created */
    }
    try {
      ip(['link', 'delete', `${this.name}h`]);
    } catch {
      /* went with the namespace */
    }
  }
}
