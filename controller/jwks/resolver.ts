// The JWKS resolver: fetches the keys of RequestAuthentication rules that name a jwksUri (or only an issuer, whose
// OpenID discovery document names it) so that translation can inline them, as istiod does by default
// (PILOT_JWT_ENABLE_REMOTE_JWKS=false: pilot/pkg/model/jwks_resolver.go). Translation stays synchronous: it asks
// get(), which answers from the cache; a miss starts a fetch and answers "pending" (the rule then gets istiod's
// public-only JWKS, so its tokens are rejected, never accepted unverified), and the fetch's completion emits
// 'change', on which the controller translates and pushes again. istiod instead fetches a miss during the push,
// for up to the rule's timeout. The controller's first config waits for the fetches it started (answered()), as
// istiod's first push does; after that, a new jwksUri is pushed at once without its keys, then again with them.
//
// As istiod:
//   - one GET per (issuer, jwksUri), bounded by the rule's timeout (5 s by default) for the whole exchange;
//     a status outside 2xx fails ("status 404, message ..."); the body is inlined as it came;
//   - https verifies the server with the system roots plus an extra CA bundle (istiod: /cacerts/extra.pem),
//     TLS 1.2 at least, unless JWKS_RESOLVER_INSECURE_SKIP_VERIFY; HTTP(S)_PROXY and NO_PROXY apply (loopback
//     never proxied); no keep-alive; redirects followed (at most 10); BLOCKED_CIDRS_IN_JWKS_URIS refuses addresses;
//   - a failed first fetch is retried at once in the background (up to 7 more attempts, 1 s apart, within the
//     same timeout);
//   - every entry is refreshed every PILOT_JWT_PUB_KEY_REFRESH_INTERVAL (20 min); after a refresh with a failure
//     the interval is 1 min, then doubles up to 60 min while failures go on, and is reset by a clean refresh;
//     a refresh makes up to 8 attempts, 1 s apart, within the timeout;
//   - an entry not asked for, or not fetched successfully, for 7 days is dropped.
// Deliberately unlike istiod: an entry whose fetches all failed is kept (and so retried by the refresher)
// instead of dropped until the next push asks again, because here nothing else may ask for a long time; and any
// change of a key's text triggers a push (istiod pushes when the keys differ as JSON, by kid).
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { JwksResult, JwksSource } from '../translate/jwt-authn.ts';
import { readFileSync } from 'node:fs';
import { parseCidr, parseAddr } from '../model/netip.ts';
import { parseGoDuration } from '../model/request-authentication-validation.ts';

export interface JwksResolverOptions {
  log: Logger;
  /** PILOT_JWT_PUB_KEY_REFRESH_INTERVAL (20 min). */
  refreshIntervalMs?: number;
  /** After a refresh with failures (1 min; doubled while they go on, up to 60 min). */
  refreshIntervalOnFailureMs?: number;
  /** Between attempts of one fetch (1 s). */
  retryIntervalMs?: number;
  /** An entry not used or not refreshed successfully for this long is dropped (7 days). */
  evictionMs?: number;
  /** Extra CA certificates (PEM) trusted beside the system roots. */
  extraCa?: string;
  /** JWKS_RESOLVER_INSECURE_SKIP_VERIFY. */
  insecureSkipVerify?: boolean;
  /** BLOCKED_CIDRS_IN_JWKS_URIS, parsed. */
  blockedCidrs?: readonly string[];
  /** Where HTTP_PROXY, HTTPS_PROXY and NO_PROXY are read (process.env). */
  env?: NodeJS.ProcessEnv;
  /** The clock (tests). */
  now?: () => number;
}

interface Entry {
  issuer: string;
  jwksUri: string;
  /** The last document fetched; '' when none was. */
  pubKey: string;
  /** Why the last fetch failed, when it did. */
  error?: string;
  /** A fetch under way. */
  inflight?: Promise<void>;
  /** The first attempt (its result, keys or a failure, is the entry's first answer). */
  firstAttempt?: Promise<void>;
  lastRefreshed: number;
  lastUsed: number;
  timeoutMs: number;
}

const MINUTE = 60_000;
/** Where istiod reads additional CA certificates for JWKS servers from (jwksExtraRootCABundlePath). */
const EXTRA_CA_FILE = '/cacerts/extra.pem';
const MAX_REDIRECTS = 10;
const REFRESH_RETRIES = 7;
const DISCOVERY_SUFFIX = '/.well-known/openid-configuration';

