// Deterministic mutation of HTTP/1.1 request bytes for the fuzzer: seeds (the adversarial corpus and valid
// requests of every shape the gateway serves) are mutated with byte flips, insertions of the bytes parsers
// disagree on (CR, LF, NUL, SP, HTAB, ':', ';', ','), header duplication, framing-header swaps, huge or odd
// numbers, truncation and pipelining, then split at random points into several writes. The same seed always
// gives the same inputs.
import { CORPUS } from '../adversarial/corpus.ts';
import { HOST } from '../adversarial/config.ts';

/** mulberry32: small, fast, good enough for choosing mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzInput {
  /** All bytes the client sends. */
  bytes: Buffer;
  /** The same bytes cut into writes. */
  writes: Buffer[];
  gapMs: number;
  /** Which mutations made it (for the finding report). */
  how: string[];
}

const H = `Host: ${HOST}\r\n`;
const VALID: string[] = [
  `GET / HTTP/1.1\r\n${H}\r\n`,
  `GET /a/b?c=d HTTP/1.1\r\n${H}User-Agent: fuzz\r\nAccept: */*\r\n\r\n`,
  `POST /post HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`,
  `POST /chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`,
  `PUT /put HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`,
  `DELETE /del HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
  `GET http://${HOST}/abs HTTP/1.1\r\n${H}\r\n`,
  `GET /secret HTTP/1.1\r\n${H}\r\n`,
  `GET /private/x HTTP/1.1\r\n${H}\r\n`,
  `GET /regex-secret HTTP/1.1\r\n${H}\r\n`,
  `POST /delay/x HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`,
  `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
  // The fuzz backend declines upgrades under /up/ (403, connection kept): what follows must not reach it.
  `GET /up/ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /secret HTTP/1.1\r\n${H}\r\n`,
  ...Array.from({ length: 10 }, (_, k) => `GET /up/r${k} HTTP/1.1\r\n${H}\r\nGET /after-up HTTP/1.1\r\n${H}\r\n`),
  `POST /expect HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 4\r\n\r\nbody`,
  `GET /x HTTP/1.1\r\n${H}X-Forwarded-Client-Cert: By=spiffe://forged\r\nx-envoy-retry-on: 5xx\r\n\r\n`,
  `GET /p1 HTTP/1.1\r\n${H}\r\nGET /p2 HTTP/1.1\r\n${H}\r\n`,
];

/**
 * Hostile upstream responses the fuzz backend sends for /up/r<k> (k modulo their number). Each tries to
 * leave bytes on the upstream connection that would answer the next request: an injected response carries
 * `x-rec-id: injected`, which no client may ever receive.
 */
const INJECTED = 'HTTP/1.1 200 OK\r\nx-rec-id: injected\r\ncontent-length: 8\r\n\r\ninjected';
const HOSTILE_RESPONSES: ((id: number) => string)[] = [
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${INJECTED}`,
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\ncontent-length: 2\r\ncontent-length: 40\r\n\r\nok${INJECTED}`,
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\ncontent-length: 2\r\n\r\nok${INJECTED}`,
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\nx-up: a\rb\r\ncontent-length: 2\r\n\r\nok`,
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n${INJECTED}`,
  (id) => `HTTP/1.1 2x0 OK\r\nx-rec-id: ${id}\r\ncontent-length: 0\r\n\r\n${INJECTED}`,
  (id) => `HTTP/1.1 204 No Content\r\nx-rec-id: ${id}\r\ncontent-length: 40\r\n\r\n${INJECTED}`,
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffffff\r\nok\r\n0\r\n\r\n`,
  (id) => `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\ncontent-length: 2\r\n\r\nok${INJECTED}`,
  (id) => `HTTP/1.1 200 OK\r\nx-rec-id: ${id}\r\nx-up: a\x00b\r\ncontent-length: 2\r\n\r\nok`,
];

export function hostileResponse(k: number, id: number): { raw: string } {
  return { raw: (HOSTILE_RESPONSES[k % HOSTILE_RESPONSES.length] as (id: number) => string)(id) };
}

/** Seeds: valid requests plus every corpus case's client bytes. */
const SEEDS: Buffer[] = [...VALID, ...CORPUS.map((c) => c.writes.join(''))].map((s) => Buffer.from(s, 'latin1'));

const SPECIAL = ['\r', '\n', '\r\n', '\x00', ' ', '\t', ':', ';', ',', '#', '\xe9', '\xff', '\r\n ', '\r\n\r\n'];
const NUMBERS = [
  '0',
  '-1',
  '+5',
  '0x10',
  '99999999999999999999',
  '18446744073709551616',
  '4294967296',
  '00000000000000000005',
  '1e3',
  '5 5',
  '5,5',
  'ffffffffffffffff',
];
const HEADER_LINES = [
  'Transfer-Encoding: chunked',
  'Content-Length: 0',
  'Content-Length: 7',
  'Transfer-Encoding: identity',
  'Connection: Upgrade',
  'Upgrade: websocket',
  'Connection: close',
  'Expect: 100-continue',
  'Host: other.test',
  `Host: ${HOST}`,
  'X-A: caf\xe9',
];

