// The admin route map (issue 16) in a real headless Chromium (Debian's, installed by e2e/chromium/install.sh,
// driven by playwright-core): `meshgate local` with backends, the page finds every listener, route and cluster
// of the gateway's /config_dump (by DOM structure and text), counts move with traffic, a subset without pods
// shows as having no endpoints, names from the configuration stay text (no markup, no script runs), a node's
// link opens its /config_dump fragment. A screenshot is kept as an artifact (.cache/artifacts or
// $MESHGATE_ARTIFACTS), never compared by pixels.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MESHGATE, REPO, eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';

const HOST = 'shop.routemap.example.com';
// A header value and a route name as a hostile config author would write them: they must show as text.
const EVIL_HEADER = '<img src=x onerror="window.__pwned=1">';
const EVIL_ROUTE = '<b id="injected">bold</b>';

/** Debian's Chromium: installed on first use; a clear failure (never a skip) when it cannot be. */
function chromiumPath(): string {
  try {
    const out = execFileSync('bash', [join(REPO, 'e2e/chromium/install.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
    return out.trim().split('\n').at(-1) ?? '';
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`the route map test needs Chromium and e2e/chromium/install.sh could not provide it:\n${err.stderr ?? err.message}`, { cause: e });
  }
}

interface DumpNames {
  listeners: string[];
  clusters: string[];
  /** Every route of every route configuration, as (virtual host, index). */
  routes: { vhost: string; index: number }[];
}

/** What the gateway's own /config_dump holds, read without the route map. */
function namesOf(dump: { configs: Record<string, unknown>[] }): DumpNames {
  const byType = (t: string) => dump.configs.find((c) => c['@type'] === `type.googleapis.com/envoy.admin.v3.${t}`) ?? {};
  type L = { listener?: { name: string }; name?: string };
  const ls = byType('ListenersConfigDump') as { static_listeners?: L[]; dynamic_listeners?: L[] };
  const cs = byType('ClustersConfigDump') as Record<string, { cluster: { name: string } }[] | undefined>;
  type VH = { name: string; routes?: unknown[] };
  const rs = byType('RoutesConfigDump') as Record<string, { route_config: { virtual_hosts?: VH[] } }[] | undefined>;
  return {
    listeners: [...(ls.static_listeners ?? []).map((l) => l.listener?.name ?? ''), ...(ls.dynamic_listeners ?? []).map((l) => l.name ?? '')],
    clusters: ['static_clusters', 'dynamic_active_clusters', 'dynamic_warming_clusters'].flatMap((k) => (cs[k] ?? []).map((c) => c.cluster.name)),
    routes: ['static_route_configs', 'dynamic_route_configs'].flatMap((k) =>
      (rs[k] ?? []).flatMap((r) => (r.route_config.virtual_hosts ?? []).flatMap((vh) => (vh.routes ?? []).map((_r, index) => ({ vhost: vh.name, index })))),
    ),
  };
}

describe('admin route map in headless Chromium', () => {
  let gw: Gateway;
  let browser: Browser | undefined;
  let page: Page;
  const backends: Backend[] = [];
  const consoleErrors: string[] = [];
  let bport = 0;
  const cluster = (subset: string) => `outbound|${bport}|${subset}|shop.default.svc.cluster.local`;

  before(async () => {
    const executablePath = chromiumPath();
    bport = await freePort();
    backends.push(await startBackend('127.0.16.1', bport, 'shop-v1'), await startBackend('127.0.16.2', bport, 'shop-v2'));
    gw = await startGateway();
    gw.write('10-gateway.yaml', gatewayYaml('shop-gateway', [HOST]));
    gw.write(
      '20-shop.yaml',
      serviceYaml('shop', bport, [
        { ip: '127.0.16.1', version: 'v1' },
        { ip: '127.0.16.2', version: 'v2' },
      ]),
    );
    gw.write(
      '30-shop-routes.yaml',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: default}
spec:
  host: shop
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [shop-gateway]
  http:
  - name: ${JSON.stringify(EVIL_ROUTE)}
    match: [{uri: {prefix: /evil}, headers: {x-evil: {exact: ${JSON.stringify(EVIL_HEADER)}}}}]
    route: [{destination: {host: shop, subset: v2}}]
  - match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: shop, subset: v3}}]
  - match: [{uri: {prefix: /status}}]
    route:
    - {destination: {host: shop, subset: v1}, weight: 75}
    - {destination: {host: shop, subset: v2}, weight: 25}
`,
    );
    await eventually(
      'the shop routes and the empty subset v3 to apply',
      async () =>
        (await get('127.0.0.1', gw.port, '/status/200', HOST)).status === 200 && (await get('127.0.0.1', gw.port, '/v3', HOST)).status === 503
          ? true
          : undefined,
      20_000,
      100,
    );
    browser = await chromium.launch({
      executablePath,
      // Debian's Chromium as root on a machine without network: no sandbox, no background connections.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: 60_000,
    });
    page = await browser.newPage({ viewport: { width: 1700, height: 1000 } });
    page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    for (const b of backends) await b.close();
  });

  test('the admin home page lists /routemap beside the Envoy endpoints', async () => {
    const home = await gw.adminGet('/');
    assert.match(home, /^ {2}\/routemap: route map: .*\n {6}format: File format to use; One of \(html, json\)$/m);
    assert.match(home, /^ {2}\/config_dump: dump current Envoy configs \(experimental\)$/m);
  });

  test('the page shows every listener, route and cluster of /config_dump, with health and live counts', async () => {
    const names = namesOf(JSON.parse(await gw.adminGet('/config_dump')) as { configs: Record<string, unknown>[] });
    assert.ok(names.listeners.includes(`0.0.0.0_${gw.port}`));
    assert.ok(names.clusters.includes(cluster('v1')));
    await page.goto(`http://127.0.0.1:${gw.admin}/routemap?refresh=1`);
    await page.locator('.node[data-kind="cluster"]').first().waitFor({ timeout: 15_000 });
    const shown = async (kind: string) => page.locator(`.column[data-kind="${kind}"] .node[data-kind="${kind}"] .name`).allTextContents();

    assert.deepEqual((await shown('listener')).sort(), [...names.listeners].sort());
    assert.deepEqual((await shown('cluster')).sort(), [...names.clusters].sort());
    // Routes: as many nodes as the route configurations have routes, under their virtual hosts.
    assert.equal((await shown('route')).length, names.routes.length);
    const routes = await shown('route');
    for (const r of ['prefix /status', 'prefix /v3', EVIL_ROUTE]) assert.ok(routes.includes(r), `route ${r} in ${routes.join(' | ')}`);
    const vhosts = await shown('virtual_host');
    for (const vh of new Set(names.routes.map((r) => r.vhost))) assert.ok(vhosts.includes(vh), `virtual host ${vh}`);

    // The edges join the boxes: one SVG path per edge of the graph.
    const graph = JSON.parse(await gw.adminGet('/routemap?format=json')) as { edges: unknown[] };
    assert.equal(await page.locator('#edges path').count(), graph.edges.length);

    // Health: subset v3 selects no pod (the walkthrough's 503), v1's endpoint is healthy.
    const v3 = page.locator(`.node[data-id="cluster:${cluster('v3')}"]`);
    assert.match((await v3.getAttribute('class')) ?? '', /\bhealth-empty\b/);
    assert.equal(await v3.locator('.health').textContent(), 'empty');
    const ep1 = page.locator(`.node[data-id="endpoint:${cluster('v1')}/127.0.16.1:${bport}"]`);
    assert.equal(await ep1.locator('.health').textContent(), 'HEALTHY');

    // The weighted route's edges carry their weights.
    const labels = await page.locator('#edges text').allTextContents();
    assert.ok(labels.includes('75%') && labels.includes('25%'), labels.join(','));

    // Live counts: the page polls every second; requests to v1 and v2 move the clusters' upstream_rq_total.
    const v1 = page.locator(`.node[data-id="cluster:${cluster('v1')}"]`);
    const v2 = page.locator(`.node[data-id="cluster:${cluster('v2')}"]`);
    const count = async (n: typeof v1) => Number(await n.locator('dd[data-stat="upstream_rq_total"]').textContent());
    const before = (await count(v1)) + (await count(v2));
    for (let i = 0; i < 8; i++) assert.equal((await get('127.0.0.1', gw.port, '/status/200', HOST)).status, 200);
    await eventually('the page to count the 8 requests', async () => ((await count(v1)) + (await count(v2)) >= before + 8 ? true : undefined), 15_000, 200);

    const dir = process.env.MESHGATE_ARTIFACTS ?? join(REPO, '.cache/artifacts');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'routemap.png'), fullPage: true });
  });

  test('names from the configuration are text: no element or script injected; explain lines are shell-quoted', async () => {
    const evil = page.locator('.node[data-kind="route"]', { has: page.locator('.name', { hasText: EVIL_ROUTE }) });
    assert.equal(await evil.count(), 1);
    assert.ok(((await evil.locator('.detail').textContent()) ?? '').includes(`header x-evil=${EVIL_HEADER}`));
    assert.equal(await page.locator('#injected').count(), 0);
    assert.equal(await page.locator('.node img').count(), 0);
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined);
    assert.equal(
      await evil.locator('code.explain').textContent(),
      `meshgate explain --admin http://127.0.0.1:${gw.admin} --port ${gw.port} --host ${HOST} --path /evil --header 'x-evil=${EVIL_HEADER}'`,
    );
    assert.deepEqual(consoleErrors, [], 'no script errors or Content-Security-Policy violations');
  });

  test('the filter dims every box but the paths through the boxes that match', async () => {
    await page.locator('#filter').fill('prefix /v3');
    const dimmed = async (id: string) => /\bdim\b/.test((await page.locator(`.node[data-id="${id}"]`).getAttribute('class')) ?? '');
    assert.equal(await dimmed(`listener:0.0.0.0_${gw.port}`), false, 'the listener leading to the route');
    assert.equal(await dimmed(`cluster:${cluster('v3')}`), false, 'the cluster the route sends to');
    assert.equal(await dimmed(`cluster:${cluster('v1')}`), true, 'a cluster only other routes reach');
    assert.equal(await dimmed('cluster:prometheus_stats'), true, "the bootstrap's cluster");
    await page.locator('#filter').fill('');
    assert.equal(await page.locator('.node.dim').count(), 0);
  });

  test("a route's explain line, run in a shell as copied, names the route's cluster (meshgate explain against this admin)", async () => {
    const cases: [string, string, number][] = [
      [EVIL_ROUTE, cluster('v2'), 0],
      ['prefix /v3', cluster('v3'), 1],
    ];
    for (const [route, expected, status] of cases) {
      const node = page.locator('.node[data-kind="route"]', { has: page.locator('.name', { hasText: route }) });
      const line = (await node.locator('code.explain').textContent()) ?? '';
      assert.match(line, /^meshgate explain --admin /);
      const r = spawnSync('bash', ['-c', line.replace(/^meshgate /, `${MESHGATE} `)], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, status, `${line}\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^cluster +${expected.replace(/[|.]/g, '\\$&')}( |$)`, 'm'), r.stdout);
    }
  });

  test("a node's config_dump link opens its fragment of /config_dump", async () => {
    const v1 = page.locator(`.node[data-id="cluster:${cluster('v1')}"]`);
    await Promise.all([page.waitForURL(/\/config_dump\?/), v1.locator('a.dump').click()]);
    const body = JSON.parse((await page.locator('body').textContent()) ?? '') as { configs: { '@type': string; cluster: { name: string } }[] };
    assert.equal(body.configs.length, 1);
    assert.equal(body.configs[0]?.['@type'], 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster');
    assert.equal(body.configs[0]?.cluster.name, cluster('v1'));
  });
});
