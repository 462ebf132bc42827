// What the adversarial suite and the fuzzer share: a real `meshgate local` on one downstream path (the fast
// path, or node:http only with MESHGATE_FAST_PATH=0) in front of the recording backend, the health checks
// run after every case or round (a normal request succeeds, the process is alive, no worker was restarted,
// RSS), and the comparison of one case's outcome with its expectation.
import { readFileSync } from 'node:fs';
import { eventually } from '../lib/process.ts';
import { rawRequest } from '../lib/http.ts';
import { startGateway, type Gateway } from '../lib/gateway.ts';
import { defaultAnswer, headerValue, startRecordingBackend, type RecordedRequest, type RecordingBackend } from '../lib/recording-backend.ts';
import { exchange, type Exchange } from './client.ts';
import { adversarialConfig, NORMAL_REQUEST } from './config.ts';
import type { AdversarialCase, ExpectedRequest } from './corpus.ts';

export type DownstreamPath = 'fast' | 'node';

/** gateway/workers/worker-pool.ts logs this when a worker thread died and is replaced (there is no stat). */
const WORKER_RESTART = /proxy worker exited/g;

export interface Target {
  path: DownstreamPath;
  gw: Gateway;
  backend: RecordingBackend;
  /** Worker replacements logged so far. */
  workerRestarts(): number;
  alive(): boolean;
  /** RSS of the gateway process in KiB (from /proc/PID/status), or undefined when it is gone. */
  rssKiB(): number | undefined;
  /** Problems with the gateway right now: not alive, a normal request failing. */
  health(): Promise<string[]>;
  /** Starts a fresh gateway if the last one died (so later cases still run); returns what was found. */
  revive(): Promise<string | undefined>;
  stop(): Promise<void>;
}

