// The adversarial corpus (e2e/adversarial/corpus.ts) through both downstream paths of a real `meshgate
// local` (the fast path, and node:http only with MESHGATE_FAST_PATH=0), two workers, in front of a recording
// raw backend. Every case asserts Envoy's answer to the client, EXACTLY what reached the backend, and after
// it that a normal request still succeeds, the process is alive and no worker was restarted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { CORPUS } from '../adversarial/corpus.ts';
import { HOST } from '../adversarial/config.ts';
import { runCase, startTarget, type DownstreamPath, type Target } from '../adversarial/harness.ts';
import { defaultAnswer } from '../lib/recording-backend.ts';

const BACKEND_IP: Record<DownstreamPath, string> = { fast: '127.0.31.1', node: '127.0.31.2' };

for (const path of ['fast', 'node'] as const) {
  describe(`adversarial corpus, ${path === 'fast' ? 'fast path' : 'node:http path (MESHGATE_FAST_PATH=0)'}`, () => {
    let t: Target;

    before(async () => {
      t = await startTarget(path, BACKEND_IP[path]);
    });

    after(async () => {
      await t?.stop();
    });

    for (const c of CORPUS) {
      test(c.name, async () => {
        const problems = await runCase(t, c);
        assert.deepEqual(
          problems,
          [],
          `${c.name}\n  Envoy: ${c.rule}${c.deviation ? `\n  meshgate differs: ${c.deviation}` : ''}\n  - ${problems.join('\n  - ')}`,
        );
      });
    }

    test('a client that never reads: the gateway stops reading its pipelined requests, memory stays bounded, others are served', async () => {
      // Envoy reads one request at a time and stops reading a connection whose responses pile up (watermarks);
      // 200 pipelined requests for 256 KiB answers must not all be sent upstream nor buffered in memory.
      const big = Buffer.alloc(256 * 1024, 'x');
      t.backend.answer = (req) => ({
        raw: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\nx-rec-id: ${req.id}\r\n\r\n`, 'latin1'), big]),
      });
      const mark = t.backend.mark();
      const restarts = t.workerRestarts();
      const rss0 = t.rssKiB() ?? 0;
      const sock = connect({ host: '127.0.0.1', port: t.gw.port });
      sock.on('error', () => undefined);
      await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
      sock.pause();
      sock.write(Array.from({ length: 200 }, (_, i) => `GET /never-read/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`).join(''));
      await new Promise((r) => setTimeout(r, 3000));
      const reached = t.backend.since(mark).requests.length;
      const rss1 = t.rssKiB() ?? 0;
      const problems = await t.health();
      sock.destroy();
      t.backend.answer = defaultAnswer;
      if (reached > 50) problems.push(`${reached} of 200 pipelined requests reached the backend while the client read nothing (no back-pressure)`);
      if (rss1 - rss0 > 100 * 1024) problems.push(`RSS grew by ${Math.round((rss1 - rss0) / 1024)} MiB for one never-reading client`);
      if (t.workerRestarts() !== restarts) problems.push('a worker was restarted');
      await t.revive();
      assert.deepEqual(problems, []);
    });
  });
}
