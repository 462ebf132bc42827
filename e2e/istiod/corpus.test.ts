// The istiod differential on generated configurations (corpus.ts): a fixed seed and a few hundred configs per
// run, thousands with `npm run test:istiod -- --long`. Each config goes to the oracle (istiod's own translation)
// and to meshgate's translator; a difference that allowlist.ts does not allow fails the run, after fast-check
// shrinks one config per kind of difference to a minimal one, reported with its YAML, the seed and the path that
// replays it. The objects istiod's webhook refuses are counted: the generator should produce valid configs.
//
// Environment (run.sh sets ISTIOD_CORPUS_LONG for --long):
//   ISTIOD_CORPUS_SEED   the seed (default 20260827)
//   ISTIOD_CORPUS_RUNS   how many configs (default 300; 2000 with ISTIOD_CORPUS_LONG=1)
//   ISTIOD_CORPUS_PATH   replay one config: the `path` a failure printed (runs nothing else)
//   ISTIOD_CORPUS_JOBS   oracle processes at a time (default 4: the oracle mostly waits for its informers)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { allowedBy } from './allowlist.ts';
import { caseOf, goldenInput, worldArb, type World } from './corpus.ts';
import { istiodResources } from './istiod-side.ts';
import { meshgateResources } from './meshgate-side.ts';
import { compare, formatDifference, type Difference } from './normalize.ts';

const LONG = process.env.ISTIOD_CORPUS_LONG === '1';
const SEED = Number(process.env.ISTIOD_CORPUS_SEED ?? 20260827);
const RUNS = Number(process.env.ISTIOD_CORPUS_RUNS ?? (LONG ? 2000 : 300));
const REPLAY = process.env.ISTIOD_CORPUS_PATH;
const JOBS = Math.max(1, Number(process.env.ISTIOD_CORPUS_JOBS ?? 4));
/** Shrinking costs an oracle run per step: a time budget per kind of difference, and how many kinds to shrink. */
const SHRINK_MS = LONG ? 300_000 : 90_000;
const MAX_SHRUNK = LONG ? 20 : 3;
/** Istio objects istiod's webhook may refuse before the generator counts as wrong. */
const MAX_REJECTION_RATE = 0.05;
const OUT_DIR = join(tmpdir(), 'meshgate-istiod-corpus');