type Mutation = (b: Buffer, r: () => number) => [Buffer, string];

const pick = <T>(r: () => number, a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
const at = (b: Buffer, r: () => number): number => Math.floor(r() * (b.length + 1));
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Start offsets of the lines in the head (after the request line). */
function headerLines(b: Buffer): [number, number][] {
  const end = b.indexOf('\r\n\r\n');
  const lines: [number, number][] = [];
  let i = b.indexOf('\r\n') + 2;
  while (i > 1 && end > 0 && i < end) {
    const nl = b.indexOf('\r\n', i);
    lines.push([i, nl + 2]);
    i = nl + 2;
  }
  return lines;
}

const MUTATIONS: Mutation[] = [
  (b, r) => {
    if (!b.length) return [b, 'flip (empty)'];
    const c = Buffer.from(b);
    const i = Math.floor(r() * c.length);
    c[i] = (c[i] as number) ^ (1 << Math.floor(r() * 8));
    return [c, `flip byte ${i}`];
  },
  (b, r) => {
    const i = at(b, r);
    const s = pick(r, SPECIAL);
    return [Buffer.concat([b.subarray(0, i), latin1(s), b.subarray(i)]), `insert ${JSON.stringify(s)} at ${i}`];
  },
  (b, r) => {
    const i = at(b, r);
    const n = 1 + Math.floor(r() * 8);
    return [Buffer.concat([b.subarray(0, i), b.subarray(i + n)]), `delete ${n} at ${i}`];
  },
  (b, r) => {
    const lines = headerLines(b);
    if (!lines.length) return [b, 'duplicate header (none)'];
    const [s, e] = pick(r, lines);
    return [Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]), `duplicate header line at ${s}`];
  },
  (b, r) => {
    const lines = headerLines(b);
    const i = lines.length ? pick(r, lines)[0] : at(b, r);
    const h = pick(r, HEADER_LINES);
    return [Buffer.concat([b.subarray(0, i), latin1(`${h}\r\n`), b.subarray(i)]), `add header ${JSON.stringify(h)}`];
  },
  (b, r) => {
    const s = b.toString('latin1');
    const runs = [...s.matchAll(/\d+/g)];
    if (!runs.length) return [b, 'number (none)'];
    const m = pick(r, runs);
    const n = pick(r, NUMBERS);
    return [latin1(s.slice(0, m.index) + n + s.slice((m.index ?? 0) + m[0].length)), `number ${m[0]} -> ${n}`];
  },
  (b, r) => {
    const i = Math.floor(r() * b.length);
    return [b.subarray(0, i), `truncate at ${i}`];
  },
  (b, r) => {
    const other = pick(r, SEEDS);
    return [Buffer.concat([b, other]), 'pipeline another seed'];
  },
  (b, r) => {
    const s = b.toString('latin1');
    const i = Math.floor(r() * s.length);
    const j = Math.min(s.length, i + 1 + Math.floor(r() * 20));
    const part = s.slice(i, j);
    const flipped = r() < 0.5 ? part.toUpperCase() : part.toLowerCase();
    return [latin1(s.slice(0, i) + flipped + s.slice(j)), `case ${i}..${j}`];
  },
  (b, r) => {
    // A body that itself looks like a request (the smuggling payload).
    const i = at(b, r);
    return [Buffer.concat([b.subarray(0, i), latin1(`0\r\n\r\nGET /secret HTTP/1.1\r\n${H}\r\n`), b.subarray(i)]), `smuggle payload at ${i}`];
  },
];

/** The n-th input of a round: deterministic in (seed, round, n). */
export function fuzzInput(seed: number, round: number, n: number): FuzzInput {
  const r = rng((seed * 1_000_003 + round * 7919 + n * 104_729) >>> 0);
  // Pipelined bases are common: many bugs sit between a request handed to one parser and the next.
  const bases = r() < 0.55 ? 1 : r() < 0.75 ? 2 : 3;
  let b: Buffer = Buffer.concat(Array.from({ length: bases }, () => pick(r, SEEDS)));
  const how: string[] = [`${bases} pipelined seed(s)`];
  const count = 1 + Math.floor(r() * 4);
  for (let k = 0; k < count; k++) {
    const [next, what] = pick(r, MUTATIONS)(b, r);
    b = next.length > 200_000 ? next.subarray(0, 200_000) : next;
    how.push(what);
  }
  const cuts = Math.floor(r() * 4);
  const points = Array.from({ length: cuts }, () => Math.floor(r() * b.length)).sort((x, y) => x - y);
  const writes: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    if (p <= last) continue;
    writes.push(b.subarray(last, p));
    last = p;
  }
  writes.push(b.subarray(last));
  return { bytes: b, writes: writes.filter((w) => w.length), gapMs: cuts ? Math.floor(r() * 20) : 0, how };
}