export async function startTarget(path: DownstreamPath, backendIp: string, concurrency = 2): Promise<Target> {
  const backend = await startRecordingBackend(backendIp);
  const launch = async (): Promise<Gateway> => {
    const gw = await startGateway({ concurrency, env: { MESHGATE_FAST_PATH: path === 'fast' ? '1' : '0' } });
    for (const [file, yaml] of Object.entries(adversarialConfig(backendIp, backend.port))) gw.write(file, yaml);
    await eventually(
      'the adversarial routes to be served',
      async () => ((await rawRequest('127.0.0.1', gw.port, NORMAL_REQUEST, { timeoutMs: 2000 })).status === 200 ? true : undefined),
      20_000,
      100,
    );
    return gw;
  };
  const t: Target = {
    path,
    gw: await launch(),
    backend,
    workerRestarts: () => t.gw.proc.output().match(WORKER_RESTART)?.length ?? 0,
    alive: () => t.gw.proc.child.exitCode === null && t.gw.proc.child.signalCode === null,
    rssKiB() {
      try {
        const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${t.gw.proc.pid}/status`, 'utf8'));
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    },
    async health() {
      if (!t.alive())
        return [
          `the gateway process exited (code ${t.gw.proc.child.exitCode}, signal ${t.gw.proc.child.signalCode}); last output:\n${t.gw.proc.output().slice(-3000)}`,
        ];
      const saved = backend.answer;
      backend.answer = defaultAnswer;
      try {
        const r = await rawRequest('127.0.0.1', t.gw.port, NORMAL_REQUEST, { timeoutMs: 5000 });
        if (r.status !== 200 || r.body.toString() !== 'rec:/health')
          return [`a normal request got ${r.statusLine} ${JSON.stringify(r.body.toString().slice(0, 200))}`];
      } catch (e) {
        return [`a normal request failed: ${(e as Error).message}`];
      } finally {
        backend.answer = saved;
      }
      return [];
    },
    async revive() {
      if (t.alive()) return undefined;
      const out = t.gw.proc.output().slice(-3000);
      await t.gw.stop();
      t.gw = await launch();
      return out;
    },
    async stop() {
      await t.gw?.stop();
      await backend.close();
    },
  };
  return t;
}

const show = (s: string | Buffer): string => JSON.stringify(typeof s === 'string' ? s : s.toString('latin1'));

function describeRequest(r: RecordedRequest): string {
  return `${r.method} ${show(r.target)}${r.body.length ? ` body ${show(r.body.subarray(0, 80))}` : ''}`;
}

/** Differences between what the backend received and what Envoy would have sent it. */
function compareBackend(expected: ExpectedRequest[], got: RecordedRequest[]): string[] {
  const problems: string[] = [];
  if (got.length !== expected.length) {
    problems.push(
      `backend received ${got.length} request(s) [${got.map(describeRequest).join('; ')}], expected ${expected.length} [${expected.map((e) => `${e.method} ${show(e.target)}`).join('; ')}]`,
    );
  }
  for (let i = 0; i < Math.min(got.length, expected.length); i++) {
    const g = got[i] as RecordedRequest;
    const e = expected[i] as ExpectedRequest;
    if (g.method !== e.method || g.target !== e.target)
      problems.push(`backend request ${i + 1} is ${g.method} ${show(g.target)}, expected ${e.method} ${show(e.target)}`);
    for (const [name, want] of Object.entries(e.headers ?? {})) {
      const have = headerValue(g, name);
      if (want === null) {
        if (have !== undefined) problems.push(`backend request ${i + 1} has ${name}: ${show(have)}, expected no such header`);
      } else if (typeof want === 'object') {
        if (have === undefined || have === want.not)
          problems.push(`backend request ${i + 1} has ${name}: ${have === undefined ? '(absent)' : show(have)}, expected a value other than ${show(want.not)}`);
      } else if (have !== want) {
        problems.push(`backend request ${i + 1} has ${name}: ${have === undefined ? '(absent)' : show(have)}, expected ${show(want)}`);
      }
    }
    if (e.body !== undefined && g.body.toString('latin1') !== e.body) problems.push(`backend request ${i + 1} body ${show(g.body)}, expected ${show(e.body)}`);
  }
  return problems;
}

/** Differences between what the client got and what Envoy answers. */
function compareClient(c: AdversarialCase, ex: Exchange): string[] {
  const problems: string[] = [];
  const statuses = ex.responses.map((r) => r.status);
  const want = c.expect.responses.map((r) => r.status);
  if (statuses.join() !== want.join())
    problems.push(
      `client got status(es) [${statuses.join(', ')}]${ex.rest.length ? ` then ${ex.rest.length} unparsed byte(s) ${show(ex.rest.subarray(0, 120))}` : ''}, expected [${want.join(', ')}]`,
    );
  c.expect.responses.forEach((e, i) => {
    const r = ex.responses[i];
    if (!r || r.status !== e.status) return;
    if (e.body !== undefined && r.body.toString('latin1') !== e.body)
      problems.push(`response ${i + 1} body ${show(r.body.subarray(0, 200))}, expected ${show(e.body)}`);
    for (const [name, v] of Object.entries(e.headers ?? {})) {
      const have = r.header(name);
      if (v === null ? have !== undefined : have !== v)
        problems.push(`response ${i + 1} has ${name}: ${have === undefined ? '(absent)' : show(have)}, expected ${v === null ? 'no such header' : show(v)}`);
    }
    if (r.header('server') !== 'istio-envoy') problems.push(`response ${i + 1} has server: ${r.header('server') ?? '(absent)'}, expected istio-envoy`);
  });
  if (ex.closed !== c.expect.closes)
    problems.push(
      c.expect.closes ? 'the connection stayed open, expected the gateway to close it' : 'the gateway closed the connection, expected it kept open',
    );
  return problems;
}

/** Runs one corpus case; returns every way the outcome differs from Envoy's (empty: as Envoy). */
export async function runCase(t: Target, c: AdversarialCase): Promise<string[]> {
  const restarts = t.workerRestarts();
  const mark = t.backend.mark();
  t.backend.answer = c.upstream === undefined ? defaultAnswer : (req) => (req.target.startsWith('/up/') ? { raw: c.upstream as string } : defaultAnswer(req));
  const ex = await exchange({
    host: '127.0.0.1',
    port: t.gw.port,
    writes: c.writes,
    ...(c.gapMs !== undefined ? { gapMs: c.gapMs } : {}),
    expectResponses: c.expect.responses.length,
    settleMs: 300,
    timeoutMs: c.timeoutMs ?? 8000,
  });
  await new Promise((r) => setTimeout(r, 100));
  const got = t.backend.since(mark);
  t.backend.answer = defaultAnswer;
  const problems = [...compareClient(c, ex), ...compareBackend(c.expect.backend, got.requests)];
  for (const e of got.parseErrors) problems.push(`the backend's strict parser could not read what the gateway sent: ${e}`);
  problems.push(...(await t.health()));
  if (t.workerRestarts() !== restarts)
    problems.push(
      `a worker was restarted:\n${t.gw.proc
        .output()
        .split('\n')
        .filter((l) => /worker (exited|failed)/.test(l))
        .slice(-3)
        .join('\n')}`,
    );
  const dead = await t.revive();
  if (dead !== undefined) problems.push('(a fresh gateway was started for the next cases)');
  return problems;
}
