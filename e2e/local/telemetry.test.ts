// The Telemetry API turning the access log on and off: a real `meshgate local` gateway started with --mesh-config
// naming an envoyFileAccessLog provider (a JSON line per entry to a file) and no accessLogFile, so nothing is logged
// until a Telemetry names the provider. Telemetry files are rewritten while it runs and the log follows: a
// mesh-wide Telemetry (the root namespace, no selector) logs everything; its filter `response.code >= 400` keeps
// only 4xx/5xx (Envoy's CEL filter, evaluated by the proxy); a Telemetry selecting the gateway pod with
// `disabled: true` stops it; removing that file brings it back. An invalid Telemetry (a filter that is not CEL) is
// reported in the log with istiod's message and left out, the valid one staying in force; the valid one rewritten
// into an invalid version is reported too and its last valid version stays in effect, as a webhook would keep it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { rawRequest } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'httpbin.example.com';
const BACKEND_IP = '127.0.42.1';

type Line = Record<string, unknown>;

const telemetry = (name: string, spec: string): string =>
  `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ${name}, namespace: istio-system}
spec:
${spec}`;

describe('local mode: access logging from Telemetry resources, changed live', () => {
  let gw: Gateway;
  let backend: Backend;
  let dir: string;
  let logFile: string;
  let seq = 0;

  /** A request whose User-Agent names it; its status. */
  const request = async (path: string, agent: string): Promise<number> =>
    (await rawRequest('127.0.0.1', gw.port, [`GET ${path} HTTP/1.1`, `Host: ${HOST}`, `User-Agent: ${agent}`, '', ''].join('\r\n'))).status;
  const lines = (): Line[] =>
    (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  const agents = (): string[] => lines().map((l) => String(l.agent));
  /** Waits for the line of `agent` (lines reach the file within a second). */
  const logged = (agent: string): Promise<Line> =>
    eventually(`the access log line of ${agent}`, async () => Promise.resolve(lines().find((l) => l.agent === agent)), 10_000, 100);
  /** Waits until the proxy's config (config_dump) does or does not contain `text`. */
  const configHas = (text: string, present = true): Promise<true> =>
    eventually(
      `the config ${present ? 'to contain' : 'not to contain'} ${text}`,
      async () => ((await gw.adminGet('/config_dump')).includes(text) === present ? true : undefined),
      20_000,
      200,
    );
  /**
   * Requests (200 then 404) while the log is off or filtered, then a 404 that is logged (`marker`): with one worker,
   * lines are written in request order, so once the marker is there every earlier line is too.
   */
  const probe = async (): Promise<{ ok: string; notFound: string }> => {
    seq++;
    const ok = `ok-${seq}`;
    const notFound = `nf-${seq}`;
    assert.equal(await request('/status/200', ok), 200);
    assert.equal(await request('/status/404', notFound), 404);
    return { ok, notFound };
  };

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    // /status/<code> answers with that code, as httpbin does.
    backend.behave = (seen) => ({ status: Number(/^\/status\/(\d{3})$/.exec(seen.path)?.[1] ?? 200) });
    dir = mkdtempSync(join(tmpdir(), 'meshgate-telemetry-'));
    logFile = join(dir, 'telemetry.log');
    const meshFile = join(dir, 'mesh');
    writeFileSync(
      meshFile,
      `extensionProviders:
- name: file-log
  envoyFileAccessLog:
    path: ${logFile}
    logFormat:
      labels: {agent: '%REQ(USER-AGENT)%', code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%'}
`,
    );
    gw = await startGateway({ concurrency: 1, args: ['--mesh-config', meshFile] });
    gw.write('10-gateway.yaml', gatewayYaml('httpbin-gateway', [HOST]));
    gw.write('20-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
    gw.write('30-vs.yaml', virtualServiceYaml('httpbin', HOST, 'httpbin-gateway', 'httpbin'));
    await eventually('the route', async () => ((await request('/status/200', 'warm-up')) === 200 ? true : undefined), 20_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a Telemetry nothing is logged (no accessLogFile, no default provider)', async () => {
    const p = await probe();
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(
      agents().filter((a) => a === p.ok || a === p.notFound),
      [],
    );
    assert.ok(!(await gw.adminGet('/config_dump')).includes(logFile));
  });

  test('a mesh-wide Telemetry naming the provider logs every request', async () => {
    gw.write('40-telemetry.yaml', telemetry('mesh-default', '  accessLogging:\n  - providers: [{name: file-log}]\n'));
    await configHas(logFile);
    const p = await probe();
    const ok = await logged(p.ok);
    assert.deepEqual(ok, { agent: p.ok, code: 200, path: '/status/200' });
    assert.deepEqual(await logged(p.notFound), { agent: p.notFound, code: 404, path: '/status/404' });
  });

  test('the file rewritten with filter `response.code >= 400` keeps only the 4xx/5xx entries', async () => {
    gw.write(
      '40-telemetry.yaml',
      telemetry('mesh-default', '  accessLogging:\n  - providers: [{name: file-log}]\n    filter: {expression: "response.code >= 400"}\n'),
    );
    await configHas('response.code >= 400');
    const p = await probe();
    await logged(p.notFound);
    assert.ok(!agents().includes(p.ok), 'the 200 is filtered out');
    assert.equal(await request('/status/503', `e-${seq}`), 503);
    assert.equal((await logged(`e-${seq}`)).code, 503);
  });

  test('a Telemetry selecting the gateway with disabled: true turns the log off; deleting it turns it back on', async () => {
    gw.write(
      '41-off.yaml',
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gateway-off, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  accessLogging:
  - disabled: true
`,
    );
    await configHas(logFile, false);
    const off = await probe();
    rmSync(join(gw.dir, '41-off.yaml'));
    await configHas(logFile);
    const on = await probe();
    await logged(on.notFound);
    assert.ok(!agents().includes(off.notFound), 'nothing was logged while disabled');
    assert.ok(!agents().includes(on.ok), 'the mesh-wide filter applies again');
  });

  test("an invalid Telemetry is reported with istiod's message and left out; the valid one stays in force", async () => {
    gw.write(
      '42-bad.yaml',
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: bad-filter, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  accessLogging:
  - disabled: true
    filter: {expression: "response.code >= "}
`,
    );
    await eventually(
      'the report',
      async () =>
        Promise.resolve(
          /42-bad\.yaml[^\n]*Telemetry istio-system\/bad-filter at spec\.accessLogging\[0\]\.filter\.expression: must be a valid CEL expression/.exec(
            gw.proc.output(),
          ) ?? undefined,
        ),
      20_000,
      200,
    );
    const p = await probe();
    await logged(p.notFound);
    assert.ok(!agents().includes(p.ok), 'still the mesh-wide Telemetry with its filter');
  });

  test('the valid Telemetry rewritten into an invalid version: reported, and its last valid version stays in effect', async () => {
    gw.write(
      '40-telemetry.yaml',
      telemetry('mesh-default', '  accessLogging:\n  - providers: [{name: file-log}]\n    filter: {expression: "response.code >>"}\n'),
    );
    await eventually(
      'the report',
      async () =>
        Promise.resolve(
          /40-telemetry\.yaml[^\n]*Telemetry istio-system\/mesh-default at spec\.accessLogging\[0\]\.filter\.expression: must be a valid CEL expression[^\n]*its last valid version stays in effect/.exec(
            gw.proc.output(),
          ) ?? undefined,
        ),
      20_000,
      200,
    );
    assert.ok((await gw.adminGet('/config_dump')).includes('response.code >= 400'), 'the previous filter is still configured');
    const p = await probe();
    await logged(p.notFound);
    assert.ok(!agents().includes(p.ok), 'the previous version, with its filter, still logs');
  });
});
