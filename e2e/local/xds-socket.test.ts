// xDS stays private (issue 11, item 11): SDS carries every TLS private key, so `meshgate local` serves ADS on a
// Unix socket (0600) in a directory it creates for itself (0700) and removes on exit, as Istio's agent serves
// Envoy on ./etc/istio/proxy/XDS. No TCP port is opened for xDS unless --xds-port asks for one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const GW = '127.0.0.1';
const HOST = 'private-xds.example.com';
const BACKEND_IP = '127.0.13.1';
const vs = virtualServiceYaml('app', HOST, 'gw', 'app');

/** The TCP ports process `pid` listens on: its socket inodes matched against /proc/net/tcp{,6} (state 0A). */
function listeningTcpPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f[3] === '0A' && inodes.has(f[9] ?? '')) ports.add(parseInt((f[1] ?? '').split(':')[1] ?? '', 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Where `meshgate local` serves xDS, from its "ready" log line. */
function xdsOf(output: string): string {
  for (const line of output.split('\n')) {
    if (!line.includes('meshgate local is ready')) continue;
    return String((JSON.parse(line) as { xds: unknown }).xds);
  }
  throw new Error(`no 'meshgate local is ready' line in:\n${output}`);
}

async function serveApp(gw: Gateway, backend: Backend): Promise<void> {
  gw.write('10-gateway.yaml', gatewayYaml('gw', [HOST]));
  gw.write('20-app.yaml', serviceYaml('app', backend.port, [{ ip: BACKEND_IP }]));
  gw.write('30-vs.yaml', vs);
  await eventually('the route to be served', async () => ((await get(GW, gw.port, '/', HOST)).status === 200 ? true : undefined), 15_000, 100);
}

describe('local mode: xDS on a private Unix socket', () => {
  let backend: Backend;

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'app');
  });
  after(async () => {
    await backend.close();
  });

  test('the socket is 0600 in a 0700 directory, config flows over it, no TCP port serves xDS, and the directory is removed on exit', async () => {
    const gw = await startGateway({ concurrency: 1 });
    try {
      await serveApp(gw, backend);
      const socket = xdsOf(gw.proc.output());
      const st = statSync(socket);
      assert.ok(st.isSocket(), `${socket} is a socket`);
      assert.equal(st.mode & 0o777, 0o600, 'socket mode');
      assert.equal(st.uid, process.getuid?.(), 'owned by the user running meshgate');
      const dir = statSync(dirname(socket));
      assert.equal(dir.mode & 0o777, 0o700, 'directory mode');
      // Every TCP port the process listens on is one it was asked for: admin, status, metrics and the listener.
      assert.deepEqual(
        listeningTcpPorts(gw.proc.pid),
        [gw.admin, gw.status, gw.metrics, gw.port].sort((a, b) => a - b),
      );
      // Root ignores permission bits; another user is refused by them (when this test may switch users).
      if (process.getuid?.() === 0) {
        const r = spawnSync(
          process.execPath,
          [
            '-e',
            `require('net').connect(${JSON.stringify(socket)}).on('error', (e) => { console.log(e.code); process.exit(0); }).on('connect', () => { console.log('CONNECTED'); process.exit(0); })`,
          ],
          { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10_000 },
        );
        assert.equal(r.stdout.trim(), 'EACCES', `another user connecting: ${r.stdout}${r.stderr}`);
      }
      const n = backend.seen.length;
      assert.equal((await get(GW, gw.port, '/after-checks', HOST)).status, 200);
      assert.equal(backend.seen.at(n)?.path, '/after-checks');
      assert.equal(await gw.proc.stop(), 0);
      assert.equal(existsSync(dirname(socket)), false, 'the socket directory is removed on exit');
    } finally {
      await gw.stop();
    }
  });

  test('--xds-port serves xDS on TCP 127.0.0.1 only when asked for, and traffic still flows', async () => {
    const xdsPort = await freePort();
    const gw = await startGateway({ concurrency: 1, args: ['--xds-port', String(xdsPort)] });
    try {
      await serveApp(gw, backend);
      assert.equal(xdsOf(gw.proc.output()), `127.0.0.1:${xdsPort}`);
      assert.deepEqual(
        listeningTcpPorts(gw.proc.pid),
        [gw.admin, gw.status, gw.metrics, gw.port, xdsPort].sort((a, b) => a - b),
      );
      assert.match(gw.proc.output(), /ADS server listening on TCP: any process that can reach this address receives every TLS private key/);
    } finally {
      await gw.stop();
    }
  });
});
