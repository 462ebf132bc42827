#!/usr/bin/env node
// Config push latency of a running `meshgate local --config DIR` (DIR written by gen-config.ts --push):
// the time from a file change in DIR to the changed configuration being served, measured by polling.
//
//   route: rewrite 40-vs-push.yaml so its route prefix moves to /push-<n>; poll GET /push-<n> (Host
//          push.bench.example.com) until 200. The old prefix stops matching, so this needs new RDS.
//   eds-remove / eds-add: rewrite the EndpointSlice of `bench-eds` to ready: false and back to true; poll
//          GET /eds until 503 / 200. Only endpoints change (an EDS-only push in Envoy terms).
//
// Each file is written next to DIR and renamed into it (an atomic replace, as editors and `kubectl cp` do);
// the clock starts just before the rename. Every poll is a new connection with its own timeout, and every
// wait is bounded by --timeout-ms. Prints one JSON line per measurement.
//
// usage: node bench/tools/push-latency.ts --dir DIR --port N [--pushes 5] [--timeout-ms 10000]
//          [--interval-ms 5] [--gap-ms 300] [--backend 127.0.0.1:9001] [--target NAME]
import { request } from 'node:http';
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { EDS_SLICE_FILE, PUSH_HOST, PUSH_VS_FILE, edsSlice, parseBackend, pushVirtualService, type Options } from './gen-config.ts';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string' },
    pushes: { type: 'string', default: '5' },
    'timeout-ms': { type: 'string', default: '10000' },
    'interval-ms': { type: 'string', default: '5' },
    'gap-ms': { type: 'string', default: '300' },
    backend: { type: 'string', default: '127.0.0.1:9001' },
    target: { type: 'string', default: 'meshgate' },
  },
});
if (!values.dir || !values.port) {
  process.stderr.write('usage: push-latency.ts --dir DIR --port N [--pushes 5] [--timeout-ms 10000]\n');
  process.exit(2);
}
const dir = values.dir;
const port = Number(values.port);
const pushes = Number(values.pushes);
const timeoutMs = Number(values['timeout-ms']);
const intervalMs = Number(values['interval-ms']);
const gapMs = Number(values['gap-ms']);
// Only the backend matters for the two rewritten files.
const opts = { backend: parseBackend(values.backend) } as Options;

/** Status of GET path on a new connection; 0 on a connection error or a per-request timeout. */
function get(path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { host: PUSH_HOST, connection: 'close' }, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Polls until GET path answers `want`; returns ms since `t0` at the first such answer, or null on timeout. */
async function pollUntil(path: string, want: number, t0: number): Promise<{ ms: number | null; polls: number; last: number }> {
  let polls = 0;
  let last = -1;
  while (performance.now() - t0 < timeoutMs) {
    polls++;
    last = await get(path);
    if (last === want) return { ms: performance.now() - t0, polls, last };
    await sleep(intervalMs);
  }
  return { ms: null, polls, last };
}

/** Replaces DIR/file atomically; returns the time just before the rename. */
function replace(file: string, text: string): number {
  const tmp = join(dirname(dir), `.${basename(dir)}-${file}.tmp`);
  writeFileSync(tmp, text);
  const t0 = performance.now();
  renameSync(tmp, join(dir, file));
  return t0;
}

function emit(kind: string, i: number, r: { ms: number | null; polls: number; last: number }, want: number): void {
  process.stdout.write(
    `${JSON.stringify({ scenario: 'push', target: values.target, kind, i, ok: r.ms !== null, latency_ms: r.ms === null ? null : Math.round(r.ms * 10) / 10, polls: r.polls, want, last_status: r.last, timeout_ms: timeoutMs })}\n`,
  );
}

// The starting state must already be served, or nothing below means anything.
for (const [path, want] of [
  ['/push-0', 200],
  ['/eds', 200],
] as const) {
  const r = await pollUntil(path, want, performance.now());
  if (r.ms === null) {
    process.stderr.write(`push-latency: GET ${path} (Host ${PUSH_HOST}) on :${port} never answered ${want} (last ${r.last}); is the push config loaded?\n`);
    process.exit(1);
  }
}

for (let i = 1; i <= pushes; i++) {
  await sleep(gapMs);
  const t0 = replace(PUSH_VS_FILE, pushVirtualService(opts, i));
  emit('route', i, await pollUntil(`/push-${i}`, 200, t0), 200);
}
for (let i = 1; i <= pushes; i++) {
  await sleep(gapMs);
  let t0 = replace(EDS_SLICE_FILE, edsSlice(opts, false));
  emit('eds-remove', i, await pollUntil('/eds', 503, t0), 503);
  await sleep(gapMs);
  t0 = replace(EDS_SLICE_FILE, edsSlice(opts, true));
  emit('eds-add', i, await pollUntil('/eds', 200, t0), 200);
}
