// A client that pipelines a flood of small requests and never reads a response (issue 11: one connection may
// fail, the process never). Envoy reads one request at a time, so the rest waits in kernel buffers; node:http
// parses ahead, so the general path bounds what waits (and closes such a connection past that). On both paths
// the gateway's memory stays bounded and other clients are served.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';
import { eventually } from '../lib/process.ts';

const HOST = 'flood.example.com';
const BACKEND_IP = '127.0.14.2';
/** 400 writes of 1,000 pipelined heads: about 14 MB, 400,000 requests. */
const WRITES = 400;
const HEADS = Buffer.from(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`.repeat(1000));

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

for (const fastPath of [true, false]) {
  describe(`a client pipelining without reading (${fastPath ? 'fast path' : 'node:http'})`, () => {
    let gw: Gateway;
    let backend: Backend;

    before(async () => {
      backend = await startBackend(BACKEND_IP, 8000, 'flood');
      gw = await startGateway({ concurrency: 1, ...(fastPath ? {} : { env: { MESHGATE_FAST_PATH: '0' } }) });
      gw.write('10-gateway.yaml', gatewayYaml('gw', [HOST]));
      gw.write('20-service.yaml', serviceYaml('app', 8000, [{ ip: BACKEND_IP }]));
      gw.write('30-vs.yaml', virtualServiceYaml('app', HOST, 'gw', 'app'));
      await eventually('the route to serve', async () => ((await get('127.0.0.1', gw.port, '/', HOST)).status === 200 ? true : undefined));
    });

    after(async () => {
      await gw?.stop();
      await backend?.close();
    });

    test('memory stays bounded and other clients are served', async () => {
      const before = rssMiB(gw.proc.pid);
      const s = connect({ host: '127.0.0.1', port: gw.port });
      s.pause(); // never reads
      s.on('error', () => undefined);
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      // The socket's buffer fills once the gateway stops reading: wait for 'drain', 20 ms at most each time.
      for (let i = 0; i < WRITES && !s.destroyed; i++) {
        if (s.write(HEADS)) continue;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(t);
            s.off('drain', done);
            resolve();
          };
          const t = setTimeout(done, 20);
          s.on('drain', done);
        });
      }
      await new Promise((r) => setTimeout(r, 2000));
      const growth = rssMiB(gw.proc.pid) - before;
      // Unbounded, node:http held every parsed request: some 650 MiB more for this flood.
      assert.ok(growth < 120, `the gateway grew by ${growth.toFixed(0)} MiB`);
      const r = await get('127.0.0.1', gw.port, '/', HOST);
      assert.equal(r.status, 200);
      s.destroy();
    });
  });
}
