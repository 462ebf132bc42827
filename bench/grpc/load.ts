// The gRPC unary load generator of bench/grpc/run.ts ("ghz-style", a real @grpc/grpc-js client): CONNS channels,
// IN_FLIGHT calls kept in flight on each, for DURATION seconds after WARMUP seconds; prints one JSON line
// {calls, errors, p50Ms, p99Ms, seconds}. Usage: node load.ts TARGET AUTHORITY CONNS IN_FLIGHT DURATION WARMUP
import * as grpc from '@grpc/grpc-js';
import { EchoClient, type Echo } from '../../e2e/lib/grpc-echo.ts';

const [target = '', authority = '', conns = '4', inFlight = '16', duration = '3', warmup = '1'] = process.argv.slice(2);
const clients: Echo[] = Array.from(
  { length: Number(conns) },
  // A channel option of its own per client, so each gets its own connection.
  (_, i) => new EchoClient(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority, 'grpc.bench.channel': i }) as Echo,
);
const payload = Buffer.from('ping');
const latencies: number[] = [];
let errors = 0;
let measuring = false;
let stop = false;

function loop(c: Echo): Promise<void> {
  return new Promise((resolve) => {
    const next = (): void => {
      if (stop) return resolve();
      const t0 = performance.now();
      c.unary(payload, new grpc.Metadata(), {}, (err) => {
        if (measuring) {
          if (err) errors++;
          else latencies.push(performance.now() - t0);
        }
        next();
      });
    };
    next();
  });
}

const loops = clients.flatMap((c) => Array.from({ length: Number(inFlight) }, () => loop(c)));
await new Promise((r) => setTimeout(r, Number(warmup) * 1000));
measuring = true;
const start = performance.now();
await new Promise((r) => setTimeout(r, Number(duration) * 1000));
measuring = false;
const seconds = (performance.now() - start) / 1000;
stop = true;
await Promise.all(loops);
for (const c of clients) c.close();
latencies.sort((a, b) => a - b);
const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
process.stdout.write(`${JSON.stringify({ calls: latencies.length, errors, p50Ms: pct(0.5), p99Ms: pct(0.99), seconds })}\n`);
