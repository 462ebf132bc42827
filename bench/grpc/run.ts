// gRPC unary through meshgate beside nginx (`grpc_pass`, 1 worker) and the obvious @grpc/grpc-js proxy
// (naive-proxy.ts), with the backend alone as the ceiling, in one run on this machine, interleaved. A benchmark,
// not a test: `npm run bench:grpc [-- --rounds N --duration S --conns C --in-flight M]`. Goals (issue 18):
// meshgate (1 worker) >= 1.5x the naive proxy's calls/s, p99 <= 3x nginx's.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = join(import.meta.dirname, '..', '..');
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    conns: { type: 'string', default: '4' },
    'in-flight': { type: 'string', default: '16' },
    meshgate: { type: 'string', default: join(ROOT, 'bin', 'meshgate') },
    // grpc-js: the real gRPC client (issue 18's measure); h2load: the same unary call as raw HTTP/2 frames, a C
    // client that does not saturate first, so the proxies rather than the client are measured.
    client: { type: 'string', default: 'grpc-js' },
    // A directory: meshgate runs under `node --cpu-prof` and writes one .cpuprofile per thread there on exit.
    profile: { type: 'string' },
  },
});
const AUTHORITY = 'grpc.bench.example.com';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

const children: ChildProcess[] = [];
function start(cmd: string, args: string[], ready: RegExp | undefined, env?: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  children.push(c);
  let out = '';
  return new Promise((resolve, reject) => {
    if (!ready) return resolve(c);
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')} did not start:\n${out}`)), 30_000);
    const on = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(c);
      }
    };
    c.stdout?.on('data', on);
    c.stderr?.on('data', on);
    c.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready:\n${out}`)));
  });
}
const stopAll = (): void => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
};
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

interface Result {
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  seconds: number;
}

/**
 * h2load sending the gRPC message `ping` (5-byte frame header + payload) as a unary call; its per-request log gives
 * latencies. No warm-up of its own (h2load's --warm-up-time stalled against nginx here): the readiness calls warm up.
 */
function h2load(port: number): Promise<Result> {
  const body = join(dir, 'ping.grpc');
  writeFileSync(body, Buffer.concat([Buffer.from([0, 0, 0, 0, 4]), Buffer.from('ping')]));
  const logFile = join(dir, 'h2load.log');
  rmSync(logFile, { force: true });
  return new Promise((resolve, reject) => {
    const c = spawn(
      'h2load',
      [
        '-t1',
        `-c${opt.conns}`,
        `-m${opt['in-flight']}`,
        '-D',
        opt.duration,
        '--log-file',
        logFile,
        '-d',
        body,
        '-H',
        `:authority: ${AUTHORITY}`,
        '-H',
        'content-type: application/grpc',
        '-H',
        'te: trailers',
        `http://127.0.0.1:${port}/meshgate.test.Echo/Unary`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`h2load exited ${code}`));
      // Log lines: start time (µs), status, duration (µs); status 0 is a call still in flight when the run ended.
      const rows = readFileSync(logFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split('\t'))
        .filter((r) => r[1] !== '0');
      const ok = rows.filter((r) => r[1] === '200').map((r) => Number(r[2]) / 1000);
      ok.sort((a, b) => a - b);
      const pct = (p: number): number => ok[Math.min(ok.length - 1, Math.floor(p * ok.length))] ?? NaN;
      // The rate from h2load's own summary (`finished in 3.00s, 20229.00 req/s`, warm-up excluded).
      const m = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
      const seconds = m ? Number(m[1]) : Number(opt.duration);
      const calls = m ? Math.round(Number(m[2]) * seconds) : ok.length;
      resolve({ calls, errors: rows.length - ok.length, p50Ms: pct(0.5), p99Ms: pct(0.99), seconds });
    });
  });
}

function load(port: number): Promise<Result> {
  if (opt.client === 'h2load') return h2load(port);
  return new Promise((resolve, reject) => {
    const c = spawn(
      process.execPath,
      [join(import.meta.dirname, 'load.ts'), `127.0.0.1:${port}`, AUTHORITY, opt.conns, opt['in-flight'], opt.duration, opt.warmup],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Result) : reject(new Error(`load generator exited ${code}`))));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'meshgate-bench-grpc-'));
