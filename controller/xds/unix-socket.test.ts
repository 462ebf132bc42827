// The ADS server on a Unix socket: what it does with the path it is given (a fresh directory, a stale socket
// of an earlier run, a live one, a file that is not a socket), the modes it leaves, and that close removes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../cli/logger.ts';
import { AdsServer } from './ads-server.ts';

const withDir = async (fn: (dir: string) => Promise<void>): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-uds-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test('a missing directory is created 0700, the socket is 0600, and close removes the socket', () =>
  withDir(async (dir) => {
    const socket = join(dir, 'proxy', 'XDS');
    const server = await AdsServer.start({ socket, log: silentLogger() });
    assert.equal(statSync(join(dir, 'proxy')).mode & 0o777, 0o700);
    assert.ok(statSync(socket).isSocket());
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    assert.equal(server.port, 0);
    await server.close();
    assert.equal(existsSync(socket), false);
  }));

test('a stale socket left by an earlier run is replaced', () =>
  withDir(async (dir) => {
    const socket = join(dir, 'XDS');
    // A process killed while serving leaves its socket file behind.
    spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 'SIGKILL'))`], {
      timeout: 10_000,
    });
    assert.ok(statSync(socket).isSocket());
    const server = await AdsServer.start({ socket, log: silentLogger() });
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    await server.close();
  }));

test('a socket another process still serves is not taken over (EADDRINUSE)', () =>
  withDir(async (dir) => {
    const socket = join(dir, 'XDS');
    const live = createServer();
    await new Promise<void>((r) => live.listen(socket, r));
    try {
      await assert.rejects(
        AdsServer.start({ socket, log: silentLogger() }),
        (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE' && /another process serves xDS/.test(e.message),
      );
      assert.ok(existsSync(socket), 'the live socket is left alone');
    } finally {
      await new Promise((r) => live.close(r));
    }
  }));

test('a file that is not a socket is not replaced', () =>
  withDir(async (dir) => {
    const path = join(dir, 'XDS');
    writeFileSync(path, 'keep me');
    await assert.rejects(AdsServer.start({ socket: path, log: silentLogger() }), /is not a socket/);
    assert.ok(statSync(path).isFile());
  }));

test('a TCP port in use is reported as EADDRINUSE with the address', async () => {
  const held = createServer();
  const port = await new Promise<number>((r) => held.listen(0, '127.0.0.1', () => r((held.address() as { port: number }).port)));
  try {
    await assert.rejects(
      AdsServer.start({ host: '127.0.0.1', port, log: silentLogger() }),
      (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE' && e.message.includes(`127.0.0.1:${port}`),
    );
  } finally {
    await new Promise((r) => held.close(r));
  }
});