function oracle(): string {
  if (process.env.ISTIOD_ORACLE) return process.env.ISTIOD_ORACLE;
  const out = execFileSync('bash', [join(import.meta.dirname, 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

/**
 * A kind of difference, to shrink each kind once: what differs and where, without resource names, list
 * indices or filter-chain matches, which vary from config to config.
 */
function signatureOf(d: Difference): string {
  if (d.type === 'rejected') return `rejected ${d.resource.split(' ')[0]} by ${d.istiod ? 'istiod' : 'meshgate'} only`;
  // Filter names (envoy.*, istio.*) stay; indices, chain matches and virtual host names go.
  const path = d.path.replace(/\[match=.*?\](?=\.|$)/g, '[]').replace(/\[(?!envoy\.|istio\.)[^\]]*\]/g, '[]');
  const side = d.istiod === undefined ? ' (meshgate only)' : d.meshgate === undefined ? ' (istiod only)' : '';
  return `${d.type}${path}${side}`;
}

interface Outcome {
  /** Each kind of unexpected difference with the differences of that kind. */
  differences: Map<string, Difference[]>;
  istioObjects: number;
  /** What istiod's webhook refused: `Kind ns/name: message`. */
  rejections: string[];
  /** The oracle or the translator failed: the config could not be compared. */
  error?: string;
}

const ISTIO_KIND = /^kind: (Gateway|VirtualService|DestinationRule|ServiceEntry|AuthorizationPolicy|RequestAuthentication)$/gm;
const cache = new Map<string, Promise<Outcome>>();

function evaluate(bin: string, w: World): Promise<Outcome> {
  const c = caseOf('corpus', w);
  let p = cache.get(c.yaml);
  if (!p) {
    p = (async (): Promise<Outcome> => {
      const istioObjects = c.yaml.match(ISTIO_KIND)?.length ?? 0;
      const differences = new Map<string, Difference[]>();
      let istiod;
      try {
        istiod = await istiodResources(bin, c);
      } catch (e) {
        return { differences, istioObjects, rejections: [], error: `oracle: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}` };
      }
      let meshgate;
      try {
        meshgate = meshgateResources(c);
      } catch (e) {
        differences.set(`meshgate threw: ${(e as Error).message.split('\n')[0]}`, []);
        return { differences, istioObjects, rejections: istiod.rejections };
      }
      for (const d of compare(istiod, meshgate)) {
        if (allowedBy(d, c.name)) continue;
        const sig = signatureOf(d);
        differences.set(sig, [...(differences.get(sig) ?? []), d]);
      }
      return { differences, istioObjects, rejections: istiod.rejections };
    })();
    cache.set(c.yaml, p);
    // Shrinking revisits few configs; keep the cache from growing without bound on long runs.
    if (cache.size > 4000) cache.delete(cache.keys().next().value as string);
  }
  return p;
}

async function pool<T, R>(items: readonly T[], jobs: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(jobs, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

const slug = (s: string): string =>
  s
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);

/** The report of one minimal config: its differences, how to replay it, where its golden-ready file is. */
function report(sig: string, w: World, o: Outcome, path: string, note: string): string {
  const c = caseOf(`corpus/${SEED}/${path}`, w);
  mkdirSync(OUT_DIR, { recursive: true });
  const file = join(OUT_DIR, `${slug(sig)}.in.yaml`);
  const lines = [...(o.differences.get(sig) ?? [])].map(formatDifference);
  writeFileSync(file, goldenInput(c, `Generated by e2e/istiod/corpus.test.ts (seed ${SEED}, path ${path}): ${sig}`));
  return [
    `--- ${sig} ${note}`,
    ...lines.map((l) => `  ${l}`),
    ...(o.rejections.length ? [`  istiod refused: ${o.rejections.join('; ')}`] : []),
    `  replay: ISTIOD_CORPUS_SEED=${SEED} ISTIOD_CORPUS_PATH=${path} npm run test:istiod -- --test-name-pattern=generated`,
    `  golden-ready input: ${file}`,
    c.yaml.replace(/^/gm, '    '),
  ].join('\n');
}

if (REPLAY) {
  test(`generated config seed ${SEED} path ${REPLAY} agrees with istiod`, async () => {
    const bin = oracle();
    const [w] = fc.sample(worldArb, { seed: SEED, path: REPLAY, numRuns: 1 });
    assert.ok(w, `no config at seed ${SEED} path ${REPLAY}`);
    const o = await evaluate(bin, w);
    assert.equal(o.error, undefined);
    const text = [...o.differences.keys()].map((sig) => report(sig, w, o, REPLAY, ''));
    if (text.length) assert.fail(`differences from istiod:\n${text.join('\n')}`);
  });
} else {
  test(`${RUNS} generated configs agree with istiod (seed ${SEED})`, { timeout: (LONG ? 60 : 20) * 60_000 }, async (t) => {
    const bin = oracle();
    const started = Date.now();
    const worlds = fc.sample(worldArb, { seed: SEED, numRuns: RUNS });
    const outcomes = await pool(worlds, JOBS, (w) => evaluate(bin, w));

    const istioObjects = outcomes.reduce((n, o) => n + o.istioObjects, 0);
    const rejections = outcomes.flatMap((o) => o.rejections);
    const errors = outcomes.flatMap((o, i) => (o.error ? [`path ${i}: ${o.error}`] : []));
    const firstAt = new Map<string, number>();
    const counts = new Map<string, number>();
    outcomes.forEach((o, i) => {
      for (const sig of o.differences.keys()) {
        if (!firstAt.has(sig)) firstAt.set(sig, i);
        counts.set(sig, (counts.get(sig) ?? 0) + 1);
      }
    });
    const rate = istioObjects ? rejections.length / istioObjects : 0;
    t.diagnostic(
      `${RUNS} configs (seed ${SEED}) in ${((Date.now() - started) / 1000).toFixed(0)} s: ${istioObjects} Istio objects, ` +
        `${rejections.length} refused by istiod's webhook (${(rate * 100).toFixed(1)} %), ${firstAt.size} kind(s) of difference in ` +
        `${outcomes.filter((o) => o.differences.size > 0).length} config(s)`,
    );
    for (const [sig, n] of counts) t.diagnostic(`${n} config(s): ${sig}`);

    const reports: string[] = [];
    for (const [sig, index] of [...firstAt].slice(0, MAX_SHRUNK)) {
      const details = await fc.check(
        fc.asyncProperty(worldArb, async (w) => !(await evaluate(bin, w)).differences.has(sig)),
        { seed: SEED, path: String(index), numRuns: RUNS, interruptAfterTimeLimit: SHRINK_MS, markInterruptAsFailure: false },
      );
      const w = details.counterexample?.[0] ?? worlds[index];
      const path = details.counterexamplePath ?? String(index);
      if (!w) continue;
      const note = `(${counts.get(sig)} of ${RUNS} configs; shrunk ${details.numShrinks} step(s)${details.interrupted ? ', stopped by the time limit' : ''})`;
      reports.push(report(sig, w, await evaluate(bin, w), path, note));
    }
    const notShrunk = [...firstAt.keys()].slice(MAX_SHRUNK);
    if (notShrunk.length) reports.push(`--- not shrunk (over ${MAX_SHRUNK} kinds): ${notShrunk.join('; ')}`);

    assert.deepEqual(errors, [], 'configs the oracle could not translate');
    if (reports.length) assert.fail(`differences from istiod not in allowlist.ts (minimal configs below):\n${reports.join('\n')}`);
    const rejectionSummary = [...new Set(rejections.map((r) => r.replace(/^\S+ \S+: /, '')))].slice(0, 10).join('\n  ');
    assert.ok(
      rate <= MAX_REJECTION_RATE,
      `istiod refused ${(rate * 100).toFixed(1)} % of the generated Istio objects: corpus.ts generates invalid ones\n  ${rejectionSummary}`,
    );
  });
}