try {
  const [backend, nginx, naive, mesh] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const node = process.execPath;
  await start(node, [join(ROOT, 'e2e', 'lib', 'grpc-echo.ts'), '--host', '127.0.0.1', '--port', String(backend)], /listening/);
  await start(node, [join(import.meta.dirname, 'naive-proxy.ts'), String(naive), `127.0.0.1:${backend}`], /listening/);
  mkdirSync(join(dir, 'nginx'));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx;
  proxy_temp_path ${dir}/nginx;
  # nginx closes a connection after keepalive_requests (1000) requests: h2load does not reconnect, so the default
  # capped nginx's row at 4000 calls per run (4 connections), whatever the duration.
  keepalive_requests 100000000;
  upstream grpc_backend { server 127.0.0.1:${backend}; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${nginx} http2;
    location / { grpc_pass grpc://grpc_backend; }
  }
}
`,
  );
  await start('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx.error.log')], undefined);
  const conf = join(dir, 'meshgate');
  mkdirSync(conf);
  writeFileSync(
    join(conf, 'config.yaml'),
    `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system, labels: {istio: ingressgateway}}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: ${mesh}}]
---
apiVersion: v1
kind: Service
metadata: {name: grpc-backend, namespace: default}
spec:
  selector: {app: grpc-backend}
  ports: [{name: grpc, port: ${backend}, targetPort: ${backend}}]
---
apiVersion: v1
kind: Pod
metadata: {name: grpc-backend-0, namespace: default, labels: {app: grpc-backend}}
status: {podIP: 127.0.0.1, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: grpc-backend, namespace: default, labels: {kubernetes.io/service-name: grpc-backend}}
addressType: IPv4
ports: [{name: grpc, port: ${backend}, protocol: TCP}]
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}, targetRef: {kind: Pod, name: grpc-backend-0, namespace: default}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["${AUTHORITY}"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: grpc, namespace: default}
spec:
  hosts: ["${AUTHORITY}"]
  gateways: [istio-system/bench]
  http: [{route: [{destination: {host: grpc-backend}}]}]
`,
  );
  const ports = [await freePort(), await freePort(), await freePort()];
  await start(
    opt.meshgate,
    [
      'local',
      '--config',
      conf,
      '--concurrency',
      '1',
      '--admin-port',
      String(ports[0]),
      '--status-port',
      String(ports[1]),
      '--metrics-port',
      String(ports[2]),
      '--drain-seconds',
      '0',
    ],
    undefined,
    opt.profile ? { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${opt.profile}`.trim() } : undefined,
  );
  const targets: Record<string, number> = { direct: backend, nginx, naive, 'meshgate-c1': mesh };
  // Every target answers before measuring (meshgate may still be applying its first config).
  for (const [name, port] of Object.entries(targets)) {
    let ok = false;
    let last: Result | undefined;
    for (let i = 0; i < 50 && !ok; i++) {
      const r = await load(port).catch((e: unknown) => void process.stderr.write(`${String(e)}\n`));
      if (r) last = r;
      ok = r !== undefined && r.calls > 0;
      if (!ok) await new Promise((res) => setTimeout(res, 200));
    }
    if (!ok) throw new Error(`${name} on :${port} does not answer gRPC calls: ${JSON.stringify(last)}`);
  }
  const runs: Record<string, Result[]> = {};
  for (let r = 0; r < Number(opt.rounds); r++) {
    for (const [name, port] of Object.entries(targets)) {
      const res = await load(port);
      (runs[name] ??= []).push(res);
      process.stderr.write(`round ${r + 1} ${name}: ${Math.round(res.calls / res.seconds)} calls/s, p99 ${res.p99Ms.toFixed(2)} ms, ${res.errors} errors\n`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const rate = (n: string): number => median((runs[n] ?? []).map((x) => x.calls / x.seconds));
  const p99 = (n: string): number => median((runs[n] ?? []).map((x) => x.p99Ms));
  const p50 = (n: string): number => median((runs[n] ?? []).map((x) => x.p50Ms));
  const lines = [
    `gRPC unary (${opt.client} client), ${opt.conns} channels x ${opt['in-flight']} calls in flight, ${opt.rounds} interleaved rounds of ${opt.duration} s (medians)`,
    '',
    '| target | calls/s | p50 ms | p99 ms | x naive | x nginx | p99 x nginx | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...Object.keys(targets).map(
      (n) =>
        `| ${n} | ${Math.round(rate(n))} | ${p50(n).toFixed(2)} | ${p99(n).toFixed(2)} | ${(rate(n) / rate('naive')).toFixed(2)} | ${(rate(n) / rate('nginx')).toFixed(2)} | ${(p99(n) / p99('nginx')).toFixed(2)} | ${(runs[n] ?? []).reduce((a, x) => a + x.errors, 0)} |`,
    ),
    '',
    `goal: meshgate-c1 >= 1.5x naive: ${(rate('meshgate-c1') / rate('naive')).toFixed(2)}x (${rate('meshgate-c1') / rate('naive') >= 1.5 ? 'meets' : 'missed'}); p99 <= 3x nginx: ${(p99('meshgate-c1') / p99('nginx')).toFixed(2)}x (${p99('meshgate-c1') / p99('nginx') <= 3 ? 'meets' : 'missed'})`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
}
