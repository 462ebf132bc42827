// Regexes from requests on the metrics (0.0.0.0) and admin ports run as RE2, as Envoy runs them (issue 11,
// item 9): a catastrophic-backtracking pattern answers at once and readiness keeps answering meanwhile; an
// invalid pattern is Envoy's 400 with Envoy's text.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../lib/process.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';

// A Service whose cluster stats carry a run of 60 a's: JavaScript's backtracking `(a+)+$` needs about 2^60
// steps on it, RE2 one pass.
const LONG = 'a'.repeat(60);
const CATASTROPHIC = encodeURIComponent('(a+)+$');

describe('admin and metrics regexes are RE2', () => {
  let gw: Gateway;
  const get = (port: number, path: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: 20_000 });

  before(async () => {
    // The cluster stats on 15090 beyond Istio's inclusion list, as an Istio user asks for them (proxyStatsMatcher).
    gw = await startGateway({ args: ['--proxy-config', '{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound"]}}'] });
    gw.write('10-long.yaml', serviceYaml(LONG, 8000, [{ ip: '127.0.12.1' }]));
    await eventually(
      'the long cluster',
      async () => ((await gw.adminGet('/clusters')).includes(`${LONG}.default.svc.cluster.local`) ? true : undefined),
      15_000,
      100,
    );
  });

  after(async () => {
    await gw?.stop();
  });

  test('a catastrophic filter on :15090 /stats/prometheus answers, and /ready answers while it runs', async () => {
    const [metrics, ready] = await Promise.all([get(gw.metrics, `/stats/prometheus?filter=${CATASTROPHIC}`), get(gw.admin, '/ready')]);
    assert.equal(metrics.status, 200);
    // Nothing ends in a run of a's: every stat name ends in a letter other than a, or a digit, or ';'.
    assert.equal(metrics.body.toString(), '');
    assert.equal(ready.statusLine, 'HTTP/1.1 200 OK');
    const matching = await get(gw.metrics, `/stats/prometheus?filter=${encodeURIComponent('(a+)+\\.default.*upstream_cx_total$')}`);
    assert.equal(matching.status, 200);
    assert.match(
      matching.body.toString(),
      new RegExp(`^envoy_cluster_upstream_cx_total\\{cluster_name="outbound\\|8000\\|\\|${LONG}\\.default\\.svc\\.cluster\\.local"\\} 0$`, 'm'),
    );
  });

  test('a catastrophic filter on admin /stats and name_regex on /config_dump answer', async () => {
    const stats = await get(gw.admin, `/stats?filter=${encodeURIComponent(`${LONG}(a+)+x`)}`);
    assert.equal(stats.status, 200);
    assert.equal(stats.body.toString(), '');
    const dump = await get(gw.admin, `/config_dump?resource=dynamic_active_clusters&name_regex=${encodeURIComponent('.*(a+)+b')}`);
    assert.equal(dump.status, 200);
    assert.deepEqual(JSON.parse(dump.body.toString()), { configs: [] });
  });

  test('name_regex must match the whole name (RE2::FullMatch), as Envoy compiles it into a safe_regex matcher', async () => {
    const names = async (re: string): Promise<string[]> => {
      const r = await get(gw.admin, `/config_dump?resource=dynamic_active_clusters&name_regex=${encodeURIComponent(re)}`);
      assert.equal(r.status, 200);
      return (JSON.parse(r.body.toString()) as { configs: { cluster: { name: string } }[] }).configs.map((c) => c.cluster.name);
    };
    assert.deepEqual(await names(LONG), []);
    assert.deepEqual(await names(`.*${LONG}.*`), [`outbound|8000||${LONG}.default.svc.cluster.local`]);
  });

  const INVALID: { name: string; port: () => number; path: string; body: string }[] = [
    { name: 'metrics /stats/prometheus?filter=(', port: () => gw.metrics, path: '/stats/prometheus?filter=(', body: 'Invalid re2 regex' },
    { name: 'admin /stats?filter=[', port: () => gw.admin, path: '/stats?filter=[', body: 'Invalid re2 regex' },
    {
      name: 'admin /stats/prometheus?filter=(?=a) (lookahead is not RE2)',
      port: () => gw.admin,
      path: `/stats/prometheus?filter=${encodeURIComponent('(?=a)')}`,
      body: 'Invalid re2 regex',
    },
    {
      name: 'admin /config_dump?name_regex=[',
      port: () => gw.admin,
      path: '/config_dump?name_regex=[',
      body: 'INVALID_ARGUMENT: Error while parsing name_regex from [: missing ]: [',
    },
  ];
  for (const c of INVALID) {
    test(`invalid regex: ${c.name} answers 400 ${JSON.stringify(c.body)}`, async () => {
      const r = await get(c.port(), c.path);
      assert.equal(r.statusLine, 'HTTP/1.1 400 Bad Request');
      assert.equal(r.header('content-type'), 'text/plain; charset=UTF-8');
      assert.equal(r.header('server'), 'envoy');
      assert.equal(r.body.toString(), c.body);
    });
  }
});
