// Two gateways on one port (issue 11, item 13). Our workers share each listener port with SO_REUSEPORT; a
// second process must not join them and split the traffic. As Envoy, the second one's listener is not
// created: its LDS update is NACKed (`cannot bind '0.0.0.0:PORT': Address already in use`,
// listener_manager.listener_create_failure), its log says which port and what to change, and every request
// still reaches the first. A port of the process itself in use (--admin-port, --status-port, --metrics-port,
// --xds-port) ends the command with one line naming the flag, exit code 1, no stack trace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort, meshgate } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const GW = '127.0.0.1';
const HOST = 'conflict.example.com';
const FIRST_IP = '127.0.13.2';
const SECOND_IP = '127.0.13.3';
const N = 40;
const vs = virtualServiceYaml('app', HOST, 'gw', 'app');

function serve(gw: Gateway, backend: Backend): void {
  gw.write('10-gateway.yaml', gatewayYaml('gw', [HOST]));
  gw.write('20-app.yaml', serviceYaml('app', backend.port, [{ ip: backend.host }]));
  gw.write('30-vs.yaml', vs);
}

describe('local mode: a second gateway on a port the first serves', () => {
  let first: Gateway;
  let firstBackend: Backend;
  let secondBackend: Backend;

  before(async () => {
    firstBackend = await startBackend(FIRST_IP, await freePort(), 'first');
    firstBackend.behave = () => ({ headers: { 'x-served-by': 'first' } });
    secondBackend = await startBackend(SECOND_IP, await freePort(), 'second');
    secondBackend.behave = () => ({ headers: { 'x-served-by': 'second' } });
    // Two workers: the first gateway's listener is bound with SO_REUSEPORT, the case a second one could join.
    first = await startGateway({ concurrency: 2 });
    serve(first, firstBackend);
    await eventually(
      'the first gateway to serve',
      async () => ((await get(GW, first.port, '/', HOST)).header('x-served-by') === 'first' ? true : undefined),
      15_000,
      100,
    );
  });
  after(async () => {
    await first?.stop();
    await firstBackend?.close();
    await secondBackend?.close();
  });

  for (const concurrency of [2, 1]) {
    test(`with --concurrency ${concurrency}, the second NACKs its listener (Address already in use), logs the port and the targetPort to change, and takes no traffic`, async () => {
      const second = await startGateway({ concurrency, port: first.port });
      try {
        serve(second, secondBackend);
        await eventually(
          'the second gateway to reject the listener',
          async () => ((await second.stat('listener_manager.lds.update_rejected')) >= 1 ? true : undefined),
          15_000,
          100,
        );
        assert.ok((await second.stat('listener_manager.listener_create_failure')) >= 1);
        assert.equal(await second.stat('listener_manager.listener_create_success'), 0);
        assert.doesNotMatch(await second.adminGet('/listeners'), new RegExp(`_${first.port}::`), 'no listener on the port in the second');
        const out = second.proc.output();
        assert.match(out, new RegExp(`cannot bind '0\\.0\\.0\\.0:${first.port}': Address already in use`), 'the NACK text, as Envoy words it');
        assert.match(
          out,
          new RegExp(`listener 0\\.0\\.0\\.0_${first.port} cannot bind 0\\.0\\.0\\.0:${first.port}: another process holds port ${first.port}.*targetPort`),
        );
        for (let i = 0; i < N; i++) {
          const r = await get(GW, first.port, `/n/${i}`, HOST);
          assert.equal(r.status, 200, `request ${i}`);
          assert.equal(r.header('x-served-by'), 'first', `request ${i}`);
        }
        assert.equal(secondBackend.seen.length, 0, 'the second gateway served nothing');
        assert.equal(await first.stat('listener_manager.listener_create_failure'), 0);
      } finally {
        await second.stop();
      }
    });
  }

  describe('a port of its own in use: one line naming the flag, exit 1', () => {
    let dir: string;
    let held: Server;
    let heldPort: number;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'meshgate-conflict-'));
      held = createServer();
      heldPort = await new Promise<number>((resolve) => held.listen(0, '127.0.0.1', () => resolve((held.address() as { port: number }).port)));
    });
    after(async () => {
      await new Promise((r) => held.close(r));
      rmSync(dir, { recursive: true, force: true });
    });

    const cases: { flag: string; taken: () => number; what: RegExp }[] = [
      { flag: '--admin-port', taken: () => first.admin, what: /the admin port 127\.0\.0\.1:\d+ is already in use/ },
      { flag: '--status-port', taken: () => first.status, what: /the status port 0\.0\.0\.0:\d+ is already in use/ },
      { flag: '--metrics-port', taken: () => first.metrics, what: /the metrics port 0\.0\.0\.0:\d+ is already in use/ },
      { flag: '--xds-port', taken: () => heldPort, what: /the xDS port 127\.0\.0\.1:\d+ is already in use/ },
    ];
    for (const c of cases) {
      test(`${c.flag} in use`, async () => {
        const ports: Record<string, number> = { '--admin-port': await freePort(), '--status-port': await freePort(), '--metrics-port': await freePort() };
        ports[c.flag] = c.taken();
        const p = meshgate(['local', '--config', dir, '--concurrency', '2', ...Object.entries(ports).flatMap(([f, n]) => [f, String(n)])]);
        const code = await Promise.race([p.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 20_000).unref())]);
        if (code === 'still running') await p.stop('SIGKILL');
        assert.equal(code, 1, p.output());
        const errLines = p
          .output()
          .split('\n')
          .filter((l) => l.startsWith('meshgate: '));
        assert.equal(errLines.length, 1, p.output());
        assert.match(errLines[0] ?? '', c.what);
        assert.match(errLines[0] ?? '', new RegExp(`choose another with ${c.flag}$`));
        assert.doesNotMatch(p.output(), /^\s+at /m, 'no stack trace');
      });
    }
  });
});
