// The JWKS resolver against a local HTTPS server (certificates from e2e/lib/certs.ts): a miss answers "pending" and
// fetches, the keys arriving with a 'change'; TLS is verified (an unknown CA fails, unless told to skip); status,
// timeout and redirects; a failed first fetch is retried in the background; the refresher fetches again, keeps the
// old keys on failure and adapts its interval; OpenID discovery; eviction; blocked CIDRs; proxies never used for
// loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { once } from 'node:events';
import { CertFactory, type Ca, type KeyPair } from '../../e2e/lib/certs.ts';
import { silentLogger } from '../../cli/logger.ts';
import { JwksResolver, type JwksResolverOptions } from './resolver.ts';

const KEYS_1 = '{"keys":[{"kty":"RSA","kid":"one","e":"AQAB","n":"AQAB"}]}';
const KEYS_2 = '{"keys":[{"kty":"RSA","kid":"two","e":"AQAB","n":"AQAB"}]}';

let certs: CertFactory;
let ca: Ca;
let serverCert: KeyPair;
let otherCa: Ca;

/** What the server answers per path; a function may hold the response (timeouts). */
type Handler = (req: { url: string }, res: { status: number; body: string; headers?: Record<string, string> }) => void | 'hang';
let routes = new Map<string, Handler>();
let hits: string[] = [];
let server: https.Server;
let base = '';

