// The mutation fuzzer against a live `meshgate local` (one downstream path) and the recording backend.
// Rounds of mutated inputs (e2e/fuzz/mutate.ts) go out over many connections at a bounded parallelism, each
// from its own loopback source address so the backend can tell them apart (x-envoy-external-address). After
// every round: a normal request succeeds, the process is alive, no worker was restarted, RSS has not grown
// past a bound, the backend's strict parser read everything it got, and for every connection every request
// that reached the backend had its response delivered to that client (nothing answered locally or dropped
// was also sent upstream), matching, where a strict parser can read the client's bytes, the request the
// client sent in that position. Deterministic in the seed; a finding is written to a file with the bytes
// that reproduce it, and the seed is printed.
//
//   npm run fuzz -- --minutes 30 --path fast|node [--seed N] [--out DIR (default $TMPDIR/meshgate-fuzz-findings)]
//                   [--parallel 16] [--per-round 64]
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exchange, type Exchange } from '../adversarial/client.ts';
import { startTarget, type DownstreamPath, type Target } from '../adversarial/harness.ts';
import { defaultAnswer, headerValue, parseStrictRequest, type RecordedRequest } from '../lib/recording-backend.ts';
import { fuzzInput, hostileResponse, type FuzzInput } from './mutate.ts';

export interface FuzzOptions {
  path: DownstreamPath;
  seed: number;
  durationMs: number;
  /** Inputs per round (at most 250: one source address each). */
  perRound?: number;
  /** Connections open at once. */
  parallel?: number;
  /** Where findings are written. */
  outDir: string;
  /** RSS may grow this much over the level after the first rounds. */
  rssGrowthMiB?: number;
  backendIp?: string;
  log?: (line: string) => void;
  /** Stop at the first finding (CI) instead of collecting up to 50. */
  stopAtFirst?: boolean;
}

export interface Finding {
  round: number;
  /** The input's index in the round, or undefined for a round-level finding (crash, restart, leak). */
  n?: number;
  problem: string;
  file: string;
}

export interface FuzzResult {
  rounds: number;
  inputs: number;
  findings: Finding[];
  maxRssMiB: number;
}

/**
 * The source address of input n of a round. Rounds take turns over eight blocks, so a request of an earlier
 * round that reaches the backend late (its upstream was slow, its client long gone) is never taken for one of
 * this round's, whose client then seems never to have got its answer.
 */
const clientIp = (round: number, n: number): string => `127.0.${33 + (round % 8)}.${n + 1}`;

/** A strict reading of the client's bytes: the requests in order, as far as a strict parser gets. */
interface StrictRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
}

function strictRequests(bytes: Buffer): StrictRequest[] {
  const out: StrictRequest[] = [];
  let i = 0;
  while (i < bytes.length && out.length < 100) {
    const p = parseStrictRequest(bytes, i);
    if (p.kind !== 'request') break;
    out.push(p);
    i += p.length;
    if (p.headers.some(([k, v]) => k.toLowerCase() === 'upgrade' && v)) break;
  }
  return out;
}

/** RFC 3986 §5.2.4 remove_dot_segments. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segs = path.split('/');
  segs.forEach((seg, i) => {
    if (seg === '..') {
      if (out.length > 1) out.pop();
      if (i === segs.length - 1) out.push('');
    } else if (seg === '.') {
      if (i === segs.length - 1) out.push('');
    } else out.push(seg);
  });
  return out.join('/') || '/';
}

/**
 * What Envoy sends upstream as the target: fragment stripped, absolute-form reduced to its path, dot
 * segments removed (Istio's normalize_path). Undefined when the path holds bytes Envoy's URL canonicaliser
 * may rewrite (percent escapes, characters outside a plain set): then only method and body are compared.
 */
function upstreamTarget(target: string): string | undefined {
  let t = target.replace(/#.*$/s, '');
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?]*(.*)$/s.exec(t);
  if (abs) t = abs[1] || '/';
  const q = t.indexOf('?');
  const path = q < 0 ? t : t.slice(0, q);
  if (!/^[A-Za-z0-9/._~-]*$/.test(path)) return undefined;
  return removeDotSegments(path) + (q < 0 ? '' : t.slice(q));
}

/**
 * Headers Envoy changes or drops on the way (hop-by-hop, framing, edge sanitising, Host from absolute-form);
 * every other header must reach the backend with the same value bytes [conn_manager_utility.cc].
 */