class FetchError extends Error {}

/** Go's strconv.Quote, enough for the first bytes of an error body. */
function quoteBody(body: string): string {
  return JSON.stringify(body);
}

const isLoopback = (host: string): boolean => {
  if (host === 'localhost') return true;
  const a = parseAddr(host.replace(/^\[|\]$/g, ''));
  if (!a.ok) return false;
  const b = a.value.bytes;
  return b.length === 4 ? b[0] === 127 : b.every((x, i) => x === (i === 15 ? 1 : 0));
};

function inCidr(ip: string, cidr: string): boolean {
  const a = parseAddr(ip);
  const c = parseCidr(cidr);
  if (!a.ok || !c.ok) return false;
  const net = parseAddr(c.value.address);
  if (!net.ok || net.value.bytes.length !== a.value.bytes.length) return false;
  let bits = c.value.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a.value.bytes[i] ?? 0) & mask) !== ((net.value.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

export class JwksResolver extends EventEmitter<{ change: [] }> implements JwksSource {
  private readonly entries = new Map<string, Entry>();
  private readonly o: Required<Omit<JwksResolverOptions, 'extraCa'>> & { extraCa?: string };
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshInterval: number;
  private lastRefreshHadErrors = false;
  private closed = false;
  /** Bumps on every change of what get() answers (the controller pushes when it moves). */
  generation = 0;

  constructor(o: JwksResolverOptions) {
    super();
    this.o = {
      refreshIntervalMs: 20 * MINUTE,
      refreshIntervalOnFailureMs: MINUTE,
      retryIntervalMs: 1000,
      evictionMs: 7 * 24 * 60 * MINUTE,
      insecureSkipVerify: false,
      blockedCidrs: [],
      env: process.env,
      now: Date.now,
      ...o,
    };
    this.refreshInterval = this.o.refreshIntervalMs;
    this.scheduleRefresh();
  }

  /**
   * Options as istiod takes them: its environment variables (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, a Go duration;
   * JWKS_RESOLVER_INSECURE_SKIP_VERIFY; BLOCKED_CIDRS_IN_JWKS_URIS) and the extra CA bundle at /cacerts/extra.pem
   * when there is one (NODE_EXTRA_CA_CERTS works too).
   */
  static optionsFromEnv(env: NodeJS.ProcessEnv, extraCaFile = EXTRA_CA_FILE): Omit<JwksResolverOptions, 'log'> {
    const out: Omit<JwksResolverOptions, 'log'> = { env };
    const interval = parseGoDuration(env.PILOT_JWT_PUB_KEY_REFRESH_INTERVAL ?? '');
    if ('ns' in interval && interval.ns > 0n) out.refreshIntervalMs = Number(interval.ns / 1_000_000n);
    try {
      out.extraCa = readFileSync(extraCaFile, 'utf8');
    } catch {
      // none: the system roots only
    }
    if (/^(1|t|T|true|TRUE|True)$/.test(env.JWKS_RESOLVER_INSECURE_SKIP_VERIFY ?? '')) out.insecureSkipVerify = true;
    const blocked = (env.BLOCKED_CIDRS_IN_JWKS_URIS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (blocked.length) out.blockedCidrs = blocked;
    return out;
  }

  get(issuer: string, jwksUri: string, timeoutMs: number): JwksResult {
    const key = `${issuer}\n${jwksUri}`;
    const now = this.o.now();
    let e = this.entries.get(key);
    if (!e) {
      e = { issuer, jwksUri, pubKey: '', lastRefreshed: now, lastUsed: now, timeoutMs };
      this.entries.set(key, e);
      this.startFetch(e, 0, true);
      e.firstAttempt = e.inflight;
    } else {
      e.timeoutMs = timeoutMs;
      if (now > e.lastUsed) e.lastUsed = now;
    }
    if (e.pubKey) return { jwks: e.pubKey };
    // A failure stays the answer while the retries after it run.
    if (e.error !== undefined) return { error: e.error };
    return { pending: true };
  }

  /** Whether an entry asked for has no answer yet (neither keys nor a failed attempt). */
  hasPending(): boolean {
    return [...this.entries.values()].some((e) => !e.pubKey && e.error === undefined);
  }

  /**
   * Resolves once every entry asked for so far has an answer: keys, or a failed first attempt (each bounded by its
   * rule's timeout). The controller waits for it before its first push, as istiod's first push waits for its fetches.
   */
  async answered(): Promise<void> {
    await Promise.all([...this.entries.values()].flatMap((e) => (e.firstAttempt ? [e.firstAttempt] : [])));
  }

  /** Resolves once no fetch is under way (tests). */
  async settled(): Promise<void> {
    for (;;) {
      const running = [...this.entries.values()].flatMap((e) => (e.inflight ? [e.inflight] : []));
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
  }

  private changed(): void {
    this.generation++;
    if (!this.closed) this.emit('change');
  }

  /**
   * Fetches an entry's keys with `retries` extra attempts. A first fetch (main flow, no retry) that fails is
   * retried at once in the background with the refresh flow's retries, as istiod's jwksuriChannel does.
   */
  private startFetch(e: Entry, retries: number, first: boolean): void {
    const run = async (): Promise<void> => {
      try {
        const body = await this.fetchKeys(e, retries);
        const changed = body !== e.pubKey || e.error !== undefined;
        e.pubKey = body;
        e.error = undefined;
        e.lastRefreshed = this.o.now();
        e.inflight = undefined;
        if (changed) {
          this.o.log.info({ issuer: e.issuer, jwksUri: e.jwksUri }, 'JWKS fetched');
          this.changed();
        }
      } catch (err) {
        const message = (err as Error).message;
        const changed = e.error !== message;
        e.error = message;
        e.inflight = undefined;
        this.o.log.warn(
          { issuer: e.issuer, jwksUri: e.jwksUri, err: message },
          e.pubKey ? 'JWKS refresh failed: keeping the keys fetched before' : 'JWKS fetch failed: tokens of this rule are rejected until it succeeds',
        );
        if (changed && !e.pubKey) this.changed();
        if (first && !this.closed) this.startFetch(e, REFRESH_RETRIES, false);
        else if (!first) throw err;
      }
    };
    const p = run().catch(() => undefined);
    e.inflight = p;
  }

  private scheduleRefresh(): void {
    if (this.closed) return;
    this.refreshTimer = setTimeout(() => void this.refresh(), this.refreshInterval);
    this.refreshTimer.unref();
  }

  /** The refresher's tick: drops stale entries, fetches the others again, adapts the interval. */
  async refresh(): Promise<void> {
    clearTimeout(this.refreshTimer);
    const now = this.o.now();
    const runs: Promise<boolean>[] = [];
    for (const [key, e] of this.entries) {
      if (now - e.lastUsed >= this.o.evictionMs || now - e.lastRefreshed >= this.o.evictionMs) {
        this.o.log.info({ issuer: e.issuer, jwksUri: e.jwksUri }, 'JWKS dropped from the cache (not used or not refreshed for too long)');
        this.entries.delete(key);
        continue;
      }
      if (e.inflight) {
        runs.push(e.inflight.then(() => e.error !== undefined));
        continue;
      }
      this.startFetch(e, REFRESH_RETRIES, false);
      runs.push((e.inflight ?? Promise.resolve()).then(() => e.error !== undefined));
    }
    const hadErrors = (await Promise.all(runs)).some(Boolean);
    if (hadErrors) {
      this.refreshInterval = this.lastRefreshHadErrors ? Math.min(this.refreshInterval * 2, 60 * MINUTE) : this.o.refreshIntervalOnFailureMs;
    } else this.refreshInterval = this.o.refreshIntervalMs;
    this.lastRefreshHadErrors = hadErrors;
    this.scheduleRefresh();
  }

  /** The refresh interval in force (tests). */
  get currentRefreshIntervalMs(): number {
    return this.refreshInterval;
  }

  /** The entry's keys: its jwksUri, or the jwks_uri of its issuer's OpenID discovery document. */
  private async fetchKeys(e: Entry, retries: number): Promise<string> {
    const deadline = performance.now() + e.timeoutMs;
    let uri = e.jwksUri;
    if (!uri) {
      if (!e.issuer) throw new FetchError('jwksURI and issuer are both empty');
      const discovery = `${e.issuer.replace(/\/$/, '')}${DISCOVERY_SUFFIX}`;
      const doc = await this.getWithRetry(discovery, retries, deadline);
      let data: unknown;
      try {
        data = JSON.parse(doc);
      } catch (err) {
        throw new FetchError(`${discovery}: ${(err as Error).message}`);
      }
      const jwksUri = (data as { jwks_uri?: unknown } | null)?.jwks_uri;
      if (typeof jwksUri !== 'string') throw new FetchError(`invalid jwks_uri ${JSON.stringify(jwksUri) ?? '<nil>'} in openID discovery configuration`);
      uri = jwksUri;
    }
    return this.getWithRetry(uri, retries, deadline);
  }

  private async getWithRetry(uri: string, retries: number, deadline: number): Promise<string> {
    for (let i = 0; ; i++) {
      try {
        return await this.get1(uri, deadline);
      } catch (err) {
        if (i >= retries || this.closed) throw err;
        await new Promise((r) => setTimeout(r, this.o.retryIntervalMs).unref());
      }
    }
  }

  /** One GET within the deadline, following redirects. */
  private async get1(uri: string, deadline: number): Promise<string> {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new FetchError(`cannot parse ${JSON.stringify(uri)}`);
    }
    for (let hops = 0; ; hops++) {
      const left = deadline - performance.now();
      if (left <= 0) throw new FetchError(`Get ${JSON.stringify(url.href)}: context deadline exceeded`);
      const res = await this.request(url, Math.ceil(left));
      if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
        if (hops >= MAX_REDIRECTS) throw new FetchError(`Get ${JSON.stringify(url.href)}: stopped after ${MAX_REDIRECTS} redirects`);
        url = new URL(res.location, url);
        continue;
      }
      if (res.status < 200 || res.status >= 300) {
        const message = quoteBody(res.body);
        throw new FetchError(
          message.length > 100 ? `status ${res.status}, message ${message.slice(0, 100)}(truncated)` : `status ${res.status}, message ${message}`,
        );
      }
      return res.body;
    }
  }

  private request(url: URL, timeoutMs: number): Promise<{ status: number; location?: string; body: string }> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return Promise.reject(new FetchError(`Get ${JSON.stringify(url.href)}: unsupported protocol scheme ${JSON.stringify(url.protocol.slice(0, -1))}`));
    }
    const secure = url.protocol === 'https:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const blocked = (ip: string): string | undefined => this.o.blockedCidrs.find((c) => inCidr(ip, c));
    if (isIP(host)) {
      const b = blocked(host);
      if (b) return Promise.reject(new FetchError(`connection to ${url.host} (resolved IP ${host}) blocked: IP is in blocked CIDR range ${b}`));
    }
    const proxied = !isLoopback(url.hostname);
    const agentOptions: https.AgentOptions & { proxyEnv?: NodeJS.ProcessEnv } = {
      keepAlive: false,
      ...(proxied ? { proxyEnv: this.o.env } : {}),
    };
    const agent = secure
      ? new https.Agent({
          ...agentOptions,
          // Go's system pool: the OS store; Node's own bundle and NODE_EXTRA_CA_CERTS come with 'default'.
          ca: [...tls.getCACertificates('system'), ...tls.getCACertificates('default'), ...(this.o.extraCa ? [this.o.extraCa] : [])],
          rejectUnauthorized: !this.o.insecureSkipVerify,
          minVersion: 'TLSv1.2',
        })
      : new http.Agent(agentOptions);
    // Blocked ranges are checked on the addresses a name resolves to, as istiod's dialer does.
    type LookupCallback = (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void;
    const lookup = (hostname: string, options: { all?: boolean }, cb: LookupCallback): void => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return cb(err, '', 0);
        for (const a of addresses) {
          const b = blocked(a.address);
          if (b) return cb(new FetchError(`connection to ${url.host} (resolved IP ${a.address}) blocked: IP is in blocked CIDR range ${b}`), '', 0);
        }
        if (options.all) return cb(null, addresses);
        return cb(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
      });
    };
    return new Promise((resolve, reject) => {
      const options: http.RequestOptions = {
        method: 'GET',
        agent,
        timeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
        lookup,
      };
      const req = (secure ? https : http).request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          agent.destroy();
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(res.headers.location ? { location: res.headers.location } : {}),
          });
        });
        res.on('error', (err) => {
          agent.destroy();
          reject(new FetchError(`Get ${JSON.stringify(url.href)}: ${err.message}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error('context deadline exceeded')));
      req.on('error', (err: Error & { name?: string }) => {
        agent.destroy();
        const why = err.name === 'TimeoutError' || err.name === 'AbortError' ? 'context deadline exceeded' : err.message;
        reject(new FetchError(`Get ${JSON.stringify(url.href)}: ${why}`));
      });
      req.end();
    });
  }
}