before(async () => {
  certs = new CertFactory();
  ca = certs.ca('jwks-test-ca');
  otherCa = certs.ca('other-ca');
  serverCert = certs.leaf(ca, 'localhost', { dns: ['localhost', 'jwks.example.test'], ip: ['127.0.0.1'] });
  server = https.createServer({ cert: serverCert.cert, key: serverCert.key }, (req, res) => {
    const url = req.url ?? '/';
    hits.push(url);
    const h = routes.get(url);
    const out = { status: 404, body: 'not found', headers: {} as Record<string, string> };
    if (h && h({ url }, out) === 'hang') return;
    res.writeHead(out.status, out.headers);
    res.end(out.body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
  certs.cleanup();
});

const resolvers: JwksResolver[] = [];
function resolver(o: Partial<JwksResolverOptions> = {}): JwksResolver {
  const r = new JwksResolver({ log: silentLogger(), extraCa: ca.cert, env: {}, retryIntervalMs: 20, ...o });
  resolvers.push(r);
  return r;
}
after(() => {
  for (const r of resolvers) r.close();
});

/** Answers in turn (the last one repeated): a body (200), a status and body, or 'hang' (no answer). */
function serve(path: string, ...answers: (string | { status: number; body: string; headers?: Record<string, string> })[]): void {
  let i = 0;
  routes.set(path, (_req, res) => {
    const a = answers[Math.min(i++, answers.length - 1)];
    if (a === 'hang') return 'hang';
    if (typeof a === 'string') Object.assign(res, { status: 200, body: a });
    else if (a) Object.assign(res, a);
  });
}

function reset(): void {
  routes = new Map();
  hits = [];
}

test('a miss is pending and starts a fetch; the keys arrive with a change, as they came', async () => {
  reset();
  serve('/jwks', KEYS_1);
  const r = resolver();
  assert.deepEqual(r.get('iss', `${base}/jwks`, 5000), { pending: true });
  const generation = r.generation;
  await once(r, 'change');
  assert.equal(r.generation, generation + 1);
  assert.deepEqual(r.get('iss', `${base}/jwks`, 5000), { jwks: KEYS_1 });
  assert.deepEqual(hits, ['/jwks'], 'one fetch; later gets answer from the cache');
});

test('TLS is verified: a server certificate from another CA fails, unless JWKS_RESOLVER_INSECURE_SKIP_VERIFY', async () => {
  reset();
  serve('/jwks', KEYS_1);
  const strict = resolver({ extraCa: otherCa.cert, retryIntervalMs: 1 });
  strict.get('iss', `${base}/jwks`, 2000);
  await once(strict, 'change');
  const got = strict.get('iss', `${base}/jwks`, 2000);
  assert.ok('error' in got && /certificate/i.test(got.error), JSON.stringify(got));
  assert.deepEqual(hits, [], 'nothing reached the server');
  const insecure = resolver({ extraCa: otherCa.cert, insecureSkipVerify: true });
  insecure.get('iss', `${base}/jwks`, 2000);
  await once(insecure, 'change');
  assert.deepEqual(insecure.get('iss', `${base}/jwks`, 2000), { jwks: KEYS_1 });
});

// A timeout no busy CI machine reaches: this test is about statuses, not time.
const LOADED_MACHINE_MS = 20_000;

test('a status outside 2xx fails with its body (truncated as istiod does); redirects are followed', async () => {
  reset();
  serve('/missing', { status: 404, body: 'not found' });
  serve('/long', { status: 500, body: 'x'.repeat(200) });
  serve('/moved', { status: 302, body: '', headers: { location: '/jwks' } });
  serve('/jwks', KEYS_2);
  const r = resolver({ retryIntervalMs: 1 });
  r.get('a', `${base}/missing`, LOADED_MACHINE_MS);
  r.get('b', `${base}/long`, LOADED_MACHINE_MS);
  r.get('c', `${base}/moved`, LOADED_MACHINE_MS);
  await r.settled();
  assert.deepEqual(r.get('a', `${base}/missing`, LOADED_MACHINE_MS), { error: 'status 404, message "not found"' });
  const long = r.get('b', `${base}/long`, LOADED_MACHINE_MS);
  assert.ok('error' in long && long.error.startsWith('status 500, message "xxx') && long.error.endsWith('(truncated)') && long.error.length < 140);
  assert.deepEqual(r.get('c', `${base}/moved`, LOADED_MACHINE_MS), { jwks: KEYS_2 });
});

test("a fetch is bounded by the rule's timeout", async () => {
  reset();
  serve('/slow', 'hang');
  const r = resolver({ retryIntervalMs: 1 });
  const started = performance.now();
  r.get('iss', `${base}/slow`, 300);
  await r.settled();
  const got = r.get('iss', `${base}/slow`, 300);
  assert.ok('error' in got && /deadline exceeded/.test(got.error), JSON.stringify(got));
  // The first attempt and the background retries share one timeout each: well under 8 timeouts.
  assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
  server.closeAllConnections();
});

test('a failed first fetch is retried at once in the background; the keys then arrive with a change', async () => {
  reset();
  serve('/flaky', { status: 503, body: 'starting' }, { status: 503, body: 'starting' }, KEYS_1);
  const r = resolver({ retryIntervalMs: 10 });
  const changes: string[] = [];
  r.on('change', () => changes.push(JSON.stringify(r.get('iss', `${base}/flaky`, 5000))));
  assert.deepEqual(r.get('iss', `${base}/flaky`, 5000), { pending: true });
  await r.settled();
  assert.deepEqual(changes, [JSON.stringify({ error: 'status 503, message "starting"' }), JSON.stringify({ jwks: KEYS_1 })]);
  assert.deepEqual(hits, ['/flaky', '/flaky', '/flaky']);
});

test('the refresher fetches again: new keys are a change, the same are not; a failure keeps the keys and backs off', async () => {
  reset();
  serve('/rotating', KEYS_1, KEYS_1, KEYS_2);
  const r = resolver({ retryIntervalMs: 1, refreshIntervalMs: 60_000, refreshIntervalOnFailureMs: 1000 });
  let changes = 0;
  r.on('change', () => changes++);
  r.get('iss', `${base}/rotating`, 2000);
  await r.settled();
  assert.equal(changes, 1);
  await r.refresh(); // KEYS_1 again
  assert.equal(changes, 1, 'the same keys: no change');
  assert.equal(r.currentRefreshIntervalMs, 60_000);
  await r.refresh(); // KEYS_2
  assert.equal(changes, 2);
  assert.deepEqual(r.get('iss', `${base}/rotating`, 2000), { jwks: KEYS_2 });
  serve('/rotating', { status: 500, body: 'down' });
  await r.refresh();
  assert.deepEqual(r.get('iss', `${base}/rotating`, 2000), { jwks: KEYS_2 }, 'a failed refresh keeps the keys');
  assert.equal(r.currentRefreshIntervalMs, 1000, 'first failure: the failure interval');
  await r.refresh();
  assert.equal(r.currentRefreshIntervalMs, 2000, 'failures go on: doubled');
  serve('/rotating', KEYS_2);
  await r.refresh();
  assert.equal(r.currentRefreshIntervalMs, 60_000, 'a clean refresh resets it');
});

test('an issuer without jwksUri: its OpenID discovery document names the JWKS', async () => {
  reset();
  serve('/realm/.well-known/openid-configuration', JSON.stringify({ issuer: `${base}/realm`, jwks_uri: `${base}/realm/certs` }));
  serve('/realm/certs', KEYS_1);
  serve('/bad/.well-known/openid-configuration', JSON.stringify({ issuer: 'x' }));
  const r = resolver({ retryIntervalMs: 1 });
  r.get(`${base}/realm/`, '', 2000);
  r.get(`${base}/bad`, '', 2000);
  await r.settled();
  assert.deepEqual(r.get(`${base}/realm/`, '', 2000), { jwks: KEYS_1 });
  assert.deepEqual(r.get(`${base}/bad`, '', 2000), { error: 'invalid jwks_uri <nil> in openID discovery configuration' });
});

test('entries not used (or not refreshed) for the eviction time are dropped by the refresher', async () => {
  reset();
  serve('/jwks', KEYS_1);
  let now = 1_000_000;
  const r = resolver({ now: () => now, evictionMs: 10_000 });
  r.get('used', `${base}/jwks`, 2000);
  r.get('unused', `${base}/jwks`, 2000);
  await r.settled();
  now += 6000;
  r.get('used', `${base}/jwks`, 2000);
  await r.refresh(); // both refreshed: neither is stale yet
  now += 6000;
  hits = [];
  await r.refresh();
  assert.deepEqual(hits, ['/jwks'], 'only the used entry is fetched again');
  hits = [];
  assert.deepEqual(r.get('unused', `${base}/jwks`, 2000), { pending: true }, 'the dropped one is fetched anew');
  await r.settled();
  assert.deepEqual(hits, ['/jwks']);
});

test('BLOCKED_CIDRS_IN_JWKS_URIS refuses those addresses; a proxy is never used for loopback', async () => {
  reset();
  serve('/jwks', KEYS_1);
  const blocked = resolver({ ...JwksResolver.optionsFromEnv({ BLOCKED_CIDRS_IN_JWKS_URIS: '10.0.0.0/8, 127.0.0.0/8' }), extraCa: ca.cert, retryIntervalMs: 1 });
  blocked.get('iss', `${base}/jwks`, 2000);
  await blocked.settled();
  const got = blocked.get('iss', `${base}/jwks`, 2000);
  assert.ok('error' in got && /blocked: IP is in blocked CIDR range 127\.0\.0\.0\/8/.test(got.error), JSON.stringify(got));
  const proxied = resolver({ env: { HTTPS_PROXY: 'http://127.0.0.1:1', HTTP_PROXY: 'http://127.0.0.1:1' } });
  proxied.get('iss', `${base}/jwks`, 2000);
  await proxied.settled();
  assert.deepEqual(proxied.get('iss', `${base}/jwks`, 2000), { jwks: KEYS_1 });
});

test("optionsFromEnv reads istiod's variables and extra CA bundle", () => {
  const env = { PILOT_JWT_PUB_KEY_REFRESH_INTERVAL: '1h30m', JWKS_RESOLVER_INSECURE_SKIP_VERIFY: 'true', BLOCKED_CIDRS_IN_JWKS_URIS: '10.0.0.0/8,' };
  assert.deepEqual(JwksResolver.optionsFromEnv(env, ca.certFile), {
    env,
    refreshIntervalMs: 5_400_000,
    insecureSkipVerify: true,
    blockedCidrs: ['10.0.0.0/8'],
    extraCa: ca.cert,
  });
  assert.deepEqual(JwksResolver.optionsFromEnv({}, '/nonexistent/extra.pem'), { env: {} });
});

test("HTTPS_PROXY is used for other hosts (a CONNECT tunnel), as Go's ProxyFromEnvironment", async () => {
  reset();
  serve('/jwks', KEYS_2);
  const tunnels: string[] = [];
  const proxy = http.createServer();
  proxy.on('connect', (req: http.IncomingMessage, client: import('node:stream').Duplex) => {
    tunnels.push(req.url ?? '');
    const upstream = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  try {
    const port = (server.address() as AddressInfo).port;
    const r = resolver({ env: { HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` } });
    r.get('iss', `https://jwks.example.test:${port}/jwks`, 2000);
    await r.settled();
    assert.deepEqual(r.get('iss', `https://jwks.example.test:${port}/jwks`, 2000), { jwks: KEYS_2 });
    assert.deepEqual(tunnels, [`jwks.example.test:${port}`]);
  } finally {
    proxy.closeAllConnections();
    proxy.close();
  }
});