const REWRITTEN =
  /^(host|connection|keep-alive|proxy-connection|transfer-encoding|content-length|te|upgrade|http2-settings|expect|referer|x-forwarded-.*|x-envoy-.*|x-request-id|x-forwarded-client-cert)$/;

function headerBytesProblems(want: StrictRequest, got: RecordedRequest): string[] {
  const problems: string[] = [];
  for (const [name, value] of want.headers) {
    const n = name.toLowerCase();
    if (REWRITTEN.test(n)) continue;
    // Repeated headers may arrive joined with ',' (Envoy's inline headers).
    const seen = got.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
    if (!seen.some((v) => v === value || v.split(',').some((p) => p.trim() === value))) {
      problems.push(
        `header ${name}: ${JSON.stringify(value)} reached the backend as ${seen.length ? seen.map((v) => JSON.stringify(v)).join(', ') : '(absent)'}`,
      );
    }
  }
  return problems;
}

/** Problems with one connection: requests that reached the backend without their response reaching the client. */
function checkConnection(input: FuzzInput, ex: Exchange, got: RecordedRequest[]): string[] {
  const problems: string[] = [];
  const responses = ex.responses.filter((r) => r.status !== 100);
  const delivered = new Map<number, number>();
  responses.forEach((r, j) => {
    const id = r.header('x-rec-id');
    if (id !== undefined) delivered.set(Number(id), j);
  });
  // Every upstream response the client got must come from one of its own requests: a response injected by
  // an upstream, or one meant for another client, is a desync.
  const mine = new Set(got.map((r) => r.id));
  responses.forEach((r, j) => {
    const id = r.header('x-rec-id');
    if (id !== undefined && !mine.has(Number(id)))
      problems.push(`response ${j + 1} (${r.statusLine}) carries x-rec-id ${JSON.stringify(id)}, not from a request of this client`);
  });
  const strict = strictRequests(input.bytes);
  for (const req of got) {
    const j = delivered.get(req.id);
    // A hostile upstream response (/up/r<k>) is rightly answered 502 or reset by the gateway.
    if (j === undefined && req.target.startsWith('/up/r')) continue;
    if (j === undefined) {
      problems.push(
        `the backend received ${req.method} ${JSON.stringify(req.target)} but the client never got its response (client got [${responses.map((r) => r.status).join(', ')}]${ex.closed ? ', then close' : ''})`,
      );
      continue;
    }
    const want = strict[j];
    // An upgrade request has no body: what follows its head is tunnel payload (Envoy's codec in upgrade mode).
    const upgrade = want?.headers.some(([k]) => k.toLowerCase() === 'upgrade') === true;
    const target = want && upstreamTarget(want.target);
    if (want && (want.method !== req.method || (target !== undefined && target !== req.target) || (!upgrade && !want.body.equals(req.body)))) {
      problems.push(
        `response ${j + 1} came from a backend request ${req.method} ${JSON.stringify(req.target)} (body ${req.body.length} B) but the client's request ${j + 1} reads strictly as ${want.method} ${JSON.stringify(target ?? want.target)} (body ${want.body.length} B)`,
      );
    } else if (want) {
      for (const p of headerBytesProblems(want, req)) problems.push(`request ${j + 1} (${req.method} ${JSON.stringify(req.target)}): ${p}`);
    }
  }
  return problems;
}

