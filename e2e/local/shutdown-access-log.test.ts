// SIGTERM under traffic with `--access-log FILE` (issue 11, item 14): the process drains and exits 0 every
// time, and the access log is complete (a line for every request that was answered) and line-whole.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'shutdown.example.com';
const RUNS = 6;
// One line of Istio's TEXT format for our GETs, whole (ends in the route name and a newline).
const LINE =
  /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/r\/(\d+)\/(\d+) HTTP\/1\.1" \d{1,3} \S+ \S+ \S+ "[^"]*" \d+ \d+ \d+ \S+ "[^"]*" "[^"]*" "[^"]*" "[^"]*" "[^"]*" \S+ \S+ \S+ \S+ \S+ \S+$/;

/** GETs /r/<run>/<n> on keep-alive connections, a few at a time, until stopped: the answered ones. */
function lightTraffic(port: number, run: number): { stop: () => Promise<Set<string>> } {
  const answered = new Set<string>();
  const agent = new Agent({ keepAlive: true, maxSockets: 3 });
  let stopped = false;
  let n = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const path = `/r/${run}/${n++}`;
      const req = request({ host: '127.0.0.1', port, path, agent, headers: { host: HOST } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) answered.add(path);
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
      req.setTimeout(5000, () => req.destroy());
      req.end();
    });
  const loops = [0, 1, 2].map(async () => {
    // Bounded: at most 2,000 requests per loop, and each ends within its 5 s timeout.
    for (let i = 0; i < 2000 && !stopped; i++) {
      await one();
      await new Promise((r) => setTimeout(r, 2));
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return answered;
    },
  };
}

describe('SIGTERM with --access-log under light traffic', () => {
  let backend: Backend | undefined;
  let gw: Gateway | undefined;

  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  test(`exits 0 and leaves a complete, line-whole access log (${RUNS} runs)`, async () => {
    const bport = await freePort();
    backend = await startBackend('127.0.42.1', bport, 'shutdown');
    // Slow enough that requests are in flight when the signal comes.
    backend.behave = () => ({ delayMs: 20 });
    for (let run = 0; run < RUNS; run++) {
      gw = await startGateway({ accessLog: true, concurrency: run % 2 === 0 ? 1 : 2 });
      const g = gw;
      g.write('10-gateway.yaml', gatewayYaml('shutdown-gateway', [HOST]));
      g.write('20-svc.yaml', serviceYaml('shutdown', bport, [{ ip: '127.0.42.1' }]));
      g.write('30-vs.yaml', virtualServiceYaml('shutdown', HOST, 'shutdown-gateway', 'shutdown'));
      await eventually('routed', async () => ((await get('127.0.0.1', g.port, '/r/warmup/0', HOST)).status === 200 ? true : undefined), 15_000, 100);
      const traffic = lightTraffic(g.port, run);
      await new Promise((r) => setTimeout(r, 150 + run * 60));
      const code = await g.proc.stop('SIGTERM', 15_000);
      const answered = await traffic.stop();
      const log = g.accessLog();
      assert.equal(code, 0, `run ${run}: exit code ${code}\n${g.proc.output().slice(-3000)}`);
      assert.ok(answered.size > 0, `run ${run}: some requests were answered`);
      assert.ok(log.endsWith('\n'), `run ${run}: the log ends with a whole line`);
      const lines = log.slice(0, -1).split('\n');
      const logged = new Set<string>();
      for (const l of lines) {
        if (l.includes('/r/warmup/')) continue;
        const m = LINE.exec(l);
        assert.ok(m, `run ${run}: not a whole access log line: ${JSON.stringify(l)}`);
        logged.add(`/r/${m[1]}/${m[2]}`);
      }
      for (const p of answered) assert.ok(logged.has(p), `run ${run}: ${p} was answered but not logged`);
      await g.stop();
      gw = undefined;
    }
  });
});
