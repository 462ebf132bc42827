// The mutation fuzzer (e2e/fuzz/) in CI: a fixed seed for about 25 s on each downstream path of a real
// `meshgate local`; any finding (a crash, a worker restart, a failing normal request, RSS growth, a request
// that reached the backend although the client got a local reply, bytes the backend cannot read strictly)
// fails the test and names the file holding the bytes that reproduce it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFuzz } from '../fuzz/run.ts';

const SEED = 20261207;

describe('mutation fuzzer against a live gateway (fixed seed, bounded)', () => {
  for (const [path, ip] of [
    ['fast', '127.0.32.1'],
    ['node', '127.0.32.2'],
  ] as const) {
    test(`${path} path: no crash, no worker restart, no leak, nothing smuggled past a local reply`, async () => {
      const outDir = mkdtempSync(join(tmpdir(), `meshgate-fuzz-${path}-`));
      const r = await runFuzz({ path, seed: SEED, durationMs: 25_000, outDir, backendIp: ip, log: () => undefined });
      assert.ok(r.inputs > 0, 'the fuzzer sent inputs');
      assert.deepEqual(
        r.findings.map((f) => `round ${f.round}${f.n !== undefined ? ` input ${f.n}` : ''}: ${f.problem} (${f.file})`),
        [],
        `seed ${SEED}, ${r.inputs} inputs`,
      );
    });
  }
});