async function pool<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(parallel, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T);
  });
  await Promise.all(workers);
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const perRound = Math.min(250, o.perRound ?? 64);
  const parallel = o.parallel ?? 16;
  mkdirSync(o.outDir, { recursive: true });
  const t: Target = await startTarget(o.path, o.backendIp ?? '127.0.32.1');
  // Upgrades under /up/ are declined with the connection kept (the smuggling set-up of issue 11 item 3).
  // Targets /up/r<k> get the k-th hostile response.
  t.backend.answer = (req) => {
    if (!req.target.startsWith('/up/')) return defaultAnswer(req);
    if (headerValue(req, 'upgrade') !== undefined) return { raw: `HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nx-rec-id: ${req.id}\r\n\r\n` };
    const k = Number(/^\/up\/r(\d+)/.exec(req.target)?.[1] ?? NaN);
    return Number.isInteger(k) ? hostileResponse(k, req.id) : defaultAnswer(req);
  };
  const findings: Finding[] = [];
  let round = 0;
  let inputs = 0;
  let rssBase: number | undefined;
  let maxRss = 0;
  const deadline = Date.now() + o.durationMs;
  const record = (f: Omit<Finding, 'file'>, data: unknown): void => {
    const file = join(o.outDir, `finding-${o.path}-seed${o.seed}-r${f.round}${f.n !== undefined ? `-n${f.n}` : ''}-${findings.length}.json`);
    writeFileSync(file, JSON.stringify({ path: o.path, seed: o.seed, ...f, ...(data as object) }, null, 2));
    findings.push({ ...f, file });
    log(`FINDING (seed ${o.seed}, path ${o.path}, round ${f.round}${f.n !== undefined ? `, input ${f.n}` : ''}): ${f.problem}\n  reproduce: ${file}`);
  };
  const show = (i: FuzzInput): object => ({
    how: i.how,
    gapMs: i.gapMs,
    writes: i.writes.map((w) => w.toString('latin1')),
    base64: i.bytes.toString('base64'),
  });
  try {
    while (Date.now() < deadline && findings.length < (o.stopAtFirst ? 1 : 50)) {
      const batch = Array.from({ length: perRound }, (_, n) => ({ n, input: fuzzInput(o.seed, round, n) }));
      const restarts = t.workerRestarts();
      const mark = t.backend.mark();
      const results = new Map<number, Exchange>();
      await pool(batch, parallel, async ({ n, input }) => {
        results.set(
          n,
          await exchange({
            host: '127.0.0.1',
            port: t.gw.port,
            writes: input.writes,
            gapMs: input.gapMs,
            localAddress: clientIp(round, n),
            idleMs: 500,
            timeoutMs: 5000,
          }),
        );
      });
      await new Promise((r) => setTimeout(r, 200));
      const got = t.backend.since(mark);
      for (const { n, input } of batch) {
        const mine = got.requests.filter((r) => headerValue(r, 'x-envoy-external-address') === clientIp(round, n));
        const ex = results.get(n) as Exchange;
        for (const problem of checkConnection(input, ex, mine))
          record({ round, n, problem }, { ...show(input), responses: ex.responses.map((r) => r.statusLine) });
      }
      for (const e of got.parseErrors)
        record({ round, problem: `the backend's strict parser could not read what the gateway sent: ${e}` }, { inputs: batch.map((b) => show(b.input)) });
      const health = await t.health();
      if (t.workerRestarts() !== restarts) health.push('a worker was restarted');
      const rss = t.rssKiB();
      if (rss !== undefined) {
        maxRss = Math.max(maxRss, rss);
        if (round === 2) rssBase = rss;
        if (rssBase !== undefined && rss - rssBase > (o.rssGrowthMiB ?? 200) * 1024)
          health.push(`RSS grew from ${Math.round(rssBase / 1024)} MiB to ${Math.round(rss / 1024)} MiB`);
      }
      for (const problem of health) record({ round, problem }, { inputs: batch.map((b) => show(b.input)), output: t.gw.proc.output().slice(-5000) });
      if (health.length) {
        await t.revive();
        if (rssBase !== undefined && health.some((h) => h.startsWith('RSS'))) rssBase = undefined;
      }
      inputs += batch.length;
      round++;
      if (round % 10 === 0) log(`round ${round}: ${inputs} inputs, ${findings.length} finding(s), RSS ${Math.round((rss ?? 0) / 1024)} MiB`);
    }
  } finally {
    await t.stop();
  }
  log(`fuzz ${o.path} seed ${o.seed}: ${round} rounds, ${inputs} inputs, ${findings.length} finding(s), max RSS ${Math.round(maxRss / 1024)} MiB`);
  return { rounds: round, inputs, findings, maxRssMiB: Math.round(maxRss / 1024) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      path: { type: 'string', default: 'fast' },
      seed: { type: 'string' },
      out: { type: 'string', default: join(tmpdir(), 'meshgate-fuzz-findings') },
      parallel: { type: 'string', default: '16' },
      'per-round': { type: 'string', default: '64' },
    },
  });
  if (values.path !== 'fast' && values.path !== 'node') {
    console.error(`--path must be fast or node, got '${values.path}'`);
    process.exit(2);
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  console.log(`fuzzing the ${values.path} path for ${values.minutes} min, seed ${seed} (rerun with --seed ${seed})`);
  const r = await runFuzz({
    path: values.path,
    seed,
    durationMs: Number(values.minutes) * 60_000,
    outDir: values.out,
    parallel: Number(values.parallel),
    perRound: Number(values['per-round']),
  });
  process.exit(r.findings.length ? 1 : 0);
}
